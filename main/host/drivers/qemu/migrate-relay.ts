// One end of a QEMU live migration's connection, run by QEMU itself (migrate / migrate-incoming
// 'exec:'), its stdin and stdout being QEMU's channel. QEMU cannot check a token, so this does:
//   in <listen-uri> <token-file> <ready-file>   listens, writes the endpoint it got to ready-file,
//       takes the first connection that sends the token first, then splices it to QEMU;
//   out <uri> <token-file>                      connects, sends the token, then splices.
// Being QEMU's child, not the host's, the stream survives a restart of the host (a guest in post-copy
// lives half here, half there: losing the stream would lose it). The token comes in a 0600 file,
// read and removed at once, never on a command line.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

const TOKEN_CHARS = 64;
/** A connection must send the token this fast. */
const TOKEN_TIMEOUT_MS = 10_000;
/** Connections still to send their token, at most: the rest are refused until one is settled. */
const MAX_PENDING = 8;
/** A prepared destination nobody connects to gives up (QEMU's migration fails and it exits). */
const ACCEPT_TIMEOUT_MS = 10 * 60_000;

function fail(message: string): never {
  process.stderr.write(`migration relay: ${message}\n`);
  process.exit(1);
}

function readToken(file: string): Buffer {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
    fs.rmSync(file, { force: true });
  } catch (err) {
    fail(`cannot read the token file: ${(err as Error).message}`);
  }
  if (!/^[0-9a-f]{64}$/.test(text)) fail('the token file does not hold 64 hex digits');
  return Buffer.from(text, 'latin1');
}

type Address = { path: string } | { host: string; port: number };

function parseUri(uri: string): Address {
  if (uri.startsWith('unix:')) return { path: uri.slice(5) };
  const m = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(uri);
  if (!m) fail(`'${uri}' is not unix:PATH or tcp:HOST:PORT`);
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** QEMU's channel ↔ the socket, both ways, until the socket closes. */
function splice(sock: net.Socket, fromQemu: Buffer[], toQemu: Buffer): void {
  sock.setNoDelay(true);
  if (toQemu.length) process.stdout.write(toQemu);
  for (const chunk of fromQemu) sock.write(chunk);
  sock.pipe(process.stdout);
  process.stdin.pipe(sock);
  process.stdout.on('error', () => sock.destroy());
  sock.on('error', (err) => process.stderr.write(`migration relay: connection: ${err.message}\n`));
  sock.on('close', () => process.exit(0));
}

function incoming(listen: string, tokenFile: string, readyFile: string): void {
  const token = readToken(tokenFile);
  const addr = parseUri(listen);
  // What QEMU sends before the stream starts (nothing, normally); its end means QEMU gave up.
  const early: Buffer[] = [];
  const onEarly = (d: Buffer): void => {
    early.push(d);
  };
  const cleanup = (): void => {
    if ('path' in addr) fs.rmSync(addr.path, { force: true });
  };
  const onEnd = (): void => {
    cleanup();
    process.exit(0);
  };
  process.stdin.on('data', onEarly);
  process.stdin.once('end', onEnd);
  const giveUp = setTimeout(() => {
    cleanup();
    fail(`no migration stream came within ${ACCEPT_TIMEOUT_MS / 60_000} minutes`);
  }, ACCEPT_TIMEOUT_MS);
  let taken = false;
  const server = net.createServer((sock) => {
    let got = Buffer.alloc(0);
    const peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'a local peer';
    const timer = setTimeout(() => drop('sent no token in time'), TOKEN_TIMEOUT_MS);
    const drop = (why: string): void => {
      clearTimeout(timer);
      process.stderr.write(`migration relay: dropped a connection from ${peer}: ${why}\n`);
      sock.destroy();
    };
    sock.on('error', () => undefined);
    sock.on('close', () => clearTimeout(timer));
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length < TOKEN_CHARS) return;
      sock.off('data', onData);
      if (!crypto.timingSafeEqual(got.subarray(0, TOKEN_CHARS), token)) return drop('wrong token');
      if (taken) return drop('the migration is already connected');
      taken = true;
      clearTimeout(timer);
      clearTimeout(giveUp);
      server.close();
      cleanup();
      sock.pause();
      process.stdin.off('data', onEarly);
      process.stdin.off('end', onEnd);
      splice(sock, early, got.subarray(TOKEN_CHARS));
      sock.resume();
    };
    sock.on('data', onData);
  });
  server.maxConnections = MAX_PENDING;
  server.on('error', (err) => fail(`cannot listen on ${listen}: ${err.message}`));
  const ready = (): void => {
    let uri: string;
    if ('path' in addr) {
      fs.chmodSync(addr.path, 0o600);
      uri = `unix:${addr.path}`;
    } else {
      const a = server.address() as net.AddressInfo;
      uri = a.family === 'IPv6' ? `tcp:[${a.address}]:${a.port}` : `tcp:${a.address}:${a.port}`;
    }
    const tmp = `${readyFile}.tmp`;
    fs.writeFileSync(tmp, uri, { mode: 0o600 });
    fs.renameSync(tmp, readyFile);
  };
  if ('path' in addr) {
    fs.rmSync(addr.path, { force: true });
    server.listen(addr.path, ready);
  } else server.listen(addr.port, addr.host, ready);
}

function outgoing(uri: string, tokenFile: string): void {
  const token = readToken(tokenFile);
  const addr = parseUri(uri);
  const sock = 'path' in addr ? net.connect(addr.path) : net.connect(addr.port, addr.host);
  sock.once('error', (err) => fail(`cannot connect to ${uri}: ${err.message}`));
  sock.once('connect', () => {
    sock.removeAllListeners('error');
    sock.write(token);
    splice(sock, [], Buffer.alloc(0));
  });
}

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'in' && a && b && c) incoming(a, b, c);
else if (mode === 'out' && a && b) outgoing(a, b);
else fail('usage: migrate-relay in LISTEN-URI TOKEN-FILE READY-FILE | out URI TOKEN-FILE');
