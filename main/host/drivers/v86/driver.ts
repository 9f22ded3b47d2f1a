// The embedded v86 engine: each running domain is a runner process (main/runner/) the host
// spawns detached and talks to over <run>/<uuid>/control.sock, so guests outlive the host.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { processAlive, subdirectories, writeFileAtomic } from '../../../common/fsutil.js';
import { exitText, killProcess, logLines, spawnEngine, waitForEngine, waitGone, type EngineProcess, type ProcessExit } from '../../../common/process.js';
import type { ConnectionInfo } from '../../../../shared/api.js';
import { STATE_ENGINE_VERSION } from '../../../common/statefile.js';
import { EngineFailure } from '../../errors.js';
import { JsonlConnection } from '../../../common/jsonl.js';
import { isLocked, readPid } from '../../../common/locks.js';
import {
  bootOrderValue,
  readStateHeader,
  runnerPaths,
  type BalloonReport,
  type HelloResult,
  type MigrateResult,
  type RunnerExit,
  RUNNER_ENV,
  RUNNER_NODE_FLAGS,
  SPARE,
  type RunnerConfig,
  type RunnerMessage,
  type RunnerOp,
  type RunnerOps,
  type ScreenshotResult,
  type SnapshotStores,
  type StatsResult,
} from '../../../runner/protocol.js';
import { resolveBootloader, usesBootloader } from '../../images/bootloader.js';
import { hasAcpi, hasAgentChannel } from '../../domain/features.js';
import { childElements, firstChild, serializeDomainXml, type DomainDocument } from '../../domain/xml.js';
import { log } from '../../log.js';
import { APP_ROOT } from '../../../common/paths.js';
import type { CpuDescription } from '../../../runner/protocol.js';
import { v86CheckIncoming, v86Cookie } from './migration.js';
import { SerialHandover, type BalloonInfo, type EngineCapabilities, type EngineDriver, type ExitReason, type IncomingMigration, type LiveDomain, type LiveDomainEvents, type MigrationCookie, type MigrationEndpoint, type MigrationOptions, type MigrationProgress, type MigrationResult, type Reattached, type RunnerStats, type ShutdownChannel, type ShutdownResult, type SnapshotRef, type StartedDomain, type StateFileHeader, type SupportReport } from '../driver.js';
import { findFirmware } from './firmware.js';
import type { DomainCapabilities } from '../../../../shared/capabilities.js';
import { v86Capabilities } from '../../capabilities/engines.js';
import { attachInterfaces } from '../../network/attach.js';
import type { NetworkSwitches } from '../../network/switches.js';
import { checkV86Support, V86_INITRD_ADDRESS_KiB, V86_MAX_MEMORY_KiB } from './support.js';
import { v86HardDisks, v86Snapshots, v86StoreFiles, type StoreKeeper } from './snapshots.js';
import { SpareRunner } from './spare.js';

const CONNECT_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;
const SAVE_TIMEOUT_MS = 10 * 60_000;
const STATS_TIMEOUT_MS = 5000;
const LIVE_XML = 'live.xml';
/** An incoming migration's unix socket, in the domain's run directory. */
const MIGRATE_SOCKET = 'migrate.sock';
/** A migration may run long (a dirtying guest, a low bandwidth); abortJob or the host's --timeout end it sooner. */
const MIGRATE_TIMEOUT_MS = 60 * 60_000;

export class EngineError extends EngineFailure {
  override name = 'EngineError';
}

export class V86Driver implements EngineDriver {
  readonly engine = 'v86';
  readonly label = 'v86';
  readonly uri = 'v86:///session';
  readonly domainTypes = ['v86'];
  readonly capabilities: EngineCapabilities = { shutdownModes: ['acpi', 'agent'] };
  readonly snapshots = v86Snapshots;

  private readonly spare: SpareRunner;

  constructor(
    private readonly runDir: string,
    private readonly networks: NetworkSwitches,
    /** The domain's snapshots, whose disk stores a runner keeps up to date. */
    private readonly snapshotsOf: (uuid: string) => SnapshotRef[] = () => [],
  ) {
    this.spare = new SpareRunner(runDir, (dir, logFile) => spawnRunner([SPARE.flag, dir, String(process.pid)], logFile, dir));
  }

  warm(): void {
    this.spare.warm();
  }

  close(): void {
    this.spare.close();
  }

  connection(): ConnectionInfo {
    return { uri: this.uri, engine: this.engine, available: true, version: STATE_ENGINE_VERSION };
  }

  validate(doc: DomainDocument): SupportReport {
    return checkV86Support(doc.config, doc.root);
  }

  domainCapabilities(): DomainCapabilities {
    return v86Capabilities();
  }

  readStateHeader(file: string): StateFileHeader {
    // The runner checks the payload as it reads it, off the restore's critical path.
    const header = readStateHeader(file, undefined, 'unchecked');
    return { uuid: header.uuid, name: header.name, domainXml: header.domainXml };
  }

  async start(doc: DomainDocument, opts: { paused?: boolean; restoreFrom?: string }): Promise<StartedDomain> {
    const runnerConfig = this.runnerConfig(doc);
    if (opts.paused) runnerConfig.startPaused = true;
    if (opts.restoreFrom) runnerConfig.restoreFrom = opts.restoreFrom;
    const stores = v86StoreFiles(this.snapshotsOf(doc.config.uuid));
    if (stores.hda || stores.hdb) runnerConfig.snapshotStores = stores;
    return { live: await this.launch(doc, runnerConfig), notes: [] };
  }

  migrationCookie(doc: DomainDocument, live: LiveDomain): MigrationCookie {
    if (!(live instanceof V86Live)) throw new EngineError('not a v86 domain');
    try {
      return v86Cookie(doc, live.stateDir);
    } catch (err) {
      throw new EngineError((err as Error).message);
    }
  }

  checkIncoming(cookie: MigrationCookie, doc: DomainDocument): string[] {
    return v86CheckIncoming(cookie, doc, this.localCpu(), os.totalmem());
  }

  /** This host's v86 CPU, as any of its runners read it (all run the same v86 build). */
  private localCpu(): CpuDescription | undefined {
    for (const entry of subdirectories(this.runDir)) {
      try {
        return JSON.parse(fs.readFileSync(runnerPaths(path.join(this.runDir, entry.name)).cpu, 'utf8')) as CpuDescription;
      } catch {
        // not a v86 runner, or not loaded yet
      }
    }
    return undefined;
  }

  async prepareIncoming(doc: DomainDocument, listen: { kind: 'unix' } | { kind: 'tcp'; address: string }): Promise<IncomingMigration> {
    const runnerConfig = this.runnerConfig(doc);
    const stateDir = path.join(this.runDir, doc.config.uuid);
    const token = crypto.randomBytes(32).toString('hex');
    runnerConfig.incoming = {
      // In the domain's own run directory (0700), the socket itself 0600.
      listen: listen.kind === 'unix' ? { kind: 'unix', path: path.join(stateDir, MIGRATE_SOCKET) } : { kind: 'tcp', address: listen.address, port: 0 },
      token,
    };
    const live = await this.launch(doc, runnerConfig);
    const uri = live.incomingUri;
    if (!uri) {
      await live.destroy();
      throw new EngineError(`the runner for '${doc.config.name}' did not open a migration endpoint`);
    }
    const arrived = live.arrival();
    // Until finished() is called: a failed stream must not be an unhandled rejection.
    arrived.catch(() => undefined);
    return {
      endpoint: { uri, token },
      finished: async () => {
        await arrived;
        return { live, notes: [] };
      },
      abort: () => live.destroy(),
    };
  }

  /** Prepares the run directory of a definition, starts its runner and attaches to it. */
  private async launch(doc: DomainDocument, runnerConfig: RunnerConfig): Promise<V86Live> {
    const { config } = doc;
    const stateDir = path.join(this.runDir, config.uuid);
    const pidFile = path.join(stateDir, 'runner.pid');
    // A runner lives exactly as long as its lock on runner.pid; the pid in the file may by now be
    // another process's (after a reboot), which must not keep the domain from starting.
    if (isLocked(pidFile)) throw new EngineError(`domain '${config.name}' is already running in runner pid ${readPid(pidFile) || 'unknown'}`);
    // v86 has one NIC (support.ts warns about the others).
    const [nic] = await attachInterfaces(this.networks, config);
    if (nic) runnerConfig.nic = { model: nic.model === 'virtio' ? 'virtio' : 'ne2k', mac: nic.mac, socket: nic.socket };
    if (fs.existsSync(stateDir)) log('info', `removing the stale run directory ${stateDir} of '${config.name}'`);
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    if (usesBootloader(config)) {
      try {
        Object.assign(runnerConfig, await pygrubBoot(doc, stateDir, runnerConfig.memoryBytes));
      } catch (err) {
        fs.rmSync(stateDir, { recursive: true, force: true });
        throw err;
      }
    }
    writeFileAtomic(path.join(stateDir, 'runner.json'), JSON.stringify(runnerConfig, null, 2), 0o600);
    // The live definition, for a host that re-attaches later.
    writeFileAtomic(path.join(stateDir, LIVE_XML), serializeDomainXml(doc), 0o600);

    const logFile = path.join(stateDir, 'runner.log');
    const proc = (await this.spare.take(stateDir)) ?? spawnRunner([stateDir], logFile, stateDir);
    const sock = await waitForEngine(proc, async () => (await tryConnect(path.join(stateDir, 'control.sock'))) ?? undefined, {
      timeoutMs: CONNECT_TIMEOUT_MS,
      intervalMs: 25,
      onExit: (exit) => new EngineError(runnerFailure(logFile, exit)),
      onTimeout: () => new EngineError(`runner for '${config.name}' did not come up within ${CONNECT_TIMEOUT_MS / 1000} s (see ${logFile})`),
    });
    return V86Live.attach(stateDir, sock, config.name, proc.child);
  }

  async reattachAll(): Promise<Map<string, Reattached>> {
    this.spare.removeLeftovers();
    const found = new Map<string, Reattached>();
    for (const entry of subdirectories(this.runDir)) {
      const stateDir = path.join(this.runDir, entry.name);
      const files = runnerPaths(stateDir);
      // Other engines' domains share the run directory; a v86 runner's always has runner.json.
      if (!fs.existsSync(files.config)) continue;
      if (!isLocked(files.pid)) {
        found.set(entry.name, { exited: exitReason(stateDir) });
        fs.rmSync(stateDir, { recursive: true, force: true });
        continue;
      }
      const sock = await tryConnect(files.control);
      if (!sock) continue;
      try {
        const live = await V86Live.attach(stateDir, sock, entry.name);
        const liveXmlFile = path.join(stateDir, LIVE_XML);
        found.set(entry.name, { live, liveXml: fs.existsSync(liveXmlFile) ? fs.readFileSync(liveXmlFile, 'utf8') : undefined });
      } catch (err) {
        log('warn', `re-attach to runner in ${stateDir} failed: ${(err as Error).message}`);
      }
    }
    return found;
  }

  /** Turns the typed definition into what the runner boots; refuses what cannot run. */
  private runnerConfig(doc: DomainDocument): RunnerConfig {
    const { config } = doc;
    const report = this.validate(doc);
    if (report.errors.length) throw new EngineError(report.errors.join('; '));
    let firmware;
    try {
      firmware = findFirmware();
    } catch (err) {
      throw new EngineError((err as Error).message);
    }
    const need = (file: string, what: string): string => {
      try {
        fs.accessSync(file, fs.constants.R_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new EngineError(`cannot access ${what} '${file}': ${code === 'ENOENT' ? 'No such file or directory' : code}`);
      }
      return file;
    };
    const rc: RunnerConfig = {
      name: config.name,
      uuid: config.uuid,
      memoryBytes: Math.min(config.memoryKiB, V86_MAX_MEMORY_KiB) * 1024,
      vgaMemoryBytes: 8 << 20,
      bios: firmware.bios,
      vgaBios: firmware.vgaBios,
      balloon: config.balloon,
      // As with libvirt, a guest has ACPI only when its XML says <features><acpi/>, and the agent
      // channel only when it has one.
      acpi: hasAcpi(doc),
      guestAgent: hasAgentChannel(doc),
    };
    // libvirt's <graphics type='vnc'>: a TCP listener (loopback unless listen= says otherwise; autoport
    // from 5900), and passwd= for every VNC connection, the unix socket's too.
    const vnc = config.graphics.find((g) => g.type === 'vnc');
    if (vnc) {
      rc.vncListen = { address: vnc.listen ?? '127.0.0.1', ...(!vnc.autoport && vnc.port !== undefined && { port: vnc.port }) };
      if (vnc.passwd) rc.vncPassword = vnc.passwd;
    }
    // <currentMemory> below <memory>: the balloon starts inflated to it, before the guest's driver probes.
    if (config.balloon && config.currentMemoryKiB < rc.memoryBytes / 1024) rc.balloonTargetKiB = config.currentMemoryKiB;
    if (config.os.kernel) {
      rc.kernel = need(config.os.kernel, 'kernel');
      if (config.os.initrd) rc.initrd = need(config.os.initrd, 'initrd');
      if (config.os.cmdline) rc.cmdline = config.os.cmdline;
    }
    const cdrom = config.disks.find((d) => d.device === 'cdrom' && d.source && d.format === 'raw');
    if (cdrom?.source) rc.cdrom = need(cdrom.source, 'CD-ROM image');
    for (const disk of v86HardDisks(config)) rc[disk.slot] = need(disk.source, 'disk image');
    const order = config.os.bootOrder.filter((d): d is 'hd' | 'cdrom' | 'fd' => d !== 'network');
    if (order.length) rc.bootOrder = bootOrderValue(order);
    return rc;
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** The host's side of one runner's control socket. */
class V86Live extends EventEmitter<LiveDomainEvents> implements LiveDomain, StoreKeeper {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private destroying = false;
  private detached = false;
  state: 'running' | 'paused' = 'running';
  restored = false;
  private progress?: (done: number, total: number) => void;
  pid = 0;
  startedAt = 0;
  private readonly serialOut = new SerialHandover((data) => this.emit('serial', data));
  readonly vncSocket: string;
  vncTcp: { address: string; port: number } | undefined;
  /** An incoming migration's endpoint, while the runner waits for the stream. */
  incomingUri: string | undefined;
  private migrationProgress?: (p: MigrationProgress) => void;
  private onArrival?: { resolve: () => void; reject: (err: Error) => void };
  /** The runner's exit, when this host started it (waitGone takes it rather than its next poll). */
  private childExit?: Promise<void>;

  private constructor(
    readonly stateDir: string,
    private readonly conn: JsonlConnection,
  ) {
    super();
    this.vncSocket = runnerPaths(stateDir).vnc;
    conn.on('message', (msg) => this.receive(msg as RunnerMessage));
    conn.on('invalid', (err) => log('warn', `runner ${stateDir}: ${err.message}`));
    conn.on('close', () => this.closed());
  }

  /** `child`: the runner's process, when this host spawned it (not a runner an earlier host left). */
  static async attach(stateDir: string, sock: net.Socket, label: string, child?: ChildProcess): Promise<V86Live> {
    const live = new V86Live(stateDir, new JsonlConnection(sock));
    // Known before the hello: a runner that dies before it answers is waited for, not pid 0.
    if (child?.pid) live.pid = child.pid;
    if (child && child.exitCode === null && child.signalCode === null) live.childExit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const hello: HelloResult = await live.request('hello', {});
    if (hello.pid !== live.pid) live.childExit = undefined;
    live.pid = hello.pid;
    live.restored = hello.restored;
    live.state = hello.state;
    live.startedAt = hello.startedAt;
    // Events that came in the same read as the reply are already held: the backlog goes first.
    live.serialOut.prepend(Buffer.from(hello.serialBacklog, 'base64'));
    live.vncTcp = hello.vncTcp;
    live.incomingUri = hello.incoming;
    log('info', `attached to runner of '${label}' (pid ${hello.pid}, ${hello.state})`);
    return live;
  }

  takeSerialBacklog(): Buffer {
    return this.serialOut.take();
  }

  async shutdown(channels: ShutdownChannel[]): Promise<ShutdownResult> {
    return this.request('shutdown', { channels });
  }
  async reboot(): Promise<void> {
    await this.request('reboot', {});
  }
  async reset(): Promise<void> {
    await this.request('reset', {});
  }
  async save(file: string, header: StateFileHeader, onProgress: (done: number, total: number) => void): Promise<void> {
    await this.job(onProgress, () => this.request('save', { file, header }, SAVE_TIMEOUT_MS));
  }
  async dump(file: string, onProgress: (done: number, total: number) => void): Promise<void> {
    await this.job(onProgress, () => this.request('dump', { file }, SAVE_TIMEOUT_MS));
  }
  /** A save or dump: its job-progress events go to `onProgress`; it may take longer than an ordinary request. */
  private async job(onProgress: (done: number, total: number) => void, run: () => Promise<unknown>): Promise<void> {
    this.progress = onProgress;
    try {
      await run();
    } finally {
      this.progress = undefined;
    }
  }
  async migrateOut(target: MigrationEndpoint, opts: MigrationOptions, onProgress: (p: MigrationProgress) => void): Promise<MigrationResult> {
    if (opts.postcopy) throw new EngineError('v86 has no post-copy migration; migrate without --postcopy');
    this.migrationProgress = onProgress;
    try {
      const args = { uri: target.uri, token: target.token, live: opts.live, maxDowntimeMs: opts.maxDowntimeMs, ...(opts.bandwidthMiBs !== undefined && { bandwidthMiBs: opts.bandwidthMiBs }) };
      const r: MigrateResult = await this.request('migrate', args, MIGRATE_TIMEOUT_MS);
      log('info', `v86 migration of runner ${this.pid}: downtime ${r.downtimeMs} ms, ${r.iterations} rounds, ${r.transferredBytes} bytes in ${r.totalMs} ms`);
      return { downtimeMs: r.downtimeMs, transferredBytes: r.transferredBytes, iterations: r.iterations, postcopy: false };
    } finally {
      this.migrationProgress = undefined;
    }
  }
  /** An incoming migration: resolves once the guest has arrived, rejects with the runner's reason if it ends first. */
  arrival(): Promise<void> {
    return new Promise((resolve, reject) => (this.onArrival = { resolve, reject }));
  }
  async abortJob(): Promise<void> {
    await this.request('abortJob', {});
  }
  async pause(): Promise<void> {
    await this.request('pause', {});
  }
  async resume(): Promise<void> {
    await this.request('resume', {});
  }
  async destroy(): Promise<void> {
    this.destroying = true;
    const gone = new Promise<void>((resolve) => this.once('exit', () => resolve()));
    await this.request('destroy', {}).catch(() => undefined);
    const timer = setTimeout(() => {
      // A runner that acknowledged but hangs is killed: destroy must always end the guest.
      if (processAlive(this.pid)) killProcess(this.pid);
    }, 5000);
    await gone;
    clearTimeout(timer);
  }
  async screenshot(): Promise<{ png: Buffer; width: number; height: number }> {
    const r: ScreenshotResult = await this.request('screenshot', {});
    return { png: Buffer.from(r.png, 'base64'), width: r.width, height: r.height };
  }
  async sendText(text: string): Promise<void> {
    await this.request('sendText', { text });
  }
  async sendScancodes(codes: number[]): Promise<void> {
    await this.request('sendScancodes', { codes });
  }
  async serialWrite(data: Buffer): Promise<void> {
    await this.request('serialWrite', { data: data.toString('base64') });
  }
  async stats(): Promise<RunnerStats> {
    // Short: dominfo and sampling ask for it, and a wedged runner must not hold them for long.
    const s: StatsResult = await this.request('stats', {}, STATS_TIMEOUT_MS);
    // v86 gives the guest no NIC.
    return { cpuTimeMs: s.cpuTimeMs, vcpuTimeMs: s.vcpuTimeMs, rssBytes: s.rssBytes, at: Date.now(), disks: s.disks, nics: [] };
  }
  async setBalloonTarget(targetKiB: number): Promise<BalloonInfo> {
    return balloonInfo(await this.request('balloonSet', { targetKiB }));
  }
  async balloonInfo(guestStats: boolean): Promise<BalloonInfo> {
    return balloonInfo(await this.request('balloonInfo', { guestStats }));
  }
  async setSnapshotStores(stores: SnapshotStores): Promise<void> {
    await this.request('setSnapshotStores', { stores });
  }
  async changeMedia(source: string | undefined): Promise<void> {
    await this.request('changeMedia', source === undefined ? {} : { source });
  }
  detach(): void {
    this.detached = true;
    this.conn.destroy();
  }

  private request<K extends RunnerOp>(op: K, args: RunnerOps[K]['args'], timeoutMs = REQUEST_TIMEOUT_MS): Promise<RunnerOps[K]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new EngineError(`runner did not answer '${op}' within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      if (!this.conn.send({ id, op, ...args })) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new EngineError('domain is no longer running (its runner closed the connection)'));
      }
    });
  }

  private receive(msg: RunnerMessage): void {
    if ('id' in msg) {
      const p = msg.id === null ? undefined : this.pending.get(msg.id);
      if (!p || msg.id === null) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new EngineError(msg.error));
      return;
    }
    switch (msg.event) {
      case 'serial':
        this.serialOut.deliver(Buffer.from(msg.data, 'base64'));
        break;
      case 'state':
        this.state = msg.state;
        this.emit('state', msg.state);
        break;
      case 'balloon':
        this.emit('balloon', balloonInfo(msg.balloon));
        break;
      case 'guest-reboot':
      case 'reset':
        this.emit('rebooted');
        break;
      case 'guest-panicked':
        this.emit('panicked', msg.message);
        break;
      case 'job-progress':
        this.progress?.(msg.processedBytes, msg.totalBytes);
        break;
      case 'migration-progress': {
        const { event: _event, ...progress } = msg;
        this.migrationProgress?.(progress);
        break;
      }
      case 'migrated-in':
        this.incomingUri = undefined;
        this.state = msg.state;
        this.restored = true;
        this.onArrival?.resolve();
        this.onArrival = undefined;
        break;
      case 'error':
        log('warn', `runner ${this.stateDir}: ${msg.message}`);
        break;
    }
  }

  private closed(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new EngineError('domain is no longer running (its runner closed the connection)'));
    }
    this.pending.clear();
    if (this.detached) return;
    void this.awaitExit();
  }

  /** The control socket closed: wait for the process to end, then say why it ended. */
  private async awaitExit(): Promise<void> {
    // The socket died but the guest lives on: the runner is wedged; end it so no guest is orphaned.
    if (!(await waitGone(this.pid, 3000, this.childExit))) killProcess(this.pid);
    const reason: ExitReason = this.destroying ? 'destroyed' : exitReason(this.stateDir);
    const detail = reason === 'crashed' ? logLines(path.join(this.stateDir, 'runner.log')).pop() : undefined;
    fs.rmSync(this.stateDir, { recursive: true, force: true });
    this.onArrival?.reject(new EngineError(`the incoming migration failed: ${detail ?? `the runner ended (${reason})`}`));
    this.onArrival = undefined;
    this.emit('exit', { reason, detail });
  }
}

/** v86 only counts the pages the guest gives up; its wasm memory never shrinks. */
function balloonInfo(r: BalloonReport): BalloonInfo {
  const { guest } = r;
  return {
    maxKiB: r.maxKiB,
    targetKiB: r.targetKiB,
    actualKiB: r.actualKiB,
    status: r.status,
    guest: guest && { at: guest.at, totalKiB: guest.totalKiB, freeKiB: guest.freeKiB, availableKiB: guest.availableKiB, cachesKiB: guest.cachesKiB },
    hostReclaims: false,
  };
}

/** The kernel pygrub picks from the disk, checked against what v86 can boot. */
async function pygrubBoot(doc: DomainDocument, stateDir: string, memoryBytes: number): Promise<Pick<RunnerConfig, 'kernel' | 'initrd' | 'cmdline'>> {
  const boot = await resolveBootloader(doc, stateDir);
  if (boot.arch === 'x86_64') throw new EngineError(`pygrub: ${boot.description}: ${boot.archReason}; v86 runs 32-bit x86 guests only`);
  const initrdBytes = boot.initrd ? fs.statSync(boot.initrd).size : 0;
  if (boot.initrd && memoryBytes <= V86_INITRD_ADDRESS_KiB * 1024 + initrdBytes) {
    throw new EngineError(`pygrub: memory ${memoryBytes >> 20} MiB is too small for the initrd (${initrdBytes} bytes), which v86 loads at 64 MiB`);
  }
  log('info', `pygrub for '${doc.config.name}': ${boot.description}; cmdline '${boot.cmdline}'`);
  return { kernel: boot.kernel, initrd: boot.initrd, cmdline: boot.cmdline || undefined };
}

/** Why a runner ended, from the exit.json it writes before exiting; no file means it died. */
function exitReason(stateDir: string): ExitReason {
  try {
    const exit = JSON.parse(fs.readFileSync(runnerPaths(stateDir).exit, 'utf8')) as RunnerExit;
    if (exit.reason === 'poweroff') return 'shutdown';
    if (exit.reason === 'destroy' || exit.reason === 'signal') return 'destroyed';
    return 'crashed';
  } catch {
    return 'crashed';
  }
}

function spawnRunner(args: string[], logFile: string, cwd: string): EngineProcess {
  return spawnEngine(process.execPath, [...RUNNER_NODE_FLAGS, path.join(APP_ROOT, 'dist', 'runner', 'main.mjs'), ...args], {
    logFile,
    cwd,
    // Inside Electron's utility process execPath is Electron itself: run it as plain Node.
    env: { ...process.env, ...RUNNER_ENV, ...(process.versions.electron && { ELECTRON_RUN_AS_NODE: '1' }) },
  });
}

function tryConnect(socketPath: string): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    if (!fs.existsSync(socketPath)) return resolve(null);
    const sock = net.connect(socketPath);
    sock.once('connect', () => resolve(sock));
    sock.once('error', () => resolve(null));
  });
}

function runnerFailure(logFile: string, exit: ProcessExit): string {
  const line = logLines(logFile).pop();
  return line ? line.replace(/^error:\s*/, '') : `the v86 runner ${exitText(exit)} before it was ready (see ${logFile})`;
}
