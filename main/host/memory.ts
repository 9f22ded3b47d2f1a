// Guest memory (virsh setmem, setmaxmem, dommemstat): the balloon target of a running guest and of
// the next boot, bounded by what the guest needs, and the guest's own memory statistics.
import type { DomainSummary, MemoryStats } from '../../shared/api.js';
import { DomainXmlError, parseDomainXml, serializeDomainXml, setMemory, type DomainDocument } from './domain/xml.js';
import type { BalloonInfo } from './drivers/driver.js';
import type { DriverRegistry } from './drivers/registry.js';
import { invalidArg, operationInvalid } from './errors.js';
import type { DomainRegistry } from './registry.js';

/**
 * The lowest balloon target: below 64 MiB a Linux guest's kernel, page tables and a shell no longer
 * fit comfortably (the sample guest's kernel alone reserves about 32 MiB of 128 MiB), and a running
 * guest must also keep what it uses now (see balloonFloorKiB).
 */
export const BALLOON_MIN_KiB = 64 * 1024;
/** What a running guest keeps free above what it uses, so that ballooning never starts the OOM killer. */
const BALLOON_HEADROOM_KiB = 16 * 1024;

export class Memory {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly drivers: DriverRegistry,
  ) {}

  /**
   * virsh setmem: the balloon target (<currentMemory>). --live moves the running guest's balloon (the
   * guest follows; `domain.balloon` events report what it holds), --config the next boot's
   * definition; neither means --current (live when running, else config).
   */
  async setMemory(ref: string, edit: { sizeKiB: number; live: boolean; config: boolean }): Promise<DomainSummary> {
    const { registry } = this;
    const rec = registry.lookup(ref);
    const name = rec.doc.config.name;
    const { live, config } = registry.scope(rec, edit);
    const check = (doc: DomainDocument, floorKiB: number, why: string): void => {
      if (edit.sizeKiB > doc.config.memoryKiB) {
        throw invalidArg(`cannot set memory higher than max memory (${edit.sizeKiB} KiB > ${doc.config.memoryKiB} KiB)`);
      }
      if (edit.sizeKiB < Math.min(floorKiB, doc.config.memoryKiB)) {
        throw invalidArg(`cannot set memory of '${name}' below ${Math.min(floorKiB, doc.config.memoryKiB)} KiB (${why})`);
      }
    };
    if (live) {
      const liveDoc = rec.liveDoc ?? rec.doc;
      if (!liveDoc.config.balloon) throw operationInvalid(`Unable to change memory of active domain '${name}' without the balloon device`);
      const now = await registry.requireLive(rec).balloonInfo(true);
      rec.balloon = now;
      const floor = balloonFloorKiB(now);
      check(liveDoc, floor.kib, floor.why);
    }
    if (config) check(rec.doc, BALLOON_MIN_KiB, `the least a guest is given, ${BALLOON_MIN_KiB} KiB`);
    const configDraft = config ? parseDomainXml(serializeDomainXml(rec.doc)) : undefined;
    if (configDraft) setMemory(configDraft, { currentMemoryKiB: edit.sizeKiB });
    await registry.configThenLive(rec, configDraft, async () => {
      if (!live) return;
      // Beyond what v86 runs (above 2047 MiB) the guest has less than <memory>: the target is capped there.
      rec.balloon = await registry.requireLive(rec).setBalloonTarget(Math.min(edit.sizeKiB, rec.balloon?.maxKiB ?? edit.sizeKiB));
      const draft = parseDomainXml(serializeDomainXml(rec.liveDoc ?? rec.doc));
      setMemory(draft, { currentMemoryKiB: edit.sizeKiB });
      rec.liveDoc = draft;
    });
    registry.emitLifecycle(rec, 'defined');
    return registry.summary(rec);
  }

  /**
   * virsh setmaxmem: <memory>, the guest RAM at boot. Neither engine adds or removes RAM in a running
   * guest (v86's wasm memory is sized at start), so only the definition changes (--config).
   */
  setMaxMemory(ref: string, edit: { sizeKiB: number; live: boolean; config: boolean }): DomainSummary {
    const { registry } = this;
    const rec = registry.lookup(ref);
    const name = rec.doc.config.name;
    let { live, config } = edit;
    if (!live && !config) {
      live = Boolean(rec.live);
      config = !rec.live;
    }
    if (live) {
      if (!rec.live) throw operationInvalid('domain is not running');
      throw operationInvalid(
        `cannot resize the maximum memory on an active domain: ${this.drivers.driverFor(rec.doc).driver.engine} sizes guest RAM at boot; use --config (next boot), or setmem to move the balloon`,
      );
    }
    if (config && !rec.persistent) throw operationInvalid(`cannot change persistent config of a transient domain '${name}'`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    try {
      setMemory(draft, { memoryKiB: edit.sizeKiB });
    } catch (err) {
      if (err instanceof DomainXmlError) throw invalidArg(err.message);
      throw err;
    }
    // Only what the new size breaks is refused: a definition that could not start before (UEFI on
    // v86) may still have its memory changed, as libvirt's setmaxmem --config allows.
    const before = new Set(this.drivers.validate(rec.doc).errors);
    const broken = this.drivers.validate(draft).errors.filter((e) => !before.has(e));
    if (broken.length) throw invalidArg(broken.join('; '));
    registry.persist(rec, draft);
    registry.emitLifecycle(rec, 'defined');
    return registry.summary(rec);
  }

  /** virsh dommemstat: the balloon and the guest's own statistics (asked fresh). */
  async memoryStats(ref: string): Promise<MemoryStats> {
    const rec = this.registry.lookup(ref);
    const live = this.registry.requireLive(rec);
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
}

/**
 * The lowest target a running guest accepts: 64 MiB, and never less than what the guest uses now
 * plus headroom. From the guest's own statistics: it holds `actual`, of which `MemAvailable` could be
 * given up; the rest (kernel reservations, unreclaimable use) stays.
 */
export function balloonFloorKiB(b: Pick<BalloonInfo, 'actualKiB' | 'guest'>): { kib: number; why: string } {
  const available = b.guest?.availableKiB;
  const need = available === undefined ? 0 : b.actualKiB - available + BALLOON_HEADROOM_KiB;
  if (need > BALLOON_MIN_KiB) return { kib: need, why: `the guest uses ${b.actualKiB - available!} KiB now, plus ${BALLOON_HEADROOM_KiB} KiB headroom` };
  return { kib: BALLOON_MIN_KiB, why: `the least a guest is given, ${BALLOON_MIN_KiB} KiB` };
}
