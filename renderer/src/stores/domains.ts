// The domain list, kept live from host events after one domain.list per connection (no polling).
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { DomainSummary, LifecycleEvent, NewDomainSpecInput, OnHostStop, Result } from '@shared/api';
import { ApiCallError } from '@shared/client';
import { hostConnection } from './api';
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

export const useDomainsStore = defineStore('domains', () => {
  const host = hostConnection();
  const byUuid = ref<Record<string, DomainSummary>>({});
  const cpuHistory = ref<Record<string, number[]>>({});
  /** The action in flight per domain, so its buttons can be disabled meanwhile. */
  const pending = ref<Record<string, LifecycleAction>>({});
  /** False until the first domain.list answer, so the UI does not flash the empty state. */
  const loaded = ref(false);

  const list = computed(() =>
    Object.values(byUuid.value).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true })),
  );
  const names = computed(() => new Set(list.value.map((d) => d.name)));

  function upsert(domain: DomainSummary): void {
    const previous = byUuid.value[domain.uuid];
    byUuid.value[domain.uuid] = domain;
    // A stopped guest's old CPU curve would read as current load.
    if (previous && previous.state !== 'shutoff' && domain.state === 'shutoff') delete cpuHistory.value[domain.uuid];
  }

  function remove(uuid: string): void {
    delete byUuid.value[uuid];
    delete cpuHistory.value[uuid];
    delete pending.value[uuid];
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

  host.on('domain.lifecycle', ({ domain, event, detail }) => {
    if (event === 'undefined') remove(domain.uuid);
    else upsert(domain);
    const title = EXPLAINED[event];
    if (detail && title) useToastStore().push(event === 'crashed' ? 'error' : 'info', title(domain.name), detail);
  });
  host.on('domain.defined', ({ domain }) => upsert(domain));
  host.on('domain.undefined', ({ uuid }) => remove(uuid));
  host.on('domain.stats', ({ uuid, cpuPercent }) => {
    const domain = byUuid.value[uuid];
    if (!domain) return;
    domain.cpuPercent = cpuPercent;
    const history = cpuHistory.value[uuid] ?? [];
    cpuHistory.value[uuid] = [...history.slice(-(CPU_HISTORY_LENGTH - 1)), cpuPercent];
  });
  // Statistics are watched by what shows them (stores/stats.ts), not for every domain always.
  host.onState((state) => {
    if (state === 'connected') void load();
  });
  if (host.state === 'connected') void load();

  /**
   * Runs a lifecycle call with the domain marked busy. Failures become a toast naming the domain;
   * the result says whether it worked, for callers that continue (e.g. closing a dialog).
   */
  async function lifecycle(action: LifecycleAction, uuid: string, failureTitle?: string): Promise<boolean> {
    const domain = byUuid.value[uuid];
    if (!domain || pending.value[uuid]) return false;
    pending.value[uuid] = action;
    try {
      if (action === 'undefine') {
        await host.call('domain.undefine', { domain: uuid });
        remove(uuid);
      } else if (action === 'shutdown') {
        // A guest that cannot be asked is not forced off behind the person's back: they are asked.
        try {
          const r = await host.call('domain.shutdown', { domain: uuid, unreachable: 'fail' });
          upsert(r.domain);
          if (r.message) useToastStore().push('info', `Asked “${domain.name}” to shut down`, r.message);
        } catch (err) {
          if (!(err instanceof ApiCallError && (err.code === 'OPERATION_UNSUPPORTED' || err.code === 'AGENT_UNRESPONSIVE'))) throw err;
          useViewStore().forceOffOffer = { uuid, reason: err.message };
          return false;
        }
      } else if (action === 'managedSave') {
        // The save runs as a job; the domain's step and then its state arrive as events.
        const { job } = await host.call('domain.managedSave', { domain: uuid });
        useJobsStore().track(job);
      } else {
        const method = `domain.${action}` as const;
        const { domain: updated } = await host.call(method, { domain: uuid });
        upsert(updated);
      }
      return true;
    } catch (err) {
      useToastStore().failure(failureTitle ?? `${ACTION_TITLES[action]} “${domain.name}”`, err);
      return false;
    } finally {
      delete pending.value[uuid];
    }
  }

  /**
   * Creation reports errors to the caller, which shows them next to the form that caused them.
   * `newDiskBytes`, for an install: a new raw volume of that size in the default pool, named after
   * the guest, becomes its disk (virt-install's --disk size=N); it goes again if the definition is
   * refused.
   */
  async function create(spec: NewDomainSpecInput, options: { newDiskBytes?: number } = {}): Promise<Result<'domain.create'>> {
    let newVolume: string | undefined;
    try {
      if (spec.boot.kind === 'install' && options.newDiskBytes !== undefined) {
        const params = { pool: 'default', name: `${spec.name}.img`, capacityBytes: options.newDiskBytes, format: 'raw' } as const;
        const { volume } = await host.call('volume.create', params);
        newVolume = volume.name;
        spec = { ...spec, boot: { ...spec.boot, disk: volume.path } };
      }
      const result = await host.call('domain.create', { spec });
      upsert(result.domain);
      return result;
    } catch (err) {
      if (newVolume) await host.call('volume.delete', { pool: 'default', name: newVolume }).catch(() => undefined);
      throw err;
    }
  }

  // Settings changes report errors to the caller, which shows them next to the control.
  async function setAutostart(uuid: string, enabled: boolean): Promise<DomainSummary> {
    const { domain } = await host.call('domain.setAutostart', { domain: uuid, enabled });
    upsert(domain);
    return domain;
  }

  async function setOnHostStop(uuid: string, policy: OnHostStop): Promise<DomainSummary> {
    const { domain } = await host.call('domain.setOnHostStop', { domain: uuid, policy });
    upsert(domain);
    return domain;
  }

  return {
    byUuid,
    list,
    names,
    cpuHistory,
    pending,
    loaded,
    load,
    /** A summary from an answer, applied ahead of the event that will bring it too. */
    upsert,
    /** `failureTitle` replaces the toast's "Could not start …" (e.g. a guest the wizard just created). */
    start: (uuid: string, failureTitle?: string) => lifecycle('start', uuid, failureTitle),
    suspend: (uuid: string) => lifecycle('suspend', uuid),
    resume: (uuid: string) => lifecycle('resume', uuid),
    shutdown: (uuid: string) => lifecycle('shutdown', uuid),
    reboot: (uuid: string) => lifecycle('reboot', uuid),
    reset: (uuid: string) => lifecycle('reset', uuid),
    destroy: (uuid: string) => lifecycle('destroy', uuid),
    managedSave: (uuid: string) => lifecycle('managedSave', uuid),
    discardSave: (uuid: string) => lifecycle('managedSaveRemove', uuid),
    undefine: (uuid: string) => lifecycle('undefine', uuid),
    create,
    setAutostart,
    setOnHostStop,
  };
});
