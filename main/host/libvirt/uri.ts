// libvirt connection URIs (libvirt's docs/uri.rst):
//   driver[+transport]://[user@][host][:port]/[path][?param=value&...]
// parsed into where to connect and the name the remote driver is opened with, following
// src/remote/remote_driver.c's doRemoteOpen (defaults, the parameters it consumes, proxy choice).

export class UriError extends Error {
  override name = 'UriError';
}

export type Transport = 'unix' | 'tcp' | 'tls' | 'ssh';

/** What the ssh transport runs on the far side to reach the daemon's socket. */
export type SshProxy = 'auto' | 'netcat' | 'native';

export interface LibvirtUri {
  driver: string;
  transport: Transport;
  user?: string;
  host?: string;
  port?: number;
  /** `/system`, `/session`… */
  path: string;
  /** Every query parameter, decoded. */
  params: Map<string, string>;
  /** The URI sent with REMOTE_PROC_CONNECT_OPEN: no transport, host or client-side parameters. */
  name: string;
}

// Consumed by the client (remote_driver.c EXTRACT_URI_ARG_*); anything else goes to the server in `name`.
const CLIENT_PARAMS = new Set([
  'name', 'command', 'socket', 'auth', 'sshauth', 'netcat', 'keyfile', 'pkipath', 'known_hosts',
  'known_hosts_verify', 'tls_priority', 'mode', 'proxy', 'no_sanity', 'no_verify', 'no_tty', 'authfile',
]);
const TRANSPORTS = new Set<string>(['unix', 'tcp', 'tls', 'ssh']);
export const LIBVIRTD_TCP_PORT = 16509;
export const LIBVIRTD_TLS_PORT = 16514;

/** Parses a libvirt URI; UriError says what is wrong with it. */
export function parseUri(uri: string): LibvirtUri {
  const m = /^([A-Za-z][A-Za-z0-9.-]*)(?:\+([A-Za-z0-9]+))?:\/\/(?:([^@/?#]*)@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?(\/[^?#]*)?(?:\?([^#]*))?(?:#.*)?$/.exec(uri);
  if (!m) throw new UriError(`'${uri}' is not a libvirt URI: expected driver[+transport]://[user@][host][:port]/path[?params], e.g. qemu:///system or qemu+ssh://user@host/system`);
  const [, driver, rawTransport, rawUser, rawHost, rawPort, rawPath, query] = m;
  const dec = (s: string, what: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new UriError(`'${uri}': the ${what} has a malformed %-escape`);
    }
  };
  const host = rawHost ? dec(rawHost.replace(/^\[(.*)\]$/, '$1'), 'host') : undefined;
  const user = rawUser ? dec(rawUser, 'user name') : undefined;
  // Both reach ssh's command line and what its configuration expands (%h, %r in ProxyCommand, Match
  // exec): a leading '-', blanks, control or shell characters are in no host or user name.
  if (host !== undefined && !/^[A-Za-z0-9_.:%]([A-Za-z0-9_.:%-]*)$/.test(host)) throw new UriError(`'${uri}': host '${host}' is not a host name or IP address`);
  if (user !== undefined && /^-|[\s\x00-\x1f\x7f'"`$;&|<>\\(){}*?!#~]/.test(user)) throw new UriError(`'${uri}': user name '${user}' has a character no user name has`);
  const transportName = rawTransport?.toLowerCase();
  if (transportName === 'libssh' || transportName === 'libssh2') {
    throw new UriError(`'${uri}': the ${transportName} transport is not supported; use ${driver}+ssh://, which runs the system ssh`);
  }
  if (transportName === 'ext') throw new UriError(`'${uri}': the ext transport (an arbitrary local command) is not supported`);
  if (transportName !== undefined && !TRANSPORTS.has(transportName)) {
    throw new UriError(`'${uri}': unknown transport '${rawTransport}' (expected unix, tcp, tls or ssh)`);
  }
  // libvirt's rule: with a host and no transport, the remote driver uses TLS.
  const transport = (transportName ?? (host ? 'tls' : 'unix')) as Transport;
  if (transport === 'unix' && host) throw new UriError(`'${uri}': a unix socket cannot reach the remote host '${host}'`);
  if (transport !== 'unix' && !host && transport !== 'ssh') throw new UriError(`'${uri}': the ${transport} transport needs a host`);
  let port: number | undefined;
  if (rawPort !== undefined && rawPort !== '') {
    port = Number(rawPort);
    if (!/^\d+$/.test(rawPort) || port < 1 || port > 65535) throw new UriError(`'${uri}': port '${rawPort}' is not a number from 1 to 65535`);
    if (transport === 'unix') throw new UriError(`'${uri}': a unix socket takes no port`);
  }
  const params = new Map<string, string>();
  const passed: string[] = [];
  for (const part of (query ?? '').split(/[&;]/).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = dec(eq < 0 ? part : part.slice(0, eq), 'parameter name');
    params.set(key, dec(eq < 0 ? '' : part.slice(eq + 1), `value of ${key}`));
    if (!CLIENT_PARAMS.has(key.toLowerCase())) passed.push(part);
  }
  const path = rawPath ?? '';
  const name = params.get('name') ?? `${driver}://${path}${passed.length ? `?${passed.join('&')}` : ''}`;
  return { driver, transport, user, host, port, path, params, name };
}

/** A URI parameter read as libvirt's booleans (non-zero integer = true). */
export function boolParam(u: LibvirtUri, key: string): boolean {
  const v = u.params.get(key);
  if (v === undefined) return false;
  if (!/^-?\d+$/.test(v)) throw new UriError(`parameter ${key}='${v}' must be an integer`);
  return Number(v) !== 0;
}

/** `mode=`: libvirtd (legacy) or the per-driver daemon (direct); `auto` lets the socket decide. */
export function modeParam(u: LibvirtUri): 'auto' | 'direct' | 'legacy' {
  const v = u.params.get('mode') ?? 'auto';
  if (v !== 'auto' && v !== 'direct' && v !== 'legacy') throw new UriError(`mode='${v}' must be auto, direct or legacy`);
  return v;
}

/** `proxy=`, with libvirt's defaults: a given socket or netcat means netcat, a session URI means native. */
export function proxyParam(u: LibvirtUri): SshProxy {
  const v = u.params.get('proxy');
  if (v !== undefined && v !== 'auto' && v !== 'netcat' && v !== 'native') throw new UriError(`proxy='${v}' must be auto, netcat or native`);
  if (v === 'native' && u.params.has('netcat')) throw new UriError('netcat= cannot be used with proxy=native');
  if (v) return v;
  if (u.params.has('socket') || u.params.has('netcat')) return 'netcat';
  return u.path === '/session' ? 'native' : 'auto';
}

/** Default socket of a daemon on `/system` (/var/run/libvirt/…) or `/session` (the user's runtime dir). */
export function defaultSocket(u: LibvirtUri, direct: boolean, runtimeDir: string): string {
  const prefix = direct ? `virt${u.driver}d` : 'libvirt';
  if (u.path === '/session') return `${runtimeDir}/libvirt/${prefix}-sock`;
  if (u.path === '/system') return `/var/run/libvirt/${prefix}-sock`;
  throw new UriError(`'${u.driver}://${u.path}': no default socket for path '${u.path}' (expected /system or /session, or give ?socket=)`);
}
