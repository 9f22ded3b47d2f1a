// Which actions make sense in which libvirt state, mirroring what libvirt itself accepts so the
// UI offers only what the host will do.
import type { DomainSummary } from '@shared/api';
import type { DomainState, DomainStep } from '@shared/domain';

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
  destroy: boolean;
  undefine: boolean;
}

export const NO_ACTIONS: DomainActions = { start: false, resume: false, suspend: false, destroy: false, undefine: false };

export function domainActions(domain: DomainSummary, busy: boolean): DomainActions {
  if (busy || domain.step !== null) return NO_ACTIONS;
  const s = domain.state;
  return {
    start: s === 'shutoff',
    resume: s === 'paused',
    suspend: s === 'running' || s === 'blocked',
    destroy: isActive(s),
    // Deleting a running guest would only make it transient; virt-manager asks to stop it first.
    undefine: s === 'shutoff' && domain.persistent,
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
  }
}
