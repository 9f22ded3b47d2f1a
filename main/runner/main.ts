// Runner entry: `node dist/runner/main.mjs <stateDir>`, or `--spare <dir>` for a spare that waits
// for its state dir (spare.ts). One process per running domain, detached from the host so the guest
// survives host restarts. See protocol.ts for the contract.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeFileAtomic } from '../common/fsutil.js';
import { claimPidLock } from '../common/locks.js';
import { ConfigError, kernelAddressLimit, loadBootImages, readRunnerConfig, type BootImages } from './config.js';
import { bootKernelImage } from './kernel-cache.js';
import { log } from './log.js';
import { ControlServer } from './control.js';
import { compileV86, describeMachine, Emulator, type RestorePoint } from './emulator.js';
import { Phases } from './phases.js';
import { Framebuffer } from './framebuffer.js';
import { RUNNER_EXIT, runnerPaths, SPARE, VNC_PORT_BASE, type RunnerConfig, type RunnerExit, type RunnerPaths, type VncListen } from './protocol.js';
import { RfbServer } from './rfb.js';
import { checkToken, formatEndpoint, migrateIn } from './migration.js';
import { describeCpu } from './cpuid.js';
import { openStateFile, StateFileError, type StateMachine } from '../common/statefile.js';
import { coolPayloadReader, startPayloadRead } from './payload-reader.js';
import { waitAsSpare } from './spare.js';
import { maxPayloadBytes, PayloadError } from './state-payload.js';

/** Linux sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

// stdout/stderr go to runner.log, but a host may also hand us pipes it later closes: never die of EPIPE.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // already gone
  }
}

const MiB = 1024 * 1024;

/** Why a saved machine cannot be restored into the configured one, or undefined if it can. */
function machineMismatch(saved: StateMachine, configured: StateMachine): string | undefined {
  const mib = (n: number) => `${n / MiB} MiB`;
  const onOff = (b: boolean) => (b ? 'on' : 'off');
  const checks: [string, string, string][] = [
    ['memory', mib(saved.memoryBytes), mib(configured.memoryBytes)],
    ['VGA memory', mib(saved.vgaMemoryBytes), mib(configured.vgaMemoryBytes)],
    ['ACPI', onOff(saved.acpi), onOff(configured.acpi)],
    ['the balloon', onOff(saved.balloon), onOff(configured.balloon)],
    ['the guest agent channel', onOff(saved.guestAgent), onOff(configured.guestAgent)],
    ['the network card', saved.nic ?? 'ne2k', configured.nic ?? 'ne2k'],
  ];
  for (const disk of ['cdrom', 'hda', 'hdb'] as const) {
    const size = (n: number | undefined) => (n === undefined ? 'absent' : `${n} bytes`);
    checks.push([disk, size(saved.disks[disk]), size(configured.disks[disk])]);
  }
  const diff = checks.find(([, a, b]) => a !== b);
  return diff && `${diff[0]} is ${diff[1]} in the file but ${diff[2]} in the configuration`;
}

/**
 * Checks config.restoreFrom's header and starts reading its payload; a ConfigError if it cannot be
 * restored into this config. A payload that fails its checks later rejects the emulator's `loaded`.
 */
function loadRestorePoint(config: RunnerConfig, images: BootImages, file: string): RestorePoint {
  let opened: ReturnType<typeof openStateFile>;
  try {
    opened = openStateFile(file);
  } catch (err) {
    if (err instanceof StateFileError) throw new ConfigError(err.message);
    throw err;
  }
  const { header } = opened;
  const refuse = (why: string): ConfigError => {
    fs.closeSync(opened.fd);
    return new ConfigError(`state file '${file}' ${why}`);
  };
  if (header.uuid !== config.uuid) throw refuse(`holds domain '${header.name}' (${header.uuid}), not '${config.name}' (${config.uuid})`);
  const mismatch = machineMismatch(header.machine, describeMachine(config, images));
  if (mismatch) throw refuse(`does not match the domain: ${mismatch}`);
  const payload = startPayloadRead(file, opened, maxPayloadBytes(config.memoryBytes, config.vgaMemoryBytes));
  // Handled where the emulator awaits it.
  payload.catch(() => undefined);
  return { payload, agentConnected: header.guest.agentConnected };
}

/**
 * Refuses to run twice on one state dir (the second runner would steal the first one's sockets).
 * The flock on runner.pid is the claim: atomic, so of two runners started at once exactly one
 * wins, and never stale, as it ends with the process; the host tests it to tell a live runner from
 * a pid file left behind (say, by a reboot) whose pid now belongs to another process.
 */
function claimPidFile(file: string): void {
  // Held, unreleased, until this process ends.
  const claim = claimPidLock(file);
  if ('heldBy' in claim) throw new ConfigError(`another runner (pid ${claim.heldBy || 'unknown'}) is using ${path.dirname(file)}`);
}

function listen(server: net.Server, file: string): Promise<void> {
  removeQuietly(file); // stale socket of a runner that died
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => reject(new ConfigError(`cannot listen on '${file}': ${errnoText(err)}`));
    server.once('error', fail);
    server.listen(file, () => {
      server.off('error', fail);
      keepListening(server, file);
      fs.chmodSync(file, 0o600);
      resolve();
    });
  });
}

/** Accept failures (ENOBUFS, ENOMEM…) are reported on the server: logged, they cost one client, not the guest. */
function keepListening(server: net.Server, where: string): void {
  server.on('error', (err) => log('warn', `${where}: ${err.message}`));
}

function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Binds the TCP VNC listener: the fixed port, or (autoport) the first free one from 5900 up, as
 * libvirt allocates them; runners starting together each get their own because bind is atomic.
 */
async function listenTcp(server: net.Server, where: VncListen): Promise<{ address: string; port: number }> {
  const bind = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: where.address, port, exclusive: true }, () => {
        server.off('error', reject);
        keepListening(server, formatHostPort(where.address, port));
        resolve();
      });
    });
  const last = where.port ?? 65535;
  for (let port = where.port ?? VNC_PORT_BASE; port <= last; port++) {
    try {
      await bind(port);
      return { address: where.address, port };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' && where.port === undefined) continue;
      throw new ConfigError(`cannot listen for VNC on ${formatHostPort(where.address, port)}: ${errnoText(err)}`);
    }
  }
  throw new ConfigError(`no free VNC port on ${where.address} from ${VNC_PORT_BASE} to 65535`);
}

class Runner {
  private shuttingDown = false;
  /** Set by fail(); becomes the last line of runner.log, which the host shows. */
  private failure: string | undefined;
  private control: ControlServer | undefined;
  private rfb: RfbServer | undefined;
  private emulator: Emulator | undefined;
  private readonly servers: net.Server[] = [];
  private vncTcp: { address: string; port: number } | undefined;
  /** config.incoming's endpoint, until the stream has arrived. */
  private incoming: string | undefined;

  constructor(
    private readonly paths: RunnerPaths,
    private readonly config: RunnerConfig,
    private readonly images: BootImages,
  ) {}

  /**
   * `restore`: the guest to resume instead of booting (not kept: it is as large as the guest's RAM);
   * `bootImage`: else, the kernel image of a direct-kernel boot (bootKernelImage);
   * `phases`: the restore's timings so far, completed and logged once the emulator is loaded.
   */
  async start({ restore, bootImage }: { restore?: RestorePoint; bootImage?: ArrayBuffer }, phases?: Phases): Promise<void> {
    const startedAt = Date.now();
    const { config, paths } = this;
    const emulator = new Emulator(config, this.images, config.incoming ? 'incoming' : restore, bootImage);
    this.emulator = emulator;
    const framebuffer = new Framebuffer(emulator);
    const control = new ControlServer({
      config,
      emulator,
      framebuffer,
      machine: describeMachine(config, this.images),
      startedAt,
      log: (m) => log('warn', m),
      onDestroy: () => void this.shutdown(RUNNER_EXIT.ok, { reason: 'destroy' }),
      vncTcp: () => this.vncTcp,
      incoming: () => this.incoming,
      disks: (['hda', 'hdb', 'cdrom'] as const).flatMap((name) => {
        const disk = this.images[name];
        return disk ? [{ name, disk }] : [];
      }),
    });
    this.control = control;
    this.rfb = new RfbServer({
      name: config.name,
      framebuffer,
      input: emulator,
      ready: emulator.loaded,
      password: config.vncPassword,
      log: (m) => log('info', m),
    });
    const rfb = this.rfb;
    emulator.on('restarted', () => framebuffer.invalidate());
    emulator.on('failure', (err) => this.fail(err));
    emulator.on('poweroff', (how) => {
      log('info', `the guest powered off (${how === 'acpi' ? 'ACPI soft-off' : 'CPU halted with interrupts disabled'})`);
      control.broadcast({ event: 'guest-poweroff' });
      void this.shutdown(RUNNER_EXIT.ok, { reason: 'poweroff' });
    });
    const controlServer = net.createServer((socket) => control.accept(socket));
    const vncServer = net.createServer((socket) => rfb.accept(socket));
    this.servers.push(controlServer, vncServer);
    if (config.vncListen) {
      const tcpServer = net.createServer((socket) => rfb.accept(socket, 'tcp'));
      this.servers.push(tcpServer);
      // Before control.sock: a host that attaches learns the port in `hello`.
      this.vncTcp = await listenTcp(tcpServer, config.vncListen);
      log('info', `VNC on ${formatHostPort(this.vncTcp.address, this.vncTcp.port)}${config.vncPassword ? ' (password)' : ''}`);
    }
    if (config.incoming) await this.listenIncoming(emulator, control);
    if (restore) {
      // The host attaches once the saved guest is in (a state it cannot use ends the runner as a
      // configuration error, with the reason).
      await emulator.loaded.catch((err: unknown) => {
        if (err instanceof StateFileError) throw new ConfigError(err.message);
        if (err instanceof PayloadError) throw new ConfigError(`state file '${config.restoreFrom}': ${err.message}`);
        throw err;
      });
    }
    await listen(controlServer, paths.control);
    await listen(vncServer, paths.vnc);
    void emulator.loaded.then(async () => {
      log('info', `emulator ${emulator.restored ? 'restored' : 'loaded'} in ${Date.now() - startedAt} ms (${emulator.state})`);
      if (phases) {
        phases.lap('emulator and the saved guest in it');
        log('info', `restore phases: ${phases}`);
      }
      // For a migration's CPU check (the host reads it synchronously).
      writeFileAtomic(paths.cpu, `${JSON.stringify(await describeCpu((leaf, sub) => emulator.cpuid(leaf, sub)))}\n`, 0o600);
    });
    log('info', `listening on ${paths.control} and ${paths.vnc}`);
  }

  /**
   * An incoming migration (migration.ts): one connection whose first bytes are the token is taken,
   * then the listener closes; others are dropped. A stream that fails ends the runner (exit 1), so
   * that nothing is left behind.
   */
  private async listenIncoming(emulator: Emulator, control: ControlServer): Promise<void> {
    const incoming = this.config.incoming!;
    const server = net.createServer();
    this.servers.push(server);
    let taken = false;
    server.on('connection', (socket) => {
      socket.on('error', () => undefined);
      void checkToken(socket, incoming.token).then(async (ok) => {
        if (!ok || taken) {
          log('warn', `incoming migration: dropped a connection ${ok ? 'after the stream was taken' : 'without the right token'}`);
          socket.destroy();
          return;
        }
        taken = true;
        server.close();
        this.incoming = undefined;
        const started = Date.now();
        try {
          const meta = await migrateIn(socket, {
            memory: () => emulator.memory(),
            restore: async (state) => {
              const t0 = Date.now();
              await emulator.adoptState(state);
              log('info', `incoming migration: device state (${state.length} bytes) restored in ${Date.now() - t0} ms`);
            },
            start: (m) => emulator.startMigrated(m.running, m.agentConnected),
          });
          log('info', `incoming migration arrived in ${Date.now() - started} ms (${meta.running ? 'running' : 'paused'})`);
          control.broadcast({ event: 'migrated-in', state: emulator.state });
        } catch (err) {
          socket.destroy();
          this.fail(new Error(`incoming migration failed: ${(err as Error).message}`));
        }
      });
    });
    const where = incoming.listen;
    if (where.kind === 'unix') {
      await listen(server, where.path);
    } else {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new ConfigError(`cannot listen for the migration on ${formatHostPort(where.address, where.port)}: ${errnoText(err)}`)));
        server.listen({ host: where.address, port: where.port, exclusive: true }, () => resolve());
      });
      keepListening(server, 'migration listener');
    }
    this.incoming = formatEndpoint(server.address() as net.AddressInfo | string);
    log('info', `waiting for an incoming migration on ${this.incoming}`);
  }

  /** Emulator failure: tell the attached clients, then exit 1. */
  fail(err: unknown): void {
    const message = `emulator failure: ${err instanceof Error ? err.message : String(err)}`;
    if (err instanceof Error && err.stack) log('info', err.stack);
    if (this.shuttingDown) return;
    this.failure = message;
    this.control?.broadcast({ event: 'error', message });
    void this.shutdown(RUNNER_EXIT.emulatorFailure, { reason: 'crash', message });
  }

  async shutdown(code: number, why: RunnerExit): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    log('info', `shutting down: ${why.reason}${why.message && why.reason !== 'crash' ? ` (${why.message})` : ''}`);
    try {
      // First, so that a host that is not attached learns why even if the rest goes wrong.
      writeFileAtomic(this.paths.exit, `${JSON.stringify(why)}\n`, 0o600);
    } catch (err) {
      log('warn', `cannot write ${this.paths.exit}: ${errnoText(err)}`);
    }
    // A wedged emulator must not keep the process (and its pid file) around.
    setTimeout(() => this.exit(code), 3000);
    for (const s of this.servers) s.close();
    this.rfb?.closeAll();
    await this.control?.closeAll();
    try {
      await this.emulator?.destroy();
    } catch (err) {
      log('warn', `emulator destroy: ${(err as Error).message}`);
    }
    this.exit(code);
  }

  private exit(code: number): never {
    for (const disk of [this.images.cdrom, this.images.hda, this.images.hdb]) {
      try {
        disk?.close();
      } catch {
        // already closed
      }
    }
    removeQuietly(this.paths.control);
    removeQuietly(this.paths.vnc);
    removeQuietly(this.paths.pid);
    if (this.failure) log('error', this.failure);
    else log('info', `exit ${code}`);
    process.exit(code);
  }
}

async function main(): Promise<void> {
  const [stateArg, spareDir, hostPid] = process.argv.slice(2);
  if (!stateArg || (stateArg === SPARE.flag && !(spareDir && Number(hostPid) > 0))) {
    log('error', `usage: runner <stateDir> | runner ${SPARE.flag} <dir> <host pid>`);
    process.exit(RUNNER_EXIT.configError);
  }
  // Sockets, pid file: private to the user running Domus.
  process.umask(0o077);
  let phases: Phases;
  let stateDir: string;
  if (stateArg === SPARE.flag) {
    try {
      stateDir = await waitAsSpare(path.resolve(spareDir!), Number(hostPid), (m) => log('info', m));
    } catch (err) {
      log('error', (err as Error).message);
      process.exit(RUNNER_EXIT.configError);
    }
    // From the handover: the spare started Node and loaded everything before.
    phases = new Phases();
  } else {
    phases = new Phases(true);
    phases.lap('node start and modules');
    // Its failure surfaces where the first machine awaits it.
    compileV86().catch(() => undefined);
    stateDir = path.resolve(stateArg);
  }
  const paths = runnerPaths(stateDir);
  log('info', `runner pid ${process.pid} starting at ${new Date().toISOString()} in ${path.dirname(paths.pid)}`);

  let runner: Runner | undefined;
  let pidClaimed = false;
  const configError = (err: unknown): never => {
    log('error', err instanceof Error ? err.message : String(err));
    if (pidClaimed) removeQuietly(paths.pid);
    process.exit(RUNNER_EXIT.configError);
  };
  // Past configuration, anything thrown and not caught is the emulator (or the runner) failing.
  const fatal = (err: unknown) => (runner ? runner.fail(err) : configError(err));
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  process.on('SIGTERM', () => void runner?.shutdown(RUNNER_EXIT.ok, { reason: 'signal', message: 'SIGTERM' }));
  process.on('SIGINT', () => void runner?.shutdown(RUNNER_EXIT.ok, { reason: 'signal', message: 'SIGINT' }));
  // Started detached, but during development from a terminal: closing it must not stop the guest.
  process.on('SIGHUP', () => undefined);

  let config: RunnerConfig;
  let images: BootImages;
  let restore: RestorePoint | undefined;
  try {
    claimPidFile(paths.pid);
    pidClaimed = true;
    // Left by an earlier runner on this state dir; this one writes its own when it ends.
    removeQuietly(paths.exit);
    for (const file of [paths.control, paths.vnc]) {
      if (Buffer.byteLength(file) > MAX_SOCKET_PATH) {
        throw new ConfigError(`socket path '${file}' is longer than ${MAX_SOCKET_PATH} bytes`);
      }
    }
    config = readRunnerConfig(paths.config);
    images = loadBootImages(config);
    if (!config.restoreFrom) {
      coolPayloadReader();
    } else {
      phases.lap('configuration and images');
      const t0 = Date.now();
      restore = loadRestorePoint(config, images, config.restoreFrom);
      log('info', `state file '${config.restoreFrom}' opened and its header checked in ${Date.now() - t0} ms`);
      phases.lap('state file header checked');
    }
  } catch (err) {
    return configError(err);
  }
  log('info', `domain '${config.name}' (${config.uuid}), ${config.memoryBytes / MiB} MiB`);
  const bootImage = images.kernel && !restore && !config.incoming ? await bootKernelImage(images.kernel, kernelAddressLimit(config, images)) : undefined;
  for (const [slot, disk] of [['hda', images.hda], ['hdb', images.hdb]] as const) {
    if (disk) disk.onFirstFlush = () => log('info', `${slot}: the guest flushed its write cache (fsync of '${disk.path}')`);
  }
  runner = new Runner(paths, config, images);
  try {
    await runner.start({ restore, bootImage }, restore && phases);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    removeQuietly(paths.control);
    removeQuietly(paths.vnc);
    return configError(err);
  }
}

void main();
