// The renderer's single way to the host: pick the shell once. The page's one connection is made
// by main.ts and handed to the stores (stores/api.ts), which alone call the host.
import { BRIDGE_KEY } from '@shared/ipc';
import { createElectronShell } from './electron';
import { HostConnection } from './connection';
import type { Shell } from './shell';
import { webShell } from './web';

const bridge = window[BRIDGE_KEY];
const shell: Shell = bridge?.shell === 'electron' ? createElectronShell(bridge) : webShell;

export function connectToHost(): HostConnection {
  return new HostConnection(() => shell.connectApi(), { kind: shell.kind, label: 'Domus window' });
}

/** Which shell this page runs in: the Electron app closes its window, a browser tab cannot. */
export const shellKind = shell.kind;

/** A domain's display; `connection`: the libvirt connection it is on (absent: this computer). */
export function openVncChannel(domainUuid: string, connection?: string): ReturnType<Shell['openVncChannel']> {
  return shell.openVncChannel(domainUuid, connection);
}

/** The host path of a file dropped on the page: only the desktop app knows it ('' elsewhere). */
export function hostPathOf(file: File): string {
  return bridge?.pathForFile?.(file) ?? '';
}

export type { ConnectionState } from './connection';
