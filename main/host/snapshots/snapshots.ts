// Domain snapshots (virsh snapshot-*), libvirt's model: a tree (a new snapshot's parent is the
// current one), one current snapshot, revert to any, delete re-parenting the children (or taking
// them along). The metadata is the host's (tree.ts); the engine moves the data (EngineSnapshots).
// Create and revert are jobs ('snapshot'), one per domain at a time like the others.
import fs from 'node:fs';
import path from 'node:path';
import type { Result, SnapshotInfo } from '../../../shared/api.js';
import { writeFileAtomic } from '../../common/fsutil.js';
import { dumpDomainXml, parseDomainXml, serializeDomainXml } from '../domain/xml.js';
import type { EngineSnapshots, LiveDomain, SnapshotRef } from '../drivers/driver.js';
import { HostError, noSnapshot, operationFailed, operationInvalid, operationUnsupported } from '../errors.js';
import { JobError, type JobHandle, type Jobs } from '../jobs/tracker.js';
import type { Lifecycle } from '../lifecycle.js';
import type { DomainRecord, DomainRegistry, HostEventBus } from '../registry.js';
import { descendants, SnapshotTree } from './tree.js';
import { parseSnapshotRequest, snapshotXml, type SnapshotMeta } from './xml.js';

const THUMBNAIL = 'thumbnail.png';

export interface CreateRequest {
  name?: string;
  description?: string;
  diskOnly: boolean;
  xml?: string;
}

export class Snapshots {
  constructor(
    readonly tree: SnapshotTree,
    private readonly registry: DomainRegistry,
    private readonly lifecycle: Lifecycle,
    private readonly jobs: Jobs,
    private readonly events: HostEventBus,
  ) {}

  /** The engine's snapshot support for a domain, or why it has none. */
  private engine(rec: DomainRecord): EngineSnapshots {
    const driver = this.registry.driverOf(rec);
    if (!driver.snapshots) throw operationUnsupported(`the ${driver.label} engine cannot take snapshots`);
    return driver.snapshots;
  }

  private refs(uuid: string, names: string[]): SnapshotRef[] {
    return names.map((name) => ({ dir: this.tree.dir(uuid, name), name }));
  }

  /** Why the page's buttons are off for this domain: undefined when snapshots can be taken now. */
  cannot(rec: DomainRecord): string | undefined {
    const driver = this.registry.driverOf(rec);
    if (!driver.snapshots) return `the ${driver.label} engine cannot take snapshots`;
    return driver.snapshots.cannot(rec.liveDoc ?? rec.doc, !!rec.live);
  }

  list(ref: string): Result<'snapshot.list'> {
    const rec = this.registry.lookup(ref);
    const uuid = rec.doc.config.uuid;
    const all = this.tree.list(uuid);
    const unavailable = this.cannot(rec);
    return { snapshots: all.map((m) => this.tree.info(uuid, m, all)), ...(unavailable && { unavailable }) };
  }

  info(ref: string, name?: string): SnapshotInfo {
    const uuid = this.registry.lookup(ref).doc.config.uuid;
    const wanted = name ?? this.tree.current(uuid);
    if (wanted === undefined) throw new HostError('NO_DOMAIN_SNAPSHOT', 'the domain does not have a current snapshot');
    return this.tree.info(uuid, this.tree.get(uuid, wanted));
  }

  /** snapshot-dumpxml: as stored, the domain without its VNC passwords (as virsh without --security-info). */
  xml(ref: string, name: string): string {
    const meta = this.tree.get(this.registry.lookup(ref).doc.config.uuid, name);
    return snapshotXml({ ...meta, domainXml: dumpDomainXml(parseDomainXml(meta.domainXml), { secure: false }) });
  }

  thumbnail(ref: string, name: string): Result<'snapshot.thumbnail'> {
    const uuid = this.registry.lookup(ref).doc.config.uuid;
    this.tree.get(uuid, name);
    const file = path.join(this.tree.dir(uuid, name), THUMBNAIL);
    return fs.existsSync(file) ? { png: fs.readFileSync(file).toString('base64') } : {};
  }

  async create(ref: string, req: CreateRequest): Promise<Result<'snapshot.create'>> {
    const rec = this.registry.lookup(ref);
    const uuid = rec.doc.config.uuid;
    const domain = rec.doc.config.name;
    const asked = req.xml ? parseSnapshotRequest(req.xml) : { name: req.name, description: req.description, diskOnly: req.diskOnly };
    const engine = this.engine(rec);
    if (!rec.persistent) throw operationInvalid(`cannot take a snapshot of transient domain '${domain}'`);
    if (rec.step) throw operationInvalid(`domain '${domain}' is ${rec.step}`);
    const live = rec.live;
    const doc = rec.liveDoc ?? rec.doc;
    const why = engine.cannot(doc, !!live);
    if (why) throw operationUnsupported(why);
    const name = asked.name ?? String(Math.floor(Date.now() / 1000));
    if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/.test(name)) throw new HostError('INVALID_ARG', `snapshot name '${name}' may hold letters, digits and _ . + - and must start with a letter or digit`);
    if (this.tree.has(uuid, name)) throw operationFailed(`domain moment ${name} already exists`);
    const others = this.tree.list(uuid).map((m) => m.name);
    const snap: SnapshotRef = { dir: this.tree.dir(uuid, name), name };
    const memory = !!live && !asked.diskOnly;
    const before = { state: rec.state, reason: rec.reason };
    const job = this.beginJob(rec, 'snapshot', async () => {
      throw operationInvalid('a snapshot cannot be aborted');
    });
    fs.mkdirSync(snap.dir, { recursive: true, mode: 0o700 });
    try {
      if (live) {
        this.registry.setState(rec, rec.state, rec.reason, 'snapshotting');
        // The moment's screen, for the Snapshots page.
        const shot = await live.screenshot().catch(() => undefined);
        if (shot) writeFileAtomic(path.join(snap.dir, THUMBNAIL), shot.png);
      }
      const taken = await engine.create({
        doc,
        snap,
        others: this.refs(uuid, others),
        live,
        memory,
        header: { domainXml: serializeDomainXml(doc), name: domain, uuid },
        onProgress: (done, total) => job.progress(done, total),
      });
      const meta: SnapshotMeta = {
        name,
        ...(asked.description && { description: asked.description }),
        state: asked.diskOnly ? 'disk-snapshot' : live ? (before.state === 'paused' ? 'paused' : 'running') : 'shutoff',
        parent: this.tree.current(uuid),
        createdAt: Math.floor(Date.now() / 1000),
        memory: taken.memory,
        disks: taken.disks,
        domainXml: serializeDomainXml(doc),
      };
      this.tree.write(uuid, meta);
      this.tree.setCurrent(uuid, name);
    } catch (err) {
      fs.rmSync(snap.dir, { recursive: true, force: true });
      if (live) this.endStep(rec, before.state, before.reason);
      job.finish('failed', (err as Error).message);
      if (err instanceof HostError) throw err;
      throw operationFailed(`snapshot '${name}' of '${domain}' failed: ${(err as Error).message}`);
    }
    if (rec.live) this.endStep(rec, before.state, before.reason);
    this.events.emit('snapshot.changed', { uuid, name: domain, snapshot: name, event: 'created' });
    return { snapshot: this.info(uuid, name), job: job.finish('completed') };
  }

  async revert(ref: string, name: string, opts: { running: boolean; paused: boolean }): Promise<Result<'snapshot.revert'>> {
    const rec = this.registry.lookup(ref);
    const uuid = rec.doc.config.uuid;
    const meta = this.tree.get(uuid, name);
    const engine = this.engine(rec);
    if (rec.step) throw operationInvalid(`domain '${rec.doc.config.name}' is ${rec.step}`);
    const snap: SnapshotRef = { dir: this.tree.dir(uuid, name), name };
    const others = this.refs(uuid, this.tree.list(uuid).map((m) => m.name).filter((n) => n !== name));
    const doc = parseDomainXml(meta.domainXml);
    const job = this.beginJob(rec, 'snapshot-revert', async () => {
      throw operationInvalid('a revert cannot be aborted');
    });
    try {
      if (meta.memory !== 'no' && engine.memoryRevert === 'state-file') {
        await this.stop(rec);
        await engine.revertDisks(doc, snap, others);
        await this.lifecycle.boot(rec, { restoreFrom: engine.memoryFile(snap), liveXml: meta.domainXml, paused: this.endsPaused(meta, opts) });
      } else if (meta.memory !== 'no') {
        if (!rec.live) await this.lifecycle.boot(rec, { paused: true, liveXml: meta.domainXml });
        const live = this.registry.requireLive(rec);
        this.registry.setState(rec, rec.state, rec.reason, 'snapshotting');
        await engine.loadLive(live, doc, snap);
        if (!this.endsPaused(meta, opts) && live.state === 'paused') await live.resume();
        if (this.endsPaused(meta, opts) && live.state === 'running') await live.pause();
      } else {
        await this.stop(rec);
        await engine.revertDisks(doc, snap, others);
        if (opts.running || opts.paused) await this.lifecycle.boot(rec, { paused: opts.paused });
      }
    } catch (err) {
      if (rec.step === 'snapshotting') this.endStep(rec, rec.state, rec.reason);
      job.finish('failed', (err as Error).message);
      if (err instanceof HostError) throw err;
      throw operationFailed(`revert of '${rec.doc.config.name}' to snapshot '${name}' failed: ${(err as Error).message}`);
    }
    if (rec.live) this.endStep(rec, rec.live.state, rec.live.state === 'paused' ? 'snapshot' : 'from snapshot');
    this.tree.setCurrent(uuid, name);
    this.events.emit('snapshot.changed', { uuid, name: rec.doc.config.name, snapshot: name, event: 'reverted' });
    return { domain: this.registry.summary(rec), snapshot: this.info(uuid, name), job: job.finish('completed') };
  }

  /** Ends the snapshot's step, and says so: clients showing "taking a snapshot…" see it done. */
  private endStep(rec: DomainRecord, state: DomainRecord['state'], reason: DomainRecord['reason']): void {
    this.registry.setState(rec, state, reason, null);
    this.registry.emitLifecycle(rec, 'step');
  }

  private endsPaused(meta: SnapshotMeta, opts: { running: boolean; paused: boolean }): boolean {
    return opts.paused || (!opts.running && meta.state === 'paused');
  }

  /** Stops a running guest for a revert (its exit reason: from snapshot). */
  private async stop(rec: DomainRecord): Promise<void> {
    const live: LiveDomain | undefined = rec.live;
    if (!live) return;
    rec.stopping = 'from snapshot';
    await live.destroy();
  }

  /** virsh snapshot-delete: the children go to its parent (libvirt's default), or with it (children). */
  async delete(ref: string, name: string, children: boolean): Promise<string[]> {
    const rec = this.registry.lookup(ref);
    const uuid = rec.doc.config.uuid;
    const all = this.tree.list(uuid);
    const meta = all.find((m) => m.name === name);
    if (!meta) throw noSnapshot(name);
    const engine = this.engine(rec);
    if (rec.step) throw operationInvalid(`domain '${rec.doc.config.name}' is ${rec.step}`);
    const victims = children ? [name, ...descendants(all, name)] : [name];
    const remaining = all.map((m) => m.name).filter((n) => !victims.includes(n));
    const current = this.tree.current(uuid);
    const doc = rec.liveDoc ?? rec.doc;
    // Deepest first, so that a failure leaves a tree whose parents all exist.
    for (const victim of [...victims].reverse()) {
      await engine.remove(doc, { dir: this.tree.dir(uuid, victim), name: victim }, this.refs(uuid, remaining), rec.live);
      this.tree.remove(uuid, victim);
    }
    if (!children) for (const child of all.filter((m) => m.parent === name)) this.tree.write(uuid, { ...child, parent: meta.parent });
    // As libvirt: deleting the current snapshot makes its parent current.
    if (current !== undefined && victims.includes(current)) this.tree.setCurrent(uuid, meta.parent);
    this.events.emit('snapshot.changed', { uuid, name: rec.doc.config.name, snapshot: name, event: 'deleted' });
    return victims;
  }

  /** libvirt refuses to undefine a domain with snapshots unless their metadata goes too (--snapshots-metadata). */
  checkUndefine(rec: DomainRecord, withMetadata: boolean): void {
    const count = this.tree.list(rec.doc.config.uuid).length;
    if (count && !withMetadata) throw operationInvalid(`cannot delete inactive domain with ${count} snapshots`);
  }

  forget(uuid: string): void {
    this.tree.removeDomain(uuid);
  }

  private beginJob(rec: DomainRecord, operation: 'snapshot' | 'snapshot-revert', onAbort: () => Promise<void>): JobHandle {
    try {
      return this.jobs.begin(rec.doc.config.uuid, rec.doc.config.name, operation, onAbort);
    } catch (err) {
      if (err instanceof JobError) throw operationInvalid(err.message);
      throw err;
    }
  }
}
