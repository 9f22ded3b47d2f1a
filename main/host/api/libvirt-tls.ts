// The host's libvirt protocol over TLS (libvirtd's listen_tls): for hosts on other machines. A
// client must present a certificate signed by the configured CA, as libvirtd requires by default;
// then, as libvirtd does, the server confirms with one byte before the RPC starts.
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import type { Host } from '../host.js';
import { log } from '../log.js';
import type { TlsListen } from '../migration/listen-config.js';
import { LibvirtSession } from './libvirt-server.js';
import type { UnixListener } from './unix.js';

/** TLS handshakes that take longer are dropped, so that silent connections hold nothing. */
const HANDSHAKE_MS = 10_000;

export async function listenLibvirtTls(host: Host, cfg: TlsListen): Promise<UnixListener> {
  const read = (file: string, what: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const server = tls.createServer(
    { key: read(cfg.keyFile, 'server key'), cert: read(cfg.certFile, 'server certificate'), ca: read(cfg.caFile, 'CA certificate'), requestCert: true, rejectUnauthorized: true, handshakeTimeout: HANDSHAKE_MS },
    (sock) => {
      clients.add(sock);
      sock.on('close', () => clients.delete(sock));
      sock.write(Buffer.from([1]));
      new LibvirtSession(host, sock);
    },
  );
  const clients = new Set<net.Socket>();
  server.on('tlsClientError', (err) => log('warn', `libvirt TLS: a client was refused: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.address || undefined, () => resolve());
  });
  server.on('error', (err) => log('warn', `libvirt TLS listener: ${err.message}`));
  log('info', `libvirt TLS listener on ${cfg.address || '*'}:${cfg.port}`);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of clients) sock.destroy();
      }),
  };
}
