// The management layer: persistent and transient definitions, live state with libvirt's states
// and reasons, lifecycle operations, jobs and events. Every client (GUI, CLI, web shell) goes
// through this object.
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type {
  DomainInfo,
  DomainStatsSample,
  DomainSummary,
  Events,
  HostStatus,
  HostStopProgress,
  ImageInspection,
  JobInfo,
  LifecycleEvent,
  MemoryStats,
  NewDomainSpec,
  OnHostStop,
  Result,
  ShutdownMode,
  VncDisplay,
} from '../../shared/api.js';
import type { DefinitionWarning, DomainConfig, DomainStep } from '../../shared/domain.js';
import type { DomainState, StateReason } from '../../shared/libvirt/states.js';
import { FileWriteError, systemErrorText, writeFileAtomic } from '../common/fsutil.js';
import { onHostStop, setOnHostStop, setTitleAndDescription } from './domain/domus-metadata.js';
import { DomainXmlError, dumpDomainXml, ensureUuid, parseDomainXml, serializeDomainXml, setMemory, type DomainDocument } from './domain/xml.js';
import type { BalloonInfo, ExitReason, LiveDomain, Reattached, ShutdownChannel } from './drivers/driver.js';
import { Engines } from './drivers/table.js';
import { findFirmware } from './drivers/v86/firmware.js';
import { JobError, Jobs, type JobHandle } from './jobs.js';
import { log } from './log.js';
import { completeInstall, installTimeDocument, pendingInstall } from './domain/install-boot.js';
import { runFsimageJob } from './fsimage-client.js';
import { checkSpec } from './new-domain-checks.js';
import { specToXml } from './new-domain.js';
import { KeycodeError, keyFromCode, sendKeySequence, type Codeset } from '../common/keycodes.js';
import { VNC_PORT_BASE } from '../runner/protocol.js';
import { loadCatalogue } from './downloads/catalogue.js';
import { DownloadManager } from './downloads/manager.js';
import { HostError, operationUnsupported } from './errors.js';
import { ignoredBecause, shutdownOutcome, unreachableError } from './shutdown.js';
import { securePrivateFiles, type HostPaths } from './paths.js';
import { buildSample, StatsWatchers, type PreviousSample } from './stats.js';
import { addDisk, checkSourceImage, removeDisk, setMedia, type NewDisk } from './storage/devices.js';
import { diskConflict, type DiskUser } from './storage/in-use.js';
import { Storage } from './storage/pools.js';
import { TraceLog } from './trace.js';

export const VERSION = '0.1.0';
/** Serial output kept per domain for viewers that open the console later (scrollback). */
const SERIAL_HISTORY_BYTES = 256 * 1024;
/** How long a clean shutdown may take before the domain is forced off (virsh has no default; the seed used 60 s). */
export const DEFAULT_SHUTDOWN_TIMEOUT_SEC = Number(process.env.DOMUS_SHUTDOWN_TIMEOUT ?? 60);
/**
 * The lowest balloon target: below 64 MiB a Linux guest's kernel, page tables and a shell no longer
 * fit comfortably (the sample guest's kernel alone reserves about 32 MiB of 128 MiB), and a running
 * guest must also keep what it uses now (see balloonFloorKiB).
 */
export const BALLOON_MIN_KiB = 64 * 1024;
/** What a running guest keeps free above what it uses, so that ballooning never starts the OOM killer. */
const BALLOON_HEADROOM_KiB = 16 * 1024;

/** How long send-key holds the keys when no hold time is given (QEMU's default). */
const SEND_KEY_HOLD_MS = 100;

export { HostError } from './errors.js';

interface DomainRecord {
  /** The persistent definition (next boot). */
  doc: DomainDocument;
  /** generation(doc), kept so that summaries do not serialize the XML. */
  generation: number;
  /** The running definition (libvirt's live XML); set while active. */
  liveDoc?: DomainDocument;
  warnings: DefinitionWarning[];
  persistent: boolean;
  state: DomainState;
  reason: StateReason;
  step: DomainStep;
  id?: number;
  live?: LiveDomain;
  /** Why the runner is being stopped by us, so its exit gets the right reason. */
  stopping?: ExitReason | 'saved';
  /** The install boot ended with a guest reboot: start again on the final definition. */
  restartAfterInstall?: boolean;
  shutdownTimer?: NodeJS.Timeout;
  /** Why the host forced the domain off, for its 'stopped' event. */
  stopDetail?: string;
  cpuPercent: number;
  cpuTimeMs: number;
  /** Counters of the last statistics sample (for rates). */
  lastSample?: PreviousSample;
  /** The balloon as the engine last reported it. */
  balloon?: BalloonInfo;
  serialHistory: Buffer[];
  serialHistoryBytes: number;
  /** Which engine (and accelerator) runs the domain, told by domain.start. */
  startNotes?: DefinitionWarning[];
}

type HostEvents = { [E in keyof Events]: [Events[E]] };

export class Host extends EventEmitter<HostEvents> {
  private readonly domains = new Map<string, DomainRecord>();
  readonly engines: Engines;
  private nextId = 1;
  readonly startedAt = Date.now();
  readonly jobs = new Jobs();
  readonly trace = new TraceLog();
  /** Statistics sampling, running only while some client watches. */
  readonly statsWatchers = new StatsWatchers((uuids) => this.sampleDomains(uuids));
  readonly downloads: DownloadManager;
  readonly storage: Storage;

  constructor(readonly paths: HostPaths) {
    super();
    this.setMaxListeners(0);
    this.downloads = new DownloadManager({
      downloadsDir: path.join(paths.home, 'downloads'),
      poolDir: (pool) => this.storage.poolDir(pool),
      catalogue: () => loadCatalogue(),
    });
    this.downloads.on('progress', (download) => this.emit('download.progress', { download }));
    this.engines = new Engines(paths.home, paths.run);
    this.storage = new Storage(paths, () => this.diskUsers());
    this.jobs.on('progress', (job) => this.emit('job.progress', { job }));
    this.jobs.on('completed', (job) => this.emit('job.completed', { job }));
  }

  override emit<E extends keyof Events>(event: E, ...args: HostEvents[E]): boolean {
    const data = args[0] as { domain?: { name?: string }; name?: string; job?: JobInfo };
    this.trace.event(event, data, data.domain?.name ?? data.name ?? data.job?.domain, data.job?.id);
    return (EventEmitter.prototype.emit as (this: EventEmitter, e: string, ...a: unknown[]) => boolean).call(this, event, ...args);
  }

  /** Loads the persistent definitions, re-attaches to guests an earlier host left running, starts autostart domains. */
  async init(): Promise<void> {
    const tightened = securePrivateFiles(this.paths);
    if (tightened.length) log('warn', `made ${tightened.length} files and directories owner-only (they could hold guest memory or passwords): ${tightened.slice(0, 5).join(', ')}${tightened.length > 5 ? ', …' : ''}`);
    for (const file of fs.readdirSync(this.paths.domains)) {
      if (!file.endsWith('.xml')) continue;
      const full = path.join(this.paths.domains, file);
      try {
        const doc = parseDomainXml(fs.readFileSync(full, 'utf8'));
        this.domains.set(doc.config.uuid, this.newRecord(doc, true));
      } catch (err) {
        log('error', `skipping unreadable definition ${full}: ${(err as Error).message}`);
      }
    }
    const found = new Map<string, Reattached>();
    for (const driver of this.engines.all()) for (const [uuid, result] of await driver.reattachAll()) found.set(uuid, result);
    for (const [uuid, result] of found) {
      const rec = this.domains.get(uuid);
      if ('exited' in result) {
        // The guest ended while no host was attached: record why.
        if (rec) this.setState(rec, 'shutoff', result.exited, null);
        continue;
      }
      if (!rec) {
        log('warn', `runner for unknown domain ${uuid} left running; destroying it`);
        await result.live.destroy().catch(() => undefined);
        continue;
      }
      rec.liveDoc = result.liveXml ? parseDomainXml(result.liveXml) : rec.doc;
      this.adopt(rec, result.live);
      rec.state = result.live.state;
      rec.reason = result.live.state === 'paused' ? 'user' : result.live.restored ? 'restored' : 'booted';
    }
    for (const rec of this.domains.values()) {
      if (!rec.live && this.autostart(rec.doc.config.uuid)) {
        await this.start(rec.doc.config.uuid).catch((err: Error) => log('error', `autostart of '${rec.doc.config.name}' failed: ${err.message}`));
      }
    }
  }

  status(): HostStatus {
    let firmware: HostStatus['firmware'];
    try {
      firmware = findFirmware();
    } catch (err) {
      firmware = { problem: (err as Error).message };
    }
    return { pid: process.pid, version: VERSION, uri: this.engines.v86.uri, home: this.paths.home, startedAt: this.startedAt, firmware };
  }

  list(): DomainSummary[] {
    return [...this.domains.values()]
      .map((r) => this.summary(r))
      .sort((a, b) => (a.id ?? Infinity) - (b.id ?? Infinity) || a.name.localeCompare(b.name));
  }

  lookup(ref: string): DomainRecord {
    const byUuid = this.domains.get(ref.toLowerCase());
    if (byUuid) return byUuid;
    for (const r of this.domains.values()) if (r.doc.config.name === ref) return r;
    if (/^\d+$/.test(ref)) for (const r of this.domains.values()) if (r.id === Number(ref)) return r;
    throw new HostError('NO_DOMAIN', `no domain with matching name '${ref}'`);
  }

  // ---- definitions ----

  define(xml: string, expectGeneration?: number): { domain: DomainSummary; warnings: DefinitionWarning[] } {
    const doc = this.parse(xml);
    const { config } = doc;
    const support = this.supported(doc);
    const existing = this.clash(config);
    if (existing && expectGeneration !== undefined && existing.generation !== expectGeneration) {
      throw this.conflict(existing, expectGeneration);
    }
    // The file first: a definition that could not be written (a full disk) changes nothing.
    let rec: DomainRecord;
    if (existing) {
      // Redefining a running domain changes the next boot only, as with virsh define.
      this.persist(existing, doc, true);
      existing.persistent = true;
      existing.warnings = support.warnings;
      rec = existing;
    } else {
      rec = this.newRecord(doc, true);
      rec.warnings = support.warnings;
      this.persist(rec, doc);
      this.domains.set(config.uuid, rec);
    }
    this.emit('domain.defined', { domain: this.summary(rec) });
    this.emitLifecycle(rec, 'defined');
    return { domain: this.summary(rec), warnings: support.warnings };
  }

  /** The New VM wizard's spec: refused when the guest could not start (missing files, wrong architecture). */
  async create(spec: NewDomainSpec): Promise<{ domain: DomainSummary; warnings: DefinitionWarning[] }> {
    // The image is read in the reader's worker thread, as host.inspectImage does: it is untrusted.
    const problems = await checkSpec(spec, (file) => runFsimageJob<ImageInspection>({ op: 'inspect', path: file }));
    if (problems.length) throw new HostError('INVALID_ARG', problems.join('; '));
    return this.define(specToXml(spec));
  }

  /** virsh create: a transient domain, started at once, gone when it stops. */
  async createTransient(xml: string, paused: boolean): Promise<{ domain: DomainSummary; warnings: DefinitionWarning[] }> {
    const doc = this.parse(xml);
    const support = this.supported(doc);
    if (this.clash(doc.config)) {
      throw new HostError('OPERATION_FAILED', `domain '${doc.config.name}' already exists; use start for a defined domain`);
    }
    const rec = this.newRecord(doc, false);
    rec.warnings = support.warnings;
    this.domains.set(doc.config.uuid, rec);
    try {
      await this.boot(rec, { paused });
    } catch (err) {
      this.domains.delete(doc.config.uuid);
      throw err;
    }
    return { domain: this.summary(rec), warnings: support.warnings };
  }

  undefine(ref: string, force = false): void {
    const rec = this.lookup(ref);
    if (rec.live && !force) {
      throw new HostError(
        'OPERATION_INVALID',
        `domain '${rec.doc.config.name}' is running; destroy it first, or undefine with --force to make it transient`,
      );
    }
    if (!rec.persistent) throw new HostError('OPERATION_INVALID', `cannot undefine transient domain '${rec.doc.config.name}'`);
    // The definition goes first: if it cannot, the domain stays as it was, saved state included.
    // Once it is gone the domain is undefined, and a side file that stays is only reported.
    removeFile(this.definitionPath(rec.doc.config.uuid));
    for (const file of [this.autostartPath(rec.doc.config.uuid), this.managedSavePath(rec.doc.config.uuid)]) {
      try {
        removeFile(file);
      } catch (err) {
        log('warn', `domain '${rec.doc.config.name}' undefined, but ${(err as Error).message}`);
      }
    }
    if (rec.live) {
      rec.persistent = false;
      this.emitLifecycle(rec, 'undefined');
      return;
    }
    this.domains.delete(rec.doc.config.uuid);
    this.emit('domain.undefined', { uuid: rec.doc.config.uuid, name: rec.doc.config.name });
  }

  setAutostart(ref: string, enabled: boolean): DomainSummary {
    const rec = this.lookup(ref);
    if (!rec.persistent) throw new HostError('OPERATION_INVALID', `cannot set autostart for transient domain '${rec.doc.config.name}'`);
    if (enabled) writeHostFile(this.autostartPath(rec.doc.config.uuid), `${rec.doc.config.name}\n`);
    else removeFile(this.autostartPath(rec.doc.config.uuid));
    this.emitLifecycle(rec, 'defined');
    return this.summary(rec);
  }

  setOnHostStop(ref: string, policy: OnHostStop): DomainSummary {
    const rec = this.lookup(ref);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    setOnHostStop(draft, policy);
    this.persist(rec, draft);
    if (rec.liveDoc) setOnHostStop(rec.liveDoc, policy);
    this.emitLifecycle(rec, 'defined');
    return this.summary(rec);
  }

  /** virsh desc: --live edits the running domain, --config the next boot; neither means --current. */
  setMetadata(ref: string, edit: { title?: string; description?: string; live: boolean; config: boolean; expectGeneration?: number }): { domain: DomainSummary; generation: number } {
    const rec = this.lookup(ref);
    const { live, config } = this.scope(rec, edit);
    if (edit.expectGeneration !== undefined && rec.generation !== edit.expectGeneration) throw this.conflict(rec, edit.expectGeneration);
    if (config) {
      const draft = parseDomainXml(serializeDomainXml(rec.doc));
      setTitleAndDescription(draft, edit);
      this.persist(rec, draft);
    }
    if (live && rec.liveDoc) {
      const draft = parseDomainXml(serializeDomainXml(rec.liveDoc));
      setTitleAndDescription(draft, edit);
      rec.liveDoc = draft;
    }
    this.emitLifecycle(rec, 'defined');
    return { domain: this.summary(rec), generation: rec.generation };
  }

  // ---- lifecycle ----

  async start(ref: string, opts: { paused?: boolean } = {}): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    if (rec.live || rec.step) {
      throw new HostError('OPERATION_INVALID', `domain '${rec.doc.config.name}' is already active`);
    }
    const saved = this.managedSavePath(rec.doc.config.uuid);
    if (fs.existsSync(saved)) {
      // Never cold-boot over a saved state: restore it, or fail and keep it.
      await this.boot(rec, { paused: opts.paused, restoreFrom: saved });
      try {
        removeFile(saved);
      } catch (err) {
        // The guest runs from it already: the start succeeded, but a later one would restore it again.
        log('error', `domain '${rec.doc.config.name}' restored, but ${(err as Error).message}; remove it before the next start (managedsave-remove)`);
      }
    } else {
      await this.boot(rec, { paused: opts.paused });
    }
    return this.summary(rec);
  }

  /** The engine notes of the domain's last start (which engine and accelerator run it). */
  startNotes(ref: string): DefinitionWarning[] {
    return this.lookup(ref).startNotes ?? [];
  }

  /** virsh domxml-to-native qemu-argv, for a defined domain or a definition given as XML. */
  async toNative(ref: string | undefined, xml: string | undefined): Promise<string[]> {
    if ((ref === undefined) === (xml === undefined)) throw new HostError('INVALID_ARG', 'give either a domain or a definition (xml), not both');
    const rec = ref !== undefined ? this.lookup(ref) : undefined;
    const doc = rec ? (rec.liveDoc ?? rec.doc) : this.parse(xml!);
    try {
      return await this.engines.toNative(doc);
    } catch (err) {
      throw new HostError('OPERATION_UNSUPPORTED', (err as Error).message);
    }
  }

  async destroy(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    rec.stopping = 'destroyed';
    await live.destroy();
    return this.summary(rec);
  }

  /**
   * Clean shutdown, as virsh's with xendomains' timeout: asks the guest through the channels it has
   * (or those named), then forces it off (reason destroyed) when it has not powered off within the
   * timeout. A guest that cannot be asked at all is forced off at once, or, when the caller only
   * requests, refused. See RequestParams['domain.shutdown'] for the options.
   */
  async shutdown(
    ref: string,
    opts: { modes?: ShutdownMode[]; force?: boolean; unreachable?: 'force' | 'fail'; timeoutSec?: number } = {},
  ): Promise<Result<'domain.shutdown'>> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    const name = rec.doc.config.name;
    const engine = this.engines.driverFor(rec.liveDoc ?? rec.doc).driver.engine;
    const cannot = (opts.modes ?? []).filter((m) => m !== 'acpi' && m !== 'agent');
    if (cannot.length) {
      throw operationUnsupported(`the ${engine} engine cannot shut a guest down by ${cannot.map((m) => `'${m}'`).join(', ')}; it can use 'acpi' and 'agent'`);
    }
    const force = opts.force ?? opts.modes === undefined;
    const timeoutSec = opts.timeoutSec ?? DEFAULT_SHUTDOWN_TIMEOUT_SEC;
    const heard = await live.shutdown((opts.modes ?? ['acpi', 'agent']) as ShutdownChannel[]);
    const outcome = shutdownOutcome(heard, engine);
    if (!outcome.asked.length) {
      if ((opts.unreachable ?? (force ? 'force' : 'fail')) === 'fail') throw unreachableError(name, heard, outcome);
      const message = `domain '${name}' cannot be asked to shut down (${outcome.notes.join('; ')}): forced off`;
      await this.forceOff(rec, live, message);
      return { domain: this.summary(rec), asked: [], forced: true, message };
    }
    this.setState(rec, rec.state, rec.reason, 'shutting-down');
    clearTimeout(rec.shutdownTimer);
    rec.shutdownTimer = setTimeout(() => {
      if (rec.live !== live) return;
      const late = `domain '${name}' did not shut down within ${timeoutSec} s: ${ignoredBecause(heard)}`;
      if (force) {
        void this.forceOff(rec, live, `${late}; forced off`);
      } else {
        // Only a request: the guest keeps running, and the step says the request is over.
        log('info', late);
        this.setState(rec, rec.state, rec.reason, null, late);
      }
    }, timeoutSec * 1000);
    return { domain: this.summary(rec), asked: outcome.asked, forced: false, message: outcome.notes.join('; ') || undefined };
  }

  /** Destroys a domain on the host's own decision; `why` goes with its 'stopped' event and the log. */
  private async forceOff(rec: DomainRecord, live: LiveDomain, why: string): Promise<void> {
    log('info', why);
    rec.stopping = 'destroyed';
    rec.stopDetail = why;
    await live.destroy();
  }

  /** Resolves once the domain has stopped, with its 'stopped' event (for host stop and tests); at once when it is not running. */
  whenStopped(ref: string): Promise<Events['domain.lifecycle']> {
    const rec = this.lookup(ref);
    if (!rec.live) return Promise.resolve({ domain: this.summary(rec), event: 'stopped' });
    return new Promise((resolve) => {
      const listener = (e: Events['domain.lifecycle']): void => {
        if (e.domain.uuid === rec.doc.config.uuid && e.event === 'stopped') {
          this.off('domain.lifecycle', listener);
          resolve(e);
        }
      };
      this.on('domain.lifecycle', listener);
    });
  }

  async reboot(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    await this.requireLive(rec).reboot();
    return this.summary(rec);
  }

  async reset(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    await this.requireLive(rec).reset();
    return this.summary(rec);
  }

  async suspend(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    if (rec.state === 'paused') throw new HostError('OPERATION_INVALID', `domain '${rec.doc.config.name}' is already paused`);
    await live.pause();
    return this.summary(rec);
  }

  async resume(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    if (rec.state !== 'paused') throw new HostError('OPERATION_INVALID', `domain '${rec.doc.config.name}' is not paused`);
    await live.resume();
    return this.summary(rec);
  }

  // ---- save / restore (jobs) ----

  /** Saves the guest's state to a file and stops it (shutoff/saved); abort leaves it running as before. */
  async save(ref: string, file: string, operation: 'save' | 'managedsave' = 'save'): Promise<JobInfo> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    const target = path.resolve(file);
    const before = { state: rec.state, reason: rec.reason };
    const job = this.beginJob(rec, operation, () => live.abortJob());
    this.setState(rec, 'paused', 'saving', 'saving');
    try {
      await live.save(target, { domainXml: serializeDomainXml(rec.liveDoc ?? rec.doc), name: rec.doc.config.name, uuid: rec.doc.config.uuid }, (done, total) => job.progress(done, total));
    } catch (err) {
      this.setState(rec, before.state, before.reason, null);
      if (job.aborted) return job.finish('aborted', 'job aborted by the user');
      const info = job.finish('failed', (err as Error).message);
      throw new HostError('OPERATION_FAILED', `save of '${rec.doc.config.name}' failed: ${info.error}`);
    }
    rec.stopping = 'saved';
    await live.destroy();
    return job.finish('completed');
  }

  async managedSave(ref: string): Promise<JobInfo> {
    const rec = this.lookup(ref);
    if (!rec.persistent) throw new HostError('OPERATION_INVALID', `cannot do managed save for transient domain '${rec.doc.config.name}'`);
    return this.save(ref, this.managedSavePath(rec.doc.config.uuid), 'managedsave');
  }

  managedSaveRemove(ref: string): DomainSummary {
    const rec = this.lookup(ref);
    const file = this.managedSavePath(rec.doc.config.uuid);
    if (!fs.existsSync(file)) throw new HostError('OPERATION_INVALID', `domain '${rec.doc.config.name}' has no managed save image`);
    removeFile(file);
    this.emitLifecycle(rec, 'defined');
    return this.summary(rec);
  }

  /** virsh restore: the state file names its domain; a domain not defined here comes back transient. */
  async restore(file: string, paused: boolean): Promise<{ domain: DomainSummary; job: JobInfo }> {
    const source = path.resolve(file);
    let header;
    try {
      header = this.engines.forStateFile(source).readStateHeader(source);
    } catch (err) {
      throw new HostError('INVALID_ARG', (err as Error).message);
    }
    // The file is untrusted: its header and its XML must name the same domain, and that domain must
    // not collide with another one here (same name under another uuid, or the reverse).
    const doc = this.parse(header.domainXml);
    const { uuid, name } = doc.config;
    if (uuid !== header.uuid || name !== header.name) {
      throw new HostError('INVALID_ARG', `state file '${source}' is inconsistent: its header holds domain '${header.name}' (${header.uuid}) but its XML defines '${name}' (${uuid})`);
    }
    let rec: DomainRecord | undefined;
    try {
      rec = this.clash(doc.config);
    } catch (err) {
      if (err instanceof HostError) throw new HostError(err.code, `cannot restore '${source}': ${err.detail}`);
      throw err;
    }
    if (!rec) {
      rec = this.newRecord(doc, false);
      this.domains.set(uuid, rec);
    }
    if (rec.live || rec.step) throw new HostError('OPERATION_INVALID', `domain '${rec.doc.config.name}' is already active`);
    const job = this.beginJob(rec, 'restore', async () => undefined);
    try {
      await this.boot(rec, { paused, restoreFrom: source, liveXml: header.domainXml });
    } catch (err) {
      if (!rec.persistent) this.domains.delete(header.uuid);
      job.finish('failed', (err as Error).message);
      throw err;
    }
    return { domain: this.summary(rec), job: job.finish('completed') };
  }

  jobInfo(ref: string, completed: boolean): JobInfo | null {
    return this.jobs.info(this.lookup(ref).doc.config.uuid, completed);
  }

  async jobAbort(ref: string): Promise<JobInfo> {
    const rec = this.lookup(ref);
    const job = this.jobs.current(rec.doc.config.uuid);
    if (!job) throw new HostError('OPERATION_INVALID', `no job is active on domain '${rec.doc.config.name}'`);
    await job.abort();
    return { ...job.info };
  }

  // ---- devices ----

  /** virsh change-media: a CD-ROM's medium; `source` inserts (or replaces), none ejects. */
  async changeMedia(ref: string, p: { target: string; source?: string; eject: boolean; live: boolean; config: boolean }): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    if (p.eject === (p.source !== undefined)) throw new HostError('INVALID_ARG', p.eject ? 'eject takes no source image' : 'a source image is required to insert or update the medium');
    const source = p.source === undefined ? undefined : path.resolve(p.source);
    if (source) checkSourceImage(source);
    const { live, config } = this.scope(rec, p);
    // Both edits are checked before either is made.
    const liveDoc = live ? parseDomainXml(serializeDomainXml(rec.liveDoc!)) : undefined;
    const disk = liveDoc && setMedia(liveDoc, p.target, source);
    if (disk) {
      const drive = rec.liveDoc!.config.disks.find((d) => d.device === 'cdrom');
      if (!rec.live!.changeMedia || drive?.target !== disk.target) {
        throw new HostError('OPERATION_UNSUPPORTED', `the ${this.engines.driverFor(rec.liveDoc ?? rec.doc).driver.engine} engine can change the medium of the first CD-ROM drive only${drive ? ` (${drive.target})` : ''}; use --config`);
      }
    }
    const draft = config ? parseDomainXml(serializeDomainXml(rec.doc)) : undefined;
    if (draft) setMedia(draft, p.target, source);
    await this.configThenLive(rec, draft, async () => {
      if (!disk) return;
      await rec.live!.changeMedia!(source).catch((err: Error) => {
        throw new HostError('OPERATION_FAILED', `cannot change the medium of '${disk.target}': ${err.message}`);
      });
      rec.liveDoc = liveDoc;
    });
    this.emitLifecycle(rec, 'defined');
    return this.summary(rec);
  }

  /** virsh attach-disk; v86 cannot hot-plug, so --live is refused. */
  attachDisk(ref: string, p: NewDisk & { live: boolean; config: boolean }): { domain: DomainSummary; target: string } {
    const rec = this.lookup(ref);
    const { live, config } = this.scope(rec, p);
    if (live) throw new HostError('OPERATION_UNSUPPORTED', `${this.engines.driverFor(rec.liveDoc ?? rec.doc).driver.engine} cannot hot-plug disks, use --config`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    const target = addDisk(draft, { ...p, source: p.source === undefined ? undefined : path.resolve(p.source) });
    if (config) this.persist(rec, draft);
    this.emitLifecycle(rec, 'defined');
    return { domain: this.summary(rec), target };
  }

  /** virsh detach-disk; v86 cannot hot-unplug, so --live is refused. */
  detachDisk(ref: string, p: { target: string; live: boolean; config: boolean }): DomainSummary {
    const rec = this.lookup(ref);
    const { live, config } = this.scope(rec, p);
    if (live) throw new HostError('OPERATION_UNSUPPORTED', `${this.engines.driverFor(rec.liveDoc ?? rec.doc).driver.engine} cannot hot-unplug disks, use --config`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    removeDisk(draft, p.target);
    if (config) this.persist(rec, draft);
    this.emitLifecycle(rec, 'defined');
    return this.summary(rec);
  }

  /** Every domain's disks (the next-boot definition, and the running one while active). */
  diskUsers(): DiskUser[] {
    return [...this.domains.values()].flatMap((r) => {
      const base = { name: r.doc.config.name, uuid: r.doc.config.uuid };
      const users: DiskUser[] = [{ ...base, running: false, disks: r.doc.config.disks }];
      if (r.live && r.liveDoc) users.push({ ...base, running: true, disks: r.liveDoc.config.disks });
      return users;
    });
  }

  /** virsh's --live/--config/--current (with virsh's errors): neither flag means the running domain if active, else the definition. */
  private scope(rec: DomainRecord, p: { live: boolean; config: boolean }): { live: boolean; config: boolean } {
    let { live, config } = p;
    if (!live && !config) {
      live = Boolean(rec.live);
      config = !rec.live;
    }
    if (live && !rec.live) throw new HostError('OPERATION_INVALID', 'domain is not running');
    if (config && !rec.persistent) throw new HostError('OPERATION_INVALID', 'cannot change persistent config of a transient domain');
    return { live, config };
  }

  // ---- console ----

  xml(ref: string, opts: { inactive?: boolean; secure?: boolean } = {}): { xml: string; generation: number } {
    const rec = this.lookup(ref);
    const live = !opts.inactive && rec.liveDoc !== undefined;
    const xml = dumpDomainXml(live ? rec.liveDoc! : rec.doc, { secure: opts.secure ?? false, vncTcp: live ? rec.live?.vncTcp : undefined });
    return { xml, generation: rec.generation };
  }

  info(ref: string): DomainInfo {
    const rec = this.lookup(ref);
    const doc = rec.liveDoc ?? rec.doc;
    return {
      ...this.summary(rec),
      osType: doc.config.os.type,
      cpuTimeMs: rec.cpuTimeMs,
      config: redact(doc.config),
      warnings: rec.warnings,
    };
  }

  async screenshot(ref: string): Promise<{ png: Buffer; width: number; height: number }> {
    return this.requireLive(this.lookup(ref)).screenshot();
  }

  async sendKeys(ref: string, keys: { text?: string; scancodes?: number[] }): Promise<void> {
    const live = this.requireLive(this.lookup(ref));
    if (keys.text !== undefined) await live.sendText(keys.text);
    if (keys.scancodes !== undefined) await live.sendScancodes(keys.scancodes);
  }

  async serialWrite(ref: string, data: Buffer): Promise<void> {
    await this.requireLive(this.lookup(ref)).serialWrite(data);
  }

  /** What a newly opened serial viewer sees first: the recent output of this boot. */
  serialHistory(ref: string): { uuid: string; history: Buffer } {
    const rec = this.lookup(ref);
    this.requireLive(rec);
    return { uuid: rec.doc.config.uuid, history: Buffer.concat(rec.serialHistory) };
  }

  vncSocket(ref: string): string {
    return this.requireLive(this.lookup(ref)).vncSocket;
  }

  /** The VNC password a Domus client needs for a running domain (passwd= of its live definition). */
  vncPassword(ref: string): string | undefined {
    const rec = this.lookup(ref);
    this.requireLive(rec);
    return (rec.liveDoc ?? rec.doc).config.graphics.find((g) => g.type === 'vnc')?.passwd || undefined;
  }

  /** virsh vncdisplay: the TCP listener as "address:display", else the unix socket. */
  vncDisplay(ref: string): VncDisplay {
    const live = this.requireLive(this.lookup(ref));
    const out: VncDisplay = { socket: live.vncSocket, passwordRequired: this.vncPassword(ref) !== undefined };
    if (live.vncTcp) {
      const { address, port } = live.vncTcp;
      out.tcp = { address, port };
      // As virsh prints it: a wildcard address is left out, IPv6 is bracketed; a port below 5900 has
      // no display number and is written with VNC's double colon.
      const host = address === '0.0.0.0' || address === '::' ? '' : address.includes(':') ? `[${address}]` : address;
      out.display = port >= VNC_PORT_BASE ? `${host}:${port - VNC_PORT_BASE}` : `${host}::${port}`;
    }
    return out;
  }

  /** virsh send-key: the keys pressed in order, held, then released in reverse order. */
  async sendKey(ref: string, req: { codeset: Codeset; holdtimeMs?: number; keycodes: (string | number)[] }): Promise<void> {
    const live = this.requireLive(this.lookup(ref));
    let keys: number[];
    try {
      keys = req.keycodes.map((k) => keyFromCode(req.codeset, k));
    } catch (err) {
      if (err instanceof KeycodeError) throw new HostError('INVALID_ARG', err.message);
      throw err;
    }
    const { press, release } = sendKeySequence(keys);
    await live.sendScancodes(press);
    await new Promise((r) => setTimeout(r, req.holdtimeMs ?? SEND_KEY_HOLD_MS));
    await live.sendScancodes(release);
  }

  // ---- memory balloon and statistics ----

  /**
   * virsh setmem: the balloon target (<currentMemory>). --live moves the running guest's balloon (the
   * guest follows; `domain.balloon` events report what it holds), --config the next boot's
   * definition; neither means --current (live when running, else config).
   */
  async setMemory(ref: string, edit: { sizeKiB: number; live: boolean; config: boolean }): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    const name = rec.doc.config.name;
    const { live, config } = this.scope(rec, edit);
    const check = (doc: DomainDocument, floorKiB: number, why: string): void => {
      if (edit.sizeKiB > doc.config.memoryKiB) {
        throw new HostError('INVALID_ARG', `cannot set memory higher than max memory (${edit.sizeKiB} KiB > ${doc.config.memoryKiB} KiB)`);
      }
      if (edit.sizeKiB < Math.min(floorKiB, doc.config.memoryKiB)) {
        throw new HostError('INVALID_ARG', `cannot set memory of '${name}' below ${Math.min(floorKiB, doc.config.memoryKiB)} KiB (${why})`);
      }
    };
    if (live) {
      const liveDoc = rec.liveDoc ?? rec.doc;
      if (!liveDoc.config.balloon) {
        throw new HostError('OPERATION_INVALID', `Unable to change memory of active domain '${name}' without the balloon device`);
      }
      const now = await this.requireLive(rec).balloonInfo(true);
      rec.balloon = now;
      const floor = balloonFloorKiB(now);
      check(liveDoc, floor.kib, floor.why);
    }
    if (config) check(rec.doc, BALLOON_MIN_KiB, `the least a guest is given, ${BALLOON_MIN_KiB} KiB`);
    const configDraft = config ? parseDomainXml(serializeDomainXml(rec.doc)) : undefined;
    if (configDraft) setMemory(configDraft, { currentMemoryKiB: edit.sizeKiB });
    await this.configThenLive(rec, configDraft, async () => {
      if (!live) return;
      // Beyond what v86 runs (above 2047 MiB) the guest has less than <memory>: the target is capped there.
      rec.balloon = await this.requireLive(rec).setBalloonTarget(Math.min(edit.sizeKiB, rec.balloon?.maxKiB ?? edit.sizeKiB));
      const draft = parseDomainXml(serializeDomainXml(rec.liveDoc ?? rec.doc));
      setMemory(draft, { currentMemoryKiB: edit.sizeKiB });
      rec.liveDoc = draft;
    });
    this.emitLifecycle(rec, 'defined');
    return this.summary(rec);
  }

  /**
   * virsh setmaxmem: <memory>, the guest RAM at boot. v86 cannot add or remove RAM in a running
   * guest (its wasm memory is sized at start), so only the definition changes (--config).
   */
  setMaxMemory(ref: string, edit: { sizeKiB: number; live: boolean; config: boolean }): DomainSummary {
    const rec = this.lookup(ref);
    const name = rec.doc.config.name;
    let { live, config } = edit;
    if (!live && !config) {
      live = Boolean(rec.live);
      config = !rec.live;
    }
    if (live) {
      if (!rec.live) throw new HostError('OPERATION_INVALID', 'domain is not running');
      throw new HostError(
        'OPERATION_INVALID',
        `cannot resize the maximum memory on an active domain: ${this.engines.driverFor(rec.doc).driver.engine} sizes guest RAM at boot; use --config (next boot), or setmem to move the balloon`,
      );
    }
    if (config && !rec.persistent) throw new HostError('OPERATION_INVALID', `cannot change persistent config of a transient domain '${name}'`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    try {
      setMemory(draft, { memoryKiB: edit.sizeKiB });
    } catch (err) {
      if (err instanceof DomainXmlError) throw new HostError('INVALID_ARG', err.message);
      throw err;
    }
    const support = this.engines.support(draft);
    if (support.errors.length) throw new HostError('INVALID_ARG', support.errors.join('; '));
    this.persist(rec, draft);
    rec.warnings = support.warnings;
    this.emitLifecycle(rec, 'defined');
    return this.summary(rec);
  }

  /** virsh dommemstat: the balloon and the guest's own statistics (asked fresh). */
  async memoryStats(ref: string): Promise<MemoryStats> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    const [balloon, stats] = await Promise.all([live.balloonInfo(true), live.stats()]);
    rec.balloon = balloon;
    const guest = balloon.guest;
    return {
      maxKiB: balloon.maxKiB,
      targetKiB: balloon.targetKiB,
      actualKiB: balloon.actualKiB,
      availableKiB: guest?.totalKiB,
      unusedKiB: guest?.freeKiB,
      usableKiB: guest?.availableKiB,
      diskCachesKiB: guest?.cachesKiB,
      rssKiB: Math.round(stats.rssBytes / 1024),
      balloon: balloon.status,
      hostReclaims: balloon.hostReclaims,
      lastUpdate: guest?.at,
    };
  }

  /** virsh domstats: one sample now (rates against the last sample taken, if any). */
  async statsSample(ref: string): Promise<DomainStatsSample> {
    const rec = this.lookup(ref);
    return this.sample(rec, false);
  }

  /** Fresh engine counters for dominfo's CPU time (no one may be sampling). */
  async refreshCpuTime(ref: string): Promise<void> {
    const rec = this.lookup(ref);
    const stats = await rec.live?.stats().catch(() => undefined);
    if (stats) rec.cpuTimeMs = stats.cpuTimeMs;
  }

  private async sampleDomains(uuids: Set<string> | undefined): Promise<void> {
    const recs = [...this.domains.values()].filter((r) => r.live && (!uuids || uuids.has(r.doc.config.uuid)));
    await Promise.all(
      recs.map(async (rec) => {
        const sample = await this.sample(rec, true).catch((err: Error) => log('warn', `statistics of '${rec.doc.config.name}': ${err.message}`));
        if (sample) this.emit('domain.stats', { uuid: sample.uuid, cpuPercent: sample.cpuPercent, rssBytes: sample.rssBytes, sample });
      }),
    );
  }

  private async sample(rec: DomainRecord, periodic: boolean): Promise<DomainStatsSample> {
    const c = (rec.liveDoc ?? rec.doc).config;
    const live = rec.live;
    const [stats, balloon] = live ? await Promise.all([live.stats(), live.balloonInfo(true)]) : [undefined, undefined];
    if (balloon) rec.balloon = balloon;
    const { sample, counters } = buildSample(
      { uuid: rec.doc.config.uuid, name: c.name, state: rec.state },
      stats,
      balloon,
      { maxKiB: c.memoryKiB, targetKiB: c.currentMemoryKiB },
      rec.lastSample,
    );
    if (stats) rec.cpuTimeMs = stats.cpuTimeMs;
    // A one-off domstats keeps the sampler's baseline, so that the GUI's rates stay per interval.
    if (counters && (periodic || !rec.lastSample)) {
      rec.lastSample = counters;
      if (periodic) rec.cpuPercent = sample.cpuPercent;
    }
    return sample;
  }

  // ---- host stop ----

  /**
   * Host stop (app quit, daemon stop): every running domain follows its policy: shutdown (clean,
   * forced after the timeout), save (managed save, restored at next start) or keep (left running).
   */
  async stopAll(timeoutSec = DEFAULT_SHUTDOWN_TIMEOUT_SEC): Promise<HostStopProgress[]> {
    const running = [...this.domains.values()].filter((r) => r.live);
    const progress: HostStopProgress[] = running.map((r) => ({
      uuid: r.doc.config.uuid,
      name: r.doc.config.name,
      policy: r.persistent ? onHostStop(r.liveDoc ?? r.doc) : onHostStop(r.doc) === 'keep' ? 'keep' : 'shutdown',
      step: 'pending',
    }));
    const report = (): void => void this.emit('host.stopping', { domains: progress.map((p) => ({ ...p })) });
    report();
    await Promise.all(
      progress.map(async (p) => {
        try {
          if (p.policy === 'keep') {
            this.lookup(p.uuid).live?.detach();
          } else if (p.policy === 'save') {
            p.step = 'saving';
            report();
            await this.managedSave(p.uuid);
          } else {
            p.step = 'shutting-down';
            report();
            const stopped = this.whenStopped(p.uuid);
            await this.shutdown(p.uuid, { timeoutSec });
            const end = await stopped;
            if (end.domain.reason === 'destroyed') {
              p.forced = true;
              p.message = end.detail;
            }
          }
          p.step = 'done';
        } catch (err) {
          p.step = 'failed';
          p.message = (err as Error).message;
          log('error', `host stop: '${p.name}' (${p.policy}) failed: ${p.message}`);
        }
        report();
      }),
    );
    return progress;
  }

  /** Drops every runner connection, leaving the guests running (a killed host does the same). */
  detachAll(): void {
    for (const rec of this.domains.values()) rec.live?.detach();
  }

  // ---- internals ----

  private async boot(rec: DomainRecord, opts: { paused?: boolean; restoreFrom?: string; liveXml?: string }): Promise<void> {
    const restoring = opts.restoreFrom !== undefined;
    const conflict = diskConflict(rec.doc.config.uuid, (opts.liveXml ? this.parse(opts.liveXml) : rec.doc).config.disks, this.diskUsers());
    if (conflict) throw new HostError('OPERATION_INVALID', conflict);
    this.setState(rec, rec.state, rec.reason, restoring ? 'restoring' : 'starting');
    let handle: LiveDomain;
    try {
      // While an install is pending, each boot runs the install-time definition (the media first).
      const liveDoc = opts.liveXml
        ? this.parse(opts.liveXml)
        : pendingInstall(rec.doc)
          ? installTimeDocument(rec.doc)
          : parseDomainXml(serializeDomainXml(rec.doc));
      handle = await this.engines.driverFor(liveDoc).driver.start(liveDoc, { paused: opts.paused, restoreFrom: opts.restoreFrom });
      rec.liveDoc = liveDoc;
      rec.startNotes = this.engines.startNotes(liveDoc);
    } catch (err) {
      this.setState(rec, 'shutoff', restoring ? rec.reason : 'failed', null);
      throw new HostError('OPERATION_FAILED', (err as Error).message);
    }
    rec.serialHistory = [];
    rec.serialHistoryBytes = 0;
    this.adopt(rec, handle);
    rec.state = handle.state;
    rec.reason = opts.paused ? 'user' : restoring ? 'restored' : 'booted';
    rec.step = null;
    this.emitLifecycle(rec, opts.paused ? 'suspended' : 'started');
  }

  private beginJob(rec: DomainRecord, operation: JobInfo['operation'], onAbort: () => Promise<void>): JobHandle {
    try {
      return this.jobs.begin(rec.doc.config.uuid, rec.doc.config.name, operation, onAbort);
    } catch (err) {
      if (err instanceof JobError) throw new HostError('OPERATION_INVALID', err.message);
      throw err;
    }
  }

  private parse(xml: string): DomainDocument {
    try {
      const doc = parseDomainXml(xml);
      ensureUuid(doc, randomUUID);
      return doc;
    } catch (err) {
      if (err instanceof DomainXmlError) throw new HostError('XML_ERROR', err.message);
      throw err;
    }
  }

  private supported(doc: DomainDocument): { warnings: DefinitionWarning[] } {
    const support = this.engines.support(doc);
    if (support.errors.length) throw new HostError('CONFIG_UNSUPPORTED', support.errors.join('; '));
    return support;
  }

  /** The record this definition would replace; an error when name and UUID point at different domains. */
  private clash(config: DomainConfig): DomainRecord | undefined {
    const byName = [...this.domains.values()].find((r) => r.doc.config.name === config.name);
    const byUuid = this.domains.get(config.uuid);
    if (byName && byName.doc.config.uuid !== config.uuid) {
      throw new HostError('OPERATION_FAILED', `domain '${config.name}' already exists with uuid ${byName.doc.config.uuid}`);
    }
    if (byUuid && byUuid.doc.config.name !== config.name) {
      throw new HostError('OPERATION_FAILED', `domain '${byUuid.doc.config.name}' is already defined with uuid ${config.uuid}`);
    }
    return byUuid;
  }

  private conflict(rec: DomainRecord, expected: number): HostError {
    return new HostError(
      'DEFINITION_CHANGED',
      `domain '${rec.doc.config.name}' was changed by another client since you loaded it (your copy is generation ${expected}, the host has ${rec.generation}); reload it and make your change again`,
    );
  }

  private requireLive(rec: DomainRecord): LiveDomain {
    if (!rec.live) throw new HostError('OPERATION_INVALID', `domain '${rec.doc.config.name}' is not running`);
    return rec.live;
  }

  private adopt(rec: DomainRecord, handle: LiveDomain): void {
    rec.live = handle;
    rec.id = this.nextId++;
    rec.cpuPercent = 0;
    rec.lastSample = undefined;
    rec.balloon = undefined;
    rec.stopping = undefined;
    const serial = (data: Buffer): void => {
      if (!data.length) return;
      this.appendSerial(rec, data);
      this.emit('domain.serial', { uuid: rec.doc.config.uuid, data: data.toString('base64') });
    };
    handle.on('serial', serial);
    serial(handle.takeSerialBacklog());
    handle.on('state', (state) => {
      if (rec.step === 'saving') return;
      this.setState(rec, state, state === 'paused' ? 'user' : 'unpaused', rec.step);
      this.emitLifecycle(rec, state === 'paused' ? 'suspended' : 'resumed');
    });
    handle.on('rebooted', () => {
      this.emitLifecycle(rec, 'rebooted');
      // The installer's reboot: the install is over, the next boot is the final definition's.
      if (rec.live === handle && rec.liveDoc && pendingInstall(rec.liveDoc) && this.finishInstall(rec)) {
        rec.restartAfterInstall = true;
        rec.stopping = 'shutdown';
        void handle.destroy();
      }
    });
    handle.on('balloon', (b) => {
      rec.balloon = b;
      this.emit('domain.balloon', { uuid: rec.doc.config.uuid, name: rec.doc.config.name, actualKiB: b.actualKiB });
    });
    handle.on('exit', ({ reason, detail }) => {
      clearTimeout(rec.shutdownTimer);
      // Our own destroy wins over what the runner saw; a guest power-off during a shutdown is 'shutdown'.
      const why: StateReason = rec.stopping === 'saved' ? 'saved' : rec.stopping ?? reason;
      if (why === 'shutdown' && rec.liveDoc && pendingInstall(rec.liveDoc)) this.finishInstall(rec);
      const restart = rec.restartAfterInstall;
      rec.restartAfterInstall = undefined;
      rec.live = undefined;
      rec.liveDoc = undefined;
      rec.id = undefined;
      rec.cpuPercent = 0;
      rec.stopping = undefined;
      const stopDetail = why === 'destroyed' ? rec.stopDetail : why === 'crashed' ? detail : undefined;
      rec.stopDetail = undefined;
      if (detail && why === 'crashed') log('warn', `domain '${rec.doc.config.name}' crashed: ${detail}`);
      this.setState(rec, 'shutoff', why, null);
      if (why === 'shutdown') this.emitLifecycle(rec, 'shutdown');
      this.emitLifecycle(rec, why === 'crashed' ? 'crashed' : 'stopped', stopDetail);
      if (why === 'crashed') this.emitLifecycle(rec, 'stopped', stopDetail);
      if (!rec.persistent) {
        this.domains.delete(rec.doc.config.uuid);
        this.emit('domain.undefined', { uuid: rec.doc.config.uuid, name: rec.doc.config.name });
      } else if (restart) {
        this.start(rec.doc.config.uuid).catch((err: Error) => log('error', `start of '${rec.doc.config.name}' after its install failed: ${err.message}`));
      }
    });
  }

  /**
   * The install is over: the persistent definition loses its pending-install note. False when the
   * definition could not be written (a full disk): it keeps the note, and the error is logged,
   * since this runs on the runner's events with no caller to tell.
   */
  private finishInstall(rec: DomainRecord): boolean {
    if (!pendingInstall(rec.doc)) return true;
    try {
      this.persist(rec, completeInstall(rec.doc));
    } catch (err) {
      log('error', `domain '${rec.doc.config.name}': install finished, but the final definition could not be saved: ${(err as Error).message}`);
      return false;
    }
    log('info', `domain '${rec.doc.config.name}': install finished, next boot from the final definition`);
    return true;
  }

  private setState(rec: DomainRecord, state: DomainState, reason: StateReason, step: DomainStep, detail?: string): void {
    const changedStep = rec.step !== step;
    rec.state = state;
    rec.reason = reason;
    rec.step = step;
    if (changedStep && (step || detail)) this.emitLifecycle(rec, 'step', detail);
  }

  private appendSerial(rec: DomainRecord, data: Buffer): void {
    if (!data.length) return;
    rec.serialHistory.push(data);
    rec.serialHistoryBytes += data.length;
    while (rec.serialHistoryBytes > SERIAL_HISTORY_BYTES && rec.serialHistory.length > 1) {
      rec.serialHistoryBytes -= rec.serialHistory.shift()!.length;
    }
  }

  private emitLifecycle(rec: DomainRecord, event: LifecycleEvent, detail?: string): void {
    this.emit('domain.lifecycle', detail ? { domain: this.summary(rec), event, detail } : { domain: this.summary(rec), event });
  }

  private newRecord(doc: DomainDocument, persistent: boolean): DomainRecord {
    return {
      doc,
      generation: generation(doc),
      warnings: this.engines.support(doc).warnings,
      persistent,
      state: 'shutoff',
      // What a new host can know of a domain it did not stop: a managed save means it was saved.
      reason: fs.existsSync(this.managedSavePath(doc.config.uuid)) ? 'saved' : 'unknown',
      step: null,
      cpuPercent: 0,
      cpuTimeMs: 0,
      serialHistory: [],
      serialHistoryBytes: 0,
    };
  }

  private summary(rec: DomainRecord): DomainSummary {
    const c = (rec.liveDoc ?? rec.doc).config;
    const uuid = rec.doc.config.uuid;
    return {
      uuid,
      name: c.name,
      id: rec.id,
      state: rec.state,
      reason: rec.reason,
      step: rec.step,
      persistent: rec.persistent,
      engine: this.engines.driverFor(rec.liveDoc ?? rec.doc).driver.engine,
      memoryKiB: c.memoryKiB,
      currentMemoryKiB: c.currentMemoryKiB,
      vcpus: c.vcpus,
      cpuPercent: Math.round(rec.cpuPercent * 10) / 10,
      title: c.title,
      autostart: this.autostart(uuid),
      onHostStop: onHostStop(rec.doc),
      managedSave: fs.existsSync(this.managedSavePath(uuid)),
      generation: rec.generation,
    };
  }

  /**
   * An edit of both the definition and the running guest (--live --config): the file first, so that
   * a full disk changes nothing; if the guest then refuses, the definition goes back as it was.
   */
  private async configThenLive(rec: DomainRecord, draft: DomainDocument | undefined, liveChange: () => Promise<void>): Promise<void> {
    const before = rec.doc;
    if (draft) this.persist(rec, draft);
    try {
      await liveChange();
    } catch (err) {
      if (draft) {
        try {
          this.persist(rec, before);
        } catch (undo) {
          log('error', `domain '${rec.doc.config.name}': the definition keeps a change the running guest refused: ${(undo as Error).message}`);
        }
      }
      throw err;
    }
  }

  /**
   * Makes `doc` the domain's persistent definition, on disk first (atomically): when the write
   * fails the record keeps its definition. `persistent` says whether there is a file to write.
   */
  private persist(rec: DomainRecord, doc: DomainDocument, persistent = rec.persistent): void {
    const xml = serializeDomainXml(doc);
    if (persistent) writeHostFile(this.definitionPath(doc.config.uuid), xml);
    rec.doc = doc;
    rec.generation = generationOf(xml);
  }

  private autostart(uuid: string): boolean {
    return fs.existsSync(this.autostartPath(uuid));
  }

  private get autostartDir(): string {
    return this.paths.autostart;
  }

  private get saveDir(): string {
    return this.paths.saves;
  }

  private definitionPath(uuid: string): string {
    return path.join(this.paths.domains, `${uuid}.xml`);
  }

  private autostartPath(uuid: string): string {
    return path.join(this.autostartDir, uuid);
  }

  managedSavePath(uuid: string): string {
    return path.join(this.saveDir, `${uuid}.state`);
  }
}

/**
 * The lowest target a running guest accepts: 64 MiB, and never less than what the guest uses now
 * plus headroom. From the guest's own statistics: it holds `actual`, of which `MemAvailable` could be
 * given up; the rest (kernel reservations, unreclaimable use) stays.
 */
function balloonFloorKiB(b: BalloonInfo): { kib: number; why: string } {
  const available = b.guest?.availableKiB;
  const need = available === undefined ? 0 : b.actualKiB - available + BALLOON_HEADROOM_KiB;
  if (need > BALLOON_MIN_KiB) return { kib: need, why: `the guest uses ${b.actualKiB - available!} KiB now, plus ${BALLOON_HEADROOM_KiB} KiB headroom` };
  return { kib: BALLOON_MIN_KiB, why: `the least a guest is given, ${BALLOON_MIN_KiB} KiB` };
}

/** A definition's generation: a hash of its text, so it survives host restarts without a counter. */
function generation(doc: DomainDocument): number {
  return generationOf(serializeDomainXml(doc));
}

function generationOf(xml: string): number {
  return createHash('sha256').update(xml).digest().readUInt32BE(0);
}

/** Writes one of the host's own files atomically; a failure (a full disk) is an error naming the file. */
function writeHostFile(file: string, data: string): void {
  try {
    writeFileAtomic(file, data);
  } catch (err) {
    throw err instanceof FileWriteError ? new HostError('SYSTEM_ERROR', err.message) : err;
  }
}

/** Removes one of the host's own files (none there is fine), durably: the directory is fsynced. */
function removeFile(file: string): void {
  try {
    try {
      fs.unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const dfd = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (err) {
    throw new HostError('SYSTEM_ERROR', `cannot remove '${file}': ${systemErrorText(err)}`);
  }
}

/** Secrets never leave the host in clear (VNC passwords). */
function redact(config: DomainConfig): DomainConfig {
  return { ...config, graphics: config.graphics.map((g) => (g.passwd ? { ...g, passwd: '********' } : g)) };
}
