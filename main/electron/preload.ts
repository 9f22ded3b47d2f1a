/// <reference lib="dom" />
// Preload: exposes only the port request; the ports themselves reach the page by postMessage,
// so the renderer never sees ipcRenderer or any Node API.
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import { BRIDGE_KEY, IPC, type DomusBridge, type IpcPayloads, type PortMessage } from '../../shared/ipc.js';
import { APP_ORIGIN } from './policy.js';

let seq = 0;
const bridge: DomusBridge = {
  shell: 'electron',
  requestPort(kind, domainUuid, connection) {
    const request: IpcPayloads[typeof IPC.portRequest] = { kind, domain: domainUuid, ...(connection !== undefined && { connection }), requestId: `p${++seq}` };
    ipcRenderer.send(IPC.portRequest, request);
    return request.requestId;
  },
  /** The host path of a file dropped on the page (the New VM wizard's drop target). */
  pathForFile(file) {
    return webUtils.getPathForFile(file);
  },
};
contextBridge.exposeInMainWorld(BRIDGE_KEY, bridge);

ipcRenderer.on(IPC.port, (event, granted: IpcPayloads[typeof IPC.port]) => {
  // Delivered only while the page is the app's own; main.ts keeps windows there anyway.
  const message: PortMessage = { domusPort: granted.requestId };
  window.postMessage(message, APP_ORIGIN, event.ports);
});
