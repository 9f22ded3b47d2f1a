// libvirt's domain states (virDomainState) and the reasons that go with them, named as the API
// contract sends them and worded as virsh prints them. No Node, no DOM.

/** virDomainState, in libvirt's order (virsh domstate's numbers are the indexes). */
export const DOMAIN_STATES = [
  'nostate',
  'running',
  'blocked',
  'paused',
  'shutdown',
  'shutoff',
  'crashed',
  'pmsuspended',
] as const;
export type DomainState = (typeof DOMAIN_STATES)[number];

/** Reasons, named as virsh prints them (virDomainRunningReason etc.). */
export type RunningReason = 'unknown' | 'booted' | 'migrated' | 'restored' | 'from snapshot' | 'unpaused';
export type PausedReason = 'unknown' | 'user' | 'migrating' | 'saving' | 'dumping' | 'ioerror' | 'starting-up' | 'snapshot';
export type ShutoffReason =
  | 'unknown'
  | 'shutdown'
  | 'destroyed'
  | 'crashed'
  | 'migrated'
  | 'saved'
  | 'failed'
  | 'from snapshot';
/** virDomainCrashedReason: a guest that panicked and is kept (<on_crash>preserve</on_crash>). */
export type CrashedReason = 'unknown' | 'panicked';
export type StateReason = RunningReason | PausedReason | ShutoffReason | CrashedReason;

/** virsh's spelling of each state ("shut off", not "shutoff"). */
export function stateLabel(state: DomainState): string {
  switch (state) {
    case 'shutoff':
      return 'shut off';
    case 'nostate':
      return 'no state';
    case 'pmsuspended':
      return 'pmsuspended';
    case 'shutdown':
      return 'in shutdown';
    default:
      return state;
  }
}

/** The reasons whose virsh spelling differs from the contract's identifier. */
const REASON_LABELS: Partial<Record<StateReason, string>> = { ioerror: 'I/O error', 'starting-up': 'starting up' };

/** virsh's spelling of a reason, as `virsh domstate --reason` prints it. */
export function reasonLabel(reason: StateReason): string {
  return REASON_LABELS[reason] ?? reason;
}
