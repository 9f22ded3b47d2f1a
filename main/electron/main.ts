// Electron main: thin by design. It opens windows and menus, forks the host as a utility process,
// and brokers one MessagePort per renderer channel (API or VNC) between the two.
import { app, BrowserWindow, ipcMain, Menu, MessageChannelMain, net, protocol, shell, utilityProcess, type UtilityProcess } from 'electron';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

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

/** The renderer's console-only route (#/console/<uuid>/window): a console in its own window. */
const CONSOLE_WINDOW = /^domus:\/\/app\/index\.html#\/console\/[^/]+\/window$/;

/** Links to the web open in the browser; the app's own console route opens as a Domus window. */
function guardWindowOpen(win: BrowserWindow): void {
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (CONSOLE_WINDOW.test(url)) {
      return {
        action: 'allow',
        overrideBrowserWindowOptions: { width: 1024, height: 820, title: 'Domus console', webPreferences: WEB_PREFERENCES },
      };
    }
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('did-create-window', guardWindowOpen);
}

function createWindow(): void {
  const win = new BrowserWindow({ width: 1200, height: 800, title: 'Domus', webPreferences: WEB_PREFERENCES });
  guardWindowOpen(win);
  void win.loadURL('domus://app/index.html');
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
  ipcMain.on('domus:port-request', (event, req: { kind: 'api' | 'vnc'; domain?: string; requestId: string }) => {
    if (!host || (req.kind !== 'api' && req.kind !== 'vnc')) return;
    const { port1, port2 } = new MessageChannelMain();
    host.postMessage({ kind: req.kind, domain: req.domain }, [port1]);
    event.sender.postMessage('domus:port', { requestId: req.requestId }, [port2]);
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
  host.postMessage({ kind: 'stop' });
});
app.on('window-all-closed', () => app.quit());
