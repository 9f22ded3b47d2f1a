// Statistics samples for the graphs and sparklines. The host samples a domain only while some
// client watches it (stats.watch), so every view that shows statistics says what it shows through
// `watch()` and stops with the returned function; this store sends one stats.watch per connection
// with the union of what is on screen there (domain keys: this computer's and libvirt hosts'), and
// stats.unwatch when nothing is.
import { defineStore } from 'pinia';
import { computed, ref, watch as vueWatch } from 'vue';
import type { DomainStatsSample, MemoryStats } from '@shared/api';
import { domainKey, parseDomainKey, type DomainKey } from '../lib/connections';
import { hostConnection } from './api';
import { useConnectionsStore } from './connections';

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
  const connections = useConnectionsStore();
  /** Samples per domain key. */
  const history = ref<Record<DomainKey, DomainStatsSample[]>>({});
  /** The balloon's actual size per domain: from the latest sample or balloon event, whichever is newer. */
  const actualKiB = ref<Record<string, number>>({});
  /** The balloon's size from domain.balloon events newer than the last memoryStats answer (the Memory page). */
  const balloonKiB = ref<Record<string, number>>({});
  /** The sampling interval, a preference kept in localStorage. */
  const intervalMs = ref(storedInterval());
  /** Who watches what: each caller of watch() holds one entry. */
  const watchers = ref(new Map<number, readonly string[]>());
  /** What the host was last asked for per connection ('' this computer), so unchanged sets are not resent. */
  const sent = new Map<string, string>();
  let nextToken = 1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Set when the host refused stats.watch (an older host): the graphs say so. */
  const problem = ref('');

  const watched = computed(() => {
    const set = new Set<string>();
    for (const list of watchers.value.values()) for (const uuid of list) set.add(uuid);
    return [...set].sort();
  });

  /** Starts watching domains (their keys: a view on screen); call the result when it leaves the screen. */
  function watch(keys: readonly DomainKey[]): () => void {
    const token = nextToken++;
    watchers.value.set(token, [...keys]);
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

  /** The watched domains' UUIDs by connection ('' this computer). */
  function byConnection(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const key of watched.value) {
      const { connection = '', uuid } = parseDomainKey(key);
      out.set(connection, [...(out.get(connection) ?? []), uuid]);
    }
    return out;
  }

  /** Each connection's watch as it should be now: sent where it changed, on the connections that are open. */
  async function sync(): Promise<void> {
    if (host.state !== 'connected') return;
    const want = byConnection();
    const open = (c: string): boolean => c === '' || connections.byUri[c]?.state === 'connected';
    for (const c of new Set([...want.keys(), ...sent.keys()])) {
      if (!open(c)) {
        // A connection that is not open has no watch; the next open sends it again.
        sent.delete(c);
        continue;
      }
      const uuids = want.get(c) ?? [];
      const key = uuids.length ? `${intervalMs.value}:${uuids.join(',')}` : '';
      if (key === (sent.get(c) ?? '')) continue;
      if (key) sent.set(c, key);
      else sent.delete(c);
      const opts = { connection: c || undefined };
      try {
        if (uuids.length) await host.call('stats.watch', { domains: uuids, intervalMs: intervalMs.value }, opts);
        else await host.call('stats.unwatch', {}, opts);
        problem.value = '';
      } catch (err) {
        problem.value = err instanceof Error ? err.message : String(err);
      }
    }
  }

  /** virsh dommemstat: the balloon's and the guest's own view of its memory. */
  async function memoryStats(key: DomainKey): Promise<MemoryStats> {
    const { connection, uuid } = parseDomainKey(key);
    const answer = await host.call('domain.memoryStats', { domain: uuid }, { connection });
    delete balloonKiB.value[key];
    return answer;
  }

  function setIntervalMs(ms: number): void {
    intervalMs.value = ms;
    localStorage.setItem(INTERVAL_KEY, String(ms));
  }

  // A libvirt connection that opens (again) is a new one on the host, which samples nothing yet.
  const openConnections = computed(() =>
    connections.list
      .filter((c) => c.state === 'connected')
      .map((c) => c.uri)
      .join(' '),
  );
  vueWatch([watched, intervalMs, openConnections], schedule);
  host.onState((state) => {
    // A new connection is a new session on the host, which watches nothing yet.
    if (state !== 'connected') return;
    sent.clear();
    schedule();
  });
  host.on('connection.state', ({ connection }) => {
    if (connection.state !== 'connected') sent.delete(connection.uri);
  });

  function sampled(key: DomainKey, sample: DomainStatsSample | undefined): void {
    if (!sample) return;
    const list = history.value[key] ?? [];
    // A sample from before a restart of the guest's counters would draw a spike; keep order by time.
    if (list.length && list[list.length - 1].at >= sample.at) return;
    history.value[key] = [...list.slice(-(HISTORY_LENGTH - 1)), sample];
    actualKiB.value[key] = sample.memory.actualKiB;
  }
  function ballooned(key: DomainKey, kib: number): void {
    actualKiB.value[key] = kib;
    balloonKiB.value[key] = kib;
  }
  function stopped(key: DomainKey): void {
    delete history.value[key];
    delete actualKiB.value[key];
    delete balloonKiB.value[key];
  }
  host.on('domain.stats', ({ uuid, sample }) => sampled(uuid, sample));
  host.onRemote('domain.stats', ({ uuid, sample }, connection) => sampled(domainKey(connection, uuid), sample));
  host.on('domain.balloon', ({ uuid, actualKiB: kib }) => ballooned(uuid, kib));
  host.onRemote('domain.balloon', ({ uuid, actualKiB: kib }, connection) => ballooned(domainKey(connection, uuid), kib));
  host.on('domain.lifecycle', ({ domain }) => {
    if (domain.state === 'shutoff') stopped(domain.uuid);
  });
  host.onRemote('domain.lifecycle', ({ domain }, connection) => {
    if (domain.state === 'shutoff') stopped(domainKey(connection, domain.uuid));
  });

  /** The guest's IP addresses from its latest sample (its networks' DHCP leases), when known. */
  function addresses(key: DomainKey): string[] {
    const list = history.value[key];
    const devices = list?.[list.length - 1]?.net.devices ?? [];
    return [...new Set(devices.flatMap((d) => d.addresses ?? []))];
  }

  return { addresses, history, actualKiB, balloonKiB, intervalMs, watched, problem, watch, watchReactive, memoryStats, setIntervalMs };
});
