// Save, restore, managed save, core dumps and jobs on a libvirt connection. libvirt's save, restore and dump calls
// answer only when the job is over; while one runs, its statistics (virDomainGetJobStats) are
// polled and sent as job.progress, and its end as job.completed, so that clients see the same
// job events as for the host's own engines (jobs/save-restore.ts): the answer, as there, carries
// the finished job (completed, or aborted by domain.jobAbort).
// Migration is libvirt's own, peer to peer as virt-manager does it: the source libvirtd opens the
// destination URI itself and runs begin/prepare/perform/finish/confirm, one call for Domus.
import type { DomainSummary, JobInfo, MigrationOutcome, ParsedParams, Results } from '../../../shared/api.js';
import { parseDomainXml } from '../domain/xml.js';
import { HostError, invalidArg, operationInvalid } from '../errors.js';
import type { DumpOptions } from '../jobs/core-dump.js';
import type { remote_typed_param } from '../libvirt/protocol/remote.js';
import { statFields } from './libvirt-domstats.js';
import { LOCAL_URIS } from './manager.js';
import { uuidText, type LibvirtConnection, type LibvirtMethods, type NonnullDomain } from './libvirt.js';

/** How often a running job's statistics are read for job.progress. */
const POLL_MS = 500;
/** virDomainGetJobStatsFlags. */
const JOB_STATS_COMPLETED = 1;
/** virDomainJobType. */
const JOB_NONE = 0;
const JOB_COMPLETED = 3;
const JOB_STATUS: Record<number, JobInfo['status']> = { 1: 'running', 2: 'running', 3: 'completed', 4: 'failed', 5: 'aborted' };
/** virDomainJobOperation, as JobInfo names them (a snapshot's revert and delete are snapshot jobs). */
const JOB_OPERATIONS: Record<number, JobInfo['operation']> = { 1: 'start', 2: 'save', 3: 'restore', 4: 'migrate', 5: 'migrate', 6: 'snapshot', 7: 'snapshot-revert', 8: 'dump', 9: 'backup', 10: 'snapshot' };
/** virDomainSaveRestoreFlags. */
const SAVE_PAUSED = 4;
/** virDomainCoreDumpFlags. */
const DUMP_CRASH = 1;
const DUMP_LIVE = 2;
const DUMP_RESET = 8;
const DUMP_MEMORY_ONLY = 16;
/** virDomainCoreDumpFormat: a memory-only dump in libvirt's "raw" format is QEMU's ELF core. */
const DUMP_FORMAT_RAW = 0;
/** virDomainMigrateFlags (libvirt-domain.h). */
const MIGRATE_LIVE = 1 << 0;
const MIGRATE_PEER2PEER = 1 << 1;
const MIGRATE_PERSIST_DEST = 1 << 3;
const MIGRATE_UNDEFINE_SOURCE = 1 << 4;
const MIGRATE_NON_SHARED_DISK = 1 << 6;
const MIGRATE_POSTCOPY = 1 << 15;
/** virDomainEventID: the finished job's statistics, sent before a migrated domain leaves the source. */
const EVENT_ID_JOB_COMPLETED = 21;
/** How long the answer waits for that event after libvirt's call returned (they travel separately). */
const COMPLETED_EVENT_WAIT_MS = 5000;
/** virDomainState and virDomainPausedReason: paused by the migration (stop-and-copy) or in its post-copy phase. */
const STATE_PAUSED = 3;
const PAUSED_MIGRATION = 2;
const PAUSED_POSTCOPY = 12;
/** QEMU counts the first pass over RAM as iteration 1: at 2 it is over (virsh --postcopy-after-precopy). */
const FIRST_PASS_DONE = 2;

interface Tracked {
  info: JobInfo;
  dom: NonnullDomain;
  /** Job events go out only for a job libvirt can have started (not for a save of a shut-off domain, which libvirt refuses at once). */
  announced: boolean;
  abortRequested: boolean;
  sampling: boolean;
  /** A migration's own state: post-copy wanted and started, and libvirt's final statistics (its job-completed event). */
  migration?: { postcopy: boolean; postcopyStarted: boolean; completed?: Stats; onCompleted?: () => void };
}

/** libvirt's job statistics as JobInfo's numbers (save and dump report data_*, migration memory_*). */
interface Stats {
  type: number;
  operation?: number;
  elapsedMs?: number;
  processedBytes?: number;
  totalBytes?: number;
  error?: string;
  remainingBytes?: number;
  iteration?: number;
  dirtyRateBytesPerSec?: number;
  downtimeMs?: number;
}

function statsOf(ret: { type: number; params: remote_typed_param[] }): Stats {
  const field = statFields(ret.params);
  const num = (...names: string[]): number | undefined => names.map((n) => field.get(n)).find((v): v is number => typeof v === 'number');
  const errmsg = field.get('errmsg');
  // libvirt counts the dirty rate in pages per second.
  const dirtyPages = num('memory_dirty_rate');
  return {
    remainingBytes: num('data_remaining', 'memory_remaining'),
    iteration: num('memory_iteration'),
    dirtyRateBytesPerSec: dirtyPages === undefined ? undefined : dirtyPages * (num('memory_page_size') ?? 4096),
    downtimeMs: num('downtime'),
    type: ret.type,
    operation: num('operation'),
    elapsedMs: num('time_elapsed'),
    processedBytes: num('data_processed', 'memory_processed'),
    totalBytes: num('data_total', 'memory_total'),
    error: typeof errmsg === 'string' ? errmsg : undefined,
  };
}

class LibvirtJobs {
  private nextId = 1;
  private readonly running = new Map<string, Tracked>();
  /** The last job each domain finished, as domjobinfo --completed shows it. */
  private readonly completed = new Map<string, JobInfo>();
  /** Jobs libvirt runs that another client started, numbered once while they last. */
  private readonly foreign = new Map<string, JobInfo>();

  constructor(private readonly conn: LibvirtConnection) {
    // Every open registers again: a reopened connection is a new client to libvirtd.
    conn.onOpen(async (rpc) => {
      rpc.onMessage('REMOTE_PROC_DOMAIN_EVENT_CALLBACK_JOB_COMPLETED', (msg) => this.jobCompleted(msg.dom.uuid, msg.params));
      await rpc.call('REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', { eventID: EVENT_ID_JOB_COMPLETED, dom: null });
    });
  }

  /** virsh save / managedsave: the file is a path on the libvirt host. */
  async save(ref: string, operation: 'save' | 'managedsave', file?: string): Promise<JobInfo> {
    const dom = await this.conn.lookup(ref);
    const active = Boolean((await this.conn.rpcCall('REMOTE_PROC_DOMAIN_IS_ACTIVE', { dom })).active);
    const job = this.begin(dom, operation, active);
    const run =
      operation === 'save'
        ? () => this.conn.rpcCall('REMOTE_PROC_DOMAIN_SAVE_FLAGS', { dom, to: file!, dxml: null, flags: 0 })
        : () => this.conn.rpcCall('REMOTE_PROC_DOMAIN_MANAGED_SAVE', { dom, flags: 0 });
    return this.follow(job, run);
  }

  /** virsh dump --memory-only: libvirtd has QEMU write the ELF core to `file`, a path on the libvirt host. */
  async coreDump(ref: string, file: string, opts: DumpOptions): Promise<{ job: JobInfo; file: string }> {
    const dom = await this.conn.lookup(ref);
    const active = Boolean((await this.conn.rpcCall('REMOTE_PROC_DOMAIN_IS_ACTIVE', { dom })).active);
    const flags = DUMP_MEMORY_ONLY | (opts.live ? DUMP_LIVE : 0) | (opts.reset ? DUMP_RESET : 0) | (opts.crash ? DUMP_CRASH : 0);
    const job = await this.follow(this.begin(dom, 'dump', active), () =>
      this.conn.rpcCall('REMOTE_PROC_DOMAIN_CORE_DUMP_WITH_FORMAT', { dom, to: file, dumpformat: DUMP_FORMAT_RAW, flags }),
    );
    return { job, file };
  }

  /** virsh restore: the image names its domain, whose job it becomes. */
  async restore(file: string, paused: boolean): Promise<{ domain: DomainSummary; job: JobInfo }> {
    const xml = (await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SAVE_IMAGE_GET_XML_DESC', { file, flags: 0 })).xml as string;
    const { uuid, name } = parseDomainXml(xml).config;
    const dom: NonnullDomain = { name, uuid: Buffer.from(uuid.replace(/-/g, ''), 'hex'), id: -1 };
    const job = await this.follow(this.begin(dom, 'restore', true), () => this.conn.rpcCall('REMOTE_PROC_DOMAIN_RESTORE_FLAGS', { from: file, dxml: null, flags: paused ? SAVE_PAUSED : 0 }));
    return { domain: await this.conn.summary(await this.conn.lookup(uuid)), job };
  }

  /**
   * virsh migrate --p2p: the source libvirtd opens `destination` itself (so it is a URI that host
   * can reach) and moves the domain there. The answer comes when the guest runs there.
   */
  async migrate(p: ParsedParams<'domain.migrate'>): Promise<Results['domain.migrate']> {
    if (p.destination === this.conn.uri) throw invalidArg(`${p.destination} is the connection the domain is on; name another host as the destination`);
    if (LOCAL_URIS.has(p.destination)) throw invalidArg(`${p.destination} is this computer's own engines, which a libvirt host cannot reach; name a libvirt URI as the destination`);
    const dom = await this.conn.lookup(p.domain);
    const active = Boolean((await this.conn.rpcCall('REMOTE_PROC_DOMAIN_IS_ACTIVE', { dom })).active);
    const job = this.begin(dom, 'migrate', active);
    job.migration = { postcopy: p.postcopy, postcopyStarted: false };
    job.info.migration = { phase: 'begin', iteration: 0, remainingBytes: 0 };
    const flags =
      MIGRATE_PEER2PEER |
      (p.live ? MIGRATE_LIVE : 0) |
      (p.persistent ? MIGRATE_PERSIST_DEST : 0) |
      (p.undefineSource ? MIGRATE_UNDEFINE_SOURCE : 0) |
      (p.postcopy ? MIGRATE_POSTCOPY : 0) |
      (p.copyStorageAll ? MIGRATE_NON_SHARED_DISK : 0);
    const params: remote_typed_param[] = p.bandwidthMiBs ? [{ field: 'bandwidth', value: { type: 4, ul: BigInt(p.bandwidthMiBs) } }] : [];
    // virsh --timeout: the guest is paused, and what is left is copied while it stands still.
    const timeout = p.timeoutS ? setTimeout(() => void this.pauseForTimeout(job), p.timeoutS * 1000) : undefined;
    let info: JobInfo;
    try {
      info = await this.follow(job, () => this.conn.rpcCall('REMOTE_PROC_DOMAIN_MIGRATE_PERFORM3_PARAMS', { dom, dconnuri: p.destination, params, cookie_in: Buffer.alloc(0), flags }), {
        abortThrows: true,
        completed: () => this.migrationCompleted(job),
      });
    } finally {
      clearTimeout(timeout);
    }
    const m = info.migration!;
    const result: MigrationOutcome = {
      downtimeMs: m.downtimeMs ?? 0,
      totalMs: info.elapsedMs,
      transferredBytes: info.processedBytes,
      iterations: m.iteration,
      postcopy: job.migration.postcopyStarted,
    };
    return { job: info, destination: p.destination, result };
  }

  async managedSaveRemove(ref: string): Promise<{ domain: DomainSummary }> {
    const dom = await this.conn.lookup(ref);
    // libvirt removes nothing silently; the host's own engines refuse, and so does this.
    if (!(await this.conn.rpcCall('REMOTE_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE', { dom, flags: 0 })).result) {
      throw operationInvalid(`domain '${dom.name}' has no managed save image`);
    }
    await this.conn.rpcCall('REMOTE_PROC_DOMAIN_MANAGED_SAVE_REMOVE', { dom, flags: 0 });
    const domain = await this.conn.summary(dom);
    // libvirt sends no event for it; lists learn that the domain will boot afresh, as from the host's engines.
    this.conn.emitEvent('domain.lifecycle', { domain, event: 'defined' });
    return { domain };
  }

  async jobInfo(ref: string, completed: boolean): Promise<{ job: JobInfo | null }> {
    const dom = await this.conn.lookup(ref);
    const uuid = uuidText(dom.uuid);
    if (completed) {
      // Domus's record of the jobs it ran has their errors; libvirt's covers those others ran.
      const own = this.completed.get(uuid);
      if (own) return { job: { ...own } };
      const stats = await this.stats(dom, JOB_STATS_COMPLETED);
      return { job: stats ? this.foreignJob(dom, stats) : null };
    }
    const tracked = this.running.get(uuid);
    if (tracked) {
      tracked.info.elapsedMs = Date.now() - tracked.info.startedAt;
      return { job: { ...tracked.info } };
    }
    const stats = await this.stats(dom, 0);
    if (!stats) this.foreign.delete(uuid);
    return { job: stats ? this.foreignJob(dom, stats) : null };
  }

  /** virsh domjobabort: the job's call then ends with libvirt's "operation aborted". */
  async abort(ref: string): Promise<{ job: JobInfo }> {
    const dom = await this.conn.lookup(ref);
    const uuid = uuidText(dom.uuid);
    const tracked = this.running.get(uuid);
    const info = tracked ? tracked.info : (await this.jobInfo(ref, false)).job;
    if (tracked) tracked.abortRequested = true;
    try {
      await this.conn.rpcCall('REMOTE_PROC_DOMAIN_ABORT_JOB', { dom });
    } catch (err) {
      if (tracked) tracked.abortRequested = false;
      throw err;
    }
    if (!info) throw operationInvalid(`no job is active on domain '${dom.name}'`);
    return { job: { ...info } };
  }

  private begin(dom: NonnullDomain, operation: JobInfo['operation'], announced: boolean): Tracked {
    const uuid = uuidText(dom.uuid);
    const running = this.running.get(uuid);
    // libvirt would wait 30 s for the domain's job lock before refusing; the answer comes at once instead.
    if (running) throw operationInvalid(`domain '${dom.name}' already has a running job (${running.info.operation}, job ${running.info.id})`);
    const info: JobInfo = { id: this.nextId++, uuid, domain: dom.name, operation, status: 'running', startedAt: Date.now(), elapsedMs: 0, processedBytes: 0, totalBytes: 0 };
    const job: Tracked = { info, dom, announced, abortRequested: false, sampling: false };
    this.running.set(uuid, job);
    if (announced) this.conn.emitEvent('job.progress', { job: { ...info } });
    return job;
  }

  /**
   * Runs the job's call while its statistics are polled; the answer is the finished job (an aborted
   * one too, unless abortThrows: a migration answers libvirt's "operation aborted" as virsh prints it).
   */
  private async follow(job: Tracked, run: () => Promise<unknown>, opts: { abortThrows?: boolean; completed?: () => Promise<Stats | undefined> } = {}): Promise<JobInfo> {
    const timer = setInterval(() => void this.sample(job), POLL_MS);
    try {
      await run();
    } catch (err) {
      clearInterval(timer);
      const aborted = job.abortRequested || (err instanceof HostError && err.code === 'OPERATION_ABORTED');
      const info = this.finish(job, aborted ? 'aborted' : 'failed', (err as Error).message);
      if (aborted && !opts.abortThrows) return info;
      throw err;
    }
    clearInterval(timer);
    // The statistics of the finished job, where libvirt kept them (the domain may be gone).
    const stats = await (opts.completed ?? (() => this.stats(job.dom, JOB_STATS_COMPLETED)))().catch(() => undefined);
    if (stats?.totalBytes) [job.info.processedBytes, job.info.totalBytes] = [stats.processedBytes ?? stats.totalBytes, stats.totalBytes];
    else job.info.processedBytes = job.info.totalBytes;
    const m = job.info.migration;
    if (m) Object.assign(m, { phase: 'confirm', remainingBytes: 0, iteration: stats?.iteration ?? m.iteration, downtimeMs: stats?.downtimeMs });
    return this.finish(job, 'completed');
  }

  /**
   * The finished migration's statistics: libvirt sends them as the job-completed event just before
   * the domain leaves the source (a transient one is gone at once), apart from the call's answer.
   */
  private async migrationCompleted(job: Tracked): Promise<Stats | undefined> {
    const m = job.migration!;
    if (!m.completed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, COMPLETED_EVENT_WAIT_MS);
        m.onCompleted = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return m.completed ?? (await this.stats(job.dom, JOB_STATS_COMPLETED).catch(() => undefined));
  }

  private jobCompleted(rawUuid: Buffer, params: remote_typed_param[]): void {
    let uuid: string;
    try {
      uuid = uuidText(rawUuid);
    } catch {
      return;
    }
    const m = this.running.get(uuid)?.migration;
    if (!m) return;
    m.completed = statsOf({ type: JOB_COMPLETED, params });
    m.onCompleted?.();
  }

  /** virsh migrate --timeout: pauses the guest so that the copy converges (not once post-copy runs). */
  private async pauseForTimeout(job: Tracked): Promise<void> {
    if (job.info.status !== 'running' || job.migration?.postcopyStarted) return;
    await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SUSPEND', { dom: job.dom }).catch(() => undefined);
  }

  private async sample(job: Tracked): Promise<void> {
    if (job.sampling) return;
    job.sampling = true;
    try {
      const stats = await this.stats(job.dom, 0).catch(() => undefined);
      if (!stats || job.info.status !== 'running') return;
      job.info.elapsedMs = Date.now() - job.info.startedAt;
      if (stats.totalBytes !== undefined) job.info.totalBytes = stats.totalBytes;
      if (stats.processedBytes !== undefined) job.info.processedBytes = stats.processedBytes;
      if (job.info.migration) await this.sampleMigration(job, stats);
      if (job.announced) this.conn.emitEvent('job.progress', { job: { ...job.info } });
    } finally {
      job.sampling = false;
    }
  }

  /** A running migration's figures and phase; after its first pass, the switch to post-copy when asked for. */
  private async sampleMigration(job: Tracked, stats: Stats): Promise<void> {
    const m = job.info.migration!;
    if (stats.iteration !== undefined) m.iteration = stats.iteration;
    if (stats.remainingBytes !== undefined) m.remainingBytes = stats.remainingBytes;
    if (stats.dirtyRateBytesPerSec !== undefined) m.dirtyRateBytesPerSec = stats.dirtyRateBytesPerSec;
    const own = job.migration!;
    if (own.postcopy && !own.postcopyStarted && (stats.iteration ?? 0) >= FIRST_PASS_DONE) {
      own.postcopyStarted = true;
      try {
        await this.conn.rpcCall('REMOTE_PROC_DOMAIN_MIGRATE_START_POST_COPY', { dom: job.dom, flags: 0 });
      } catch {
        // Too late (the copy is completing): it finishes as pre-copy.
        own.postcopyStarted = false;
      }
    }
    const state = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_GET_STATE', { dom: job.dom, flags: 0 }).catch(() => undefined);
    const paused = state?.state === STATE_PAUSED;
    if (own.postcopyStarted || (paused && state.reason === PAUSED_POSTCOPY)) m.phase = 'postcopy';
    else if (paused && state.reason === PAUSED_MIGRATION) m.phase = 'stopcopy';
    else if (stats.totalBytes) m.phase = 'precopy';
  }

  private finish(job: Tracked, status: 'completed' | 'failed' | 'aborted', error?: string): JobInfo {
    job.info.status = status;
    job.info.elapsedMs = Date.now() - job.info.startedAt;
    if (error) job.info.error = error;
    this.running.delete(job.info.uuid);
    if (job.announced) {
      this.completed.set(job.info.uuid, { ...job.info });
      this.conn.emitEvent('job.completed', { job: { ...job.info } });
    }
    return { ...job.info };
  }

  /** libvirt's statistics of the domain's job, or undefined when it has none (or is not running). */
  private async stats(dom: NonnullDomain, flags: number): Promise<Stats | undefined> {
    let ret;
    try {
      ret = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_GET_JOB_STATS', { dom, flags });
    } catch (err) {
      if (err instanceof HostError && err.code === 'OPERATION_INVALID') return undefined;
      throw err;
    }
    const stats = statsOf(ret as { type: number; params: remote_typed_param[] });
    return stats.type === JOB_NONE ? undefined : stats;
  }

  /** A job this connection did not start, as libvirt describes it. */
  private foreignJob(dom: NonnullDomain, stats: Stats): JobInfo {
    const uuid = uuidText(dom.uuid);
    const status = JOB_STATUS[stats.type] ?? 'running';
    const elapsedMs = stats.elapsedMs ?? 0;
    const known = status === 'running' ? this.foreign.get(uuid) : undefined;
    const info: JobInfo = {
      id: known?.id ?? this.nextId++,
      uuid,
      domain: dom.name,
      operation: JOB_OPERATIONS[stats.operation ?? 0] ?? 'unknown',
      status,
      startedAt: known?.startedAt ?? Date.now() - elapsedMs,
      elapsedMs,
      processedBytes: stats.processedBytes ?? 0,
      totalBytes: stats.totalBytes ?? 0,
      ...(stats.error ? { error: stats.error } : {}),
    };
    if (status === 'running') this.foreign.set(uuid, info);
    return { ...info };
  }
}

export function jobMethods(conn: LibvirtConnection): LibvirtMethods {
  const jobs = new LibvirtJobs(conn);
  return {
    'domain.save': async (p) => ({ job: await jobs.save(p.domain!, 'save', p.file as string) }),
    'domain.managedSave': async (p) => ({ job: await jobs.save(p.domain!, 'managedsave') }),
    'domain.managedSaveRemove': (p) => jobs.managedSaveRemove(p.domain!),
    'domain.coreDump': (p) => jobs.coreDump(p.domain!, p.file as string, { live: p.live === true, reset: p.reset === true, crash: p.crash === true }),
    'domain.restore': (p) => jobs.restore(p.file as string, p.paused === true),
    'domain.migrate': (p) => jobs.migrate(p as unknown as ParsedParams<'domain.migrate'>),
    'domain.jobInfo': (p) => jobs.jobInfo(p.domain!, p.completed === true),
    'domain.jobAbort': (p) => jobs.abort(p.domain!),
  };
}
