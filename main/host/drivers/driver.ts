// The driver table: what every engine provides to the management layer (libvirt's virHypervisorDriver,
// cut to what Domus uses). The host never branches on the engine except through this interface.
import type { EventEmitter } from 'node:events';
import type { ConnectionInfo } from '../../../shared/api.js';
import type { DefinitionWarning } from '../../../shared/domain.js';
import type { DomainCapabilities } from '../../../shared/capabilities.js';
import type { DomainDocument } from '../domain/xml.js';
import type { ShutdownChannel, ShutdownResult } from '../../runner/protocol.js';

export type { ShutdownChannel, ShutdownResult };

export interface SupportReport {
  warnings: DefinitionWarning[];
  /** Reasons the guest cannot run on this engine at all. */
  errors: string[];
}

/** One reading of the engine process's counters (LiveDomain.stats()). */
export interface RunnerStats {
  /** CPU time of the engine process (user + system). */
  cpuTimeMs: number;
  /** The guest's vCPU time: the engine's vCPU threads only; absent where they cannot be told apart. */
  vcpuTimeMs?: number;
  rssBytes: number;
  /** Epoch ms of the reading. */
  at: number;
  /** Cumulative I/O per disk since the guest started (libvirt's block.N.*). */
  disks: { name: string; path: string; rdBytes: number; wrBytes: number; rdReqs: number; wrReqs: number }[];
  /**
   * Cumulative traffic per NIC (libvirt's net.N.*); empty when the engine gives the guest none. The
   * host fills it from the networks' switches (domain-stats.ts), with the MAC, network and leases.
   */
  nics: { name: string; mac?: string; network?: string; rxBytes: number; txBytes: number; addresses?: string[] }[];
}

/**
 * The memory balloon as the engine sees it (LiveDomain.balloonInfo()). Sizes in KiB.
 * status: ok = the guest holds the target; pending = on its way; no-driver = the guest did not
 * follow within the engine's timeout (5 s on v86); absent = no balloon device.
 */
export interface BalloonInfo {
  maxKiB: number;
  targetKiB: number;
  /** What the guest holds: maximum minus what it handed to the balloon. */
  actualKiB: number;
  status: 'ok' | 'pending' | 'no-driver' | 'absent';
  /** The guest driver's statistics, when it sends them (virtio-balloon stats queue). */
  guest?: {
    at: number;
    /** MemTotal (libvirt's "available"). */
    totalKiB?: number;
    /** MemFree ("unused"). */
    freeKiB?: number;
    /** MemAvailable ("usable"). */
    availableKiB?: number;
    /** Page cache ("disk_caches"). */
    cachesKiB?: number;
  };
  /** Whether memory the balloon takes goes back to the host (false on v86: wasm memory never shrinks). */
  hostReclaims: boolean;
}

/** Why a live domain went away, in libvirt's shutoff reasons. */
export type ExitReason = 'destroyed' | 'shutdown' | 'crashed' | 'failed';

export interface LiveDomainEvents {
  serial: [Buffer];
  state: ['running' | 'paused'];
  /** What the guest holds changed (libvirt's BALLOON_CHANGE); emitted for every change of actualKiB. */
  balloon: [BalloonInfo];
  /** The guest rebooted (by itself, or by reboot/reset) and runs on. */
  rebooted: [];
  /**
   * The guest kernel panicked (QEMU: pvpanic's GUEST_PANICKED; v86: Linux's panic line on the serial
   * console). The engine has paused it; the host decides what follows (<on_crash>).
   */
  panicked: [detail: string];
  exit: [{ reason: ExitReason; detail?: string }];
}

/** What a saved-state file says about itself (read without starting a guest). */
export interface StateFileHeader {
  uuid: string;
  name: string;
  domainXml: string;
}

/** A running guest, owned by an engine process the host is attached to. */
export interface LiveDomain extends EventEmitter<LiveDomainEvents> {
  readonly pid: number;
  readonly startedAt: number;
  readonly state: 'running' | 'paused';
  /** Unix socket of the guest's RFB (VNC) server. */
  readonly vncSocket: string;
  /** The TCP listener of a <graphics type='vnc'>, with the port it got. */
  readonly vncTcp?: { address: string; port: number };
  /**
   * The guest's recent serial output, for the host's scrollback as it takes the domain over: what
   * it wrote while no host was attached and since this attach, with what came before (v86's runner
   * keeps its last 1 MiB, QEMU its console log), which an earlier host may have shown too. Called
   * once; from then on output comes as 'serial' events (until then it is held, so nothing is lost).
   */
  takeSerialBacklog(): Buffer;
  /** The guest was restored from a saved state rather than booted. */
  readonly restored: boolean;
  /** Asks the guest to power off through each channel; says what each did (the host decides what follows). */
  shutdown(channels: ShutdownChannel[]): Promise<ShutdownResult>;
  reboot(): Promise<void>;
  reset(): Promise<void>;
  /** Writes the guest's state to `file` (the guest stays paused); progress in bytes. */
  save(file: string, header: StateFileHeader, onProgress: (done: number, total: number) => void): Promise<void>;
  /**
   * Writes an ELF core of the guest as it is to `file`, atomically (PT_LOADs for its RAM mapped at the
   * virtual addresses its page tables give, NT_PRSTATUS per vCPU); a running guest runs on meanwhile.
   * Progress in bytes.
   */
  dump(file: string, onProgress: (done: number, total: number) => void): Promise<void>;
  /** Cancels a running save or dump: no file is left and the guest runs as before. */
  abortJob(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  destroy(): Promise<void>;
  screenshot(): Promise<{ png: Buffer; width: number; height: number }>;
  sendText(text: string): Promise<void>;
  sendScancodes(codes: number[]): Promise<void>;
  serialWrite(data: Buffer): Promise<void>;
  /** Reads the engine's counters now (the host calls it only while someone watches statistics). */
  stats(): Promise<RunnerStats>;
  /**
   * Sets the balloon target (absolute, KiB, at most the boot memory) and returns at once; the guest
   * follows, reported by `balloon` events. Throws when the domain has no balloon device.
   */
  setBalloonTarget(targetKiB: number): Promise<BalloonInfo>;
  /** The balloon now; with guestStats, first asks the guest driver for fresh statistics (bounded wait). */
  balloonInfo(guestStats: boolean): Promise<BalloonInfo>;
  /** Puts an image into the guest's (first) CD-ROM drive, or ejects it (undefined); absent when the engine cannot. */
  changeMedia?(source: string | undefined): Promise<void>;
  /** Grows the disk `target` under the running guest (QMP block_resize); absent when the engine cannot. */
  blockResize?(target: string, sizeBytes: number): Promise<void>;
  /**
   * Plugs a network card into the running guest, connected to a switch's port socket, with the
   * engine id `alias` (the interface's <alias name>); `liveXml` is the running definition with it,
   * kept for a host that re-attaches. Absent when the engine cannot hot-plug a NIC.
   */
  attachNic?(nic: { mac: string; model?: string; socket: string }, alias: string, liveXml: string): Promise<void>;
  /** Unplugs the NIC `alias` (the guest must let go of it) and its connection; absent when the engine cannot. */
  detachNic?(alias: string, liveXml: string): Promise<void>;
  /**
   * Live migration, source side: streams the guest to the destination engine waiting at `target`
   * (IncomingMigration.endpoint), then leaves it paused here for good. Progress as it goes; abortJob()
   * cancels. On any failure or cancel the guest runs on here as before and the promise rejects.
   * Absent when the engine cannot migrate.
   */
  migrateOut?(target: MigrationEndpoint, opts: MigrationOptions, onProgress: (p: MigrationProgress) => void): Promise<MigrationResult>;
  /** Drops the connection without touching the guest (host shutdown with guests kept running). */
  detach(): void;
}

/**
 * What the destination checks before anything is sent (libvirt's migration cookie): the engine and
 * its version, the machine, the CPU the guest has seen, its memory. Plain JSON, as it crosses hosts.
 */
export interface MigrationCookie {
  engine: string;
  engineVersion: string;
  machine?: string;
  /** The vCPU model and the CPUID features the guest was started with (lower-case names). */
  cpu: { model: string; features: string[] };
  vcpus: number;
  memoryKiB: number;
}

export interface MigrationOptions {
  /** false: the guest is paused first and copied in one pass (virsh migrate without --live). */
  live: boolean;
  /** Switch to post-copy once the first pass is sent (QEMU); the engine may choose it itself on TCG. */
  postcopy: boolean;
  /** --bandwidth, MiB/s; absent = unlimited. */
  bandwidthMiBs?: number;
  /** The longest pause the engine aims for when it decides to stop and copy the rest, ms. */
  maxDowntimeMs: number;
}

/** Where a prepared destination waits: a one-use endpoint and the secret it wants first. */
export interface MigrationEndpoint {
  /** 'unix:/abs/path' or 'tcp:host:port'. */
  uri: string;
  /** 32 random bytes, hex: the destination drops a connection that does not send it first. */
  token: string;
}

export interface MigrationProgress {
  phase: 'setup' | 'precopy' | 'stopcopy' | 'postcopy';
  /** Pre-copy round, from 1. */
  iteration: number;
  totalBytes: number;
  transferredBytes: number;
  remainingBytes: number;
  /** Bytes of guest memory dirtied per second in the last round. */
  dirtyRateBytesPerSec?: number;
}

export interface MigrationResult {
  /** How long the guest was paused between the last byte of its run here and its run there. */
  downtimeMs: number;
  transferredBytes: number;
  iterations: number;
  postcopy: boolean;
}

/** A destination engine waiting for a guest (the prepare phase); nothing runs until the stream ends. */
export interface IncomingMigration {
  readonly endpoint: MigrationEndpoint;
  /**
   * Resolves once the whole stream has arrived and the guest is ready here: running (a live
   * migration of a running guest) or paused. Rejects when the stream breaks or never comes.
   */
  finished(): Promise<StartedDomain>;
  /** Gives up: the waiting engine process goes, and nothing is left behind. */
  abort(): Promise<void>;
}

/**
 * A live domain's serial output on its way to the host: held until the host takes the domain over
 * (LiveDomain.takeSerialBacklog), then passed straight on, so nothing written in between is lost.
 */
export class SerialHandover {
  private held: Buffer[] | undefined = [];

  constructor(private readonly pass: (data: Buffer) => void) {}

  /** Output from before this attach (the engine's own backlog): it goes before anything held. */
  prepend(data: Buffer): void {
    this.held?.unshift(data);
  }

  deliver(data: Buffer): void {
    if (this.held) this.held.push(data);
    else this.pass(data);
  }

  take(): Buffer {
    const held = Buffer.concat(this.held ?? []);
    this.held = undefined;
    return held;
  }
}

/** What reattachAll found of one guest: attached, with the live XML it was started from, or why it ended. */
export type Reattached = { live: LiveDomain; liveXml?: string } | { exited: ExitReason };

/** A started guest, and what the user is told about how it runs (the engine's accelerator). */
export interface StartedDomain {
  live: LiveDomain;
  notes: DefinitionWarning[];
}

export type AccelMode = 'auto' | 'kvm' | 'tcg';

/**
 * What an engine can do, so that the host refuses the rest with the reason. Live device changes are
 * the LiveDomain's optional methods (changeMedia): an engine has them or not.
 */
export interface EngineCapabilities {
  /** How it can ask a guest to power off (virsh shutdown --mode). */
  shutdownModes: ShutdownChannel[];
}

/**
 * One engine behind one connection URI (libvirt's virConnectDriver). A new engine is added by
 * registering its driver in the DriverRegistry; nothing in the host names an engine.
 */
export interface EngineDriver {
  /** The engine's id in summaries and state-file headers ('v86', 'qemu'). */
  readonly engine: string;
  /** How messages name it ('v86', 'QEMU'). */
  readonly label: string;
  readonly uri: string;
  /** The <domain type='…'> values this engine runs. */
  readonly domainTypes: readonly string[];
  readonly capabilities: EngineCapabilities;
  /** Availability, version and accelerator, as host.connections reports them. */
  connection(): ConnectionInfo;
  /** What the engine can run of a definition: warnings for what it lacks, errors for what the guest cannot do without. */
  validate(doc: DomainDocument): SupportReport;
  /** What it can give a guest of `machine`, device by device (virsh domcapabilities); undefined while it is unavailable. */
  domainCapabilities(machine: string | undefined): DomainCapabilities | undefined;
  start(doc: DomainDocument, opts: { paused?: boolean; restoreFrom?: string }): Promise<StartedDomain>;
  /** Reads and checks a state file's header; throws a clear error for a corrupt or foreign file. */
  readStateHeader(file: string): StateFileHeader;
  /**
   * Finds guests left by an earlier host: attaches to those still running (with the live XML they
   * were started from), and reports why the others ended.
   */
  reattachAll(): Promise<Map<string, Reattached>>;
  /** The host has domains of this engine: what makes their next start faster may begin (a spare runner). */
  warm?(): void;
  /** The host is stopping: ends what the driver keeps besides guests (a spare runner). */
  close?(): void;
  /** virsh domxml-to-native: the engine's command line for a definition; absent when it has none. */
  toNative?(doc: DomainDocument): Promise<string[]>;
  /** The cookie describing a running guest, for a destination to check (source side). */
  migrationCookie?(doc: DomainDocument, live: LiveDomain): MigrationCookie;
  /** Reasons this engine cannot take a guest described by `cookie` (destination side); empty = it can. */
  checkIncoming?(cookie: MigrationCookie, doc: DomainDocument): string[];
  /**
   * Starts an engine process for `doc` that waits for a migration stream at a fresh endpoint
   * (listening on `listen`: a unix socket for a host on the same machine, a TCP address otherwise).
   */
  prepareIncoming?(doc: DomainDocument, listen: { kind: 'unix' } | { kind: 'tcp'; address: string }): Promise<IncomingMigration>;
  /** Chooses the accelerator (KVM, TCG, or probed); absent for engines that have no choice. */
  setAccel?(mode: AccelMode): Promise<void>;
  /** Domain snapshots' data on this engine (the host keeps their metadata); absent when it has none. */
  snapshots?: EngineSnapshots;
}

/** How a snapshot keeps the memory and each disk, in <domainsnapshot>'s terms. */
export type SnapshotLocation = 'internal' | 'external' | 'no';

/** One snapshot as the engine sees it: its directory (its files go there) and its name. */
export interface SnapshotRef {
  dir: string;
  name: string;
}

/**
 * What an engine does for snapshots. The host decides when (state, jobs, the tree); the engine
 * moves the data. `others` are the domain's other snapshots, which must stay exact.
 */
export interface EngineSnapshots {
  /** Why snapshots of this definition cannot be taken here (a disk format…); undefined when they can. */
  cannot(doc: DomainDocument, running: boolean): string | undefined;
  /**
   * Takes the snapshot: the disks, and with `memory` the running `live` guest's memory; a running
   * guest runs on afterwards. Progress in bytes.
   */
  create(req: {
    doc: DomainDocument;
    snap: SnapshotRef;
    others: SnapshotRef[];
    live?: LiveDomain;
    memory: boolean;
    header: StateFileHeader;
    onProgress: (done: number, total: number) => void;
  }): Promise<{ memory: SnapshotLocation; disks: { name: string; snapshot: SnapshotLocation }[] }>;
  /**
   * How a memory snapshot comes back: 'state-file' (the host boots the guest from memoryFile() after
   * revertDisks), or 'live' (the host starts the guest paused, then loadLive() puts disks and memory back).
   */
  readonly memoryRevert: 'state-file' | 'live';
  memoryFile(snap: SnapshotRef): string;
  loadLive(live: LiveDomain, doc: DomainDocument, snap: SnapshotRef): Promise<void>;
  /** Puts the disks back as at the snapshot; the guest is not running. */
  revertDisks(doc: DomainDocument, snap: SnapshotRef, others: SnapshotRef[]): Promise<void>;
  /** Frees the snapshot's data (its directory is the host's to remove afterwards). */
  remove(doc: DomainDocument, snap: SnapshotRef, others: SnapshotRef[], live?: LiveDomain): Promise<void>;
}
