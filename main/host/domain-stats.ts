// Statistics of running domains (virsh domstats, dominfo's CPU time, the GUI's graphs), sampled
// on demand and by the watchers' timer (stats.ts). NIC counters come from the networks' switches
// (per port, by MAC): one status request per switch per sample, whatever the number of domains.
import type { DomainStatsSample, NetworkLease } from '../../shared/api.js';
import type { SwitchStatus } from '../netswitch/protocol.js';
import type { RunnerStats } from './drivers/driver.js';
import { log } from './log.js';
import { connected, interfaceTargets } from './network/interface-xml.js';
import type { Networks } from './network/networks.js';
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
    private readonly networks: Networks,
  ) {}

  /** virsh domstats: one sample now (rates against the last sample taken, if any). */
  async sampleNow(ref: string): Promise<DomainStatsSample> {
    const rec = this.registry.lookup(ref);
    return this.sample(rec, false, await this.switchReadings([rec]));
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
    const readings = await this.switchReadings(recs);
    await Promise.all(
      recs.map(async (rec) => {
        const sample = await this.sample(rec, true, readings).catch((err: Error) => log('warn', `statistics of '${rec.doc.config.name}': ${err.message}`));
        if (sample) this.events.emit('domain.stats', { uuid: sample.uuid, cpuPercent: sample.cpuPercent, rssBytes: sample.rssBytes, sample });
      }),
    );
  }

  /** Port counters and leases of the switches the domains' NICs are on: one status request per switch. */
  private async switchReadings(recs: DomainRecord[]): Promise<Map<string, SwitchReading>> {
    const names = new Set(recs.flatMap((r) => (r.live && r.liveDoc ? r.liveDoc.config.interfaces.filter(connected).map((i) => i.source!) : [])));
    const entries = await Promise.all([...names].map(async (name): Promise<[string, SwitchReading]> => [name, { status: await this.networks.status(name), leases: this.networks.leasesOnFile(name) }]));
    return new Map(entries);
  }

  /** The domain's NICs as its switches count them (rx: delivered to the guest, tx: sent by it). */
  private nics(rec: DomainRecord, readings: Map<string, SwitchReading>): RunnerStats['nics'] {
    const doc = rec.liveDoc;
    if (!doc) return [];
    const targets = interfaceTargets(doc);
    return doc.config.interfaces.flatMap((iface, i) => {
      if (!connected(iface)) return [];
      const reading = readings.get(iface.source!);
      const ports = reading?.status?.ports.filter((p) => p.mac === iface.mac) ?? [];
      const addresses = (reading?.leases ?? []).filter((l) => l.mac === iface.mac).map((l) => l.address);
      const sum = (f: (p: SwitchStatus['ports'][number]) => number) => ports.reduce((n, p) => n + f(p), 0);
      return [{ name: targets[i] ?? `net${i}`, mac: iface.mac, network: iface.source, rxBytes: sum((p) => p.rxBytes), txBytes: sum((p) => p.txBytes), addresses }];
    });
  }

  private async sample(rec: DomainRecord, periodic: boolean, readings: Map<string, SwitchReading>): Promise<DomainStatsSample> {
    const c = (rec.liveDoc ?? rec.doc).config;
    const live = rec.live;
    const [engineStats, balloon] = live ? await Promise.all([live.stats(), live.balloonInfo(true)]) : [undefined, undefined];
    const nics = this.nics(rec, readings);
    const stats = engineStats && nics.length ? { ...engineStats, nics } : engineStats;
    if (balloon) rec.balloon = balloon;
    const { sample, counters } = buildSample(
      { uuid: rec.doc.config.uuid, name: c.name, state: rec.state },
      stats,
      balloon,
      { maxKiB: c.memoryKiB, targetKiB: c.currentMemoryKiB },
      c.vcpus,
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

interface SwitchReading {
  status?: SwitchStatus;
  leases: NetworkLease[];
}
