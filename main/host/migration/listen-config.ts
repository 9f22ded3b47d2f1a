// How other hosts reach this one (<DOMUS_HOME>/domusd.conf, in libvirtd.conf's syntax and names).
// A host on the same machine uses the owner-only libvirt socket; another machine uses TLS with a
// client certificate signed by the CA (libvirt's default). There is no plain TCP listener: the unix
// socket already serves local peers, and an unauthenticated port reachable from other machines
// would hand out the host (define, start, migrate in) to anyone who can connect.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LIBVIRTD_TLS_PORT } from '../libvirt/uri.js';

export interface TlsListen {
  /** Empty: every address, as libvirtd's default listen_addr. */
  address: string;
  port: number;
  keyFile: string;
  certFile: string;
  caFile: string;
}

const KEYS = new Set(['listen_tls', 'listen_addr', 'tls_port', 'key_file', 'cert_file', 'ca_file']);

export class ConfigError extends Error {}

/** libvirt's server credentials: /etc/pki as root, ~/.pki/libvirt for a user's daemon. */
function defaultPki(): { keyFile: string; certFile: string; caFile: string } {
  if (process.getuid?.() === 0) return { keyFile: '/etc/pki/libvirt/private/serverkey.pem', certFile: '/etc/pki/libvirt/servercert.pem', caFile: '/etc/pki/CA/cacert.pem' };
  const dir = path.join(os.homedir(), '.pki', 'libvirt');
  return { keyFile: path.join(dir, 'serverkey.pem'), certFile: path.join(dir, 'servercert.pem'), caFile: path.join(dir, 'cacert.pem') };
}

/** Reads domusd.conf; undefined when it asks for no network listener (or is absent). */
export function readListenConfig(file: string): TlsListen | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const values = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const m = /^([a-z_]+)\s*=\s*(?:"([^"]*)"|(\d+))$/.exec(line);
    if (!m) throw new ConfigError(`${file} line ${i + 1}: expected 'name = "value"' or 'name = number', got '${line}'`);
    if (!KEYS.has(m[1])) throw new ConfigError(`${file} line ${i + 1}: unknown setting '${m[1]}' (known: ${[...KEYS].join(', ')})`);
    values.set(m[1], m[2] ?? m[3]);
  });
  if ((values.get('listen_tls') ?? '0') === '0') return undefined;
  const port = Number(values.get('tls_port') ?? LIBVIRTD_TLS_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`${file}: tls_port '${values.get('tls_port')}' is not a port number`);
  const address = values.get('listen_addr') ?? '';
  if (address && !net.isIP(address)) throw new ConfigError(`${file}: listen_addr '${address}' is not an IP address`);
  const pki = defaultPki();
  return { address, port, keyFile: values.get('key_file') ?? pki.keyFile, certFile: values.get('cert_file') ?? pki.certFile, caFile: values.get('ca_file') ?? pki.caFile };
}

/** The URI another machine's host uses: `v86+tls://ADDRESS[:PORT]/session`. */
export function tlsUri(driverUri: string, listen: TlsListen): string {
  const u = new URL(driverUri);
  const host = listen.address || os.hostname();
  const shown = net.isIPv6(host) ? `[${host}]` : host;
  return `${u.protocol.slice(0, -1)}+tls://${shown}${listen.port === LIBVIRTD_TLS_PORT ? '' : `:${listen.port}`}${u.pathname}`;
}
