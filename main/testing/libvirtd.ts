// Test support: a private libvirtd (with its own virtlogd) per test run, as root, from Debian's
// packages, and Debian's virsh against it.
//
// What must be private so that two runs never share a daemon: the sockets (unix_sock_dir in a
// private config), the pid files (--pid-file; virtlogd's default /run/virtlogd.pid), and the
// drivers' state. The QEMU driver's directories cannot be moved by configuration when libvirtd runs
// as root (only the in-process qemu:///embed?root= driver takes another root): /run/libvirt/qemu
// (where it takes driver.pid, as the storage and network drivers do in /run/libvirt/storage and
// /run/libvirt/network, so a second daemon's drivers refuse to start), /var/lib/libvirt/qemu,
// /var/cache/libvirt/qemu, /etc/libvirt/qemu (persistent definitions) and /var/log/libvirt/qemu
// are compiled in (qemu_conf.c), and so is virtlogd's socket /run/libvirt/virtlogd-sock. So both
// daemons run in a mount namespace of their own (unshare -m) in which /run/libvirt,
// /var/lib/libvirt, /var/cache/libvirt, /etc/libvirt and /var/log/libvirt are bind mounts of
// directories under the run's temp dir; the sockets live outside them, so the test and Debian's
// virsh reach them from the host's namespace. (The mount points are created, empty, on the host
// when absent.)
// Still shared with the host: TCP ports (VNC autoport starts at 5900), cgroup names of running
// domains (qemu-ID-NAME: give each run's domains unique names), and the kvm/libvirt-qemu accounts.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface LibvirtdOptions {
  /** Also listen on 127.0.0.1:tcpPort with auth_tcp=none (libvirtd --listen). */
  tcpPort?: number;
  /** Also listen with TLS on 127.0.0.1:tlsPort, with the certificates of makeTestPki(pkiDir). */
  tls?: { port: number; pkiDir: string };
  /** The daemon's own keepalive towards its clients (libvirtd.conf keepalive_interval/count). */
  keepaliveInterval?: number;
  keepaliveCount?: number;
  /**
   * In a network namespace of its own (unshare --net, gone with the daemon), so that the networks it
   * starts (a kernel bridge, dnsmasq, iptables rules) and its guests' taps never touch the host's
   * network. The unix socket is still reached through the filesystem; TCP listeners and VNC are not.
   */
  netns?: boolean;
}

export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Libvirtd {
  dir: string;
  /** The read-write unix socket. */
  socket: string;
  /** qemu+unix:///system?socket=… */
  uri: string;
  pid: number;
  /** Debian's virsh against this daemon. */
  virsh(...args: string[]): Promise<VirshResult>;
  /** libvirtd's log so far, for a failing test's message. */
  log(): string;
  /** Destroys running domains and stops both daemons, keeping their files: the host goes away. */
  halt(): Promise<void>;
  /** Starts the halted daemons again, on the same socket with the same definitions. */
  restart(): Promise<void>;
  /** Destroys running domains, stops both daemons, removes the temp dir. */
  stop(): Promise<void>;
}

const PRIVATE_TREES = ['/run/libvirt', '/var/lib/libvirt', '/var/cache/libvirt', '/etc/libvirt', '/var/log/libvirt'];

/** Why libvirtd tests cannot run here, or false. */
export function libvirtdSkip(): string | false {
  if (process.getuid?.() !== 0) return 'libvirtd tests need root';
  for (const bin of ['/usr/sbin/libvirtd', '/usr/sbin/virtlogd', '/usr/bin/virsh', '/usr/bin/unshare']) {
    if (!fs.existsSync(bin)) return `${bin} is missing (build/install-deps.sh installs libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients)`;
  }
  return false;
}

/** The accounts Debian's libvirt-daemon-system would create (it needs systemd; the QEMU driver refuses to start without them). */
function ensureAccounts(): void {
  const has = (db: string, name: string): boolean => {
    try {
      execFileSync('getent', [db, name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!has('group', 'kvm')) execFileSync('groupadd', ['-r', 'kvm']);
  if (!has('group', 'libvirt-qemu')) execFileSync('groupadd', ['-r', 'libvirt-qemu']);
  if (!has('passwd', 'libvirt-qemu')) execFileSync('useradd', ['-r', '-g', 'kvm', '-d', '/var/lib/libvirt', '-s', '/usr/sbin/nologin', 'libvirt-qemu']);
}

/**
 * A CA, a server certificate for 127.0.0.1 and a client certificate, with the extensions libvirt
 * checks (CA basic constraints; key usage; serverAuth/clientAuth purposes), laid out as libvirt's
 * pkipath expects: cacert.pem, servercert.pem, serverkey.pem, clientcert.pem, clientkey.pem.
 */
export function makeTestPki(dir: string, cn = 'Domus test CA', ips = ['127.0.0.1']): void {
  fs.mkdirSync(dir, { recursive: true });
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'cakey.pem', '-out', 'cacert.pem', '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  for (const [who, purpose] of [['server', 'serverAuth'], ['client', 'clientAuth']]) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}key.pem`, '-out', `${who}.csr`, '-subj', `/CN=domus-test-${who}`);
    fs.writeFileSync(path.join(dir, `${who}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${purpose}\nsubjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\n`);
    ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'cacert.pem', '-CAkey', 'cakey.pem', '-CAcreateserial', '-days', '2', '-extfile', `${who}.ext`, '-out', `${who}cert.pem`);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export function runVirsh(uri: string, args: string[], timeout = 60_000): Promise<VirshResult> {
  return new Promise((resolve) => {
    execFile('virsh', ['-c', uri, ...args], { timeout, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export async function startLibvirtd(opts: LibvirtdOptions = {}): Promise<Libvirtd> {
  ensureAccounts();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-libvirtd-'));
  const sockDir = path.join(dir, 'sock');
  fs.mkdirSync(sockDir);
  const conf = [
    `unix_sock_dir = "${sockDir}"`,
    'unix_sock_rw_perms = "0700"',
    'auth_unix_rw = "none"',
    'auth_unix_ro = "none"',
    `log_outputs = "3:file:${dir}/libvirtd.log"`,
    // Each daemon is a host of its own: libvirt refuses a migration between two with the same UUID.
    `host_uuid = "${randomUUID()}"`,
    `keepalive_interval = ${opts.keepaliveInterval ?? 5}`,
    `keepalive_count = ${opts.keepaliveCount ?? 5}`,
    'listen_addr = "127.0.0.1"',
    `listen_tcp = ${opts.tcpPort ? 1 : 0}`,
    ...(opts.tcpPort ? [`tcp_port = "${opts.tcpPort}"`, 'auth_tcp = "none"'] : []),
    `listen_tls = ${opts.tls ? 1 : 0}`,
    ...(opts.tls
      ? [`tls_port = "${opts.tls.port}"`, 'auth_tls = "none"', ...['ca_file:cacert', 'cert_file:servercert', 'key_file:serverkey'].map((kv) => `${kv.split(':')[0]} = "${opts.tls!.pkiDir}/${kv.split(':')[1]}.pem"`)]
      : []),
  ];
  const listen = opts.tcpPort || opts.tls ? ' --listen' : '';
  fs.writeFileSync(path.join(dir, 'libvirtd.conf'), conf.join('\n') + '\n');
  const binds = PRIVATE_TREES.map((tree, i) => {
    const own = path.join(dir, `tree${i}`);
    fs.mkdirSync(own);
    fs.mkdirSync(tree, { recursive: true });
    return `mount --bind ${own} ${tree}`;
  });
  // QEMU as root: without udev, /dev/kvm is root-only, and libvirt then disagrees with itself
  // (its capability probe opens /dev/kvm before QEMU drops to libvirt-qemu, its later access check
  // runs as libvirt-qemu) and probes QEMU again on every call, about 4 s each.
  // Each daemon takes incoming migrations on ports of its own (libvirt's default range is the same
  // for all, and each daemon only knows its own allocations).
  const migrationPort = 49152 + Math.floor(Math.random() * 256) * 64;
  // VNC displays likewise, above the ports Domus's runners take from 5900 up in tests that run at
  // the same time (libvirt's allocator saw 5900 free, QEMU then failed to bind it).
  const displayPort = 6000 + Math.floor(Math.random() * 256) * 64;
  fs.writeFileSync(
    path.join(dir, `tree${PRIVATE_TREES.indexOf('/etc/libvirt')}`, 'qemu.conf'),
    [
      'user = "root"',
      'group = "root"',
      `migration_port_min = ${migrationPort}`,
      `migration_port_max = ${migrationPort + 63}`,
      `remote_display_port_min = ${displayPort}`,
      `remote_display_port_max = ${displayPort + 63}`,
    ].join('\n') + '\n',
  );
  const script = [
    'set -e',
    ...binds,
    ...(opts.netns ? ['ip link set lo up'] : []),
    `virtlogd --pid-file ${dir}/virtlogd.pid & echo $! > ${dir}/virtlogd.child`,
    `exec libvirtd --config ${dir}/libvirtd.conf --pid-file ${dir}/libvirtd.pid${listen}`,
  ].join('\n');
  const launch = (): ChildProcess => {
    const out = fs.openSync(path.join(dir, 'stderr.log'), 'a');
    const spawned = spawn('unshare', ['--mount', '--propagation', 'private', ...(opts.netns ? ['--net'] : []), '--', 'sh', '-c', script], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    return spawned;
  };
  let child = launch();
  const socket = path.join(sockDir, 'libvirt-sock');
  const uri = `qemu+unix:///system?socket=${socket}`;
  const log = (): string => ['stderr.log', 'libvirtd.log'].map((f) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8') : '')).join('\n');
  const killVirtlogd = (): void => {
    const f = path.join(dir, 'virtlogd.child');
    if (!fs.existsSync(f)) return;
    try {
      process.kill(Number(fs.readFileSync(f, 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
  };
  // A test process that dies leaves no daemon behind.
  const onExit = (): void => {
    killVirtlogd();
    child.kill('SIGKILL');
  };
  process.on('exit', onExit);

  const halt = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const running = await runVirsh(uri, ['list', '--name'], 20_000);
      for (const name of running.stdout.split('\n').filter(Boolean)) await runVirsh(uri, ['destroy', name], 20_000);
      // libvirtd leaves a started network's dnsmasq running when it exits.
      const networks = await runVirsh(uri, ['net-list', '--name'], 20_000);
      for (const name of networks.stdout.split('\n').filter(Boolean)) await runVirsh(uri, ['net-destroy', name], 20_000);
      child.kill('SIGTERM');
      if (!(await exited(child, 15_000))) child.kill('SIGKILL');
      await exited(child, 5_000);
    }
    killVirtlogd();
  };
  const stop = async (): Promise<void> => {
    await halt();
    process.off('exit', onExit);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const ready = async (): Promise<void> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) {
        const text = log();
        await stop();
        throw new Error(`libvirtd exited with status ${child.exitCode} while starting:\n${text.slice(-3000)}`);
      }
      if (fs.existsSync(socket) && (await runVirsh(uri, ['version'], 30_000)).code === 0) break;
      if (Date.now() > deadline) {
        const text = log();
        await stop();
        throw new Error(`libvirtd did not answer within 60 s:\n${text.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await ready();
  const restart = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) throw new Error('libvirtd is running: halt() it first');
    child = launch();
    await ready();
  };
  return {
    dir,
    socket,
    uri,
    get pid() {
      return child.pid!;
    },
    virsh: (...args) => runVirsh(uri, args),
    log,
    halt,
    restart,
    stop,
  };
}
