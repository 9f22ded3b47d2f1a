// Device edits of a domain (virsh change-media, attach-disk, detach-disk): the definition, the
// running guest, or both, with virsh's --live/--config/--current and the engine's limits.
import path from 'node:path';
import type { DomainSummary } from '../../shared/api.js';
import { parseDomainXml, serializeDomainXml } from './domain/xml.js';
import { invalidArg, operationFailed, operationUnsupported } from './errors.js';
import type { DomainRegistry } from './registry.js';
import { addDisk, checkSourceImage, removeDisk, setMedia, type NewDisk } from './storage/devices.js';

export class Devices {
  constructor(private readonly registry: DomainRegistry) {}

  /** virsh change-media: a CD-ROM's medium; `source` inserts (or replaces), none ejects. */
  async changeMedia(ref: string, p: { target: string; source?: string; eject: boolean; live: boolean; config: boolean }): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    if (p.eject === (p.source !== undefined)) throw invalidArg(p.eject ? 'eject takes no source image' : 'a source image is required to insert or update the medium');
    const source = p.source === undefined ? undefined : path.resolve(p.source);
    if (source) checkSourceImage(source);
    const { live, config } = this.registry.scope(rec, p);
    // Both edits are checked before either is made.
    const liveDoc = live ? parseDomainXml(serializeDomainXml(rec.liveDoc!)) : undefined;
    const disk = liveDoc && setMedia(liveDoc, p.target, source);
    if (disk) {
      const drive = rec.liveDoc!.config.disks.find((d) => d.device === 'cdrom');
      if (!rec.live!.changeMedia || drive?.target !== disk.target) {
        throw operationUnsupported(`the ${this.registry.engineOf(rec)} engine can change the medium of the first CD-ROM drive only${drive ? ` (${drive.target})` : ''}; use --config`);
      }
    }
    const draft = config ? parseDomainXml(serializeDomainXml(rec.doc)) : undefined;
    if (draft) setMedia(draft, p.target, source);
    await this.registry.configThenLive(rec, draft, async () => {
      if (!disk) return;
      await rec.live!.changeMedia!(source).catch((err: Error) => {
        throw operationFailed(`cannot change the medium of '${disk.target}': ${err.message}`);
      });
      rec.liveDoc = liveDoc;
    });
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  /** virsh attach-disk; no engine hot-plugs disks yet, so --live is refused. */
  attachDisk(ref: string, p: NewDisk & { live: boolean; config: boolean }): { domain: DomainSummary; target: string } {
    const rec = this.registry.lookup(ref);
    const { live, config } = this.registry.scope(rec, p);
    if (live) throw operationUnsupported(`${this.registry.engineOf(rec)} cannot hot-plug disks, use --config`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    const target = addDisk(draft, { ...p, source: p.source === undefined ? undefined : path.resolve(p.source) });
    if (config) this.registry.persist(rec, draft);
    this.registry.emitLifecycle(rec, 'defined');
    return { domain: this.registry.summary(rec), target };
  }

  /** virsh detach-disk; no engine hot-unplugs disks yet, so --live is refused. */
  detachDisk(ref: string, p: { target: string; live: boolean; config: boolean }): DomainSummary {
    const rec = this.registry.lookup(ref);
    const { live, config } = this.registry.scope(rec, p);
    if (live) throw operationUnsupported(`${this.registry.engineOf(rec)} cannot hot-unplug disks, use --config`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    removeDisk(draft, p.target);
    if (config) this.registry.persist(rec, draft);
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }
}
