// The QEMU engine (qemu:///session): one qemu-system-x86_64 process per running domain, started
// detached (its own session, stdio to qemu.log, -pidfile) in <run>/<uuid>/ and driven over QMP on
// a unix socket there, so guests outlive the host like v86 runners do. Serial output goes to a file
// QEMU writes even while no host is attached; serial input comes through a FIFO.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PRIVATE_FILE_MODE, ensurePrivateDir, fillFileAtomic, systemErrorText, openPrivateLog, processAlive, subdirectories, writeFileAtomic } from '../../../common/fsutil.js';
import { EngineFailure } from '../../errors.js';
import { conflictingImageLocks, imageInUseMessage, isLocked, posixLockHolder, readPid } from '../../../common/locks.js';
import { textToScancodes } from '../../../common/keymap.js';
import { readStateFile, StateWriteAborted, writeStateFileFrom, type StateEngine } from '../../../common/statefile.js';
import { shellQuote } from '../../../common/shell.js';
import { readProcStat } from '../../../common/proc-stat.js';
import { exitText, killProcess, logLines, sleep, spawnEngine, waitForEngine, waitGone, type ProcessExit } from '../../../common/process.js';
import type { GraphicsConfig } from '../../../../shared/domain.js';
import { hasAcpi, hasAgentChannel } from '../../domain/features.js';
import { serializeDomainXml, type DomainDocument } from '../../domain/xml.js';
import { resolveBootloader, usesBootloader } from '../../images/bootloader.js';
import { log } from '../../log.js';
import { SerialHandover, type IncomingMigration, type MigrationCookie, type MigrationEndpoint, type MigrationOptions, type MigrationProgress, type MigrationResult, type BalloonInfo, type EngineCapabilities, type EngineDriver, type ExitReason, type LiveDomain, type LiveDomainEvents, type Reattached, type RunnerStats, type ShutdownChannel, type ShutdownResult, type StartedDomain, type StateFileHeader, type SupportReport, type AccelMode } from '../driver.js';
import type { Accel, AccelState } from './accel.js';
import type { ConnectionInfo } from '../../../../shared/api.js';
import { attachInterfaces } from '../../network/attach.js';
import type { NetworkSwitches } from '../../network/switches.js';
import type { DomainCapabilities } from '../../../../shared/capabilities.js';
import { probeQemuDevices, QEMU_NIC_DEVICES, qemuCapabilities } from '../../capabilities/engines.js';
import { buildArgv, createSerialFiles, driveId, qemuPaths, VNC_DISPLAYS, type QemuPaths } from './argv.js';
import { ensureVarsStore } from './uefi.js';
import { findQemu, type QemuBinary } from './binary.js';
import { ConsoleLog } from './console-log.js';
import { QmpClient, QmpError, type QmpEvent } from './qmp.js';
import { awaitArrival, cookieOf, incomingProblems, listenIncoming, migrateOut, probeOffer, readMigrationFacts, type MigrationFacts, type OutgoingJob, type QemuOffer } from './migration.js';
import { qemuSnapshots, type QmpHolder } from './snapshots.js';

const CONNECT_TIMEOUT_MS = 30_000;
const SAVE_TIMEOUT_MS = 10 * 60_000;
/** Statistics calls are short: sampling must not hang on a wedged QEMU. */
const STATS_TIMEOUT_MS = 5000;
/** As on v86: a guest whose balloon has not moved this long after a change has no driver. */
const BALLOON_TIMEOUT_MS = 5000;
/** How often QEMU asks the guest's balloon driver for memory statistics once someone wants them. */
const GUEST_STATS_INTERVAL_S = 2;
/** What the serial log (serial.out) hands a re-attaching host (the v86 runner keeps 1 MiB too). */
const BACKLOG_BYTES = 1 << 20;
/** The serial log's read part beyond the backlog is freed in steps of this (virtlogd rotates at 2 MiB). */
const CONSOLE_TRIM_BYTES = 2 << 20;

export class QemuError extends EngineFailure {
  override name = 'QemuError';
}

/** How long a guest may take to let go of a hot-unplugged NIC. */
const NIC_UNPLUG_TIMEOUT_MS = 15_000;

/** The -device id of the NIC whose netdev is `alias` (net0 → nic0, as the command line names them). */
function nicId(alias: string): string {
  return alias.replace(/^net/, 'nic');
}

interface QemuMeta {
  name: string;
  accel: 'kvm' | 'tcg';
  qemuVersion: string;
  startedAt: number;
  restored: boolean;
  /** Boot memory and balloon device, for balloonInfo(). */
  maxKiB: number;
  balloon: boolean;
  /** Disk targets by image path, to name query-blockstats' devices as libvirt does (hda, vda...). */
  disks: { target: string; source: string }[];
  /** The first CD-ROM drive's target, whose medium changeMedia() swaps. */
  cdrom?: string;
  /** <features><acpi/> (QEMU's acpi=on) and the guest agent channel, for shutdown(); absent: older host, ACPI on. */
  acpi?: boolean;
  agentChannel?: boolean;
  /** The machine type ('pc' or 'q35'): only pc's PCI bus takes a hot-plugged NIC. */
  machine?: string;
  /** QEMU's version, the resolved machine type and the CPU, for a migration's cookie; absent: older host. */
  migration?: MigrationFacts;
}

export interface QemuStart {
  paused?: boolean;
  restoreFrom?: string;
  /** The accelerator chosen by the host (TCG for <domain type='qemu'>). */
  accel: AccelState;
  /** Waits for an incoming live migration (-incoming defer, no -S); the caller starts it. */
  migration?: boolean;
}

export class QemuDriver implements EngineDriver {
  readonly engine = 'qemu';
  readonly label = 'QEMU';
  readonly uri = 'qemu:///session';
  readonly domainTypes = ['qemu', 'kvm'];
  readonly capabilities: EngineCapabilities = { shutdownModes: ['acpi', 'agent'] };
  readonly snapshots = qemuSnapshots;

  constructor(
    private readonly runDir: string,
    private readonly logDir: string,
    /** KVM or TCG: the user's choice and the KVM probe's answer. */
    private readonly accel: Accel,
    /** UEFI variable stores of domains whose <nvram> names no file (<uuid>_VARS.fd). */
    private readonly nvramDir: string,
    private readonly networks: NetworkSwitches,
  ) {}

  binary(): QemuBinary {
    return findQemu();
  }

  /** What this QEMU can give a guest of `machine`; undefined while QEMU is missing or broken. */
  domainCapabilities(machine: string | undefined): DomainCapabilities | undefined {
    const qemu = this.binary();
    if (!qemu.path || qemu.problem) return undefined;
    return qemuCapabilities({ machine, devices: probeQemuDevices() });
  }

  connection(): ConnectionInfo {
    const qemu = this.binary();
    return {
      uri: this.uri,
      engine: this.engine,
      available: Boolean(qemu.path && qemu.version),
      version: qemu.version,
      problem: qemu.problem,
      accel: qemu.version ? this.accel.state(qemu.version) : undefined,
    };
  }

  /** 'auto' runs the KVM probe now (when not cached), so that the answer is shown at once. */
  async setAccel(mode: AccelMode): Promise<void> {
    this.accel.setMode(mode);
    const qemu = this.binary();
    if (mode === 'auto' && qemu.path && qemu.version) await this.accel.resolve(qemu.path, qemu.version);
  }

  private readonly socketOf = (network: string): string => this.networks.paths(network).ports;

  validate(doc: DomainDocument): SupportReport {
    return buildArgv(doc, { stateDir: path.join(this.runDir, doc.config.uuid), accel: 'tcg', nvramDir: this.nvramDir, networkSocket: this.socketOf, caps: this.domainCapabilities(doc.config.os.machine) }).report;
  }

  /** The command line a start would use now (domxml-to-native), binary first. */
  async toNative(doc: DomainDocument): Promise<string[]> {
    const qemu = this.binary();
    const accel = doc.config.type === 'kvm' && qemu.version ? this.accel.state(qemu.version).using : 'tcg';
    const { argv, report } = buildArgv(doc, { stateDir: path.join(this.runDir, doc.config.uuid), accel, nvramDir: this.nvramDir, networkSocket: this.socketOf, caps: this.domainCapabilities(doc.config.os.machine) });
    if (report.errors.length) throw new QemuError(report.errors.join('; '));
    return [qemu.path ?? 'qemu-system-x86_64', ...argv];
  }

  stateEngine(): StateEngine {
    return { engine: 'qemu', version: this.binary().version ?? 'unknown' };
  }

  readStateHeader(file: string): StateFileHeader {
    const { header } = readStateFile(file, this.stateEngine());
    return { uuid: header.uuid, name: header.name, domainXml: header.domainXml };
  }

  async start(doc: DomainDocument, opts: { paused?: boolean; restoreFrom?: string }): Promise<StartedDomain> {
    const qemu = this.binary();
    if (!qemu.path || !qemu.version) throw new QemuError(qemu.problem ?? 'QEMU is not usable');
    const accel = await this.accelFor(doc, qemu);
    const live = await this.startWith(doc, qemu, { ...opts, accel });
    return { live, notes: accelNotes(doc, accel) };
  }

  migrationCookie(doc: DomainDocument, live: LiveDomain): MigrationCookie {
    const facts = (live as QemuLive).migrationFacts;
    if (!facts) throw new QemuError(`'${doc.config.name}' was started by an older Domus that did not record its CPU; restart it to migrate it`);
    return cookieOf(doc, facts);
  }

  /** What this QEMU offers, asked once per binary, version and accelerator. */
  private offers = new Map<string, QemuOffer>();

  checkIncoming(cookie: MigrationCookie, doc: DomainDocument): string[] {
    const qemu = this.binary();
    if (!qemu.path || !qemu.version) return [qemu.problem ?? 'QEMU is not usable here'];
    const accel = doc.config.type === 'kvm' ? this.accel.state(qemu.version).using : 'tcg';
    const key = `${qemu.path} ${qemu.version} ${accel}`;
    let offer = this.offers.get(key);
    if (!offer) {
      try {
        offer = probeOffer(qemu.path, accel);
      } catch (err) {
        return [(err as Error).message];
      }
      this.offers.set(key, offer);
    }
    return incomingProblems(cookie, doc, offer, accel, doc.config.os.machine?.includes('q35') ? 'q35' : 'pc');
  }

  /**
   * A QEMU with the domain's own command line waiting (-incoming defer) for the stream, which its
   * relay (migration.ts) takes at a fresh endpoint from a peer that sends the token first.
   */
  async prepareIncoming(doc: DomainDocument, listen: { kind: 'unix' } | { kind: 'tcp'; address: string }): Promise<IncomingMigration> {
    const qemu = this.binary();
    if (!qemu.path || !qemu.version) throw new QemuError(qemu.problem ?? 'QEMU is not usable');
    const accel = await this.accelFor(doc, qemu);
    const live = (await this.startWith(doc, qemu, { accel, migration: true })) as QemuLive;
    const discard = async (): Promise<void> => {
      live.abandon();
      killProcess(live.pid);
      await waitGone(live.pid, 5000);
      this.keepLog(doc.config.name, live.files);
      fs.rmSync(live.stateDir, { recursive: true, force: true });
    };
    let endpoint: MigrationEndpoint;
    try {
      endpoint = await listenIncoming(live.qmp, live.stateDir, live.files.log, listen);
    } catch (err) {
      await discard();
      throw err;
    }
    let arrival: Promise<StartedDomain> | undefined;
    return {
      endpoint,
      finished: () =>
        (arrival ??= (async () => {
          try {
            live.state = await awaitArrival(live.qmp);
          } catch (err) {
            const why = live.qmp.closed ? `QEMU ended: ${qemuFailure(live.files.log, { code: null, signal: null })}` : (err as Error).message;
            await discard();
            throw new QemuError(`the incoming migration of '${doc.config.name}' failed: ${why}`);
          }
          live.ready();
          return { live, notes: accelNotes(doc, accel) };
        })()),
      abort: discard,
    };
  }

  /** <domain type='kvm'> gets KVM when the probe proves it usable; type='qemu' always runs with TCG. */
  private async accelFor(doc: DomainDocument, qemu: QemuBinary): Promise<AccelState> {
    if (doc.config.type === 'kvm') return this.accel.resolve(qemu.path!, qemu.version!);
    return { mode: 'tcg', kvmUsable: this.accel.state(qemu.version).kvmUsable, using: 'tcg', reason: "<domain type='qemu'> runs with TCG" };
  }

  private async startWith(doc: DomainDocument, qemu: QemuBinary, opts: QemuStart): Promise<LiveDomain> {
    const { config } = doc;
    const stateDir = path.join(this.runDir, config.uuid);
    const files = qemuPaths(stateDir);
    // QEMU holds a POSIX lock on its -pidfile while it runs (a v86 runner a flock on the same file):
    // a live guest is one holding it, not whatever process now has the pid written there (after a reboot).
    if (isLocked(files.pid)) throw new QemuError(`domain '${config.name}' is already running (pid ${posixLockHolder(files.pid) ?? readPid(files.pid)})`);
    if (fs.existsSync(stateDir)) log('info', `removing the stale run directory ${stateDir} of '${config.name}'`);
    let payloadOffset = 0;
    if (opts.restoreFrom) payloadOffset = readStateFile(opts.restoreFrom, this.stateEngine()).payloadOffset;
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    let argv: string[];
    try {
      // pygrub: the kernel is read afresh from the guest's disk at every start, into the state directory.
      const bootDoc = usesBootloader(config) ? await pygrubDoc(doc, stateDir) : doc;
      const caps = this.domainCapabilities(config.os.machine);
      const built = buildArgv(bootDoc, { stateDir, accel: opts.accel.using, incoming: Boolean(opts.restoreFrom), migration: opts.migration, nvramDir: this.nvramDir, networkSocket: this.socketOf, caps });
      if (built.report.errors.length) throw new QemuError(built.report.errors.join('; '));
      argv = built.argv;
      // Said before QEMU is spawned, in the same words as the v86 engine.
      need(config.os.kernel, 'kernel');
      need(config.os.initrd, 'initrd');
      // The networks' switches, up before QEMU connects to them.
      await attachInterfaces(this.networks, config);
      if (built.uefi) {
        need(built.uefi.code, 'UEFI firmware');
        need(built.uefi.template, 'UEFI variable store template');
        try {
          ensureVarsStore(built.uefi);
        } catch (err) {
          throw new QemuError((err as Error).message);
        }
      }
      for (const disk of config.disks) need(disk.source, disk.device === 'cdrom' ? 'CD-ROM image' : 'disk image');
      // QEMU checks only its own byte-range locks; v86 runners (of any Domus home) lock with flock.
      for (const disk of config.disks) {
        const writable = !(disk.readonly || disk.device === 'cdrom');
        if (disk.source && conflictingImageLocks(disk.source, writable, 'flock').length) {
          throw new QemuError(imageInUseMessage(disk.target, disk.source, writable));
        }
      }
    } catch (err) {
      fs.rmSync(stateDir, { recursive: true, force: true });
      throw err;
    }
    const meta: QemuMeta = {
      name: config.name,
      accel: opts.accel.using,
      qemuVersion: qemu.version!,
      startedAt: Date.now(),
      restored: Boolean(opts.restoreFrom),
      maxKiB: config.memoryKiB,
      balloon: config.balloon,
      disks: config.disks.flatMap((d) => (d.source ? [{ target: d.target, source: d.source }] : [])),
      cdrom: config.disks.find((d) => d.device === 'cdrom')?.target,
      acpi: hasAcpi(doc),
      agentChannel: hasAgentChannel(doc),
      machine: config.os.machine?.includes('q35') ? 'q35' : 'pc',
    };
    writeFileAtomic(files.meta, JSON.stringify(meta, null, 2), 0o600);
    writeFileAtomic(files.liveXml, serializeDomainXml(doc), 0o600);

    createSerialFiles(files);
    const proc = spawnEngine(qemu.path!, argv, { logFile: files.log, cwd: stateDir, firstLine: `${new Date().toISOString()}: starting ${[qemu.path!, ...argv].map(shellQuote).join(' ')}` });
    const child = proc.child;
    const fail = (message: string): never => {
      this.keepLog(config.name, files);
      fs.rmSync(stateDir, { recursive: true, force: true });
      throw new QemuError(message);
    };
    let qmp: QmpClient;
    try {
      qmp = await waitForEngine(proc, async () => (fs.existsSync(files.qmp) ? await QmpClient.connect(files.qmp).catch(() => undefined) : undefined), {
        timeoutMs: CONNECT_TIMEOUT_MS,
        intervalMs: 20,
        onExit: (exit) => new QemuError(qemuFailure(files.log, exit)),
        onTimeout: () => new QemuError(`QEMU for '${config.name}' did not open its QMP socket within ${CONNECT_TIMEOUT_MS / 1000} s (see ${files.log})`),
      });
    } catch (err) {
      return fail((err as Error).message);
    }
    const live = new QemuLive(stateDir, files, qmp, child.pid ?? readPid(files.pid), meta, this);
    try {
      await live.connectSerial();
      await live.setUpVnc(config.graphics.find((g) => g.type === 'vnc'));
      await live.readMigrationFacts();
      if (!opts.migration) {
        if (opts.restoreFrom) await live.incoming(opts.restoreFrom, payloadOffset);
        if (config.balloon && config.currentMemoryKiB < config.memoryKiB) await live.setBalloonTarget(config.currentMemoryKiB);
        if (!opts.paused) await qmp.execute('cont');
      }
      live.state = opts.paused || opts.migration ? 'paused' : 'running';
    } catch (err) {
      live.abandon();
      if (child.pid) killProcess(child.pid);
      return fail(err instanceof QmpError ? err.message : `QEMU for '${config.name}' failed while starting: ${(err as Error).message}`);
    }
    if (!opts.migration) live.ready();
    if (opts.accel.using === 'tcg' && opts.accel.reason && config.type === 'kvm') log('info', `'${config.name}' runs with TCG: ${opts.accel.reason}`);
    return live;
  }

  async reattachAll(): Promise<Map<string, Reattached>> {
    const found = new Map<string, Reattached>();
    for (const entry of subdirectories(this.runDir)) {
      const stateDir = path.join(this.runDir, entry.name);
      const files = qemuPaths(stateDir);
      if (!fs.existsSync(files.meta)) continue;
      let meta: QemuMeta;
      try {
        meta = JSON.parse(fs.readFileSync(files.meta, 'utf8')) as QemuMeta;
      } catch {
        continue;
      }
      const pid = posixLockHolder(files.pid);
      if (!pid) {
        // With -no-shutdown QEMU only ends by itself when it fails or is killed.
        this.keepLog(meta.name, files);
        found.set(entry.name, { exited: 'crashed' });
        fs.rmSync(stateDir, { recursive: true, force: true });
        continue;
      }
      try {
        const qmp = await QmpClient.connect(files.qmp);
        const status = await qmp.execute<{ status: string }>('query-status');
        if (status.status === 'shutdown' || status.status === 'guest-panicked' || status.status === 'internal-error') {
          // The guest powered off (or panicked) while no host was attached: finish what the host would have done.
          await qmp.execute('quit').catch(() => undefined);
          qmp.close();
          await waitGone(pid, 3000);
          this.keepLog(meta.name, files);
          found.set(entry.name, { exited: status.status === 'shutdown' ? 'shutdown' : 'crashed' });
          fs.rmSync(stateDir, { recursive: true, force: true });
          continue;
        }
        const live = new QemuLive(stateDir, files, qmp, pid, meta, this);
        live.state = status.status === 'running' ? 'running' : 'paused';
        const size = fileSize(files.console);
        await live.connectSerial(size, ConsoleLog.tail(files.console, size, BACKLOG_BYTES));
        await live.readVncTcp();
        await live.readMigrationFacts().catch((err: Error) => log('warn', `QEMU of '${meta.name}': cannot read its CPU for migration: ${err.message}`));
        live.ready();
        log('info', `attached to QEMU of '${meta.name}' (pid ${pid}, ${live.state})`);
        found.set(entry.name, { live, liveXml: fs.existsSync(files.liveXml) ? fs.readFileSync(files.liveXml, 'utf8') : undefined });
      } catch (err) {
        log('warn', `re-attach to QEMU in ${stateDir} failed: ${(err as Error).message}`);
      }
    }
    return found;
  }

  /** Appends the QEMU log to the domain's log (<home>/logs/qemu-<name>.log), as libvirt keeps one per domain. */
  keepLog(name: string, files: QemuPaths): string | undefined {
    try {
      ensurePrivateDir(this.logDir);
      const text = fs.readFileSync(files.log, 'utf8');
      const fd = openPrivateLog(path.join(this.logDir, `qemu-${name}.log`));
      try {
        fs.writeSync(fd, text);
      } finally {
        fs.closeSync(fd);
      }
      return text;
    } catch {
      return undefined;
    }
  }
}

/** What the user is told about how a guest runs (the accelerator, and why not KVM). */
function accelNotes(doc: DomainDocument, accel: AccelState): StartedDomain['notes'] {
  const how = accel.using === 'kvm' ? 'QEMU with KVM' : 'QEMU with TCG (emulation, no KVM)';
  const why = doc.config.type === 'kvm' && accel.using === 'tcg' ? `: ${accel.reason ?? 'KVM is not usable'}` : '';
  return [{ element: 'domain[@type]', message: `runs on ${how}${why}` }];
}

/** The host's side of one QEMU process. */
class QemuLive extends EventEmitter<LiveDomainEvents> implements LiveDomain, QmpHolder {
  state: 'running' | 'paused' = 'paused';
  readonly vncSocket: string;
  vncTcp: { address: string; port: number } | undefined;
  readonly startedAt: number;
  readonly restored: boolean;
  private serial?: net.Socket;
  private live = false;
  private detached = false;
  private destroying = false;
  /** Set by QMP events: why the guest is going away. */
  private ending?: { reason: ExitReason; detail?: string };
  /** libvirt's fake reboot: an ACPI power-off that the host turns into a reset. */
  private fakeReboot = false;
  /** The save, dump or outgoing migration running (one at a time), and whether an abort asked it to stop. */
  private job?: { kind: 'save' | 'dump'; cancel: boolean } | ({ kind: 'migrate' } & OutgoingJob);
  private balloonTarget?: { targetKiB: number; at: number; actualAtSet: number };
  /** The balloon's size at the last fresh guest statistics (none yet: the next reading must be fresh). */
  private guestStatsActualKiB?: number;
  private consoleLog?: ConsoleLog;
  private readonly serialOut = new SerialHandover((data) => this.emit('serial', data));

  constructor(
    readonly stateDir: string,
    readonly files: QemuPaths,
    readonly qmp: QmpClient,
    readonly pid: number,
    private readonly meta: QemuMeta,
    private readonly driver: QemuDriver,
  ) {
    super();
    this.vncSocket = files.vnc;
    this.startedAt = meta.startedAt;
    this.restored = meta.restored;
    qmp.on('event', (e) => this.onEvent(e));
    qmp.on('close', () => this.closed());
  }

  /** Events reach the host only from here on (start-up's own STOP/RESUME are not lifecycle changes). */
  ready(): void {
    this.live = true;
  }

  takeSerialBacklog(): Buffer {
    return this.serialOut.take();
  }

  /**
   * passwd= on both VNC displays, set before the guest runs (with password=on QEMU refuses every
   * client until then); then the TCP port QEMU bound.
   */
  async setUpVnc(graphics: GraphicsConfig | undefined): Promise<void> {
    if (!graphics) return;
    if (graphics.passwd) {
      for (const display of Object.values(VNC_DISPLAYS)) await this.qmp.execute('set_password', { protocol: 'vnc', password: graphics.passwd, display });
    }
    await this.readVncTcp();
  }

  /** The TCP listener of the <graphics> display as QEMU reports it (it chose the port when autoport). */
  async readVncTcp(): Promise<void> {
    const servers = await this.qmp.execute<{ id: string; server?: { host: string; service: string; family: string }[] }[]>('query-vnc-servers');
    const tcp = servers.find((s) => s.id === VNC_DISPLAYS.tcp)?.server?.find((l) => l.family !== 'unix');
    this.vncTcp = tcp ? { address: tcp.host, port: Number(tcp.service) } : undefined;
  }

  /** Start failed: forget this QEMU without reporting an exit. */
  abandon(): void {
    this.detached = true;
    this.stopConsole();
    this.serial?.destroy();
    this.qmp.close();
  }

  /**
   * Serial input goes to the FIFO; output is read from the file QEMU writes whether or not anyone is
   * attached, so output made while no host was attached is not lost and nothing is seen twice.
   */
  async connectSerial(fromOffset = 0, backlog?: Buffer): Promise<void> {
    if (backlog) this.serialOut.prepend(backlog);
    let fd: number;
    try {
      // Non-blocking: a FIFO nobody reads (QEMU gone) fails the open with ENXIO rather than hanging it.
      fd = fs.openSync(this.files.serialIn, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw new Error(`cannot open the serial input ${this.files.serialIn}: ${systemErrorText(err)}`);
    }
    this.serial = new net.Socket({ fd, readable: false, writable: true });
    this.serial.on('error', () => undefined);
    this.consoleLog = new ConsoleLog(this.files.console, fromOffset, (data) => this.serialOut.deliver(data), { keepBytes: BACKLOG_BYTES, trimBytes: CONSOLE_TRIM_BYTES });
    this.consoleLog.start();
  }

  private stopConsole(): void {
    this.consoleLog?.stop();
  }

  /** Restore: feeds the migration stream after the Domus header to the waiting QEMU. */
  async incoming(file: string, payloadOffset: number): Promise<void> {
    await this.qmp.execute('migrate-incoming', { uri: `exec:tail -c +${payloadOffset + 1} ${shellQuote(file)}` });
    const deadline = Date.now() + SAVE_TIMEOUT_MS;
    for (;;) {
      const status = await this.qmp.execute<{ status: string }>('query-status');
      if (status.status !== 'inmigrate') break;
      if (Date.now() > deadline) throw new Error('restoring the saved state timed out');
      await sleep(50);
    }
    const m = await this.qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (m.status === 'failed') throw new Error(`restoring the saved state failed: ${m['error-desc'] ?? 'QEMU gave no reason'}`);
  }

  async shutdown(channels: ShutdownChannel[]): Promise<ShutdownResult> {
    const result: ShutdownResult = {};
    if (channels.includes('acpi')) {
      // QEMU cannot tell whether the guest enabled its power button, so a press counts as heard.
      if (this.meta.acpi === false) result.acpi = 'absent';
      else {
        await this.qmp.execute('system_powerdown');
        result.acpi = 'pressed';
      }
    }
    if (channels.includes('agent')) result.agent = this.meta.agentChannel ? 'unsupported' : 'absent';
    return result;
  }

  async reboot(): Promise<void> {
    this.fakeReboot = true;
    try {
      await this.qmp.execute('system_powerdown');
    } catch (err) {
      this.fakeReboot = false;
      throw err;
    }
  }

  async reset(): Promise<void> {
    await this.qmp.execute('system_reset');
  }

  async save(file: string, header: StateFileHeader, onProgress: (done: number, total: number) => void): Promise<void> {
    const job = { kind: 'save' as const, cancel: false };
    this.job = job;
    const wasRunning = this.state === 'running';
    const stream = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.qemu-stream`);
    const abortCtl = new AbortController();
    const cleanup = async (): Promise<void> => {
      fs.rmSync(stream, { force: true });
      if (wasRunning && !this.qmp.closed) await this.qmp.execute('cont').catch(() => undefined);
    };
    try {
      // The stream is guest memory: made owner-only (and not a file someone planted) before QEMU's
      // `cat` truncates and fills it, which keeps the mode.
      try {
        fs.rmSync(stream, { force: true });
        fs.closeSync(fs.openSync(stream, 'wx', PRIVATE_FILE_MODE));
      } catch (err) {
        throw new QemuError(`cannot write state file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      await this.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 10 * 1024 ** 3 });
      if (wasRunning) await this.qmp.execute('stop');
      await this.qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(stream)}` });
      const deadline = Date.now() + SAVE_TIMEOUT_MS;
      for (;;) {
        const m = await this.qmp.execute<{ status?: string; 'error-desc'?: string; ram?: { transferred: number; total: number } }>('query-migrate');
        // The stream is at most about RAM-sized; the header copy follows as the last share.
        if (m.ram) onProgress(Math.min(m.ram.transferred, m.ram.total), m.ram.total * 2);
        if (m.status === 'completed') break;
        if (m.status === 'failed') throw new QemuError(`QEMU's migration to the state file failed: ${m['error-desc'] ?? 'no reason given'}`);
        if (m.status === 'cancelled') throw new StateWriteAborted('save aborted');
        if (job.cancel && m.status !== 'cancelling') await this.qmp.execute('migrate_cancel');
        if (Date.now() > deadline) throw new QemuError('saving timed out');
        await sleep(50);
      }
      if (job.cancel) throw new StateWriteAborted('save aborted');
      const ramBytes = fs.statSync(stream).size;
      const cancelCheck = setInterval(() => job.cancel && abortCtl.abort(), 50);
      try {
        await writeStateFileFrom(
          file,
          {
            engine: 'qemu',
            engineVersion: this.meta.qemuVersion,
            name: header.name,
            uuid: header.uuid,
            domainXml: header.domainXml,
            createdAt: new Date().toISOString(),
            machine: { memoryBytes: ramBytes, vgaMemoryBytes: 16 << 20, acpi: true, balloon: true, guestAgent: false, disks: {} },
            guest: { agentConnected: false },
          },
          stream,
          { signal: abortCtl.signal, onProgress: (done, total) => onProgress(total + done, total * 2) },
        );
      } finally {
        clearInterval(cancelCheck);
      }
      fs.rmSync(stream, { force: true });
    } catch (err) {
      await cleanup();
      throw err;
    } finally {
      this.job = undefined;
    }
  }

  /**
   * dump-guest-memory (ELF, detached, progress from query-dump) into a temporary file beside `file`,
   * then fsync and rename. paging=true: QEMU walks the guest's page tables and gives each PT_LOAD the
   * virtual address the guest maps it at, so gdb can read kernel symbols at their System.map
   * addresses; with paging=false (virsh dump's choice) p_vaddr = p_paddr. QEMU cannot stop a dump
   * midway: an abort waits for it to end and discards the file.
   */
  async dump(file: string, onProgress: (done: number, total: number) => void): Promise<void> {
    const job = { kind: 'dump' as const, cancel: false };
    this.job = job;
    try {
      // The temporary file is made owner-only (it is guest memory) before QEMU opens it by name:
      // QEMU would create it read-only (0400); opening an existing file, it keeps this mode.
      await fillFileAtomic(
        file,
        async (_fh, tmp) => {
          await this.qmp.execute('dump-guest-memory', { paging: true, protocol: `file:${tmp}`, detach: true, format: 'elf' });
          const deadline = Date.now() + SAVE_TIMEOUT_MS;
          for (;;) {
            const d = await this.qmp.execute<{ status: string; completed: number; total: number }>('query-dump');
            if (d.total) onProgress(d.completed, d.total);
            if (d.status === 'completed') break;
            if (d.status === 'failed') throw new QemuError("QEMU's dump-guest-memory failed (see the domain's QEMU log)");
            if (Date.now() > deadline) throw new QemuError('the dump timed out');
            await sleep(50);
          }
        },
        {
          wrap: (err) => new QemuError(`cannot write dump file '${file}': ${systemErrorText(err)}`),
          keep: (err) => err instanceof EngineFailure,
          beforeRename: () => {
            if (job.cancel) throw new QemuError('dump aborted');
          },
        },
      );
    } finally {
      this.job = undefined;
    }
  }

  async abortJob(): Promise<void> {
    if (!this.job) throw new QemuError('no job is running');
    if (this.job.kind === 'migrate' && this.job.switched) throw new QemuError('the migration has switched to post-copy: the guest runs on the destination now and cannot come back, so it cannot be cancelled');
    this.job.cancel = true;
  }

  get migrationFacts(): MigrationFacts | undefined {
    return this.meta.migration;
  }

  /** Read once per QEMU (kept in the meta file, also for a host that re-attaches). */
  async readMigrationFacts(): Promise<void> {
    if (this.meta.migration) return;
    this.meta.migration = await readMigrationFacts(this.qmp, this.meta.accel);
    writeFileAtomic(this.files.meta, JSON.stringify(this.meta, null, 2), 0o600);
  }

  async migrateOut(target: MigrationEndpoint, opts: MigrationOptions, onProgress: (p: MigrationProgress) => void): Promise<MigrationResult> {
    if (this.job) throw new QemuError(`a ${this.job.kind} job is running`);
    const job = { kind: 'migrate' as const, cancel: false, switched: false };
    this.job = job;
    try {
      return await migrateOut({ qmp: this.qmp, stateDir: this.stateDir, logFile: this.files.log, accel: this.meta.accel, running: this.state === 'running' }, job, target, opts, onProgress);
    } finally {
      this.job = undefined;
    }
  }

  /** The monitor, for the snapshot jobs (snapshots.ts). */
  get monitor(): QmpClient {
    return this.qmp;
  }

  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  async destroy(): Promise<void> {
    this.destroying = true;
    const gone = new Promise<void>((resolve) => this.once('exit', () => resolve()));
    await this.qmp.execute('quit', undefined, 5000).catch(() => undefined);
    const timer = setTimeout(() => killProcess(this.pid), 5000);
    await gone;
    clearTimeout(timer);
  }

  async screenshot(): Promise<{ png: Buffer; width: number; height: number }> {
    const file = path.join(this.stateDir, `screen-${Date.now()}.png`);
    try {
      await this.qmp.execute('screendump', { filename: file, format: 'png' });
      const png = fs.readFileSync(file);
      return { png, width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  async sendText(text: string): Promise<void> {
    await this.sendScancodes(textToScancodes(text));
  }

  /** PC set-1 scancode bytes (what v86 takes) → QEMU key events: qnum is the make code, 0x80 set for E0 keys. */
  async sendScancodes(codes: number[]): Promise<void> {
    let extended = false;
    const events: { type: 'key'; data: { down: boolean; key: { type: 'number'; data: number } } }[] = [];
    for (const byte of codes) {
      if (byte === 0xe0) {
        extended = true;
        continue;
      }
      if (byte === 0xe1) continue;
      events.push({ type: 'key', data: { down: (byte & 0x80) === 0, key: { type: 'number', data: (byte & 0x7f) | (extended ? 0x80 : 0) } } });
      extended = false;
    }
    // A key at a time, paced: the PS/2 controller's queue is short and a guest reads it by interrupt.
    for (let i = 0; i < events.length; i += 2) {
      await this.qmp.execute('input-send-event', { events: events.slice(i, i + 2) });
      await sleep(8);
    }
  }

  async serialWrite(data: Buffer): Promise<void> {
    if (!this.serial || this.serial.destroyed) throw new QemuError('the serial console is not connected');
    await new Promise<void>((resolve, reject) => this.serial!.write(data, (err) => (err ? reject(err) : resolve())));
  }

  async stats(): Promise<RunnerStats> {
    const { cpuTimeMs, rssBytes } = procStats(this.pid);
    const vcpuTimeMs = vcpuThreadsCpuMs(this.pid);
    const blockstats = await this.qmp.execute<{ device: string; qdev?: string; stats: Record<string, number> }[]>('query-blockstats', undefined, STATS_TIMEOUT_MS);
    const blocks = await this.qmp.execute<{ device: string; inserted?: { file: string } }[]>('query-block', undefined, STATS_TIMEOUT_MS);
    const disks = blockstats.flatMap((b) => {
      const file = blocks.find((x) => x.device === b.device)?.inserted?.file;
      if (!file) return [];
      const target = this.meta.disks.find((d) => d.source === file)?.target ?? b.device;
      return [{ name: target, path: file, rdBytes: b.stats.rd_bytes ?? 0, wrBytes: b.stats.wr_bytes ?? 0, rdReqs: b.stats.rd_operations ?? 0, wrReqs: b.stats.wr_operations ?? 0 }];
    });
    return { cpuTimeMs, vcpuTimeMs, rssBytes, at: Date.now(), disks, nics: [] };
  }

  async setBalloonTarget(targetKiB: number): Promise<BalloonInfo> {
    if (!this.meta.balloon) throw new QemuError('the domain has no balloon device');
    const before = await this.actualKiB();
    const target = Math.min(targetKiB, this.meta.maxKiB);
    await this.qmp.execute('balloon', { value: target * 1024 });
    this.balloonTarget = { targetKiB: target, at: Date.now(), actualAtSet: before };
    return this.balloonNow(before);
  }

  async balloonInfo(guestStats: boolean): Promise<BalloonInfo> {
    if (!this.meta.balloon) return { maxKiB: this.meta.maxKiB, targetKiB: this.meta.maxKiB, actualKiB: this.meta.maxKiB, status: 'absent', hostReclaims: true };
    const actualKiB = await this.actualKiB();
    const info = this.balloonNow(actualKiB);
    if (guestStats) info.guest = await this.guestStats(actualKiB);
    return info;
  }

  private async actualKiB(): Promise<number> {
    const r = await this.qmp.execute<{ actual: number }>('query-balloon', undefined, STATS_TIMEOUT_MS);
    return Math.round(r.actual / 1024);
  }

  /** ok: the guest holds the target (within 1 MiB); pending: on its way; no-driver: it has not moved 5 s after a change. */
  private balloonNow(actualKiB: number): BalloonInfo {
    const set = this.balloonTarget;
    const targetKiB = set?.targetKiB ?? actualKiB;
    let status: BalloonInfo['status'] = 'ok';
    if (Math.abs(actualKiB - targetKiB) > 1024) {
      status = set && Date.now() - set.at > BALLOON_TIMEOUT_MS && actualKiB === set.actualAtSet ? 'no-driver' : 'pending';
    }
    // QEMU's balloon really gives the pages back to the host (madvise DONTNEED; free pages too with freePageReporting='on').
    return { maxKiB: this.meta.maxKiB, targetKiB, actualKiB, status, hostReclaims: true };
  }

  /**
   * A NIC plugged in as libvirt does: netdev_add of a stream client of the switch, then device_add
   * on the pc machine's PCI bus (ACPI hot-plug; q35's root bus has none without spare root ports).
   */
  async attachNic(nic: { mac: string; model?: string; socket: string }, alias: string, liveXml: string): Promise<void> {
    if (this.meta.machine === 'q35') throw new QemuError('a q35 machine started by Domus has no PCIe root port to hot-plug a network card into; use --config and restart the guest');
    const model = nic.model ?? 'e1000';
    const driver = QEMU_NIC_DEVICES[model];
    if (!driver) throw new QemuError(`interface model '${model}' is not one QEMU here provides (${Object.keys(QEMU_NIC_DEVICES).join(', ')})`);
    await this.qmp.execute('netdev_add', { type: 'stream', id: alias, server: false, addr: { type: 'unix', path: nic.socket } });
    try {
      await this.qmp.execute('device_add', { driver, netdev: alias, mac: nic.mac, id: nicId(alias) });
    } catch (err) {
      await this.qmp.execute('netdev_del', { id: alias }).catch(() => undefined);
      throw err;
    }
    writeFileAtomic(this.files.liveXml, liveXml, 0o600);
  }

  /** device_del waits for the guest to release the card (ACPI eject): DEVICE_DELETED, then the netdev goes. */
  async detachNic(alias: string, liveXml: string): Promise<void> {
    if (this.meta.machine === 'q35') throw new QemuError('a q35 machine started by Domus cannot hot-unplug a network card; use --config and restart the guest');
    const id = nicId(alias);
    const deleted = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), NIC_UNPLUG_TIMEOUT_MS);
      const listener = (e: QmpEvent): void => {
        if (e.event === 'DEVICE_DELETED' && (e.data as { device?: string } | undefined)?.device === id) done(true);
      };
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.qmp.off('event', listener);
        resolve(ok);
      };
      this.qmp.on('event', listener);
    });
    await this.qmp.execute('device_del', { id });
    if (!(await deleted)) throw new QemuError(`the guest did not release network card ${id} within ${NIC_UNPLUG_TIMEOUT_MS / 1000} s (it needs ACPI PCI hot-plug support); it stays plugged in`);
    await this.qmp.execute('netdev_del', { id: alias });
    writeFileAtomic(this.files.liveXml, liveXml, 0o600);
  }

  /** The guest sees the new size at once (QEMU grows the image file or its qcow2 header itself). */
  async blockResize(target: string, sizeBytes: number): Promise<void> {
    await this.qmp.execute('block_resize', { device: driveId(target), size: sizeBytes });
  }

  /**
   * The first CD-ROM's medium, as libvirt changes it on QEMU: blockdev-change-medium opens the tray,
   * swaps the image and closes it; eject leaves the drive empty. A tray the guest has locked is
   * refused by QEMU with its reason (virsh change-media without --force does the same).
   */
  async changeMedia(source: string | undefined): Promise<void> {
    const target = this.meta.cdrom;
    if (!target) throw new QemuError('the domain has no CD-ROM drive');
    const device = driveId(target);
    if (source !== undefined && conflictingImageLocks(source, false, 'flock').length) throw new QemuError(imageInUseMessage(target, source, false));
    if (source === undefined) await this.qmp.execute('eject', { device });
    else await this.qmp.execute('blockdev-change-medium', { device, filename: source, format: 'raw', 'read-only-mode': 'read-only' });
    // query-blockstats names the drive by its image: keep the target's image current (also for a re-attaching host).
    this.meta.disks = [...this.meta.disks.filter((d) => d.target !== target), ...(source === undefined ? [] : [{ target, source }])];
    writeFileAtomic(this.files.meta, JSON.stringify(this.meta, null, 2), 0o600);
  }

  /**
   * The guest driver's statistics (virtio-balloon stats queue); polling starts on first use. At the
   * first reading, and once the balloon has moved since the last one, QEMU is made to ask
   * at once (setting the polling interval again fires its timer) and only a reply stamped after now
   * is taken. QEMU stamps replies in whole seconds, so that costs up to a second, only then.
   */
  private async guestStats(actualKiB: number): Promise<BalloonInfo['guest']> {
    const balloonPath = '/machine/peripheral/balloon0';
    const askNow = () => this.qmp.execute('qom-set', { path: balloonPath, property: 'guest-stats-polling-interval', value: GUEST_STATS_INTERVAL_S });
    // The first reading must be fresh too: Linux's driver sends one set of statistics when it loads,
    // before it inflates the balloon to the boot target.
    const fresh = actualKiB !== this.guestStatsActualKiB;
    const notBefore = fresh ? Math.floor(Date.now() / 1000) + 1 : 1;
    if (fresh) await askNow();
    let askedAgain = !fresh;
    const deadline = Date.now() + 3000;
    for (;;) {
      const r = await this.qmp.execute<{ stats: Record<string, number>; 'last-update': number }>('qom-get', { path: balloonPath, property: 'guest-stats' });
      const done = r['last-update'] >= notBefore;
      if (done || (Date.now() > deadline && r['last-update'] > 0)) {
        if (done) this.guestStatsActualKiB = actualKiB;
        const kib = (k: string): number | undefined => (r.stats[k] >= 0 ? Math.round(r.stats[k] / 1024) : undefined);
        return { at: r['last-update'] * 1000, totalKiB: kib('stat-total-memory'), freeKiB: kib('stat-free-memory'), availableKiB: kib('stat-available-memory'), cachesKiB: kib('stat-disk-caches') };
      }
      if (Date.now() > deadline) return undefined;
      // A reply within the same second as the move cannot be told from an older one: ask again in the next.
      if (!askedAgain && Date.now() >= notBefore * 1000) {
        await askNow();
        askedAgain = true;
      }
      await sleep(100);
    }
  }

  detach(): void {
    this.detached = true;
    this.stopConsole();
    this.serial?.destroy();
    this.qmp.close();
  }

  private onEvent(e: QmpEvent): void {
    switch (e.event) {
      case 'STOP':
        if (this.ending || this.fakeReboot) return;
        this.setState('paused');
        break;
      case 'RESUME':
        if (this.ending) return;
        this.setState('running');
        break;
      case 'RESET':
        if (this.live) this.emit('rebooted');
        break;
      case 'SHUTDOWN': {
        const guest = e.data?.guest === true;
        if (!guest) return;
        if (this.fakeReboot) {
          this.fakeReboot = false;
          void this.qmp
            .execute('system_reset')
            .then(() => this.qmp.execute('cont'))
            .catch((err: Error) => log('warn', `QEMU ${this.stateDir}: reboot failed: ${err.message}`));
          return;
        }
        this.ending = { reason: 'shutdown' };
        void this.qmp.execute('quit').catch(() => undefined);
        break;
      }
      case 'BALLOON_CHANGE':
        if (this.live && typeof e.data?.actual === 'number') this.emit('balloon', this.balloonNow(Math.round(e.data.actual / 1024)));
        break;
      case 'GUEST_PANICKED':
        // -action panic=pause has stopped the guest; the host applies <on_crash>.
        if (this.live) this.emit('panicked', `guest panicked${e.data?.info ? `: ${JSON.stringify(e.data.info)}` : ''}`);
        break;
    }
  }

  private setState(state: 'running' | 'paused'): void {
    if (this.state === state) return;
    this.state = state;
    if (this.live && this.job?.kind !== 'save') this.emit('state', state);
  }

  private closed(): void {
    this.stopConsole();
    this.serial?.destroy();
    if (this.detached) return;
    void this.awaitExit();
  }

  private async awaitExit(): Promise<void> {
    await waitGone(this.pid, 3000);
    // The QMP socket closed but QEMU lives on: it is wedged; end it so no guest is orphaned.
    if (processAlive(this.pid)) killProcess(this.pid);
    const text = this.driver.keepLog(this.meta.name, this.files);
    let reason: ExitReason = this.destroying ? 'destroyed' : (this.ending?.reason ?? 'crashed');
    if (this.ending?.reason === 'crashed') reason = 'crashed';
    const detail = reason === 'crashed' ? (this.ending?.detail ?? lastLine(text)) : undefined;
    fs.rmSync(this.stateDir, { recursive: true, force: true });
    this.emit('exit', { reason, detail });
  }
}

/** CPU time and RSS of a process, from /proc (after "(comm) ": utime is field 11, stime 12, rss 21). */
function procStats(pid: number): { cpuTimeMs: number; rssBytes: number } {
  const { cpuTimeMs, rssBytes } = readProcStat(`/proc/${pid}/stat`) ?? { cpuTimeMs: 0, rssBytes: 0 };
  return { cpuTimeMs, rssBytes };
}

/** How many of QEMU's threads are looked at for vCPU threads (a guest has a few; bounds a hostile count). */
const MAX_THREADS = 1024;

/**
 * CPU time of QEMU's vCPU threads ("CPU 0/TCG", "CPU 1/KVM"…, as QEMU names them): the guest's vCPU
 * time, without the main loop's and I/O threads' own work. Undefined when none is found.
 */
function vcpuThreadsCpuMs(pid: number): number | undefined {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`).slice(0, MAX_THREADS);
  } catch {
    return undefined;
  }
  let total = 0;
  let found = false;
  for (const tid of tids) {
    const stat = readProcStat(`/proc/${pid}/task/${tid}/stat`);
    if (!stat || !/^CPU \d+\//.test(stat.comm)) continue;
    total += stat.cpuTimeMs;
    found = true;
  }
  return found && Number.isFinite(total) ? total : undefined;
}

function lastLine(text: string | undefined): string | undefined {
  const lines = (text ?? '').trim().split('\n').filter(Boolean);
  const last = lines[lines.length - 1];
  return last && !/: starting /.test(last) ? last : 'QEMU ended without a message';
}

function qemuFailure(logFile: string, exit: ProcessExit): string {
  const lines = logLines(logFile, /: starting /);
  return lines.length ? `QEMU ${exitText(exit)}: ${lines.slice(-3).join(' ')}` : `QEMU ${exitText(exit)} before it was ready (see ${logFile})`;
}

function need(file: string | undefined, what: string): void {
  if (file === undefined) return;
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new QemuError(`cannot access ${what} '${file}': ${code === 'ENOENT' ? 'No such file or directory' : code}`);
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}


/** The definition with pygrub's choice as a direct kernel boot (QEMU runs 64-bit kernels too). */
async function pygrubDoc(doc: DomainDocument, stateDir: string): Promise<DomainDocument> {
  const boot = await resolveBootloader(doc, stateDir);
  log('info', `pygrub for '${doc.config.name}': ${boot.description}; cmdline '${boot.cmdline}'`);
  const os = { ...doc.config.os, kernel: boot.kernel, initrd: boot.initrd, cmdline: boot.cmdline || undefined };
  return { ...doc, config: { ...doc.config, os } };
}
