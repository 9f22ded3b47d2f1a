// Statistics samples for the graphs and sparklines. The host samples a domain only while some
// client watches it (stats.watch), so every view that shows statistics says what it shows through
// `watch()` and stops with the returned function; this store sends one stats.watch with the union
// of what is on screen, and stats.unwatch when nothing is.
import { defineStore } from 'pinia';
import { computed, ref, watch as vueWatch } from 'vue';
import type { DomainStatsSample, MemoryStats } from '@shared/api';
import { hostConnection } from './api';

/** Samples kept per domain: two minutes at the default one-second interval. */
export const HISTORY_LENGTH = 120;
const INTERVAL_KEY = 'domus.statsIntervalMs';
export const INTERVAL_CHOICES = [500, 1000, 2000, 5000, 10_000] as const;
const DEFAULT_INTERVAL_MS = 1000;

function storedInterval(): number {
  const value = Number(localStorage.getItem(INTERVAL_KEY));
  return (INTERVAL_CHOICES as readonly number[]).includes(value) ? value : DEFAULT_INTERVAL_MS;
}

export const useStatsStore = defineStore('stats', () => {
  const host = hostConnection();
  const history = ref<Record<string, DomainStatsSample[]>>({});
  /** The balloon's actual size per domain: from the latest sample or balloon event, whichever is newer. */
  const actualKiB = ref<Record<string, number>>({});
  /** The balloon's size from domain.balloon events newer than the last memoryStats answer (the Memory page). */
  const balloonKiB = ref<Record<string, number>>({});
  /** The sampling interval, a preference kept in localStorage. */
  const intervalMs = ref(storedInterval());
  /** Who watches what: each caller of watch() holds one entry. */
  const watchers = ref(new Map<number, readonly string[]>());
  /** What the host was last asked for ('' = nothing), so unchanged sets are not resent. */
  let sent = '';
  let nextToken = 1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Set when the host refused stats.watch (an older host): the graphs say so. */
  const problem = ref('');

  const watched = computed(() => {
    const set = new Set<string>();
    for (const list of watchers.value.values()) for (const uuid of list) set.add(uuid);
    return [...set].sort();
  });

  /** Starts watching `uuids` (a view on screen); call the result when it leaves the screen. */
  function watch(uuids: readonly string[]): () => void {
    const token = nextToken++;
    watchers.value.set(token, [...uuids]);
    return () => {
      watchers.value.delete(token);
    };
  }

  function update(token: number, uuids: readonly string[]): void {
    if (watchers.value.has(token)) watchers.value.set(token, [...uuids]);
  }

  /** Like watch(), but follows a reactive list of domains. */
  function watchReactive(source: () => readonly string[]): () => void {
    const token = nextToken++;
    watchers.value.set(token, [...source()]);
    const stop = vueWatch(source, (uuids) => update(token, uuids));
    return () => {
      stop();
      watchers.value.delete(token);
    };
  }

  /** Batches changes of one tick (a list re-render) into one request. */
  function schedule(): void {
    clearTimeout(timer);
    timer = setTimeout(() => void sync(), 0);
  }

  async function sync(): Promise<void> {
    if (host.state !== 'connected') return;
    const uuids = watched.value;
    const key = uuids.length ? `${intervalMs.value}:${uuids.join(',')}` : '';
    if (key === sent) return;
    sent = key;
    try {
      if (uuids.length) await host.call('stats.watch', { domains: uuids, intervalMs: intervalMs.value });
      else await host.call('stats.unwatch', {});
      problem.value = '';
    } catch (err) {
      problem.value = err instanceof Error ? err.message : String(err);
    }
  }

  /** virsh dommemstat: the balloon's and the guest's own view of its memory. */
  async function memoryStats(uuid: string): Promise<MemoryStats> {
    const answer = await host.call('domain.memoryStats', { domain: uuid });
    delete balloonKiB.value[uuid];
    return answer;
  }

  function setIntervalMs(ms: number): void {
    intervalMs.value = ms;
    localStorage.setItem(INTERVAL_KEY, String(ms));
  }

  vueWatch([watched, intervalMs], schedule);
  host.onState((state) => {
    // A new connection is a new session on the host, which watches nothing yet.
    if (state !== 'connected') return;
    sent = '';
    schedule();
  });

  host.on('domain.stats', ({ uuid, sample }) => {
    if (!sample) return;
    const list = history.value[uuid] ?? [];
    // A sample from before a restart of the guest's counters would draw a spike; keep order by time.
    if (list.length && list[list.length - 1].at >= sample.at) return;
    history.value[uuid] = [...list.slice(-(HISTORY_LENGTH - 1)), sample];
    actualKiB.value[uuid] = sample.memory.actualKiB;
  });
  host.on('domain.balloon', ({ uuid, actualKiB: kib }) => {
    actualKiB.value[uuid] = kib;
    balloonKiB.value[uuid] = kib;
  });
  host.on('domain.lifecycle', ({ domain }) => {
    if (domain.state !== 'shutoff') return;
    delete history.value[domain.uuid];
    delete actualKiB.value[domain.uuid];
    delete balloonKiB.value[domain.uuid];
  });

  return { history, actualKiB, balloonKiB, intervalMs, watched, problem, watch, watchReactive, memoryStats, setIntervalMs };
});
