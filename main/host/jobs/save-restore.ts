// Save, managed save and restore: libvirt's jobs that move a guest's state to a file and back. One
// job per domain at a time, with progress and abort (an aborted save leaves the guest running).
import fs from 'node:fs';
import path from 'node:path';
import type { DomainSummary, JobInfo } from '../../../shared/api.js';
import { serializeDomainXml } from '../domain/xml.js';
import type { DriverRegistry } from '../drivers/registry.js';
import { HostError, invalidArg, operationFailed, operationInvalid } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import { removeHostFile, type DomainRecord, type DomainRegistry } from '../registry.js';
import { JobError, type JobHandle, type Jobs } from './tracker.js';

export class SaveRestore {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly drivers: DriverRegistry,
    private readonly lifecycle: Lifecycle,
    private readonly jobs: Jobs,
  ) {}

  /** Saves the guest's state to a file and stops it (shutoff/saved); abort leaves it running as before. */
  async save(ref: string, file: string, operation: 'save' | 'managedsave' = 'save'): Promise<JobInfo> {
    const rec = this.registry.lookup(ref);
    const live = this.registry.requireLive(rec);
    const target = path.resolve(file);
    const before = { state: rec.state, reason: rec.reason };
    const job = this.beginJob(rec, operation, () => live.abortJob());
    this.registry.setState(rec, 'paused', 'saving', 'saving');
    try {
      await live.save(target, { domainXml: serializeDomainXml(rec.liveDoc ?? rec.doc), name: rec.doc.config.name, uuid: rec.doc.config.uuid }, (done, total) => job.progress(done, total));
    } catch (err) {
      this.registry.setState(rec, before.state, before.reason, null);
      if (job.aborted) return job.finish('aborted', 'job aborted by the user');
      const info = job.finish('failed', (err as Error).message);
      throw operationFailed(`save of '${rec.doc.config.name}' failed: ${info.error}`);
    }
    rec.stopping = 'saved';
    await live.destroy();
    return job.finish('completed');
  }

  async managedSave(ref: string): Promise<JobInfo> {
    const rec = this.registry.lookup(ref);
    if (!rec.persistent) throw operationInvalid(`cannot do managed save for transient domain '${rec.doc.config.name}'`);
    return this.save(ref, this.registry.managedSavePath(rec.doc.config.uuid), 'managedsave');
  }

  managedSaveRemove(ref: string): DomainSummary {
    const rec = this.registry.lookup(ref);
    const file = this.registry.managedSavePath(rec.doc.config.uuid);
    if (!fs.existsSync(file)) throw operationInvalid(`domain '${rec.doc.config.name}' has no managed save image`);
    removeHostFile(file);
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  /** virsh restore: the state file names its domain; a domain not defined here comes back transient. */
  async restore(file: string, paused: boolean): Promise<{ domain: DomainSummary; job: JobInfo }> {
    const source = path.resolve(file);
    let header;
    try {
      header = this.drivers.forStateFile(source).readStateHeader(source);
    } catch (err) {
      throw invalidArg((err as Error).message);
    }
    // The file is untrusted: its header and its XML must name the same domain, and that domain must
    // not collide with another one here (same name under another uuid, or the reverse).
    const doc = this.registry.parse(header.domainXml);
    const { uuid, name } = doc.config;
    if (uuid !== header.uuid || name !== header.name) {
      throw invalidArg(`state file '${source}' is inconsistent: its header holds domain '${header.name}' (${header.uuid}) but its XML defines '${name}' (${uuid})`);
    }
    let rec: DomainRecord | undefined;
    try {
      rec = this.registry.clash(doc.config);
    } catch (err) {
      if (err instanceof HostError) throw new HostError(err.code, `cannot restore '${source}': ${err.detail}`);
      throw err;
    }
    if (!rec) {
      rec = this.registry.newRecord(doc, false);
      this.registry.add(rec);
    }
    if (rec.live || rec.step) throw operationInvalid(`domain '${rec.doc.config.name}' is already active`);
    const job = this.beginJob(rec, 'restore', async () => undefined);
    try {
      await this.lifecycle.boot(rec, { paused, restoreFrom: source, liveXml: header.domainXml });
    } catch (err) {
      if (!rec.persistent) this.registry.remove(header.uuid);
      job.finish('failed', (err as Error).message);
      throw err;
    }
    return { domain: this.registry.summary(rec), job: job.finish('completed') };
  }

  private beginJob(rec: DomainRecord, operation: JobInfo['operation'], onAbort: () => Promise<void>): JobHandle {
    try {
      return this.jobs.begin(rec.doc.config.uuid, rec.doc.config.name, operation, onAbort);
    } catch (err) {
      if (err instanceof JobError) throw operationInvalid(err.message);
      throw err;
    }
  }
}
