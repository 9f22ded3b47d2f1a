// Statistics sampling, only while someone watches (stats.watch): each client names the domains it
// wants (or all) and an interval; one timer runs at the shortest interval any watcher asked for and
// stops when the last watcher leaves or disconnects, so an unwatched host never polls its engines.
import type { DomainStatsSample } from '../../shared/api.js';
import type { BalloonInfo, RunnerStats } from './drivers/driver.js';

interface Watch {
  /** undefined: every domain. */
  uuids?: Set<string>;
  intervalMs: number;
}

/** Counters of the previous sample of one domain, for the rates. */
export interface PreviousSample {
  at: number;
  cpuTimeMs: number;
  vcpuTimeMs?: number;
  rdBytes: number;
  wrBytes: number;
  rxBytes: number;
  txBytes: number;
}

export class StatsWatchers {
  private readonly watches = new Map<object, Watch>();
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 0;
  private busy = false;
  /** Ticks that sampled (for tests and the trace of the sampler's own cost). */
  ticks = 0;

  constructor(private readonly sample: (uuids: Set<string> | undefined) => Promise<void>) {}

  watch(owner: object, uuids: Set<string> | undefined, intervalMs: number): void {
    this.watches.set(owner, { uuids, intervalMs });
    this.reschedule();
    // The first sample at once, so a new watcher does not wait a whole interval.
    void this.tick();
  }

  unwatch(owner: object): void {
    if (this.watches.delete(owner)) this.reschedule();
  }

  /** Ends every watch (the connection sampled went away). */
  clear(): void {
    this.watches.clear();
    this.reschedule();
  }

  /** Whether `owner` wants samples of this domain. */
  wants(owner: object, uuid: string): boolean {
    const w = this.watches.get(owner);
    return w !== undefined && (w.uuids === undefined || w.uuids.has(uuid));
  }

  get watched(): boolean {
    return this.watches.size > 0;
  }

  private reschedule(): void {
    const interval = Math.min(...[...this.watches.values()].map((w) => w.intervalMs));
    if (!this.watches.size) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.intervalMs = 0;
      return;
    }
    if (this.timer && interval === this.intervalMs) return;
    clearInterval(this.timer);
    this.intervalMs = interval;
    this.timer = setInterval(() => void this.tick(), interval);
  }

  private async tick(): Promise<void> {
    // A slow engine must not pile up samples.
    if (this.busy || !this.watches.size) return;
    let uuids: Set<string> | undefined = new Set();
    for (const w of this.watches.values()) {
      if (!w.uuids) {
        uuids = undefined;
        break;
      }
      for (const u of w.uuids) uuids.add(u);
    }
    this.busy = true;
    try {
      this.ticks++;
      await this.sample(uuids);
    } finally {
      this.busy = false;
    }
  }
}

/**
 * Guest CPU as virt-manager shows it: the vCPUs' time over the elapsed time times the vCPUs, in
 * percent, within 0–100 (a busy 1-vCPU guest is 100 %, a 2-vCPU guest with one busy vCPU 50 %).
 */
export function guestCpuPercent(vcpuDeltaMs: number, elapsedMs: number, vcpus: number): number {
  if (!(elapsedMs > 0)) return 0;
  const pct = (vcpuDeltaMs / (elapsedMs * Math.max(1, vcpus))) * 100;
  return Math.round(Math.min(100, Math.max(0, pct)) * 10) / 10;
}

/** What the engine process spent beyond the vCPUs' time, in percent of one host core (not capped). */
export function overheadCpuPercent(processDeltaMs: number, vcpuDeltaMs: number, elapsedMs: number): number {
  if (!(elapsedMs > 0)) return 0;
  return Math.round(Math.max(0, ((processDeltaMs - vcpuDeltaMs) / elapsedMs) * 100) * 10) / 10;
}

/** Builds one sample from the engine's readings; rates are per second since `previous`. */
export function buildSample(
  base: Pick<DomainStatsSample, 'uuid' | 'name' | 'state'>,
  stats: RunnerStats | undefined,
  balloon: BalloonInfo | undefined,
  memory: { maxKiB: number; targetKiB: number },
  vcpus: number,
  previous: PreviousSample | undefined,
): { sample: DomainStatsSample; counters: PreviousSample | undefined } {
  const at = stats?.at ?? Date.now();
  const sum = <T>(items: T[] | undefined, f: (t: T) => number): number => (items ?? []).reduce((n, t) => n + f(t), 0);
  const rdBytes = sum(stats?.disks, (d) => d.rdBytes);
  const wrBytes = sum(stats?.disks, (d) => d.wrBytes);
  const rxBytes = sum(stats?.nics, (n) => n.rxBytes);
  const txBytes = sum(stats?.nics, (n) => n.txBytes);
  const dt = previous && stats && at > previous.at ? (at - previous.at) / 1000 : 0;
  const rate = (now: number, before: number | undefined): number => (dt > 0 && before !== undefined ? Math.max(0, Math.round((now - before) / dt)) : 0);
  // The guest's share is its vCPU threads' time; an engine that cannot tell them apart counts its
  // whole process, capped all the same, and shows no separate overhead.
  const split = stats?.vcpuTimeMs !== undefined && previous?.vcpuTimeMs !== undefined;
  const processDelta = stats && previous ? stats.cpuTimeMs - previous.cpuTimeMs : 0;
  const vcpuDelta = split ? stats!.vcpuTimeMs! - previous!.vcpuTimeMs! : processDelta;
  const cpuPercent = dt > 0 ? guestCpuPercent(vcpuDelta, dt * 1000, vcpus) : 0;
  const overheadPercent = dt > 0 && split ? overheadCpuPercent(processDelta, vcpuDelta, dt * 1000) : undefined;
  const guest = balloon?.guest;
  const guestUsedKiB = guest?.totalKiB !== undefined && guest.freeKiB !== undefined ? guest.totalKiB - guest.freeKiB - (guest.cachesKiB ?? 0) : undefined;
  const sample: DomainStatsSample = {
    ...base,
    at,
    cpuPercent,
    overheadPercent,
    cpuTimeMs: stats?.cpuTimeMs ?? 0,
    rssBytes: stats?.rssBytes ?? 0,
    memory: {
      maxKiB: balloon?.maxKiB ?? memory.maxKiB,
      targetKiB: balloon?.targetKiB ?? memory.targetKiB,
      actualKiB: balloon?.actualKiB ?? (stats ? memory.maxKiB : 0),
      guestUsedKiB,
    },
    disk: { rdBytes, wrBytes, rdBytesPerSec: rate(rdBytes, previous?.rdBytes), wrBytesPerSec: rate(wrBytes, previous?.wrBytes) },
    net: { rxBytes, txBytes, rxBytesPerSec: rate(rxBytes, previous?.rxBytes), txBytesPerSec: rate(txBytes, previous?.txBytes) },
  };
  if (stats) {
    sample.disk.devices = stats.disks.map((d) => ({ name: d.name, path: d.path, rdBytes: d.rdBytes, wrBytes: d.wrBytes, rdReqs: d.rdReqs, wrReqs: d.wrReqs }));
    sample.net.devices = stats.nics.map((n) => ({ ...n }));
  }
  const counters = stats ? { at, cpuTimeMs: stats.cpuTimeMs, vcpuTimeMs: stats.vcpuTimeMs, rdBytes, wrBytes, rxBytes, txBytes } : undefined;
  return { sample, counters };
}
