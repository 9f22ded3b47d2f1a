// The power controls (Run, Pause, the Shut Down menu, Delete) behave the same in the manager's
// toolbar and in the console header; this is their one definition. A domain of a libvirt
// connection offers only what that connection serves, and says why the rest is off.
import { computed, type Ref } from 'vue';
import { domainActions, NO_ACTIONS, type DomainActions } from '../lib/domainState';
import { parseDomainKey, type DomainKey } from '../lib/connections';
import { useConfirmationsStore } from '../stores/confirmations';
import { useDomainsStore } from '../stores/domains';
import { useHostStore } from '../stores/host';
import { useViewStore } from '../stores/view';

/** Why an action libvirt connections do not serve yet is off, in the control's tooltip. */
export const NOT_ON_LIBVIRT = 'Not available on libvirt connections yet';
/** Why every action of a domain whose connection is not open is off. */
export const CONNECTION_NOT_OPEN = 'The connection to its host is not open';

/** The actions a libvirt connection serves (the host answers OPERATION_UNSUPPORTED to the rest). */
const ON_LIBVIRT: (keyof DomainActions)[] = ['start', 'resume', 'suspend', 'shutdown', 'reboot', 'reset', 'destroy', 'undefine', 'managedSave', 'discardSave', 'dump', 'migrate'];

export function useDomainControls(key: Ref<DomainKey | null | undefined>) {
  const domains = useDomainsStore();
  const hostStore = useHostStore();
  const view = useViewStore();
  const confirmations = useConfirmationsStore();

  const domain = computed(() => (key.value ? domains.get(key.value) : undefined));
  const remote = computed(() => !!key.value && parseDomainKey(key.value).connection !== undefined);
  const stale = computed(() => !!key.value && domains.isStale(key.value));

  const actions = computed<DomainActions>(() => {
    const d = domain.value;
    if (!d || !key.value || hostStore.connection !== 'connected' || stale.value) return NO_ACTIONS;
    const all = domainActions(d, domains.pending[key.value] !== undefined);
    if (!remote.value) return all;
    const served = { ...NO_ACTIONS };
    for (const action of ON_LIBVIRT) served[action] = all[action];
    return served;
  });

  /** Why `action` is off for a reason other than the domain's state ('' when there is none). */
  function offReason(action: keyof DomainActions | 'console'): string {
    if (stale.value) return CONNECTION_NOT_OPEN;
    if (remote.value && action !== 'console' && !ON_LIBVIRT.includes(action)) return NOT_ON_LIBVIRT;
    return '';
  }

  const paused = computed(() => domain.value?.state === 'paused');

  /** Run starts a shut-off guest and, like virt-manager's, resumes a paused one. */
  const canRun = computed(() => actions.value.start || actions.value.resume);
  /** Pause is a toggle: pressed while paused, and pressing it again resumes. */
  const canPause = computed(() => actions.value.suspend || actions.value.resume);

  const runTip = computed(() => {
    if (stale.value) return CONNECTION_NOT_OPEN;
    if (paused.value) return 'Resume the virtual machine';
    // libvirt's start restores a managed save instead of booting.
    if (domain.value?.managedSave) return 'Power on the virtual machine, restoring its saved state';
    // Run stays enabled, as in virt-manager: the host's refusal names the reason in full.
    if (domain.value?.cannotStart) return `Power on the virtual machine (the host will refuse: ${domain.value.cannotStart})`;
    return 'Power on the virtual machine';
  });

  /** Runs `act` on the current domain if `allowed` says the host would accept it now. */
  function guarded(allowed: keyof DomainActions, act: (key: DomainKey) => Promise<boolean>): () => void {
    return () => {
      if (key.value && actions.value[allowed]) void act(key.value);
    };
  }

  function run(): void {
    if (!key.value) return;
    if (actions.value.resume) void domains.resume(key.value);
    else if (actions.value.start) void domains.start(key.value);
  }

  function togglePause(): void {
    if (!key.value) return;
    if (actions.value.resume) void domains.resume(key.value);
    else if (actions.value.suspend) void domains.suspend(key.value);
  }

  /** Dump Memory… asks where and how first (see DumpMemoryDialog). */
  function askDump(): void {
    if (key.value && actions.value.dump) view.dumpKey = key.value;
  }

  /** Clone (this computer's domains): shut off, or running or paused to be copied paused (see CloneDialog). */
  const canClone = computed(() => !remote.value && (actions.value.undefine || actions.value.suspend || actions.value.resume));
  function askClone(): void {
    if (key.value && canClone.value) view.cloneKey = key.value;
  }

  /** Force Off is confirmed first (see ConfirmForceOffDialog) unless the person said not to ask again. */
  function forceOff(): void {
    if (!key.value || !actions.value.destroy) return;
    if (confirmations.ask.forceOff) view.forceOffOffer = { key: key.value };
    else void domains.destroy(key.value);
  }

  /**
   * Deletion is confirmed first (see ConfirmDeleteDialog); without the question, only the definition
   * goes: disks are deleted only where the dialog's checklist shows them.
   */
  function askDelete(): void {
    const k = key.value;
    if (!k || !actions.value.undefine) return;
    if (confirmations.ask.delete) view.confirmDeleteKey = k;
    else void domains.undefine(k, []).then((ok) => ok && view.selectedKey === k && view.select(null));
  }

  return {
    domain,
    remote,
    actions,
    offReason,
    paused,
    canRun,
    canPause,
    runTip,
    run,
    togglePause,
    shutdown: guarded('shutdown', domains.shutdown),
    reboot: guarded('reboot', domains.reboot),
    reset: guarded('reset', domains.reset),
    forceOff,
    managedSave: guarded('managedSave', domains.managedSave),
    discardSave: guarded('discardSave', domains.discardSave),
    askDump,
    askDelete,
    canClone,
    askClone,
  };
}
