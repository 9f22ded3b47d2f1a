// The Electron shell's own messages, one contract for main/electron (main, preload, host utility)
// and the renderer's Electron shell (renderer/src/api/electron.ts). They only set up channels: a
// page asks the main process for a MessagePort, the main process gives one end to the host's
// utility process and the other to the page; the host API itself then travels over the port.
// No Node, no Electron: this file is imported on both sides.

/** What a port carries: the host API (one JSON text per message) or one domain's VNC display (RFB bytes). */
export type PortKind = 'api' | 'vnc';

/** The IPC channels between a page's preload and the main process. */
export const IPC = {
  /** preload → main: a page asks for a port. */
  portRequest: 'domus:port-request',
  /** main → preload: the page's end of the channel, transferred with the message. */
  port: 'domus:port',
} as const;

export interface PortRequest {
  kind: PortKind;
  /** The domain's uuid, for a VNC channel. */
  domain?: string;
  /** The libvirt connection (URI) of that domain; absent: this computer's. */
  connection?: string;
  /** Chosen by the preload; the port arrives tagged with it. */
  requestId: string;
}

export interface PortGranted {
  requestId: string;
}

/** What each IPC channel carries. */
export interface IpcPayloads {
  [IPC.portRequest]: PortRequest;
  [IPC.port]: PortGranted;
}

/** preload → page (window.postMessage, the port transferred with it): the request the port answers. */
export interface PortMessage {
  domusPort: string;
}

/** main → host utility process (its parentPort); api and vnc come with the host's end of the channel. */
export type HostUtilityRequest = { kind: 'api' } | { kind: 'vnc'; domain: string; connection?: string } | { kind: 'stop' };

/** The window property under which the preload exposes the bridge (contextBridge). */
export const BRIDGE_KEY = 'domusBridge';

/** What the preload exposes to the page: the port request, and nothing of Node or IPC. */
export interface DomusBridge {
  shell: 'electron';
  /** Asks for a port; returns the request id that the arriving port will carry. */
  requestPort(kind: PortKind, domainUuid?: string, connection?: string): string;
  /** The host path of a dropped file ('' when it has none). */
  pathForFile?(file: File): string;
}
