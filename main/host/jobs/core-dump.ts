// Guest core dumps (virsh dump --memory-only): an ELF core of a running, paused or panicked guest,
// written by its engine as a job (progress, abort, the completed record), and the dumps that
// <on_crash>coredump-destroy|coredump-restart</on_crash> makes of a guest that panicked.
import fs from 'node:fs';
import path from 'node:path';
import type { JobInfo } from '../../../shared/api.js';
import { ensurePrivateDir } from '../../common/fsutil.js';
import { invalidArg, operationFailed, operationInvalid } from '../errors.js';
import type { DomainRecord, DomainRegistry } from '../registry.js';
import { JobError, type Jobs } from './tracker.js';

export interface DumpOptions {
  /** Leave the guest running during the dump (otherwise a running guest is paused, then resumed). */
  live: boolean;
  /** Reset the guest after the dump. */
  reset: boolean;
  /** Stop the guest after the dump, with reason crashed. */
  crash: boolean;
}

export class CoreDumps {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly jobs: Jobs,
    /** Where crash dumps go (<home>/dump, as libvirt's /var/lib/libvirt/qemu/dump). */
    private readonly crashDir: string,
  ) {}

  async dump(ref: string, file: string, opts: DumpOptions): Promise<{ job: JobInfo; file: string }> {
    const rec = this.registry.lookup(ref);
    this.registry.requireLive(rec);
    const target = checkTarget(file);
    const job = await this.run(rec, target, opts);
    if (job.status === 'failed') throw operationFailed(`dump of '${rec.doc.config.name}' failed: ${job.error}`);
    return { job, file: target };
  }

  /** <on_crash>coredump-*</on_crash>: dumps the panicked guest to <home>/dump/NAME-<time>.core; the job says how it went. */
  async crashDump(rec: DomainRecord): Promise<{ file: string; job: JobInfo }> {
    ensurePrivateDir(this.crashDir);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = path.join(this.crashDir, `${rec.doc.config.name}-${stamp}.core`);
    return { file, job: await this.run(rec, file, { live: true, reset: false, crash: false }) };
  }

  private async run(rec: DomainRecord, file: string, opts: DumpOptions): Promise<JobInfo> {
    const live = this.registry.requireLive(rec);
    const name = rec.doc.config.name;
    let job;
    try {
      job = this.jobs.begin(rec.doc.config.uuid, name, 'dump', () => live.abortJob());
    } catch (err) {
      if (err instanceof JobError) throw operationInvalid(err.message);
      throw err;
    }
    const before = { state: rec.state, reason: rec.reason };
    // libvirt's paused/dumping while a guest is held for its dump; the engine's own pause and resume
    // events are not lifecycle changes then (lifecycle.ts skips them during the step).
    const pause = !opts.live && rec.state === 'running';
    this.registry.setState(rec, pause ? 'paused' : rec.state, pause ? 'dumping' : rec.reason, 'dumping');
    try {
      if (pause) await live.pause();
      await live.dump(file, (done, total) => job.progress(done, total));
      if (opts.reset) await live.reset();
    } catch (err) {
      if (job.aborted) return job.finish('aborted', 'job aborted by the user');
      return job.finish('failed', (err as Error).message);
    } finally {
      if (rec.live === live) {
        if (pause) await live.resume().catch(() => undefined);
        this.registry.setState(rec, before.state, before.reason, null);
      }
    }
    if (opts.crash && rec.live === live) {
      rec.stopping = 'crashed';
      rec.stopDetail = `dumped to ${file} and stopped (virsh dump --crash)`;
      await live.destroy();
    }
    return job.finish('completed');
  }
}

/** The dump's path, absolute, in a directory that exists, and not a directory itself. */
function checkTarget(file: string): string {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw invalidArg(`cannot write dump file '${target}': directory '${dir}' does not exist`);
  }
  if (!st.isDirectory()) throw invalidArg(`cannot write dump file '${target}': '${dir}' is not a directory`);
  if (fs.existsSync(target) && fs.statSync(target).isDirectory()) throw invalidArg(`cannot write dump file '${target}': it is a directory`);
  return target;
}
