// Save, restore, managed save, core dumps and jobs on a libvirt connection. libvirt's save, restore and dump calls
// answer only when the job is over; while one runs, its statistics (virDomainGetJobStats) are
// polled and sent as job.progress, and its end as job.completed, so that clients see the same
// job events as for the host's own engines (jobs/save-restore.ts): the answer, as there, carries
// the finished job (completed, or aborted by domain.jobAbort).
import type { DomainSummary, JobInfo } from '../../../shared/api.js';
import { parseDomainXml } from '../domain/xml.js';
import { HostError, operationInvalid } from '../errors.js';
import type { DumpOptions } from '../jobs/core-dump.js';
import type { remote_typed_param } from '../libvirt/protocol/remote.js';
import { statFields } from './libvirt-domstats.js';
import { uuidText, type LibvirtConnection, type LibvirtMethods, type NonnullDomain } from './libvirt.js';

/** How often a running job's statistics are read for job.progress. */
const POLL_MS = 500;
/** virDomainGetJobStatsFlags. */
const JOB_STATS_COMPLETED = 1;
/** virDomainJobType. */
const JOB_NONE = 0;
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

interface Tracked {
  info: JobInfo;
  dom: NonnullDomain;
  /** Job events go out only for a job libvirt can have started (not for a save of a shut-off domain, which libvirt refuses at once). */
  announced: boolean;
  abortRequested: boolean;
  sampling: boolean;
}

/** libvirt's job statistics as JobInfo's numbers (save and dump report data_*, migration memory_*). */
interface Stats {
  type: number;
  operation?: number;
  elapsedMs?: number;
  processedBytes?: number;
  totalBytes?: number;
  error?: string;
}

function statsOf(ret: { type: number; params: remote_typed_param[] }): Stats {
  const field = statFields(ret.params);
  const num = (...names: string[]): number | undefined => names.map((n) => field.get(n)).find((v): v is number => typeof v === 'number');
  const errmsg = field.get('errmsg');
  return {
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

  constructor(private readonly conn: LibvirtConnection) {}

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

  /** Runs the job's call while its statistics are polled; the answer is the finished job. */
  private async follow(job: Tracked, run: () => Promise<unknown>): Promise<JobInfo> {
    const timer = setInterval(() => void this.sample(job), POLL_MS);
    try {
      await run();
    } catch (err) {
      clearInterval(timer);
      const aborted = job.abortRequested || (err instanceof HostError && err.code === 'OPERATION_ABORTED');
      const info = this.finish(job, aborted ? 'aborted' : 'failed', (err as Error).message);
      if (aborted) return info;
      throw err;
    }
    clearInterval(timer);
    // The statistics of the finished job, where libvirt kept them (the domain may be gone).
    const stats = await this.stats(job.dom, JOB_STATS_COMPLETED).catch(() => undefined);
    if (stats?.totalBytes) [job.info.processedBytes, job.info.totalBytes] = [stats.processedBytes ?? stats.totalBytes, stats.totalBytes];
    else job.info.processedBytes = job.info.totalBytes;
    return this.finish(job, 'completed');
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
      if (job.announced) this.conn.emitEvent('job.progress', { job: { ...job.info } });
    } finally {
      job.sampling = false;
    }
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
    'domain.jobInfo': (p) => jobs.jobInfo(p.domain!, p.completed === true),
    'domain.jobAbort': (p) => jobs.abort(p.domain!),
  };
}
