// The power controls (Run, Pause, the Shut Down menu, Delete) behave the same in the manager's
// toolbar and in the console header; this is their one definition.
import { computed, type Ref } from 'vue';
import type { DomainSummary } from '@shared/api';
import { domainActions, NO_ACTIONS, type DomainActions } from '../lib/domainState';
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

  const runTip = computed(() => {
    if (paused.value) return 'Resume the virtual machine';
    // libvirt's start restores a managed save instead of booting.
    if (domain.value?.managedSave) return 'Power on the virtual machine, restoring its saved state';
    // Run stays enabled, as in virt-manager: the host's refusal names the reason in full.
    if (domain.value?.cannotStart) return `Power on the virtual machine (the host will refuse: ${domain.value.cannotStart})`;
    return 'Power on the virtual machine';
  });

  /** Runs `act` on the current domain if `allowed` says the host would accept it now. */
  function guarded(allowed: keyof DomainActions, act: (uuid: string) => Promise<boolean>): () => void {
    return () => {
      const d = domain.value;
      if (d && actions.value[allowed]) void act(d.uuid);
    };
  }

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

  /** Deletion is confirmed first (see ConfirmDeleteDialog). */
  function askDelete(): void {
    const d = domain.value;
    if (d && actions.value.undefine) view.confirmDeleteUuid = d.uuid;
  }

  return {
    actions,
    paused,
    canRun,
    canPause,
    runTip,
    run,
    togglePause,
    shutdown: guarded('shutdown', domains.shutdown),
    reboot: guarded('reboot', domains.reboot),
    reset: guarded('reset', domains.reset),
    forceOff: guarded('destroy', domains.destroy),
    managedSave: guarded('managedSave', domains.managedSave),
    discardSave: guarded('discardSave', domains.discardSave),
    askDelete,
  };
}
