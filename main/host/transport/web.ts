// The web shell: the host serves the built renderer and its API on 127.0.0.1 with a per-start
// secret token. Every HTTP request and WebSocket must carry it (query or cookie); the rest get 401.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { DEFAULT_MAX_BUFFERED_BYTES } from '../../common/jsonl.js';
import { ApiSession, type HostServices } from '../api-session.js';
import { log } from '../log.js';
import { VncLink } from '../vnc-link.js';

const COOKIE = 'domus_token';
const CSP =
  "default-src 'self'; connect-src 'self' ws://127.0.0.1:* ws://localhost:*; img-src 'self' data: blob:; " +
  "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

export class WebShell {
  readonly token = randomBytes(24).toString('base64url');
  private server?: http.Server;
  private port = 0;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });

  constructor(
    private readonly svc: HostServices,
    private readonly staticDir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/?token=${this.token}`;
  }

  async listen(port = 0): Promise<string> {
    if (this.server) return this.url;
    const server = http.createServer((req, res) => this.request(req, res));
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as net.Socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    log('info', `web shell listening on http://127.0.0.1:${this.port}/`);
    return this.url;
  }

  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.server?.close();
    this.server = undefined;
  }

  /** Accepts the token from ?token= or the cookie; also refuses foreign Host headers (DNS rebinding). */
  private authorized(req: http.IncomingMessage): { ok: boolean; viaQuery: boolean } {
    const hostHeader = req.headers.host ?? '';
    if (hostHeader !== `127.0.0.1:${this.port}` && hostHeader !== `localhost:${this.port}`) return { ok: false, viaQuery: false };
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = url.searchParams.get('token');
    if (q !== null) return { ok: this.matches(q), viaQuery: true };
    const cookie = parseCookies(req.headers.cookie)[COOKIE];
    return { ok: cookie !== undefined && this.matches(cookie), viaQuery: false };
  }

  private matches(candidate: string): boolean {
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private refuse(req: http.IncomingMessage, what: string): void {
    log('warn', `web shell: refused ${what} ${req.method} ${(req.url ?? '').replace(/token=[^&]*/, 'token=***')} from ${req.socket.remoteAddress}: missing or wrong token`);
  }

  private request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const auth = this.authorized(req);
    if (!auth.ok) {
      this.refuse(req, 'request');
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('401 Unauthorized: this Domus host needs the token printed when it started\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const rel = decodeURIComponent(url.pathname) === '/' ? 'index.html' : decodeURIComponent(url.pathname).slice(1);
    const file = path.resolve(this.staticDir, rel);
    if (!file.startsWith(this.staticDir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('404 Not Found\n');
      return;
    }
    const headers: http.OutgoingHttpHeaders = {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': rel === 'index.html' ? 'no-store' : 'max-age=3600',
    };
    if (auth.viaQuery) headers['set-cookie'] = `${COOKIE}=${this.token}; HttpOnly; SameSite=Strict; Path=/`;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const origin = req.headers.origin;
    const originOk = origin === undefined || origin === `http://127.0.0.1:${this.port}` || origin === `http://localhost:${this.port}`;
    if (!this.authorized(req).ok || !originOk) {
      this.refuse(req, 'WebSocket');
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const { pathname } = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (pathname === '/api') {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.api(ws, req));
    } else if (pathname.startsWith('/vnc/')) {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.vnc(ws, decodeURIComponent(pathname.slice(5))));
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
  }

  private api(ws: WebSocket, req: http.IncomingMessage): void {
    const label = `web shell ${req.socket.remotePort}`;
    const session = new ApiSession(this.svc, { kind: 'web', label }, (text) => sendCapped(ws, text, label));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      void session.receiveText(data.toString());
    });
    ws.on('close', () => session.close());
    ws.on('error', () => session.close());
  }

  /** Pipes a noVNC WebSocket to the guest's RFB server on its unix socket. */
  private vnc(ws: WebSocket, domain: string): void {
    let socketPath: string;
    let password: string | undefined;
    try {
      socketPath = this.svc.host.vncSocket(domain);
      password = this.svc.host.vncPassword(domain);
    } catch (err) {
      ws.close(4404, (err as Error).message.slice(0, 120));
      return;
    }
    const rfb = new VncLink(socketPath, password, {
      toViewer: (chunk) => sendCapped(ws, chunk, `VNC viewer of '${domain}'`),
      closed: () => ws.close(),
    });
    ws.on('message', (data) => rfb.write(data as Buffer));
    ws.on('close', () => rfb.close());
    ws.on('error', () => rfb.close());
  }
}

/** Sends unless the peer has stopped reading: past the cap it is dropped, with a log line. */
function sendCapped(ws: WebSocket, data: string | Buffer, who: string): void {
  if (ws.readyState !== ws.OPEN) return;
  if (ws.bufferedAmount > DEFAULT_MAX_BUFFERED_BYTES) {
    log('warn', `${who}: peer is not reading (over ${DEFAULT_MAX_BUFFERED_BYTES} bytes queued); dropped`);
    ws.terminate();
    return;
  }
  ws.send(data);
}

function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}
