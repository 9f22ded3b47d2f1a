// The host's local API socket (<run>/domusd.sock, mode 0600): the CLI and other local clients
// speak newline-delimited JSON envelopes over it.
import fs from 'node:fs';
import net from 'node:net';
import { JsonlConnection } from '../../common/jsonl.js';
import { ApiSession, type HostServices } from '../api-session.js';
import { log } from '../log.js';

export async function listenUnix(svc: HostServices, socketPath: string): Promise<net.Server> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((sock) => {
    const conn = new JsonlConnection(sock);
    const session = new ApiSession(svc, { kind: 'local', label: 'local client' }, (text) => {
      if (conn.isOpen) sock.write(text + '\n');
    });
    conn.on('message', (msg) => void session.receive(msg));
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
  return server;
}
