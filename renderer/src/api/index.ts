// The renderer's single way to the host: pick the shell once, keep one connection for the page.
import { createElectronShell } from './electron';
import { HostConnection } from './connection';
import type { Shell } from './shell';
import { webShell } from './web';

const shell: Shell =
  window.domusBridge?.shell === 'electron' ? createElectronShell(window.domusBridge) : webShell;

export const host = new HostConnection(() => shell.connectApi(), { kind: shell.kind, label: 'Domus window' });

/** Which shell this page runs in: the Electron app closes its window, a browser tab cannot. */
export const shellKind = shell.kind;

export function openVncChannel(domainUuid: string): ReturnType<Shell['openVncChannel']> {
  return shell.openVncChannel(domainUuid);
}

export type { ConnectionState } from './connection';
