// Which actions make sense in which libvirt state, mirroring what libvirt itself accepts so the
// UI offers only what the host will do, and how states are worded (as virsh words them).
import type { DomainSummary, OnHostStop } from '@shared/api';
import type { DomainStep } from '@shared/domain';
import { reasonLabel, stateLabel, type DomainState } from '@shared/libvirt/states';

/** Anything but shut off has a running engine behind it (libvirt's virDomainIsActive). */
export function isActive(state: DomainState): boolean {
  return state !== 'shutoff';
}

/** States in which the guest has a display and a serial line to attach to. */
export function hasConsole(state: DomainState): boolean {
  return state === 'running' || state === 'blocked' || state === 'paused' || state === 'shutdown';
}

export interface DomainActions {
  start: boolean;
  resume: boolean;
  suspend: boolean;
  /** Clean shutdown: the guest is asked (ACPI or agent) and must be running to hear it. */
  shutdown: boolean;
  reboot: boolean;
  reset: boolean;
  destroy: boolean;
  managedSave: boolean;
  /** Drop a managed-save image, so the next start boots afresh. */
  discardSave: boolean;
  /** An ELF core of the guest's memory (Dump Memory…). */
  dump: boolean;
  undefine: boolean;
  /** Move the running or paused guest to another host. */
  migrate: boolean;
}

export const NO_ACTIONS: DomainActions = {
  start: false,
  resume: false,
  suspend: false,
  shutdown: false,
  reboot: false,
  reset: false,
  destroy: false,
  managedSave: false,
  discardSave: false,
  dump: false,
  undefine: false,
  migrate: false,
};

export function domainActions(domain: DomainSummary, busy: boolean): DomainActions {
  if (busy) return NO_ACTIONS;
  if (domain.step !== null) {
    // A guest that ignores the shutdown request can still be forced off, as in virt-manager.
    return domain.step === 'shutting-down' ? { ...NO_ACTIONS, destroy: true } : NO_ACTIONS;
  }
  const s = domain.state;
  const live = s === 'running' || s === 'blocked';
  return {
    start: s === 'shutoff',
    resume: s === 'paused',
    suspend: live,
    shutdown: live,
    reboot: live,
    reset: isActive(s),
    destroy: isActive(s),
    // libvirt refuses a managed save of a transient domain: there is no definition to restore into.
    managedSave: (live || s === 'paused') && domain.persistent,
    discardSave: s === 'shutoff' && domain.managedSave,
    // A panicked guest kept as crashed is what a dump is most wanted of.
    dump: live || s === 'paused' || s === 'crashed',
    // Deleting a running guest would only make it transient; virt-manager asks to stop it first.
    undefine: s === 'shutoff' && domain.persistent,
    migrate: live || s === 'paused',
  };
}

export function stepLabel(step: Exclude<DomainStep, null>): string {
  switch (step) {
    case 'starting':
      return 'starting…';
    case 'shutting-down':
      return 'shutting down…';
    case 'saving':
      return 'saving…';
    case 'restoring':
      return 'restoring…';
    case 'dumping':
      return 'dumping…';
    case 'snapshotting':
      return 'taking a snapshot…';
    case 'migrating':
      return 'migrating…';
  }
}

/** What `virsh domstate --reason` prints, e.g. "shut off (saved)"; an unknown reason is left out. */
export function stateWithReason(domain: Pick<DomainSummary, 'state' | 'reason'>): string {
  const label = stateLabel(domain.state);
  return domain.reason === 'unknown' ? label : `${label} (${reasonLabel(domain.reason)})`;
}

/** The state as a person should read it now: the step in flight, else the state and its reason. */
export function stateText(domain: DomainSummary): string {
  return domain.step ? stepLabel(domain.step) : stateWithReason(domain);
}

/** The "When Domus quits" choices, in the order the select lists them. */
export const ON_HOST_STOP_LABELS: Record<OnHostStop, string> = {
  shutdown: 'Shut down the guest',
  save: 'Save its state',
  keep: 'Keep it running',
};
export const ON_HOST_STOP_CHOICES = Object.keys(ON_HOST_STOP_LABELS) as OnHostStop[];
