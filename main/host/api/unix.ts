// The host's local API socket (<run>/domusd.sock, mode 0600): the CLI and other local clients
// speak newline-delimited JSON envelopes over it.
import fs from 'node:fs';
import net from 'node:net';
import { JsonlConnection } from '../../common/jsonl.js';
import { ApiSession, type HostServices } from './session.js';
import { log } from '../log.js';

export interface UnixListener {
  /** Stops listening and drops every client connection. */
  close(): Promise<void>;
}

export async function listenUnix(svc: HostServices, socketPath: string): Promise<UnixListener> {
  fs.rmSync(socketPath, { force: true });
  const clients = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    clients.add(sock);
    sock.on('close', () => clients.delete(sock));
    const conn = new JsonlConnection(sock);
    const session = new ApiSession(svc, { kind: 'local', label: 'local client' }, (text) => void conn.sendLine(text));
    conn.on('message', (msg) => {
      // receive() answers every bad request itself; anything that still escapes costs this client only.
      session.receive(msg).catch((err: unknown) => {
        log('error', `local client: request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        sock.destroy();
      });
    });
    conn.on('invalid', (err) => session.malformed(err.message));
    conn.on('close', (err) => {
      if (err) log('warn', `local client: ${err.message}`);
      session.close();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  // Accept failures (ENOBUFS, ENOMEM…) are reported on the server; without a listener they would throw.
  server.on('error', (err) => log('warn', `local API socket: ${err.message}`));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of clients) sock.destroy();
      }),
  };
}
