// The management layer's one entry point: every client (GUI, CLI, web shell) goes through Host.
// It is a facade: the work is done by the modules it wires together, each named for what it does:
//   registry.ts      domains, their definitions on disk, states, summaries and lifecycle events
//   definitions.ts   define, undefine, autostart, metadata, dumpxml/dominfo
//   lifecycle.ts     boot, re-attach, start/shutdown/destroy/reboot/suspend/resume
//   jobs/            long operations: save/restore/managed save, core dumps, clone (tracker.ts: progress and abort)
//   devices.ts       CD-ROM media and disks; memory.ts: balloon and max memory
//   console.ts       screen, keys, serial, VNC; domain-stats.ts and stats.ts: statistics
//   host-policy.ts   what happens to domains when the host starts and stops
//   snapshots/       domain snapshots: the tree and its metadata (the engines move the data)
// Engines are reached only through the driver registry (drivers/registry.ts).
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { Events, FastStartAction, HostStatus, JobInfo, NewDomainSpec, OnHostStop, ShutdownMode } from '../../shared/api.js';
import { FastStart } from './fast-start.js';
import type { Codeset } from '../common/keycodes.js';
import { libvirtConnection } from './connections/open.js';
import { ConnectionManager, type ConnectionFactory } from './connections/manager.js';
import { promptingOpener, SshPrompts } from './connections/ssh-prompts.js';
import { Consoles } from './console.js';
import { Definitions } from './definitions.js';
import { Devices } from './devices.js';
import { DomainStats } from './domain-stats.js';
import { loadCatalogue } from './downloads/catalogue.js';
import { DownloadManager } from './downloads/manager.js';
import { QemuDriver } from './drivers/qemu/driver.js';
import { Accel } from './drivers/qemu/accel.js';
import { DriverRegistry } from './drivers/registry.js';
import { findFirmware } from './drivers/v86/firmware.js';
import { V86Driver } from './drivers/v86/driver.js';
import { invalidArg, operationInvalid, operationUnsupported } from './errors.js';
import type { DomainCapabilities } from '../../shared/capabilities.js';
import { HostPolicy } from './host-policy.js';
import { Cloner, type CloneRequest } from './jobs/clone.js';
import { CoreDumps, type DumpOptions } from './jobs/core-dump.js';
import { SaveRestore } from './jobs/save-restore.js';
import { Jobs } from './jobs/tracker.js';
import { Lifecycle } from './lifecycle.js';
import { log } from './log.js';
import { Memory } from './memory.js';
import { securePrivateFiles, type HostPaths } from '../common/paths.js';
import { DomainRegistry, type DomainRecord, type HostEvents } from './registry.js';
import { StatsWatchers } from './stats.js';
import type { NewDisk } from './storage/devices.js';
import type { DiskUser } from './storage/in-use.js';
import { Storage } from './storage/pools.js';
import { TraceLog } from './trace.js';
import { NetworkSwitches } from './network/switches.js';
import { Networks } from './network/networks.js';
import { Interfaces } from './interfaces.js';
import { Snapshots } from './snapshots/snapshots.js';
import { SnapshotTree } from './snapshots/tree.js';
import { MigrationDestination } from './migration/destination.js';
import { MigrationSource, type MigrateRequest } from './migration/source.js';

export const VERSION = '0.1.0';

export { HostError } from './errors.js';

/** The engines of a host: v86 first (the default connection), then QEMU. */
export function defaultDrivers(paths: HostPaths): DriverRegistry {
  const networks = new NetworkSwitches(paths.networkRun);
  const tree = new SnapshotTree(paths.snapshots);
  const snapshotsOf = (uuid: string) => tree.list(uuid).map((m) => ({ dir: tree.dir(uuid, m.name), name: m.name }));
  return new DriverRegistry()
    .register(new V86Driver(paths.run, networks, snapshotsOf))
    .register(new QemuDriver(paths.run, path.join(paths.home, 'logs'), new Accel(paths.home), paths.nvram, networks));
}

export class Host extends EventEmitter<HostEvents> {
  readonly startedAt = Date.now();
  readonly drivers: DriverRegistry;
  readonly jobs = new Jobs();
  readonly trace = new TraceLog();
  readonly downloads: DownloadManager;
  readonly storage: Storage;
  /** The libvirt hosts the user added (virt-manager's connections). */
  readonly connections: ConnectionManager;
  /** ssh's password and passphrase questions while it opens a qemu+ssh:// connection. */
  readonly sshPrompts: SshPrompts;
  private readonly registry: DomainRegistry;
  private readonly lifecycle: Lifecycle;
  private readonly definitions: Definitions;
  private readonly saves: SaveRestore;
  private readonly fastStart: FastStart;
  private readonly dumps: CoreDumps;
  private readonly cloner: Cloner;
  private readonly devices: Devices;
  private readonly consoles: Consoles;
  private readonly memory: Memory;
  private readonly stats: DomainStats;
  private readonly policy: HostPolicy;
  /** Virtual networks (virsh net-*). */
  readonly networks: Networks;
  private readonly interfaces: Interfaces;
  /** Domain snapshots (virsh snapshot-*). */
  readonly snapshots: Snapshots;
  /** Statistics sampling, running only while some client watches. */
  readonly statsWatchers: StatsWatchers;
  /** Live migration: this host as the source (domain.migrate) and as the destination (libvirt's Prepare3/Finish3). */
  readonly migrations: { source: MigrationSource; destination: MigrationDestination };
  /** virsh uri: how another host reaches this one (the daemon sets the TLS one when it listens on the network). */
  canonicalUri: string;

  constructor(
    readonly paths: HostPaths,
    drivers: DriverRegistry = defaultDrivers(paths),
    connectionFactory?: ConnectionFactory,
  ) {
    super();
    this.setMaxListeners(0);
    this.drivers = drivers;
    this.registry = new DomainRegistry(paths, drivers, this);
    this.networks = new Networks(paths.networks, new NetworkSwitches(paths.networkRun), this);
    this.interfaces = new Interfaces(this.registry, this.networks);
    this.dumps = new CoreDumps(this.registry, this.jobs, paths.dumps);
    this.fastStart = new FastStart(this.registry, this.jobs, paths.saves);
    this.lifecycle = new Lifecycle(this.registry, drivers, this, this.networks, this.dumps, this.fastStart);
    this.snapshots = new Snapshots(new SnapshotTree(paths.snapshots), this.registry, this.lifecycle, this.jobs, this);
    this.definitions = new Definitions(this.registry, drivers, this.lifecycle, this, this.snapshots);
    this.saves = new SaveRestore(this.registry, drivers, this.lifecycle, this.jobs);
    this.cloner = new Cloner(this.registry, this.lifecycle, this.jobs, (xml) => this.definitions.define(xml), paths.nvram);
    this.devices = new Devices(this.registry, this.interfaces);
    this.consoles = new Consoles(this.registry);
    this.memory = new Memory(this.registry, drivers);
    this.stats = new DomainStats(this.registry, this, this.networks);
    this.policy = new HostPolicy(this.registry, this.lifecycle, this.saves, this);
    this.statsWatchers = new StatsWatchers((uuids) => this.stats.samplePeriodic(uuids));
    this.migrations = {
      source: new MigrationSource(this.registry, this.jobs, this.trace, paths.libvirtSocket, (uuid) => this.definitions.undefine(uuid)),
      destination: new MigrationDestination(this.registry, drivers, this.lifecycle, this.networks),
    };
    this.canonicalUri = localUri(drivers.defaultDriver.uri, paths.libvirtSocket);
    this.storage = new Storage(paths, () => this.registry.diskUsers());
    this.downloads = new DownloadManager({
      downloadsDir: path.join(paths.home, 'downloads'),
      poolDir: (pool) => this.storage.poolDir(pool),
      catalogue: () => loadCatalogue(),
    });
    this.downloads.on('progress', (download) => this.emit('download.progress', { download }));
    this.jobs.on('progress', (job) => this.emit('job.progress', { job }));
    this.jobs.on('completed', (job) => this.emit('job.completed', { job }));
    this.sshPrompts = new SshPrompts(paths.run);
    this.sshPrompts.on('prompt', (prompt) => this.emit('connection.prompt', prompt));
    this.sshPrompts.on('ended', (ended) => this.emit('connection.promptEnded', ended));
    const opener = promptingOpener(this.sshPrompts);
    this.connections = new ConnectionManager(paths.home, connectionFactory ?? ((uri) => libvirtConnection(uri, opener)));
    this.connections.on('state', (connection) => this.emit('connection.state', { connection }));
    this.connections.on('closing', (uri) => this.sshPrompts.cancelFor(uri));
  }

  /** Every event is traced before it reaches its listeners. */
  override emit<E extends keyof Events>(event: E, ...args: HostEvents[E]): boolean {
    const data = args[0] as { domain?: { name?: string }; name?: string; job?: JobInfo };
    this.trace.event(event, data, data.domain?.name ?? data.name ?? data.job?.domain, data.job?.id);
    return (EventEmitter.prototype.emit as (this: EventEmitter, e: string, ...a: unknown[]) => boolean).call(this, event, ...args);
  }

  /** Loads the persistent definitions, re-attaches to guests an earlier host left running, starts autostart domains. */
  async init(): Promise<void> {
    const tightened = securePrivateFiles(this.paths);
    if (tightened.length) log('warn', `made ${tightened.length} files and directories owner-only (they could hold guest memory or passwords): ${tightened.slice(0, 5).join(', ')}${tightened.length > 5 ? ', …' : ''}`);
    this.registry.load();
    // Networks first: autostart domains may need them, as with libvirt.
    await this.networks.init();
    await this.lifecycle.reattach();
    await this.policy.autostartAll();
    // An engine with domains defined here may well start one soon (the v86 driver readies a spare runner).
    for (const driver of new Set(this.registry.records().map((r) => this.registry.driverOf(r)))) driver.warm?.();
    this.connections.load();
  }

  status(): HostStatus {
    let firmware: HostStatus['firmware'];
    try {
      firmware = findFirmware();
    } catch (err) {
      firmware = { problem: (err as Error).message };
    }
    return { pid: process.pid, version: VERSION, uri: this.drivers.defaultDriver.uri, home: this.paths.home, startedAt: this.startedAt, firmware };
  }

  // Domains and definitions.
  list = () => this.registry.list();
  lookup = (ref: string): DomainRecord => this.registry.lookup(ref);
  diskUsers = (): DiskUser[] => this.registry.diskUsers();
  managedSavePath = (uuid: string): string => this.registry.managedSavePath(uuid);
  define = (xml: string, expectGeneration?: number) => this.definitions.define(xml, expectGeneration);
  create = (spec: NewDomainSpec) => this.definitions.create(spec);
  createTransient = (xml: string, paused: boolean) => this.definitions.createTransient(xml, paused);
  undefine = (ref: string, force = false, snapshotsMetadata = false) => {
    this.unlessCloning(ref);
    return this.definitions.undefine(ref, force, snapshotsMetadata);
  };

  /** Undefine with the domain's disk volumes (virsh undefine --storage/--remove-all-storage); a running domain's disks are refused, as virsh refuses them. */
  undefineWithStorage(ref: string, opts: { force: boolean; snapshotsMetadata: boolean; storage: string[]; removeAllStorage: boolean }) {
    this.unlessCloning(ref);
    const rec = this.registry.lookup(ref);
    const wanted = opts.removeAllStorage || opts.storage.length > 0;
    if (wanted && rec.live) throw operationInvalid(`domain '${rec.doc.config.name}' is running: its disks can be deleted only once it is shut off`);
    const plan = wanted ? this.storage.removalPlan(rec.doc.config.uuid, rec.doc.config.disks, opts.storage, opts.removeAllStorage) : undefined;
    this.definitions.undefine(ref, opts.force, opts.snapshotsMetadata);
    return plan ? this.storage.removeFiles(plan) : {};
  }
  setAutostart = (ref: string, enabled: boolean) => this.definitions.setAutostart(ref, enabled);
  setOnHostStop = (ref: string, policy: OnHostStop) => this.definitions.setOnHostStop(ref, policy);
  setFastStart = (ref: string, action: FastStartAction, afterSec?: number) => this.fastStart.set(ref, action, afterSec);
  setMetadata = (ref: string, edit: Parameters<Definitions['setMetadata']>[1]) => this.definitions.setMetadata(ref, edit);
  xml = (ref: string, opts: { inactive?: boolean; secure?: boolean } = {}) => this.definitions.xml(ref, opts);
  info = (ref: string) => this.definitions.info(ref);
  startNotes = (ref: string) => this.definitions.startNotes(ref);
  toNative = (ref: string | undefined, xml: string | undefined) => this.definitions.toNative(ref, xml);

  /** virsh domcapabilities: of the domain's engine and machine, else of the named engine, else of the default connection's. */
  capabilities(p: { domain?: string; engine?: string }): DomainCapabilities {
    const rec = p.domain === undefined ? undefined : this.registry.lookup(p.domain);
    const driver = rec ? this.registry.driverOf(rec) : p.engine ? this.drivers.all().find((d) => d.engine === p.engine) : this.drivers.defaultDriver;
    if (!driver) throw invalidArg(`no engine '${p.engine}' here`);
    if (rec && p.engine && p.engine !== driver.engine) throw invalidArg(`domain '${rec.doc.config.name}' runs on ${driver.engine}, not ${p.engine}`);
    const caps = driver.domainCapabilities((rec?.liveDoc ?? rec?.doc)?.config.os.machine);
    if (!caps) throw operationUnsupported(`${driver.label} is not available: ${driver.connection().problem ?? 'unknown reason'}`);
    return caps;
  }

  // Lifecycle.
  start = async (ref: string, opts: { paused?: boolean } = {}) => {
    this.unlessCloning(ref);
    return this.lifecycle.start(ref, opts);
  };
  destroy = (ref: string) => this.lifecycle.destroy(ref);
  shutdown = (ref: string, opts: { modes?: ShutdownMode[]; force?: boolean; unreachable?: 'force' | 'fail'; timeoutSec?: number } = {}) => this.lifecycle.shutdown(ref, opts);
  whenStopped = (ref: string) => this.lifecycle.whenStopped(ref);
  reboot = (ref: string) => this.lifecycle.reboot(ref);
  reset = (ref: string) => this.lifecycle.reset(ref);
  suspend = (ref: string) => this.lifecycle.suspend(ref);
  resume = async (ref: string) => {
    this.unlessCloning(ref);
    return this.lifecycle.resume(ref);
  };

  /** A domain whose disks are being copied for a clone is neither started, resumed nor undefined until the copy ends (libvirt's job lock does the same). */
  private unlessCloning(ref: string): void {
    const rec = this.registry.lookup(ref);
    const job = this.jobs.current(rec.doc.config.uuid);
    if (job?.info.operation === 'clone') {
      throw operationInvalid(`domain '${rec.doc.config.name}' is being cloned (job ${job.info.id}): wait for the copy to end, or abort it (domjobabort)`);
    }
  }

  // Jobs.
  save = (ref: string, file: string) => this.saves.save(ref, file);
  managedSave = (ref: string) => this.saves.managedSave(ref);
  managedSaveRemove = (ref: string) => this.saves.managedSaveRemove(ref);
  restore = (file: string, paused: boolean) => this.saves.restore(file, paused);
  coreDump = (ref: string, file: string, opts: DumpOptions) => this.dumps.dump(ref, file, opts);
  migrate = (ref: string, req: MigrateRequest) => this.migrations.source.migrate(ref, req);
  clone = (ref: string, req: CloneRequest) => this.cloner.clone(ref, req);
  jobInfo = (ref: string, completed: boolean): JobInfo | null => this.jobs.info(this.registry.lookup(ref).doc.config.uuid, completed);

  async jobAbort(ref: string): Promise<JobInfo> {
    const rec = this.registry.lookup(ref);
    const job = this.jobs.current(rec.doc.config.uuid);
    if (!job) throw operationInvalid(`no job is active on domain '${rec.doc.config.name}'`);
    await job.abort();
    return { ...job.info };
  }

  // Devices and memory.
  changeMedia = (ref: string, p: Parameters<Devices['changeMedia']>[1]) => this.devices.changeMedia(ref, p);
  attachDisk = (ref: string, p: NewDisk & { live: boolean; config: boolean }) => this.devices.attachDisk(ref, p);
  detachDisk = (ref: string, p: { target: string; live: boolean; config: boolean }) => this.devices.detachDisk(ref, p);
  attachDevice = (ref: string, p: { xml: string; live: boolean; config: boolean }) => this.devices.attachDevice(ref, p);
  detachDevice = (ref: string, p: { xml: string; live: boolean; config: boolean }) => this.devices.detachDevice(ref, p);
  updateDevice = (ref: string, p: { xml: string; live: boolean; config: boolean }) => this.devices.updateDevice(ref, p);
  blockInfo = (ref: string, target: string) => this.devices.blockInfo(ref, target);
  blockResize = (ref: string, target: string, sizeBytes: number) => this.devices.blockResize(ref, target, sizeBytes);
  setMemory = (ref: string, edit: { sizeKiB: number; live: boolean; config: boolean }) => this.memory.setMemory(ref, edit);
  setMaxMemory = (ref: string, edit: { sizeKiB: number; live: boolean; config: boolean }) => this.memory.setMaxMemory(ref, edit);
  memoryStats = (ref: string) => this.memory.memoryStats(ref);

  // Interfaces.
  interfaceList = (ref: string, inactive: boolean) => this.interfaces.list(ref, inactive);
  interfaceAddresses = (ref: string, only?: string) => this.interfaces.addresses(ref, only);
  attachInterface = (ref: string, p: Parameters<Interfaces['attach']>[1]) => this.interfaces.attach(ref, p);
  detachInterface = (ref: string, p: Parameters<Interfaces['detach']>[1]) => this.interfaces.detach(ref, p);
  setLinkState = (ref: string, p: Parameters<Interfaces['setLink']>[1]) => this.interfaces.setLink(ref, p);

  // Consoles and statistics.
  screenshot = (ref: string) => this.consoles.screenshot(ref);
  sendKeys = (ref: string, keys: { text?: string; scancodes?: number[] }) => this.consoles.sendKeys(ref, keys);
  sendKey = (ref: string, req: { codeset: Codeset; holdtimeMs?: number; keycodes: (string | number)[] }) => this.consoles.sendKey(ref, req);
  serialWrite = (ref: string, data: Buffer) => this.consoles.serialWrite(ref, data);
  serialHistory = (ref: string) => this.consoles.serialHistory(ref);
  vncSocket = (ref: string) => this.consoles.vncSocket(ref);
  vncPassword = (ref: string) => this.consoles.vncPassword(ref);
  vncDisplay = (ref: string) => this.consoles.vncDisplay(ref);
  statsSample = (ref: string) => this.stats.sampleNow(ref);
  refreshCpuTime = (ref: string) => this.stats.refreshCpuTime(ref);

  // Host start and stop.
  async stopAll(timeoutSec?: number) {
    await this.migrations.destination.abortAll();
    const progress = await this.policy.stopAll(timeoutSec);
    await this.connections.closeAll();
    await this.sshPrompts.close();
    return progress;
  }
  /** The host is stopping: it lets go of the guests (they keep running) and ends what drivers keep. */
  detachAll = (): void => {
    this.lifecycle.detachAll();
    this.drivers.closeAll();
  };
}

/** The URI of this host's libvirt socket for a host on the same machine: `v86+unix:///session?socket=…`. */
export function localUri(driverUri: string, socket: string): string {
  const u = new URL(driverUri);
  return `${u.protocol.slice(0, -1)}+unix://${u.pathname}?socket=${socket}`;
}
