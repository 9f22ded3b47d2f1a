// Jobs: libvirt's model of long operations (save, restore, managed save, …). One job per domain
// at a time, with progress, abort, and the record of the last completed one (domjobinfo --completed).
import { EventEmitter } from 'node:events';
import type { JobInfo } from '../../../shared/api.js';

export class JobError extends Error {}

export class JobHandle {
  private abortRequested = false;
  constructor(
    readonly info: JobInfo,
    private readonly owner: Jobs,
    private readonly onAbort: () => Promise<void>,
  ) {}

  get aborted(): boolean {
    return this.abortRequested;
  }

  progress(processedBytes: number, totalBytes: number): void {
    this.info.processedBytes = processedBytes;
    this.info.totalBytes = totalBytes;
    this.info.elapsedMs = Date.now() - this.info.startedAt;
    this.owner.emit('progress', { ...this.info });
  }

  finish(status: 'completed' | 'failed' | 'aborted', error?: string): JobInfo {
    this.info.status = status;
    this.info.elapsedMs = Date.now() - this.info.startedAt;
    if (error) this.info.error = error;
    this.owner.settle(this);
    return { ...this.info };
  }

  async abort(): Promise<void> {
    this.abortRequested = true;
    await this.onAbort();
  }
}

export class Jobs extends EventEmitter<{ progress: [JobInfo]; completed: [JobInfo] }> {
  private nextId = 1;
  private readonly active = new Map<string, JobHandle>();
  private readonly completed = new Map<string, JobInfo>();

  begin(uuid: string, domain: string, operation: JobInfo['operation'], onAbort: () => Promise<void>): JobHandle {
    const running = this.active.get(uuid);
    if (running) {
      throw new JobError(`domain '${domain}' already has a running job (${running.info.operation}, job ${running.info.id})`);
    }
    const info: JobInfo = {
      id: this.nextId++,
      uuid,
      domain,
      operation,
      status: 'running',
      startedAt: Date.now(),
      elapsedMs: 0,
      processedBytes: 0,
      totalBytes: 0,
    };
    const handle = new JobHandle(info, this, onAbort);
    this.active.set(uuid, handle);
    this.emit('progress', { ...info });
    return handle;
  }

  current(uuid: string): JobHandle | undefined {
    return this.active.get(uuid);
  }

  info(uuid: string, completed: boolean): JobInfo | null {
    if (completed) return this.completed.get(uuid) ?? null;
    const job = this.active.get(uuid);
    if (!job) return null;
    job.info.elapsedMs = Date.now() - job.info.startedAt;
    return { ...job.info };
  }

  settle(handle: JobHandle): void {
    this.active.delete(handle.info.uuid);
    this.completed.set(handle.info.uuid, { ...handle.info });
    this.emit('completed', { ...handle.info });
  }
}
