// Statistics, graphs and the memory balloon of a libvirt connection: domain samples (virsh domstats)
// from virConnectGetAllDomainStats, sampling while a client watches (one stats call per tick for all
// watched domains), CPU use from CPU time between readings, and the balloon as virt-manager drives
// it: setmem/setmaxmem, dommemstat with the guest's statistics (the stats period set on the domain),
// and libvirt's BALLOON_CHANGE events as Domus's domain.balloon.
import type { DomainStatsSample, DomainSummary, MemoryStats } from '../../../shared/api.js';
import { DOMAIN_STATES } from '../../../shared/libvirt/states.js';
import { balloonFloorKiB, BALLOON_MIN_KiB } from '../memory.js';
import type { BalloonInfo, RunnerStats } from '../drivers/driver.js';
import { invalidArg, operationFailed } from '../errors.js';
import { log } from '../log.js';
import type { remote_typed_param } from '../libvirt/protocol/remote.js';
import { count, num, statFields, str, STATS_ACTIVE, STATS_BALLOON, STATS_BLOCK, STATS_CPU_TOTAL, STATS_INTERFACE, STATS_STATE, STATS_VCPU, type StatFields } from './libvirt-domstats.js';
import { buildSample, StatsWatchers, type PreviousSample } from '../stats.js';
import { uuidText, type LibvirtConnection, type LibvirtMethods, type NonnullDomain } from './libvirt.js';
import type { StatsWatching } from './manager.js';

/** What a sample reads. */
const SAMPLE_STATS = STATS_STATE | STATS_CPU_TOTAL | STATS_BALLOON | STATS_VCPU | STATS_INTERFACE | STATS_BLOCK;
/** virDomainMemoryModFlags. */
const AFFECT_LIVE = 1;
const AFFECT_CONFIG = 2;
const MEM_MAXIMUM = 4;
/** virDomainEventID. */
const EVENT_ID_BALLOON_CHANGE = 13;
/** virDomainMemoryStatTags. */
const MEMORY_TAGS = ['swap_in', 'swap_out', 'major_fault', 'minor_fault', 'unused', 'available', 'actual_balloon', 'rss', 'usable', 'last_update', 'disk_caches'] as const;
/** The guest's balloon statistics period (s), as the local QEMU engine polls them. */
const STATS_PERIOD_S = 2;
/** A balloon that has not moved this long after a change has no driver behind it (as on the local engines). */
const BALLOON_TIMEOUT_MS = 5000;
const DOMAIN_RUNNING = 1;
const DOMAIN_PAUSED = 3;

/** The balloon target Domus set on a run of a domain (libvirt keeps only what the guest holds). */
interface BalloonTarget {
  id: number;
  targetKiB: number;
  at: number;
  actualAtSet: number;
}

function isActive(state: number | undefined): boolean {
  return state === DOMAIN_RUNNING || state === DOMAIN_PAUSED;
}

function domainOf(summary: Pick<DomainSummary, 'uuid' | 'name' | 'id'>): NonnullDomain {
  return { name: summary.name, uuid: Buffer.from(summary.uuid.replace(/-/g, ''), 'hex'), id: summary.id ?? -1 };
}

export class LibvirtStats implements StatsWatching {
  private readonly watchers = new StatsWatchers((uuids) => this.samplePeriodic(uuids));
  /** The domains some client watches, by UUID, as a stats call names them. */
  private readonly domains = new Map<string, NonnullDomain>();
  /** Counters of each domain's previous periodic sample, for the disk and network rates. */
  private readonly previous = new Map<string, PreviousSample & { id: number }>();
  private readonly targets = new Map<string, BalloonTarget>();
  /** Runs (UUID:id) whose balloon statistics period is set. */
  private readonly periodSet = new Set<string>();
  /** What the balloon held when the guest's statistics were last read fresh, by UUID. */
  private readonly freshAt = new Map<string, number>();

  constructor(private readonly conn: LibvirtConnection) {
    conn.onOpen(async (rpc) => {
      rpc.onMessage('REMOTE_PROC_DOMAIN_EVENT_CALLBACK_BALLOON_CHANGE', ({ msg }) =>
        conn.emitEvent('domain.balloon', { uuid: uuidText(msg.dom.uuid), name: msg.dom.name, actualKiB: Number(msg.actual) }),
      );
      await rpc.call('REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', { eventID: EVENT_ID_BALLOON_CHANGE, dom: null });
    });
    conn.on('event', (name: string, data: { domain?: DomainSummary; uuid?: string }) => {
      if (name === 'domain.lifecycle' && data.domain) {
        const d = data.domain;
        // As virt-manager does for its memory graphs: the guest sends its statistics from boot on.
        if (d.state === 'running' && d.id !== undefined) void this.ensurePeriod(domainOf(d));
        if (d.state === 'shutoff') this.forget(d.uuid);
      }
      if (name === 'domain.undefined' && data.uuid) {
        this.forget(data.uuid);
        this.domains.delete(data.uuid);
      }
    });
    conn.on('closed', () => this.watchers.clear());
  }

  /** The API methods of this part. */
  methods(): LibvirtMethods {
    return {
      'domain.stats': (p) => this.sampleNow(p.domain!),
      'domain.memoryStats': (p) => this.memoryStats(p.domain!),
      'domain.setMemory': (p) => this.setMemory(p.domain!, p as { sizeKiB: number; live?: boolean; config?: boolean }),
      'domain.setMaxMemory': (p) => this.setMaxMemory(p.domain!, p as { sizeKiB: number; live?: boolean; config?: boolean }),
    };
  }

  async watch(owner: object, domains: string[] | undefined, intervalMs: number): Promise<void> {
    let uuids: Set<string> | undefined;
    if (domains) {
      const doms = await Promise.all(domains.map((ref) => this.conn.lookup(ref)));
      uuids = new Set();
      for (const dom of doms) {
        const uuid = uuidText(dom.uuid);
        this.domains.set(uuid, dom);
        uuids.add(uuid);
      }
    }
    this.watchers.watch(owner, uuids, intervalMs);
  }

  unwatch(owner: object): void {
    this.watchers.unwatch(owner);
  }

  wants(owner: object, uuid: string): boolean {
    return this.watchers.wants(owner, uuid);
  }

  private forget(uuid: string): void {
    this.previous.delete(uuid);
    this.targets.delete(uuid);
    this.freshAt.delete(uuid);
    this.conn.cpu.forget(uuid);
    for (const run of this.periodSet) if (run.startsWith(`${uuid}:`)) this.periodSet.delete(run);
  }

  /** One tick: one stats call for every watched domain (or all running ones), a domain.stats event per running domain. */
  private async samplePeriodic(uuids: Set<string> | undefined): Promise<void> {
    const doms = uuids ? [...uuids].map((u) => this.domains.get(u)).filter((d): d is NonnullDomain => d !== undefined) : [];
    if (uuids && !doms.length) return;
    let records: { dom: NonnullDomain; params: remote_typed_param[] }[];
    try {
      ({ retStats: records } = await this.conn.rpcCall('REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS', { doms, stats: SAMPLE_STATS, flags: uuids ? 0 : STATS_ACTIVE }));
    } catch (err) {
      log('warn', `statistics on ${this.conn.uri}: ${(err as Error).message}`);
      return;
    }
    for (const r of records) {
      const fields = statFields(r.params);
      if (!isActive(num(fields, 'state.state'))) continue;
      void this.ensurePeriod(r.dom);
      const sample = this.sample(r.dom, fields, true);
      this.conn.emitEvent('domain.stats', { uuid: sample.uuid, cpuPercent: sample.cpuPercent, rssBytes: sample.rssBytes, sample });
    }
  }

  /** virsh domstats for one domain; rates against the previous periodic sample, if any. */
  private async sampleNow(ref: string): Promise<DomainStatsSample> {
    const dom = await this.conn.lookup(ref);
    const { retStats } = await this.conn.rpcCall('REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS', { doms: [dom], stats: SAMPLE_STATS, flags: 0 });
    const record = retStats[0];
    if (!record) throw operationFailed(`libvirt returned no statistics for domain '${dom.name}'`);
    return this.sample(record.dom, statFields(record.params), false);
  }

  private sample(dom: NonnullDomain, f: StatFields, periodic: boolean): DomainStatsSample {
    const uuid = uuidText(dom.uuid);
    const stateNum = num(f, 'state.state') ?? 0;
    const active = isActive(stateNum);
    const at = Date.now();
    const maxKiB = num(f, 'balloon.maximum') ?? 0;
    const currentKiB = num(f, 'balloon.current') ?? maxKiB;
    let stats: RunnerStats | undefined;
    let balloon: BalloonInfo | undefined;
    if (active) {
      stats = {
        at,
        cpuTimeMs: (num(f, 'cpu.time') ?? 0) / 1e6,
        rssBytes: (num(f, 'balloon.rss') ?? 0) * 1024,
        disks: Array.from({ length: count(f, 'block') }, (_, i) => ({
          name: str(f, `block.${i}.name`),
          path: str(f, `block.${i}.path`),
          rdBytes: num(f, `block.${i}.rd.bytes`) ?? 0,
          wrBytes: num(f, `block.${i}.wr.bytes`) ?? 0,
          rdReqs: num(f, `block.${i}.rd.reqs`) ?? 0,
          wrReqs: num(f, `block.${i}.wr.reqs`) ?? 0,
        })),
        nics: Array.from({ length: count(f, 'net') }, (_, i) => ({ name: str(f, `net.${i}.name`), rxBytes: num(f, `net.${i}.rx.bytes`) ?? 0, txBytes: num(f, `net.${i}.tx.bytes`) ?? 0 })),
      };
      const lastUpdate = num(f, 'balloon.last-update');
      balloon = {
        maxKiB,
        targetKiB: this.targetKiB(uuid, dom.id) ?? currentKiB,
        actualKiB: currentKiB,
        status: 'ok',
        hostReclaims: true,
        guest: lastUpdate
          ? { at: lastUpdate * 1000, totalKiB: num(f, 'balloon.available'), freeKiB: num(f, 'balloon.unused'), availableKiB: num(f, 'balloon.usable'), cachesKiB: num(f, 'balloon.disk_caches') }
          : undefined,
      };
    }
    const prev = this.previous.get(uuid);
    const { sample, counters } = buildSample(
      { uuid, name: dom.name, state: DOMAIN_STATES[stateNum] ?? 'nostate' },
      stats,
      balloon,
      { maxKiB, targetKiB: currentKiB },
      num(f, 'vcpu.current') ?? 1,
      prev?.id === dom.id ? prev : undefined,
    );
    if (stats) sample.cpuPercent = this.conn.cpu.percent(uuid, dom.id, stats.cpuTimeMs, num(f, 'vcpu.current') ?? 1, at);
    // A one-off domstats keeps the sampler's baseline, so that the GUI's rates stay per interval.
    if (counters && (periodic || !prev)) this.previous.set(uuid, { ...counters, id: dom.id });
    return sample;
  }

  /** The target Domus set on this run of the domain, while the guest has not reached it. */
  private targetKiB(uuid: string, id: number): number | undefined {
    const t = this.targets.get(uuid);
    return t && t.id === id ? t.targetKiB : undefined;
  }

  /** Sets the balloon statistics period once per run of a domain (virDomainSetMemoryStatsPeriod, live). */
  private async ensurePeriod(dom: NonnullDomain, force = false): Promise<void> {
    const run = `${uuidText(dom.uuid)}:${dom.id}`;
    if (this.periodSet.has(run) && !force) return;
    this.periodSet.add(run);
    try {
      await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SET_MEMORY_STATS_PERIOD', { dom, period: STATS_PERIOD_S, flags: AFFECT_LIVE });
    } catch {
      // No balloon device, or the domain stopped meanwhile: there are no guest statistics to ask for.
    }
  }

  /**
   * virsh dommemstat. After the balloon moved, the guest's statistics are asked afresh (setting the
   * period again makes QEMU poll at once) and a reply stamped after the move is awaited, up to 3 s.
   */
  private async memoryStats(ref: string): Promise<MemoryStats> {
    const dom = await this.conn.lookup(ref);
    const uuid = uuidText(dom.uuid);
    const read = async (): Promise<{ info: { maxMem: bigint; memory: bigint }; stat: Map<string, number> }> => {
      const [info, raw] = await Promise.all([this.conn.rpcCall('REMOTE_PROC_DOMAIN_GET_INFO', { dom }), this.conn.rpcCall('REMOTE_PROC_DOMAIN_MEMORY_STATS', { dom, maxStats: 16, flags: 0 })]);
      const stat = new Map<string, number>();
      for (const { tag, val } of raw.stats as { tag: number; val: bigint }[]) stat.set(MEMORY_TAGS[tag] ?? `tag${tag}`, Number(val));
      return { info, stat };
    };
    let { info, stat } = await read();
    const actual = stat.get('actual_balloon');
    // A guest that never sent statistics has none to refresh (no driver yet, or the period unset).
    const stale = actual !== undefined && stat.has('last_update') && this.freshAt.get(uuid) !== actual;
    if (actual !== undefined) await this.ensurePeriod(dom, stale);
    if (stale) {
      const notBefore = Math.floor(Date.now() / 1000) + 1;
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && (stat.get('last_update') ?? 0) < notBefore) {
        await new Promise((r) => setTimeout(r, 100));
        ({ info, stat } = await read());
      }
      if ((stat.get('last_update') ?? 0) >= notBefore) this.freshAt.set(uuid, actual!);
    }
    const maxKiB = Number(info.maxMem);
    const actualKiB = stat.get('actual_balloon') ?? Number(info.memory);
    const set = this.targets.get(uuid);
    const target = set && set.id === dom.id ? set : undefined;
    const targetKiB = target?.targetKiB ?? Number(info.memory);
    let balloon: MemoryStats['balloon'] = stat.has('actual_balloon') ? 'ok' : 'absent';
    if (balloon === 'ok' && Math.abs(actualKiB - targetKiB) > 1024) {
      balloon = target && Date.now() - target.at > BALLOON_TIMEOUT_MS && actualKiB === target.actualAtSet ? 'no-driver' : 'pending';
    }
    return {
      maxKiB,
      targetKiB,
      actualKiB,
      availableKiB: stat.get('available'),
      unusedKiB: stat.get('unused'),
      usableKiB: stat.get('usable'),
      diskCachesKiB: stat.get('disk_caches'),
      rssKiB: stat.get('rss'),
      balloon,
      // libvirt's QEMU gives the pages the balloon takes back to the host (as Domus's QEMU engine).
      hostReclaims: true,
      lastUpdate: stat.has('last_update') ? stat.get('last_update')! * 1000 : undefined,
    };
  }

  /**
   * virsh setmem, with Domus's floor (64 MiB, and what a running guest uses now plus headroom) so that
   * ballooning never starts the guest's OOM killer; libvirt checks the rest (maximum, running).
   */
  private async setMemory(ref: string, p: { sizeKiB: number; live?: boolean; config?: boolean }): Promise<{ domain: DomainSummary }> {
    const dom = await this.conn.lookup(ref);
    const uuid = uuidText(dom.uuid);
    const { state } = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_GET_STATE', { dom, flags: 0 });
    const running = isActive(state as number);
    const live = p.live || (!p.config && running);
    let floor = { kib: BALLOON_MIN_KiB, why: `the least a guest is given, ${BALLOON_MIN_KiB} KiB` };
    let actualBefore: number | undefined;
    if (live && running) {
      const now = await this.memoryStats(ref);
      actualBefore = now.actualKiB;
      if (p.sizeKiB <= now.maxKiB) {
        floor = balloonFloorKiB({ actualKiB: now.actualKiB, guest: now.usableKiB === undefined ? undefined : { at: 0, availableKiB: now.usableKiB } });
      }
    }
    const { maxMem } = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_GET_INFO', { dom });
    const bound = Math.min(floor.kib, Number(maxMem));
    if (p.sizeKiB < bound && p.sizeKiB <= Number(maxMem)) throw invalidArg(`cannot set memory of '${dom.name}' below ${bound} KiB (${floor.why})`);
    const flags = (p.live ? AFFECT_LIVE : 0) | (p.config ? AFFECT_CONFIG : 0);
    await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SET_MEMORY_FLAGS', { dom, memory: BigInt(p.sizeKiB), flags });
    if (live && running && actualBefore !== undefined) this.targets.set(uuid, { id: dom.id, targetKiB: p.sizeKiB, at: Date.now(), actualAtSet: actualBefore });
    return { domain: await this.conn.summary(dom) };
  }

  /** virsh setmaxmem: <memory> (virDomainSetMemoryFlags with VIR_DOMAIN_MEM_MAXIMUM); libvirt refuses it live on QEMU and checks the size itself. */
  private async setMaxMemory(ref: string, p: { sizeKiB: number; live?: boolean; config?: boolean }): Promise<{ domain: DomainSummary }> {
    const dom = await this.conn.lookup(ref);
    const flags = MEM_MAXIMUM | (p.live ? AFFECT_LIVE : 0) | (p.config ? AFFECT_CONFIG : 0);
    await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SET_MEMORY_FLAGS', { dom, memory: BigInt(p.sizeKiB), flags });
    return { domain: await this.conn.summary(dom) };
  }
}
