/// <reference lib="dom" />
// Preload: exposes only the port request; the ports themselves reach the page by postMessage,
// so the renderer never sees ipcRenderer or any Node API.
import { contextBridge, ipcRenderer, webUtils } from 'electron';

let seq = 0;
contextBridge.exposeInMainWorld('domusBridge', {
  shell: 'electron',
  requestPort(kind: 'api' | 'vnc', domainUuid?: string): string {
    const requestId = `p${++seq}`;
    ipcRenderer.send('domus:port-request', { kind, domain: domainUuid, requestId });
    return requestId;
  },
  /** The host path of a file dropped on the page (the New VM wizard's drop target). */
  pathForFile(file: File): string {
    return webUtils.getPathForFile(file);
  },
});

ipcRenderer.on('domus:port', (event, msg: { requestId: string }) => {
  window.postMessage({ domusPort: msg.requestId }, '*', event.ports);
});
