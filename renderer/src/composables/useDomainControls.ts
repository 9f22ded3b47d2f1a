// The power buttons (Run, Pause, Force Off, Delete) behave the same in the manager's toolbar and
// in the console header; this is their one definition.
import { computed, type Ref } from 'vue';
import type { DomainSummary } from '@shared/api';
import { domainActions, NO_ACTIONS } from '../lib/domainState';
import { useDomainsStore } from '../stores/domains';
import { useHostStore } from '../stores/host';
import { useViewStore } from '../stores/view';

export function useDomainControls(domain: Ref<DomainSummary | undefined>) {
  const domains = useDomainsStore();
  const hostStore = useHostStore();
  const view = useViewStore();

  const actions = computed(() => {
    const d = domain.value;
    if (!d || hostStore.connection !== 'connected') return NO_ACTIONS;
    return domainActions(d, domains.pending[d.uuid] !== undefined);
  });
  const paused = computed(() => domain.value?.state === 'paused');

  /** Run starts a shut-off guest and, like virt-manager's, resumes a paused one. */
  const canRun = computed(() => actions.value.start || actions.value.resume);
  /** Pause is a toggle: pressed while paused, and pressing it again resumes. */
  const canPause = computed(() => actions.value.suspend || actions.value.resume);

  function run(): void {
    const d = domain.value;
    if (!d) return;
    if (actions.value.resume) void domains.resume(d.uuid);
    else if (actions.value.start) void domains.start(d.uuid);
  }

  function togglePause(): void {
    const d = domain.value;
    if (!d) return;
    if (actions.value.resume) void domains.resume(d.uuid);
    else if (actions.value.suspend) void domains.suspend(d.uuid);
  }

  function forceOff(): void {
    const d = domain.value;
    if (d && actions.value.destroy) void domains.destroy(d.uuid);
  }

  /** Deletion is confirmed first (see ConfirmDeleteDialog). */
  function askDelete(): void {
    const d = domain.value;
    if (d && actions.value.undefine) view.confirmDeleteUuid = d.uuid;
  }

  return { actions, paused, canRun, canPause, run, togglePause, forceOff, askDelete };
}
