// Statistics of running domains (virsh domstats, dominfo's CPU time, the GUI's graphs), sampled
// on demand and by the watchers' timer (stats.ts).
import type { DomainStatsSample } from '../../shared/api.js';
import { log } from './log.js';
import type { DomainRecord, DomainRegistry, HostEventBus } from './registry.js';
import { buildSample } from './stats.js';

/**
 * Samples of running domains (virsh domstats, dominfo's CPU time, the GUI's graphs): the engine's
 * counters and the balloon, turned into rates against each domain's previous sample.
 */
export class DomainStats {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly events: HostEventBus,
  ) {}

  /** virsh domstats: one sample now (rates against the last sample taken, if any). */
  async sampleNow(ref: string): Promise<DomainStatsSample> {
    return this.sample(this.registry.lookup(ref), false);
  }

  /** Fresh engine counters for dominfo's CPU time (no one may be sampling). */
  async refreshCpuTime(ref: string): Promise<void> {
    const rec = this.registry.lookup(ref);
    const stats = await rec.live?.stats().catch(() => undefined);
    if (stats) rec.cpuTimeMs = stats.cpuTimeMs;
  }

  /** One periodic tick of the watchers: a `domain.stats` event per running domain watched. */
  async samplePeriodic(uuids: Set<string> | undefined): Promise<void> {
    const recs = this.registry.records().filter((r) => r.live && (!uuids || uuids.has(r.doc.config.uuid)));
    await Promise.all(
      recs.map(async (rec) => {
        const sample = await this.sample(rec, true).catch((err: Error) => log('warn', `statistics of '${rec.doc.config.name}': ${err.message}`));
        if (sample) this.events.emit('domain.stats', { uuid: sample.uuid, cpuPercent: sample.cpuPercent, rssBytes: sample.rssBytes, sample });
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
}
