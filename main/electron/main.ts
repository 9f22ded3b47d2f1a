// Electron main: thin by design. It opens windows and menus, forks the host as a utility process,
// and brokers one MessagePort per renderer channel (API or VNC) between the two.
import { app, BrowserWindow, ipcMain, Menu, MessageChannelMain, net, protocol, utilityProcess, type UtilityProcess, type WebContents } from 'electron';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IPC, type HostUtilityRequest, type IpcPayloads } from '../../shared/ipc.js';
import { APP_ORIGIN, checkPortRequest, navigationAllowed, windowOpenDecision } from './policy.js';

const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; " +
  "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const rendererDir = path.join(__dirname, '..', 'renderer');

protocol.registerSchemesAsPrivileged([{ scheme: 'domus', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

let host: UtilityProcess | undefined;

function startHost(): UtilityProcess {
  const child = utilityProcess.fork(path.join(__dirname, 'host-utility.mjs'), [], { serviceName: 'Domus host', stdio: 'inherit' });
  child.on('exit', (code) => {
    host = undefined;
    // A stop someone asked for (the quit dialog, `domus daemon stop`) ends the app; a crash restarts
    // the host, which re-attaches to the guests still running in their own processes.
    if (quitting || code === 0) {
      quitting = true;
      app.quit();
      return;
    }
    console.error(`Domus host exited with code ${code}; restarting it`);
    host = startHost();
  });
  return child;
}

let quitting = false;

const WEB_PREFERENCES = {
  preload: path.join(__dirname, 'preload.cjs'),
  contextIsolation: true,
  nodeIntegration: false,
  sandbox: true,
};

/** The webContents of every window the app opened: only they may ask for a port to the host. */
const ourContents = new WeakSet<WebContents>();

/** Keeps a window on the app (decisions in policy.ts): no navigation away, no window but the console's, no webview. */
function guardWindow(win: BrowserWindow): void {
  const contents = win.webContents;
  ourContents.add(contents);
  const stay = (event: { url: string; preventDefault(): void }): void => {
    if (!navigationAllowed(event.url)) event.preventDefault();
  };
  contents.on('will-navigate', stay);
  contents.on('will-redirect', stay);
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) =>
    windowOpenDecision(url) === 'console-window'
      ? { action: 'allow', overrideBrowserWindowOptions: { width: 1024, height: 820, title: 'Domus console', webPreferences: WEB_PREFERENCES } }
      : { action: 'deny' },
  );
  contents.on('did-create-window', guardWindow);
}

function createWindow(): void {
  const win = new BrowserWindow({ width: 1200, height: 800, title: 'Domus', webPreferences: WEB_PREFERENCES });
  guardWindow(win);
  void win.loadURL(`${APP_ORIGIN}/index.html`);
}

function buildMenu(): void {
  Menu.setApplicationMenu(
    Menu.buildFromTemplate([
      { label: 'File', submenu: [{ label: 'New Window', accelerator: 'CmdOrCtrl+Shift+N', click: createWindow }, { type: 'separator' }, { role: 'quit', accelerator: 'CmdOrCtrl+Shift+Q' }] },
      { label: 'Edit', submenu: [{ role: 'copy' }, { role: 'paste' }, { role: 'selectAll' }] },
      { label: 'View', submenu: [{ role: 'reload' }, { role: 'toggleDevTools' }, { type: 'separator' }, { role: 'togglefullscreen' }] },
    ]),
  );
}

app.whenReady().then(() => {
  protocol.handle('domus', async (request) => {
    const { pathname } = new URL(request.url);
    const file = path.normalize(path.join(rendererDir, decodeURIComponent(pathname)));
    if (!file.startsWith(rendererDir + path.sep)) return new Response('not found', { status: 404 });
    const res = await net.fetch(pathToFileURL(file).toString());
    const headers = new Headers(res.headers);
    headers.set('Content-Security-Policy', CSP);
    return new Response(res.body, { status: res.status, headers });
  });
  host = startHost();
  ipcMain.on(IPC.portRequest, (event, req: unknown) => {
    const frame = event.senderFrame;
    const verdict = checkPortRequest({ frameUrl: frame?.url, mainFrame: frame !== null && frame === event.sender.mainFrame, ourWindow: ourContents.has(event.sender) }, req);
    if (!verdict.ok) {
      console.error(`Domus: port request refused: ${verdict.reason}`);
      return;
    }
    if (!host) return;
    const { port1, port2 } = new MessageChannelMain();
    const { request } = verdict;
    const toHost: HostUtilityRequest = request.kind === 'vnc' ? { kind: 'vnc', domain: request.domain, connection: request.connection } : { kind: 'api' };
    const granted: IpcPayloads[typeof IPC.port] = { requestId: request.requestId };
    host.postMessage(toHost, [port1]);
    event.sender.postMessage(IPC.port, granted, [port2]);
  });
  buildMenu();
  createWindow();
});

// Quitting stops the host first, so each running domain follows its on-stop policy (shutdown,
// save or keep); the window's quit dialog shows the progress.
app.on('before-quit', (event) => {
  if (!host || quitting) return;
  quitting = true;
  event.preventDefault();
  const stop: HostUtilityRequest = { kind: 'stop' };
  host.postMessage(stop);
});
app.on('window-all-closed', () => app.quit());
