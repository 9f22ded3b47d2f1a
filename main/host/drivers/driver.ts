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
  exit: [{ reason: ExitReason; detail?: string }];
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
  pause(): Promise<void>;
  resume(): Promise<void>;
  destroy(): Promise<void>;
  screenshot(): Promise<{ png: Buffer; width: number; height: number }>;
  sendText(text: string): Promise<void>;
  sendScancodes(codes: number[]): Promise<void>;
  serialWrite(data: Buffer): Promise<void>;
  /** Drops the connection without touching the guest (host shutdown with guests kept running). */
  detach(): void;
}

export interface EngineDriver {
  readonly engine: string;
  readonly uri: string;
  support(doc: DomainDocument): SupportReport;
  start(doc: DomainDocument): Promise<LiveDomain>;
  /** Finds guests left running by an earlier host and attaches to them. */
  reattachAll(): Promise<Map<string, LiveDomain>>;
}
