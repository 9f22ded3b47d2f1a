// Test support: a real host daemon on a throwaway DOMUS_HOME, a client to it, serial watchers,
// the CLI as a child process, and a cleanup that leaves no guest behind.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { NewDomainSpec, type NewDomainSpecInput } from '../../shared/api.js';
import type { ApiClient } from '../../shared/client.js';
import { connectHost, ensureDaemon } from '../cli/connect.js';
import { processAlive } from '../common/fsutil.js';
import { findQemu } from '../host/drivers/qemu/binary.js';
import { APP_ROOT, hostAnswers, hostPaths, type HostPaths } from '../common/paths.js';
import { assertGuestModulesLoaded } from './guest-output.js';
import { GUEST_DIR, SAMPLE_CMDLINE } from '../host/new-vm/samples.js';
import { specToXml } from '../host/new-vm/spec-to-xml.js';
import { failStuckCalls, mountsFrom, processReport, processesMatching } from './hang-report.js';
import { libvirtdSkip, startLibvirtd, type Libvirtd, type LibvirtdOptions } from './libvirtd.js';
import { cacheState, postBootKey, takeCachedState } from './state-files.js';
import { SPARE } from '../runner/protocol.js';

export { GUEST_DIR, SAMPLE_CMDLINE };
export const guest = (file: string): string => path.join(GUEST_DIR, file);

export function guestsBuilt(files = ['vmlinuz', 'initrd.gz', 'tiny.iso', 'disk.img']): boolean {
  return files.every((f) => fs.existsSync(guest(f)));
}

/** The 64-bit (x86_64) sample, for the QEMU engine. */
export const AMD64_SAMPLE = { kernel: guest('vmlinuz-amd64'), initrd: guest('initrd-amd64.gz') };

/** The i686 PV sample (128 MiB, ACPI, serial console) as domain XML, with `devices` added to its own. */
export function sampleGuestXml(name: string, engine: string, devices = '', opts: { initrd?: string } = {}): string {
  return `<domain type='${engine}'>
  <name>${name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <kernel>${guest('vmlinuz')}</kernel>
    <initrd>${opts.initrd ?? guest('initrd.gz')}</initrd>
    <cmdline>${SAMPLE_CMDLINE}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>${devices ? `
    ${devices}` : ''}
  </devices>
</domain>`;
}

/** The i686 PV sample with one NIC on a virtual network. */
export function networkGuestXml(g: { name: string; engine: string; network: string; mac?: string; model: string }): string {
  return sampleGuestXml(
    g.name,
    g.engine,
    `<interface type='network'>${g.mac ? `<mac address='${g.mac}'/>` : ''}<source network='${g.network}'/><model type='${g.model}'/></interface>`,
  );
}

/**
 * What the host tests run against: Domus's own engines, and 'libvirt', a private libvirtd (QEMU,
 * TCG) behind a Domus connection. DOMUS_TEST_ENGINES=qemu,libvirt (comma list) narrows them.
 */
export type LocalEngine = 'v86' | 'qemu';
export type TestEngine = LocalEngine | 'libvirt';
const NAMED = process.env.DOMUS_TEST_ENGINES?.split(',');
/** Domus's own engines, which every engine-parameterised test runs on. */
export const ENGINES: LocalEngine[] = (NAMED ?? ['v86', 'qemu']).filter((e): e is LocalEngine => e === 'v86' || e === 'qemu');
/** The tables of the tests that also run on a libvirt connection: console, serial, balloon, statistics. */
export const CONNECTION_ENGINES: TestEngine[] = [...ENGINES, ...(NAMED === undefined || NAMED.includes('libvirt') ? (['libvirt'] as const) : [])];

/** A skip message when the engine cannot run here (QEMU not installed, no root for libvirtd), else false. */
export function engineSkip(engine: TestEngine): string | false {
  if (engine === 'v86') return false;
  const qemu = findQemu();
  if (!qemu.version) return `${engine} engine tests skipped: ${qemu.problem}`;
  return engine === 'libvirt' ? libvirtdSkip() : false;
}

/**
 * Defines a domain from a New VM spec to run on `engine`: <domain type='qemu'> for QEMU; on the
 * libvirt connection, the XML the host writes for QEMU with a VNC display on 127.0.0.1 (as
 * virt-install gives a guest), defined on the libvirt host.
 */
export async function createOn(client: ApiClient, spec: NewDomainSpecInput, engine: TestEngine): Promise<void> {
  if (engine === 'libvirt') {
    const xml = specToXml(NewDomainSpec.parse({ ...spec, engine: 'qemu' })).replace('<video>', `<graphics type="vnc" autoport="yes" listen="127.0.0.1"/>\n    <video>`);
    await client.call('domain.define', { xml });
    return;
  }
  await client.call('domain.create', { spec });
  if (engine === 'v86') return;
  const { xml } = await client.call('domain.xml', { domain: spec.name, inactive: true, secure: true });
  await client.call('domain.define', { xml: xml.replace(/<domain type=(['"])v86\1/, `<domain type=$1${engine}$1`) });
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class SerialWatch {
  text = '';
  private waiters: (() => void)[] = [];
  constructor(
    private readonly client: ApiClient,
    readonly uuid: string,
  ) {
    client.on('domain.serial', (d) => {
      if (d.uuid !== uuid) return;
      this.text += Buffer.from(d.data, 'base64').toString('latin1');
      for (const w of this.waiters.slice()) w();
    });
  }

  static async open(client: ApiClient, domain: string): Promise<SerialWatch> {
    const info = await client.call('domain.info', { domain });
    const watch = new SerialWatch(client, info.uuid);
    const { backlog } = await client.call('domain.serialOpen', { domain: info.uuid });
    watch.text = Buffer.from(backlog, 'base64').toString('latin1') + watch.text;
    return watch;
  }

  /** Resolves with the text from `from` once it matches; rejects with the tail of the output. */
  wait(re: RegExp, timeoutMs = 90_000, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        try {
          assertGuestModulesLoaded(this.text);
        } catch (err) {
          this.waiters = this.waiters.filter((w) => w !== check);
          clearTimeout(timer);
          reject(err as Error);
          return true;
        }
        const m = this.text.slice(from).match(re);
        if (!m) return false;
        this.waiters = this.waiters.filter((w) => w !== check);
        clearTimeout(timer);
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} on serial; last output:\n${this.text.slice(-800)}`));
      }, timeoutMs);
      if (!check()) this.waiters.push(check);
    });
  }

  /** Runs a shell command on the serial console and returns its output. */
  async sh(cmd: string, timeoutMs = 30_000): Promise<string> {
    const { line, end, output } = markedCommand(cmd);
    const from = this.text.length;
    await this.client.call('domain.serialWrite', { domain: this.uuid, data: Buffer.from(line).toString('base64') });
    await this.wait(end, timeoutMs, from);
    return output(this.text.slice(from));
  }
}

/**
 * A shell command line for a serial console that marks the end of its output, and how to read that
 * output from the text the console printed after the line was typed.
 */
export function markedCommand(cmd: string): { line: string; end: RegExp; output: (printed: string) => string } {
  const id = Math.random().toString(36).slice(2, 8);
  return {
    // The end marker is assembled by the shell, so the echoed command line never matches it.
    line: `${cmd}; echo "END""${id}"\n`,
    end: new RegExp(`END${id}`),
    // The output starts after the echoed command line; a shell that printed its prompt while the
    // line was being typed echoes it a second time after the prompt, so after its last echo.
    output: (printed) => printed.slice(printed.indexOf('\n', printed.lastIndexOf(`"END""${id}"`)) + 1, printed.indexOf(`END${id}`)).replace(/\r/g, ''),
  };
}

export class TestHost {
  private constructor(
    readonly paths: HostPaths,
    public client: ApiClient,
    /** The private libvirtd the client's calls go to, on the 'libvirt' engine. */
    readonly libvirtd?: Libvirtd,
  ) {}

  /** SIGKILLs the host daemon: guests must live on in their runners. */
  async killHost(): Promise<number> {
    const pid = this.daemonPid();
    process.kill(pid, 'SIGKILL');
    await until(() => !processAlive(pid), 5000, 'the host to die');
    this.client.close();
    return pid;
  }

  /** Starts a new host on the same home (or finds the running one) and connects to it. */
  async reconnect(): Promise<ApiClient> {
    await ensureDaemon(this.paths);
    this.client = failStuckCalls(await connectHost(this.paths, false), () => this.hangReport());
    return this.client;
  }

  /** What the host and the processes behind it are doing, for a call it does not answer: its log, and its QEMUs' and libvirtd's threads. */
  hangReport(): string {
    const tail = (text: string): string => text.slice(-3000);
    const parts = [`== the host's log (end)\n${tail(fs.existsSync(this.paths.log) ? fs.readFileSync(this.paths.log, 'utf8') : '')}`];
    const ownQemus = processesMatching((cmd) => cmd.includes('qemu-system') && cmd.includes(this.paths.run));
    parts.push(...ownQemus.map((pid) => processReport(pid, 'QEMU of this host')));
    if (this.libvirtd) {
      const dir = this.libvirtd.dir;
      const libvirtQemus = processesMatching((cmd, pid) => cmd.includes('qemu-system') && mountsFrom(pid, dir));
      parts.push(`== libvirtd's log (end)\n${tail(this.libvirtd.log())}`, processReport(this.libvirtd.pid, 'libvirtd'), ...libvirtQemus.map((pid) => processReport(pid, 'QEMU of libvirtd')));
    }
    return parts.join('\n');
  }

  /**
   * A host on a new home. On the 'libvirt' engine, also a private libvirtd, opened as a connection
   * that every call of `client` is for (as `domus -c URI` does).
   */
  static async start(engine?: TestEngine, libvirtd?: LibvirtdOptions, opts: { netns?: string; conf?: string } = {}): Promise<TestHost> {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-test-'));
    const paths = hostPaths(home);
    if (opts.conf) fs.writeFileSync(path.join(home, 'domusd.conf'), opts.conf);
    if (opts.netns) await startDaemonIn(opts.netns, paths);
    await ensureDaemon(paths);
    if (engine !== 'libvirt') return TestHost.watched(new TestHost(paths, await connectHost(paths, false)));
    const daemon = await startLibvirtd(libvirtd);
    const client = await connectHost(paths, false, daemon.uri);
    await client.call('connection.open', { uri: daemon.uri });
    return TestHost.watched(new TestHost(paths, client, daemon));
  }

  private static watched(t: TestHost): TestHost {
    failStuckCalls(t.client, () => t.hangReport());
    return t;
  }

  get home(): string {
    return this.paths.home;
  }

  daemonPid(): number {
    return Number.parseInt(fs.readFileSync(this.paths.daemonPid, 'utf8'), 10);
  }

  /** The entries of the run directory that are guests' (not the host's socket, pid file, networks or spare runner). */
  guestRunDirs(): string[] {
    const hosts = new Set([path.basename(this.paths.socket), path.basename(this.paths.daemonPid), path.basename(this.paths.networkRun)]);
    return fs.readdirSync(this.paths.run).filter((f) => !hosts.has(f) && !f.startsWith(SPARE.dirPrefix));
  }

  /** The host's spare v86 runners (drivers/v86/spare.ts): each one's dir, its pid once written, and whether its socket is up. */
  spareRunners(): { dir: string; pid: number | undefined; ready: boolean }[] {
    return fs
      .readdirSync(this.paths.run)
      .filter((f) => f.startsWith(SPARE.dirPrefix))
      .map((f) => {
        const dir = path.join(this.paths.run, f);
        let pid: number | undefined;
        try {
          pid = Number.parseInt(fs.readFileSync(path.join(dir, SPARE.pid), 'utf8'), 10) || undefined;
        } catch {
          // Not started yet, or taken a moment ago.
        }
        return { dir, pid, ready: fs.existsSync(path.join(dir, SPARE.socket)) };
      });
  }

  runnerPid(uuid: string): number | undefined {
    const file = path.join(this.paths.run, uuid, 'runner.pid');
    return fs.existsSync(file) ? Number.parseInt(fs.readFileSync(file, 'utf8'), 10) : undefined;
  }

  cli(args: string[], input?: string): Promise<CliResult> {
    return runCli(this.home, args, input);
  }

  /** Domains whose post-boot state is their own, in the home: libvirt's save images, and definitions with no key. */
  private readonly ownPostBoot = new Set<string>();

  /**
   * Runs a defined, shut-off domain with its guest ready, for tests that are not about booting: it
   * restores the post-boot state that an earlier test (of this run, in any file) kept for the same
   * hardware (postBootKey), as the domain's current definition, or boots the guest (to
   * DOMUS-GUEST-READY) and keeps its state for later. A restore takes about a second, a boot ten or
   * more. On a libvirt connection (libvirt's own save images), or for a definition with no key, the
   * state is kept per domain.
   */
  async bootOrRestore(domain: string, bootTimeoutMs = 120_000): Promise<SerialWatch> {
    const file = path.join(this.home, `${domain}.post-boot.state`);
    const boot = async (): Promise<void> => {
      await this.client.call('domain.start', { domain });
      const booted = await SerialWatch.open(this.client, domain);
      await booted.wait(/DOMUS-GUEST-READY/, bootTimeoutMs);
      await this.client.call('domain.save', { domain, file });
    };
    const { xml } = await this.client.call('domain.xml', { domain, inactive: true, secure: true });
    const key = this.libvirtd ? undefined : postBootKey(xml);
    if (!key) {
      if (!this.ownPostBoot.has(domain)) await boot();
      this.ownPostBoot.add(domain);
    } else {
      const { uuid, name } = await this.client.call('domain.info', { domain });
      if (!(await takeCachedState(key, file, { name, uuid, xml }))) {
        await boot();
        cacheState(key, file);
      }
    }
    await this.client.call('domain.restore', { file });
    const serial = await SerialWatch.open(this.client, domain);
    await serial.sh('true');
    return serial;
  }

  /** Destroys every running guest, stops the daemon and removes the home; kills leftovers. */
  async stop(): Promise<void> {
    try {
      const { domains } = await this.client.call('domain.list', { all: true });
      for (const d of domains) if (d.state !== 'shutoff') await this.client.call('domain.destroy', { domain: d.uuid }).catch(() => undefined);
      await this.client.call('host.stop', {}).catch(() => undefined);
    } catch {
      /* the host may already be gone */
    }
    this.client.close();
    killLeftovers(this.paths);
    await this.libvirtd?.stop();
  }
}

/** Starts the host daemon inside a network namespace (its unix sockets are reachable from here all the same). */
async function startDaemonIn(netns: string, paths: HostPaths): Promise<void> {
  fs.mkdirSync(paths.run, { recursive: true, mode: 0o700 });
  const out = fs.openSync(paths.log, 'a', 0o600);
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, path.join(APP_ROOT, 'dist', 'host', 'domusd.mjs')], { detached: true, stdio: ['ignore', out, out], env: { ...process.env, DOMUS_HOME: paths.home } });
  fs.closeSync(out);
  child.unref();
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  await until(async () => {
    if (exited !== undefined) throw new Error(`the host daemon in netns ${netns} exited with code ${exited}: ${fs.readFileSync(paths.log, 'utf8').slice(-1500)}`);
    return hostAnswers(paths.socket);
  }, 20_000, `the host daemon in netns ${netns}`);
}

/** Kills any runner or daemon left in a test home (after a failed test) and removes the home. */
export function killLeftovers(paths: HostPaths): void {
  // A stopping host or runner removes its pid file: gone between listing and reading is not an error.
  const readPid = (file: string): number | undefined => {
    try {
      return Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    } catch {
      return undefined;
    }
  };
  const files = fs.existsSync(paths.run) ? fs.readdirSync(paths.run).map((d) => path.join(paths.run, d, 'runner.pid')) : [];
  // Virtual network switches outlive hosts as runners do.
  if (fs.existsSync(paths.networkRun)) files.push(...fs.readdirSync(paths.networkRun).map((d) => path.join(paths.networkRun, d, 'switch.pid')));
  const pids = [...files, paths.daemonPid].map(readPid).filter((pid): pid is number => Boolean(pid));
  for (const pid of pids) if (pid && processAlive(pid)) process.kill(pid, 'SIGKILL');
  fs.rmSync(paths.home, { recursive: true, force: true });
}

/**
 * Writes a command's whole input and closes it. A command that ends without reading its input
 * closes the pipe first: EPIPE then is no error; any other goes to `onError`.
 */
export function endInput(stdin: Writable, input: string, onError: (message: string) => void): void {
  stdin.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') onError(`stdin: ${err.message}`);
  });
  stdin.end(input);
}

/** Runs the `domus` CLI with DOMUS_HOME set (and `env` over the test's environment). */
export function runCli(home: string, args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(APP_ROOT, 'bin', 'domus.mjs'), ...args], {
      env: { ...process.env, ...env, DOMUS_HOME: home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    endInput(child.stdin, input ?? '', (message) => (stderr += message));
    // 'close', not 'exit': the exit can come before the last of its output has been read.
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Opens a one-time web shell address as a browser does: the shell's origin and the session cookie it sets. */
export async function webShellSession(client: ApiClient): Promise<{ origin: string; host: string; cookie: string }> {
  const { url } = await client.call('host.webShell', {});
  const res = await fetch(url, { redirect: 'manual' });
  const cookie = res.headers.get('set-cookie')?.split(';')[0];
  if (res.status !== 303 || !cookie) throw new Error(`the web shell's one-time address answered ${res.status} without a session cookie`);
  const { origin, host } = new URL(url);
  return { origin, host, cookie };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves as `promise` does, or rejects naming `what` once `timeoutMs` has passed. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `probe` returns true, polling; for conditions that have no event. */
export async function until(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
