// The byte streams libvirt's RPC runs over: a unix socket, TCP, TLS (libvirt's certificate paths
// and its one-byte "certificate accepted" reply), and ssh tunnels the way libvirt's remote driver
// builds them (the system ssh, virt-ssh-helper or `nc -U` on the far side).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { shellQuote } from '../../common/shell.js';
import { LibvirtError, VIR_ERR, VIR_FROM } from './errors.js';
import { boolParam, defaultSocket, LIBVIRTD_TCP_PORT, LIBVIRTD_TLS_PORT, modeParam, proxyParam, UriError, type LibvirtUri } from './uri.js';

export interface TransportOptions {
  /** Arguments for ssh before the host, e.g. `-o UserKnownHostsFile=…`. */
  sshArgs?: string[];
  /** A program ssh runs to ask for a password or passphrase (SSH_ASKPASS); without one ssh runs in BatchMode. */
  sshAskpass?: string;
  /** More environment for ssh (what the askpass program needs to reach whoever answers). */
  sshEnv?: Record<string, string>;
  /** Milliseconds to establish a unix, TCP or TLS connection (default 30 s). */
  connectTimeout?: number;
}

const runtimeDir = (): string => process.env.XDG_RUNTIME_DIR ?? path.join(os.homedir(), '.cache');
const connectError = (where: string, err: Error): LibvirtError =>
  new LibvirtError(`cannot connect to libvirt at ${where}: ${err.message}`, VIR_ERR.SYSTEM_ERROR, VIR_FROM.RPC);

/** The local socket a unix URI names: ?socket=, else the per-driver daemon's or libvirtd's. */
export function unixSocketPath(u: LibvirtUri): string {
  const given = u.params.get('socket');
  if (given) return given;
  const mode = modeParam(u);
  if (mode !== 'auto') return defaultSocket(u, mode === 'direct', runtimeDir());
  const direct = defaultSocket(u, true, runtimeDir());
  return fs.existsSync(direct) ? direct : defaultSocket(u, false, runtimeDir());
}

/** libvirt's client credentials: ?pkipath=DIR, else ~/.pki/libvirt (not as root), else /etc/pki. */
export function tlsCredentialPaths(u: LibvirtUri): { ca: string; cert: string; key: string } {
  const dir = u.params.get('pkipath');
  if (dir) return { ca: `${dir}/cacert.pem`, cert: `${dir}/clientcert.pem`, key: `${dir}/clientkey.pem` };
  const system = { ca: '/etc/pki/CA/cacert.pem', cert: '/etc/pki/libvirt/clientcert.pem', key: '/etc/pki/libvirt/private/clientkey.pem' };
  if (process.getuid?.() === 0) return system;
  const user = path.join(os.homedir(), '.pki/libvirt');
  const has = (f: string): boolean => fs.existsSync(path.join(user, f));
  return {
    ca: has('cacert.pem') ? path.join(user, 'cacert.pem') : system.ca,
    ...(has('clientcert.pem') && has('clientkey.pem') ? { cert: path.join(user, 'clientcert.pem'), key: path.join(user, 'clientkey.pem') } : { cert: system.cert, key: system.key }),
  };
}

/** ssh and its options for a qemu+ssh:// URI, before the host (remote_driver.c): user, port, key, batch mode, the caller's -o options. */
export function sshBase(u: LibvirtUri, opts: TransportOptions = {}): { command: string; args: string[] } {
  const args: string[] = [];
  if (u.port) args.push('-p', String(u.port));
  if (u.user) args.push('-l', u.user);
  const keyfile = u.params.get('keyfile');
  if (keyfile) args.push('-i', keyfile);
  args.push('-T', '-e', 'none');
  if (!opts.sshAskpass) args.push('-o', 'BatchMode=yes');
  if (boolParam(u, 'no_verify')) args.push('-o', 'StrictHostKeyChecking=no');
  args.push(...(opts.sshArgs ?? []));
  return { command: u.params.get('command') ?? 'ssh', args };
}

/** The ssh command line for a qemu+ssh:// URI (remote_driver.c and virNetClientSSHHelperCommand). */
export function sshCommand(u: LibvirtUri, opts: TransportOptions = {}): { command: string; args: string[] } {
  const proxy = proxyParam(u);
  const { command, args } = sshBase(u, opts);
  const helper = `exec virt-ssh-helper ${shellQuote(u.name)}`;
  let script = helper;
  if (proxy !== 'native') {
    const nc = shellQuote(u.params.get('netcat') ?? 'nc');
    // The far side's runtime directory is unknown here, so a session socket must be named.
    if (u.path === '/session' && !u.params.has('socket')) throw new UriError('a session URI over ssh with proxy=netcat needs ?socket=');
    const socket = shellQuote(u.params.get('socket') ?? defaultSocket(u, modeParam(u) === 'direct', ''));
    // As libvirt does: an nc whose -q takes an argument needs -q0 to exit once the client goes away.
    const netcat = `if ${nc} -q 2>&1 | grep "requires an argument" >/dev/null 2>&1; then ARG=-q0; else ARG=; fi; exec ${nc} $ARG -U ${socket}`;
    script = proxy === 'netcat' ? netcat : `if command -v virt-ssh-helper >/dev/null 2>&1; then ${helper}; else ${netcat}; fi`;
  }
  args.push('--', u.host ?? 'localhost', `sh -c ${shellQuote(script)}`);
  return { command, args };
}

/** An ssh child's stdout and stdin as one stream; its exit (with what it said on stderr) ends or fails the stream. */
class ChildStream extends Duplex {
  private stderr = '';
  constructor(private readonly child: ChildProcess) {
    super();
    // ssh's output waits in its pipe while nobody reads this stream (the RPC client pauses a peer that floods it).
    child.stdout!.on('data', (d: Buffer) => {
      if (!this.push(d)) child.stdout!.pause();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.stdin!.on('error', () => {});
    child.on('error', (err) => this.destroy(new LibvirtError(`cannot run ssh: ${err.message}`, VIR_ERR.SYSTEM_ERROR, VIR_FROM.SSH)));
    child.on('close', (code, signal) => {
      if (code === 0) this.push(null);
      else {
        const said = this.stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).slice(-2).join(' ');
        // The far side refused our keys or password, or is not the host known_hosts names.
        const refused = /Permission denied \(|Too many authentication failures|Host key verification failed/.test(said);
        this.destroy(new LibvirtError(`ssh ${signal ? `was killed by ${signal}` : `exited with status ${code}`}${said ? `: ${said}` : ''}`, refused ? VIR_ERR.AUTH_FAILED : VIR_ERR.SYSTEM_ERROR, VIR_FROM.SSH));
      }
    });
  }
  override _read(): void {
    this.child.stdout!.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.child.stdin!.write(chunk, cb);
  }
  override _final(cb: () => void): void {
    this.child.stdin!.end(cb);
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
    cb(err);
  }
}

function connected<S extends net.Socket>(sock: S, event: 'connect' | 'secureConnect', where: string, timeout: number): Promise<S> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(connectError(where, new Error(`no connection within ${timeout} ms`)));
    }, timeout);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(connectError(where, err));
    };
    sock.once('error', onError);
    sock.once(event, () => {
      clearTimeout(timer);
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

/** After the TLS handshake libvirtd sends one byte: 1 when it accepted our certificate. */
function tlsConfirmation(sock: tls.TLSSocket, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      sock.destroy();
      reject(new LibvirtError(`TLS connection to ${where}: ${why}`, VIR_ERR.AUTH_FAILED, VIR_FROM.RPC));
    };
    const onReadable = (): void => {
      const b = sock.read(1) as Buffer | null;
      if (!b) return;
      sock.off('readable', onReadable).off('end', onEnd).off('error', onError);
      if (b[0] === 1) resolve();
      else fail('the server refused our client certificate');
    };
    const onEnd = (): void => fail('the server closed the connection after the handshake (is our client certificate accepted?)');
    const onError = (err: Error): void => fail(err.message);
    sock.on('readable', onReadable).once('end', onEnd).once('error', onError);
  });
}

/** Opens the stream a parsed URI names. Errors are LibvirtErrors that say where and why. */
export async function openTransport(u: LibvirtUri, opts: TransportOptions = {}): Promise<Duplex> {
  const timeout = opts.connectTimeout ?? 30_000;
  switch (u.transport) {
    case 'unix': {
      const where = unixSocketPath(u);
      return connected(net.connect(where), 'connect', where, timeout);
    }
    case 'tcp': {
      const port = u.port ?? LIBVIRTD_TCP_PORT;
      return connected(net.connect({ host: u.host, port }), 'connect', `${u.host}:${port}`, timeout);
    }
    case 'tls': {
      const port = u.port ?? LIBVIRTD_TLS_PORT;
      const where = `${u.host}:${port}`;
      const files = tlsCredentialPaths(u);
      const read = (f: string, what: string): Buffer => {
        try {
          return fs.readFileSync(f);
        } catch (err) {
          throw new LibvirtError(`cannot read the ${what} ${f}: ${(err as Error).message}`, VIR_ERR.SYSTEM_ERROR, VIR_FROM.RPC);
        }
      };
      const sock = tls.connect({
        host: u.host,
        port,
        servername: net.isIP(u.host!) ? undefined : u.host,
        ca: read(files.ca, 'CA certificate'),
        cert: read(files.cert, 'client certificate'),
        key: read(files.key, 'client key'),
        rejectUnauthorized: !boolParam(u, 'no_verify'),
      });
      await connected(sock, 'secureConnect', where, timeout);
      await tlsConfirmation(sock, where);
      return sock;
    }
    case 'ssh':
      return spawnSsh(sshCommand(u, opts), opts);
  }
}

/** Runs an ssh command line as a stream (its stdin and stdout); rejects when the command cannot run. */
export async function spawnSsh({ command, args }: { command: string; args: string[] }, opts: TransportOptions = {}): Promise<Duplex> {
  const env = { ...process.env };
  if (opts.sshAskpass) Object.assign(env, { SSH_ASKPASS: opts.sshAskpass, SSH_ASKPASS_REQUIRE: 'force' });
  Object.assign(env, opts.sshEnv);
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  // A command that cannot run fails here, before anyone listens to the stream's errors.
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new LibvirtError(`cannot run ${command}: ${err.message}`, VIR_ERR.SYSTEM_ERROR, VIR_FROM.SSH)));
  });
  return new ChildStream(child);
}
