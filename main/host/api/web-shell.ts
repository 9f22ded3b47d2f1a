// The web shell: the host serves the built renderer and its API on 127.0.0.1 with a per-start
// session secret that only ever leaves this process in an HttpOnly cookie. A browser gets the cookie
// by opening a one-time address (/?token=…, from `domus webshell`), which dies at its first use and
// redirects to /; every other HTTP request and WebSocket must carry the cookie, the rest get 401.
// Each request is handled on its own: a malformed one gets 400 (or its connection closed), never
// an exception out of a socket event.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { isRegularFile } from '../../common/fsutil.js';
import { DEFAULT_MAX_BUFFERED_BYTES } from '../../common/jsonl.js';
import { ApiSession, type HostServices } from './session.js';
import { log } from '../log.js';
import { ConnectionUri } from '../../../shared/api.js';
import { LOCAL_URIS } from '../connections/manager.js';
import { unixVncUpstream, VncLink, type VncUpstream } from './vnc-link.js';

const COOKIE = 'domus_token';
/** A one-time address is for a person to open now (`domus webshell`), or for the browser --open starts. */
const ONE_TIME_TTL_MS = 5 * 60_000;
/** RFC 6455: a close frame's reason is at most 123 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;
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
  private readonly token = randomBytes(24).toString('base64url');
  /** One-time tokens not used yet, with their expiry time. */
  private readonly oneTime = new Map<string, number>();
  private server?: http.Server;
  private listening?: Promise<void>;
  private port = 0;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });

  constructor(
    private readonly svc: HostServices,
    private readonly staticDir: string,
  ) {}

  /** A new address that logs one browser in: valid for its first use within ONE_TIME_TTL_MS. */
  oneTimeUrl(): string {
    const now = Date.now();
    for (const [t, expires] of this.oneTime) if (expires <= now) this.oneTime.delete(t);
    const t = randomBytes(24).toString('base64url');
    this.oneTime.set(t, now + ONE_TIME_TTL_MS);
    return `http://127.0.0.1:${this.port}/?token=${t}`;
  }

  /** Starts serving (once: callers that ask meanwhile wait for the same start). */
  listen(port = 0): Promise<void> {
    this.listening ??= this.start(port).catch((err: unknown) => {
      this.listening = undefined;
      throw err;
    });
    return this.listening;
  }

  private async start(port: number): Promise<void> {
    const server = http.createServer((req, res) => this.guard(req.socket, () => this.request(req, res)));
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      // Node drops its own error listener from an upgraded socket: a reset before we answer must not throw.
      socket.on('error', () => undefined);
      this.guard(socket, () => this.upgrade(req, socket, head));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    // Accept failures (ENOBUFS, ENOMEM…) are reported on the server; without a listener they would throw.
    server.on('error', (err) => log('warn', `web shell: ${err.message}`));
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    log('info', `web shell listening on http://127.0.0.1:${this.port}/`);
  }

  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.server?.close();
    this.server = undefined;
    this.listening = undefined;
  }

  /** Runs one connection's handler: a fault in it closes that connection (and is logged), never the host. */
  private guard(socket: net.Socket, handle: () => void): void {
    try {
      handle();
    } catch (err) {
      log('error', `web shell: request from ${socket.remoteAddress} failed: ${(err as Error).stack ?? String(err)}`);
      socket.destroy();
    }
  }

  /** Refuses foreign Host headers (DNS rebinding). */
  private hostOk(req: http.IncomingMessage): boolean {
    const host = req.headers.host;
    return host === `127.0.0.1:${this.port}` || host === `localhost:${this.port}`;
  }

  private hasSession(req: http.IncomingMessage): boolean {
    const cookie = parseCookies(req.headers.cookie)[COOKIE];
    return this.hostOk(req) && cookie !== undefined && sameSecret(cookie, this.token);
  }

  /** Uses up a one-time token: true when it was issued and has not expired. */
  private redeem(candidate: string): boolean {
    for (const [t, expires] of this.oneTime) {
      if (!sameSecret(candidate, t)) continue;
      this.oneTime.delete(t);
      return expires > Date.now();
    }
    return false;
  }

  private refuse(req: http.IncomingMessage, what: string, why = 'missing or wrong token'): void {
    const target = (req.url ?? '').replace(/token=[^&]*/, 'token=***').slice(0, 200);
    log('warn', `web shell: refused ${what} ${req.method} ${target} from ${req.socket.remoteAddress}: ${why}`);
  }

  private request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = parseTarget(req.url);
    if (!target) {
      this.refuse(req, 'request', 'malformed request target');
      return plain(res, 400, '400 Bad Request: malformed request target\n');
    }
    const oneTime = target.query.get('token');
    if (oneTime !== null && req.method === 'GET' && this.hostOk(req)) {
      // A browser that already has the session (an old address opened again) just goes on.
      if (!this.redeem(oneTime) && !this.hasSession(req)) {
        this.refuse(req, 'request', 'one-time address already used, expired or wrong');
        return plain(res, 401, '401 Unauthorized: this one-time address was already used or has expired; `domus webshell` prints a new one\n');
      }
      // The redirect takes the token out of the address bar and the history.
      res.writeHead(303, {
        location: '/',
        'set-cookie': `${COOKIE}=${this.token}; HttpOnly; SameSite=Strict; Path=/`,
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      });
      res.end();
      return;
    }
    if (!this.hasSession(req)) {
      this.refuse(req, 'request');
      return plain(res, 401, '401 Unauthorized: open the one-time address `domus webshell` prints\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const rel = target.pathname === '/' ? 'index.html' : target.pathname.slice(1);
    const file = path.resolve(this.staticDir, rel);
    if (!file.startsWith(this.staticDir + path.sep) || !isRegularFile(file)) return plain(res, 404, '404 Not Found\n');
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': rel === 'index.html' ? 'no-store' : 'max-age=3600',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = fs.createReadStream(file);
    stream.on('error', (err) => {
      log('warn', `web shell: cannot read ${file}: ${err.message}`);
      res.destroy();
    });
    stream.pipe(res);
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const target = parseTarget(req.url);
    if (!target) {
      this.refuse(req, 'WebSocket', 'malformed request target');
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const origin = req.headers.origin;
    const originOk = origin === undefined || origin === `http://127.0.0.1:${this.port}` || origin === `http://localhost:${this.port}`;
    if (!this.hasSession(req) || !originOk) {
      this.refuse(req, 'WebSocket');
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (target.pathname === '/api') {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.api(ws, req));
    } else if (target.pathname.startsWith('/vnc/')) {
      const connection = target.query.get('connection') ?? undefined;
      if (connection !== undefined && !ConnectionUri.safeParse(connection).success) {
        this.refuse(req, 'WebSocket', 'malformed connection URI');
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.vnc(ws, target.pathname.slice(5), connection));
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
  }

  private api(ws: WebSocket, req: http.IncomingMessage): void {
    const label = `web shell ${req.socket.remotePort}`;
    const session = new ApiSession(this.svc, { kind: 'web', label }, (text) => sendCapped(ws, text, label));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      session.receiveText(data.toString()).catch((err: unknown) => {
        log('error', `web shell API: request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        ws.terminate();
      });
    });
    ws.on('close', () => session.close());
    ws.on('error', () => session.close());
  }

  /**
   * Pipes a noVNC WebSocket to the guest's RFB server: a local guest's unix socket, or, with
   * ?connection=URI, a libvirt domain's display reached through that connection.
   */
  private vnc(ws: WebSocket, domain: string, connection: string | undefined): void {
    let upstream: VncUpstream | Promise<VncUpstream>;
    try {
      upstream =
        connection === undefined || LOCAL_URIS.has(connection)
          ? unixVncUpstream(this.svc.host.vncSocket(domain), this.svc.host.vncPassword(domain))
          : this.svc.host.connections.openVnc(connection, domain);
    } catch (err) {
      ws.close(4404, closeReason((err as Error).message));
      return;
    }
    const rfb = new VncLink(upstream, {
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

function sameSecret(candidate: string, secret: string): boolean {
  const a = Buffer.from(candidate);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An origin-form request target's decoded path and its query; undefined when it is not one. */
function parseTarget(raw: string | undefined): { pathname: string; query: URLSearchParams } | undefined {
  // Absolute-form (http://…), authority-form and asterisk-form targets are not for this server.
  if (!raw?.startsWith('/')) return undefined;
  try {
    const url = new URL(`http://127.0.0.1${raw}`);
    const pathname = decodeURIComponent(url.pathname);
    return pathname.includes('\0') ? undefined : { pathname, query: url.searchParams };
  } catch {
    // Not a URL, or a bad percent-escape (URIError).
    return undefined;
  }
}


function plain(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

/** Cuts a close reason to what a close frame carries (ws throws on a longer one). */
function closeReason(text: string): string {
  let reason = text;
  while (Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) reason = reason.slice(0, -1);
  return reason;
}
