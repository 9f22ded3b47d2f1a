// The domain lists, kept live from host events after one domain.list per connection (no polling):
// this computer's, and one per open libvirt connection. A domain is named by its key (its UUID
// here, the connection's URI and its UUID on a libvirt host; see lib/connections.ts).
import { defineStore } from 'pinia';
import { computed, ref, watch } from 'vue';
import type { ConnectionState, DomainSummary, FastStartAction, LifecycleEvent, NewDomainSpecInput, OnHostStop, Result } from '@shared/api';
import { ApiCallError } from '@shared/client';
import { connectionLabel, domainKey, parseDomainKey, type DomainKey } from '../lib/connections';
import { hostConnection } from './api';
import { useConnectionsStore } from './connections';
import { useJobsStore } from './jobs';
import { useToastStore } from './toasts';
import { useViewStore } from './view';

/** Titles for lifecycle events the host explains (a forced off, a shutdown request that timed out, a crash). */
const EXPLAINED: Partial<Record<LifecycleEvent, (name: string) => string>> = {
  stopped: (name) => `“${name}” was forced off`,
  crashed: (name) => `“${name}” crashed`,
  step: (name) => `“${name}” did not shut down`,
};

/** Samples kept for the CPU sparkline: one minute at the host's one-per-second stats. */
export const CPU_HISTORY_LENGTH = 60;

export type LifecycleAction =
  | 'start'
  | 'suspend'
  | 'resume'
  | 'shutdown'
  | 'reboot'
  | 'reset'
  | 'destroy'
  | 'managedSave'
  | 'managedSaveRemove'
  | 'undefine';

const ACTION_TITLES: Record<LifecycleAction, string> = {
  start: 'Could not start',
  suspend: 'Could not pause',
  resume: 'Could not resume',
  shutdown: 'Could not shut down',
  reboot: 'Could not reboot',
  reset: 'Could not reset',
  destroy: 'Could not force off',
  managedSave: 'Could not save',
  managedSaveRemove: 'Could not discard the saved state of',
  undefine: 'Could not delete',
};

/** The domains of one libvirt connection. */
export interface ConnectionDomains {
  byUuid: Record<string, DomainSummary>;
  /** False until the connection's first domain.list answer. */
  loaded: boolean;
  /** The connection is not open: these are the states it last reported, shown greyed. */
  stale: boolean;
}

function byName(domains: Record<string, DomainSummary>): DomainSummary[] {
  return Object.values(domains).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

export const useDomainsStore = defineStore('domains', () => {
  const host = hostConnection();
  const connections = useConnectionsStore();
  /** This computer's domains. */
  const byUuid = ref<Record<string, DomainSummary>>({});
  /** Each libvirt connection's domains, by its URI, while it is open or after it dropped. */
  const remote = ref<Record<string, ConnectionDomains>>({});
  const cpuHistory = ref<Record<string, number[]>>({});
  /** The action in flight per domain key, so its buttons can be disabled meanwhile. */
  const pending = ref<Record<DomainKey, LifecycleAction>>({});
  /** False until the first domain.list answer, so the UI does not flash the empty state. */
  const loaded = ref(false);

  /** This computer's domains by name. */
  const list = computed(() => byName(byUuid.value));
  const names = computed(() => new Set(list.value.map((d) => d.name)));

  /** A libvirt connection's domains by name (none before its first list). */
  function listOf(connection: string): DomainSummary[] {
    const entry = remote.value[connection];
    return entry ? byName(entry.byUuid) : [];
  }

  function get(key: DomainKey): DomainSummary | undefined {
    const { connection, uuid } = parseDomainKey(key);
    return connection === undefined ? byUuid.value[uuid] : remote.value[connection]?.byUuid[uuid];
  }

  /** True for a domain of a libvirt connection that is not open now. */
  function isStale(key: DomainKey): boolean {
    const { connection } = parseDomainKey(key);
    return connection !== undefined && remote.value[connection]?.stale !== false;
  }

  function upsert(domain: DomainSummary, connection?: string): void {
    // A transient domain is gone once shut off: a Force Off's answer (a last summary) arriving after
    // the event that removed the row must not bring it back.
    if (!domain.persistent && domain.state === 'shutoff') {
      remove(domainKey(connection, domain.uuid));
      return;
    }
    if (connection !== undefined) {
      const entry = remote.value[connection];
      if (entry) entry.byUuid[domain.uuid] = domain;
      return;
    }
    const previous = byUuid.value[domain.uuid];
    byUuid.value[domain.uuid] = domain;
    // A stopped guest's old CPU curve would read as current load.
    if (previous && previous.state !== 'shutoff' && domain.state === 'shutoff') delete cpuHistory.value[domain.uuid];
  }

  function remove(key: DomainKey): void {
    const { connection, uuid } = parseDomainKey(key);
    delete pending.value[key];
    if (connection !== undefined) {
      const entry = remote.value[connection];
      if (entry) delete entry.byUuid[uuid];
      return;
    }
    delete byUuid.value[uuid];
    delete cpuHistory.value[uuid];
  }

  async function load(): Promise<void> {
    try {
      const { domains } = await host.call('domain.list', { all: true });
      const fresh: Record<string, DomainSummary> = {};
      for (const d of domains) fresh[d.uuid] = d;
      byUuid.value = fresh;
      for (const uuid of Object.keys(cpuHistory.value)) if (!fresh[uuid]) delete cpuHistory.value[uuid];
      loaded.value = true;
      useJobsStore().recover(domains);
    } catch (err) {
      if (host.state === 'connected') useToastStore().failure('Could not list the virtual machines', err);
    }
  }

  /** Lists of libvirt connections asked for, so an older answer does not replace a newer one. */
  const remoteLoads = new Map<string, number>();

  async function loadRemote(connection: string): Promise<void> {
    const mine = (remoteLoads.get(connection) ?? 0) + 1;
    remoteLoads.set(connection, mine);
    remote.value[connection] ??= { byUuid: {}, loaded: false, stale: false };
    try {
      const { domains } = await host.call('domain.list', { all: true }, { connection });
      if (remoteLoads.get(connection) !== mine || connections.byUri[connection]?.state !== 'connected') return;
      const fresh: Record<string, DomainSummary> = {};
      for (const d of domains) fresh[d.uuid] = d;
      remote.value[connection] = { byUuid: fresh, loaded: true, stale: false };
      useJobsStore().recover(domains, connection);
    } catch (err) {
      if (remoteLoads.get(connection) !== mine || connections.byUri[connection]?.state !== 'connected' || host.state !== 'connected') return;
      useToastStore().failure(`Could not list the virtual machines of ${connectionLabel(connection)}`, err);
    }
  }

  function clearPending(connection: string): void {
    for (const key of Object.keys(pending.value)) if (parseDomainKey(key).connection === connection) delete pending.value[key];
  }

  /** The state each connection was last seen in, so only changes are acted on. */
  const seen = new Map<string, ConnectionState['state']>();

  /**
   * Follows the connections: an opened one is listed, one that fails or drops keeps its domains
   * greyed (their last known states), one disconnected on purpose or removed shows none.
   */
  function follow(states: readonly (readonly [string, ConnectionState['state']])[]): void {
    const now = new Map(states);
    for (const uri of [...seen.keys(), ...Object.keys(remote.value)]) {
      if (now.has(uri)) continue;
      seen.delete(uri);
      delete remote.value[uri];
      remoteLoads.delete(uri);
      clearPending(uri);
    }
    for (const [uri, state] of now) {
      if (seen.get(uri) === state) continue;
      seen.set(uri, state);
      if (state === 'connected') {
        void loadRemote(uri);
        continue;
      }
      remoteLoads.delete(uri);
      clearPending(uri);
      if (state === 'disconnected') delete remote.value[uri];
      else if (remote.value[uri]) remote.value[uri].stale = true;
    }
  }
  watch(() => connections.list.map((c) => [c.uri, c.state] as const), follow, { flush: 'sync', immediate: true });

  function lifecycleEvent(domain: DomainSummary, event: LifecycleEvent, detail: string | undefined, connection?: string): void {
    if (event === 'undefined') remove(domainKey(connection, domain.uuid));
    else upsert(domain, connection);
    const title = EXPLAINED[event];
    if (detail && title) useToastStore().push(event === 'crashed' ? 'error' : 'info', title(domain.name), detail);
  }

  host.on('domain.lifecycle', ({ domain, event, detail }) => lifecycleEvent(domain, event, detail));
  host.on('domain.defined', ({ domain }) => upsert(domain));
  host.on('domain.undefined', ({ uuid }) => remove(uuid));
  // Events of a connection whose list is stale or not read yet are left to its next list.
  const live = (connection: string): boolean => remote.value[connection]?.stale === false;
  host.onRemote('domain.lifecycle', ({ domain, event, detail }, connection) => {
    if (live(connection)) lifecycleEvent(domain, event, detail, connection);
  });
  host.onRemote('domain.defined', ({ domain }, connection) => {
    if (live(connection)) upsert(domain, connection);
  });
  host.onRemote('domain.undefined', ({ uuid }, connection) => {
    if (live(connection)) remove(domainKey(connection, uuid));
  });
  function cpuSample(key: DomainKey, cpuPercent: number): void {
    const domain = get(key);
    if (!domain) return;
    domain.cpuPercent = cpuPercent;
    const history = cpuHistory.value[key] ?? [];
    cpuHistory.value[key] = [...history.slice(-(CPU_HISTORY_LENGTH - 1)), cpuPercent];
  }
  host.on('domain.stats', ({ uuid, cpuPercent }) => cpuSample(uuid, cpuPercent));
  host.onRemote('domain.stats', ({ uuid, cpuPercent }, connection) => {
    if (live(connection)) cpuSample(domainKey(connection, uuid), cpuPercent);
  });
  // Statistics are watched by what shows them (stores/stats.ts), not for every domain always.
  host.onState((state) => {
    if (state === 'connected') void load();
    else {
      // What the libvirt connections did meanwhile is unknown until the connections are listed again.
      seen.clear();
      for (const entry of Object.values(remote.value)) entry.stale = true;
    }
  });
  if (host.state === 'connected') void load();

  /**
   * Runs a lifecycle call with the domain marked busy, on the domain's connection. Failures become
   * a toast naming the domain; the result says whether it worked, for callers that continue (e.g.
   * closing a dialog).
   */
  async function lifecycle(action: LifecycleAction, key: DomainKey, failureTitle?: string, storage: string[] = []): Promise<boolean> {
    const domain = get(key);
    if (!domain || pending.value[key] || isStale(key)) return false;
    const { connection, uuid } = parseDomainKey(key);
    const opts = { connection };
    pending.value[key] = action;
    try {
      if (action === 'undefine') {
        // storage: the disks (targets) to delete with it; the host keeps any another domain uses, and says why.
        const r = await host.call('domain.undefine', { domain: uuid, ...(storage.length ? { storage } : {}) }, opts);
        remove(key);
        if (r.kept?.length) useToastStore().push('info', `Kept ${r.kept.length} disk file${r.kept.length === 1 ? '' : 's'} of “${domain.name}”`, r.kept.map((k) => `${k.file}: ${k.reason}`).join('\n'));
      } else if (action === 'shutdown') {
        // A guest that cannot be asked is not forced off behind the person's back: they are asked.
        try {
          const r = await host.call('domain.shutdown', { domain: uuid, unreachable: 'fail' }, opts);
          upsert(r.domain, connection);
          if (r.message) useToastStore().push('info', `Asked “${domain.name}” to shut down`, r.message);
        } catch (err) {
          if (!(err instanceof ApiCallError && (err.code === 'OPERATION_UNSUPPORTED' || err.code === 'AGENT_UNRESPONSIVE'))) throw err;
          useViewStore().forceOffOffer = { key, reason: err.message };
          return false;
        }
      } else if (action === 'managedSave') {
        // The save runs as a job; the domain's step and then its state arrive as events.
        const { job } = await host.call('domain.managedSave', { domain: uuid }, opts);
        useJobsStore().track(job, connection);
      } else {
        const method = `domain.${action}` as const;
        const { domain: updated } = await host.call(method, { domain: uuid }, opts);
        upsert(updated, connection);
      }
      return true;
    } catch (err) {
      useToastStore().failure(failureTitle ?? `${ACTION_TITLES[action]} “${domain.name}”`, err);
      return false;
    } finally {
      delete pending.value[key];
    }
  }

  /**
   * Creation reports errors to the caller, which shows them next to the form that caused them.
   * `newDiskBytes`, for an install: a new raw volume of that size in the default pool, named after
   * the guest, becomes its disk (virt-install's --disk size=N); it goes again if the definition is
   * refused.
   */
  async function create(spec: NewDomainSpecInput, options: { newDiskBytes?: number; connection?: string } = {}): Promise<Result<'domain.create'>> {
    // `connection`: a libvirt host, where the volume and the domain are made.
    const opts = { connection: options.connection };
    let newVolume: string | undefined;
    try {
      if (spec.boot.kind === 'install' && options.newDiskBytes !== undefined) {
        const params = { pool: 'default', name: `${spec.name}.img`, capacityBytes: options.newDiskBytes, format: 'raw' } as const;
        const { volume } = await host.call('volume.create', params, opts);
        newVolume = volume.name;
        spec = { ...spec, boot: { ...spec.boot, disk: volume.path } };
      }
      const result = await host.call('domain.create', { spec }, opts);
      upsert(result.domain, options.connection);
      return result;
    } catch (err) {
      if (newVolume) await host.call('volume.delete', { pool: 'default', name: newVolume }, opts).catch(() => undefined);
      throw err;
    }
  }

  // Settings changes report errors to the caller, which shows them next to the control.
  async function setAutostart(key: DomainKey, enabled: boolean): Promise<DomainSummary> {
    const { connection, uuid } = parseDomainKey(key);
    const { domain } = await host.call('domain.setAutostart', { domain: uuid, enabled }, { connection });
    upsert(domain, connection);
    return domain;
  }

  async function setOnHostStop(key: DomainKey, policy: OnHostStop): Promise<DomainSummary> {
    const { connection, uuid } = parseDomainKey(key);
    const { domain } = await host.call('domain.setOnHostStop', { domain: uuid, policy }, { connection });
    upsert(domain, connection);
    return domain;
  }

  async function setFastStart(key: DomainKey, action: FastStartAction): Promise<DomainSummary> {
    const { connection, uuid } = parseDomainKey(key);
    const { domain } = await host.call('domain.fastStart', { domain: uuid, action }, { connection });
    upsert(domain, connection);
    return domain;
  }

  return {
    byUuid,
    remote,
    list,
    listOf,
    get,
    isStale,
    names,
    cpuHistory,
    pending,
    loaded,
    load,
    /** A summary from an answer, applied ahead of the event that will bring it too. */
    upsert,
    /** `failureTitle` replaces the toast's "Could not start …" (e.g. a guest the wizard just created). */
    start: (key: DomainKey, failureTitle?: string) => lifecycle('start', key, failureTitle),
    suspend: (key: DomainKey) => lifecycle('suspend', key),
    resume: (key: DomainKey) => lifecycle('resume', key),
    shutdown: (key: DomainKey) => lifecycle('shutdown', key),
    reboot: (key: DomainKey) => lifecycle('reboot', key),
    reset: (key: DomainKey) => lifecycle('reset', key),
    destroy: (key: DomainKey) => lifecycle('destroy', key),
    managedSave: (key: DomainKey) => lifecycle('managedSave', key),
    discardSave: (key: DomainKey) => lifecycle('managedSaveRemove', key),
    undefine: (key: DomainKey, storage: string[] = []) => lifecycle('undefine', key, undefined, storage),
    create,
    setAutostart,
    setOnHostStop,
    setFastStart,
  };
});
