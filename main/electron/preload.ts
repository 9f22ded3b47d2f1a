/// <reference lib="dom" />
// Preload: exposes only the port request; the ports themselves reach the page by postMessage,
// so the renderer never sees ipcRenderer or any Node API.
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import { APP_ORIGIN } from './policy.js';

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
  // Delivered only while the page is the app's own; main.ts keeps windows there anyway.
  window.postMessage({ domusPort: msg.requestId }, APP_ORIGIN, event.ports);
});
