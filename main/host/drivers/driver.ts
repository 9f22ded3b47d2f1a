// The driver table: what every engine provides to the management layer (libvirt's virHypervisorDriver,
// cut to what Domus uses). The host never branches on the engine except through this interface.
import type { EventEmitter } from 'node:events';
import type { DefinitionWarning } from '../../../shared/domain.js';
import type { DomainDocument } from '../domain/xml.js';

export interface SupportReport {
  warnings: DefinitionWarning[];
  /** Reasons the guest cannot run on this engine at all. */
  errors: string[];
}

export interface RunnerStats {
  cpuTimeMs: number;
  rssBytes: number;
  at: number;
}

/** Why a live domain went away, in libvirt's shutoff reasons. */
export type ExitReason = 'destroyed' | 'shutdown' | 'crashed' | 'failed';

export interface LiveDomainEvents {
  serial: [Buffer];
  state: ['running' | 'paused'];
  stats: [RunnerStats];
  /** The guest rebooted (by itself, or by reboot/reset) and runs on. */
  rebooted: [];
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
  /** Serial output produced while no host was attached (handed over once at attach). */
  readonly attachBacklog: Buffer;
  /** The guest was restored from a saved state rather than booted. */
  readonly restored: boolean;
  /** Asks the guest to power off; says which channels carried the request. */
  shutdown(mode: 'acpi' | 'agent' | 'any'): Promise<{ method: 'acpi' | 'agent' | 'acpi+agent' }>;
  reboot(): Promise<void>;
  reset(): Promise<void>;
  /** Writes the guest's state to `file` (the guest stays paused); progress in bytes. */
  save(file: string, header: StateFileHeader, onProgress: (done: number, total: number) => void): Promise<void>;
  /** Cancels a running save: no file is left and the guest runs as before. */
  abortJob(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  destroy(): Promise<void>;
  screenshot(): Promise<{ png: Buffer; width: number; height: number }>;
  sendText(text: string): Promise<void>;
  sendScancodes(codes: number[]): Promise<void>;
  serialWrite(data: Buffer): Promise<void>;
  /** Puts an image into the guest's (first) CD-ROM drive, or ejects it (undefined); absent when the engine cannot. */
  changeMedia?(source: string | undefined): Promise<void>;
  /** Drops the connection without touching the guest (host shutdown with guests kept running). */
  detach(): void;
}

export interface EngineDriver {
  readonly engine: string;
  readonly uri: string;
  support(doc: DomainDocument): SupportReport;
  start(doc: DomainDocument, opts: { paused?: boolean; restoreFrom?: string }): Promise<LiveDomain>;
  /** Reads and checks a state file's header; throws a clear error for a corrupt or foreign file. */
  readStateHeader(file: string): StateFileHeader;
  /**
   * Finds guests left by an earlier host: attaches to those still running (with the live XML they
   * were started from), and reports why the others ended.
   */
  reattachAll(): Promise<Map<string, { live: LiveDomain; liveXml?: string } | { exited: ExitReason }>>;
}
