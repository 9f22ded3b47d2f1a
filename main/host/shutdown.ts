// What a shutdown request came to, in words: which channels reached the guest, why the others did
// not, and why a guest that was asked still did not power off. The host decides from this whether to
// wait, force the domain off at once, or refuse (host.ts shutdown()).
import type { ShutdownResult } from './drivers/driver.js';
import { HostError, agentUnresponsive, operationUnsupported } from './errors.js';

export interface ShutdownOutcome {
  /** The channels that carried the request to something in the guest that can act on it. */
  asked: ('acpi' | 'agent')[];
  /** Why each other channel asked for could not carry it (or a caveat about one that did). */
  notes: string[];
}

export function shutdownOutcome(heard: ShutdownResult, engine: string): ShutdownOutcome {
  const asked: ShutdownOutcome['asked'] = [];
  const notes: string[] = [];
  switch (heard.acpi) {
    case 'pressed':
      asked.push('acpi');
      break;
    case 'not-enabled':
      // The press stays latched: a guest still booting may act on it once its ACPI driver is up.
      asked.push('acpi');
      notes.push('its OS has not enabled the ACPI power button (no ACPI support, or still booting)');
      break;
    case 'absent':
      notes.push('it has no ACPI (its definition lacks <features><acpi/>)');
      break;
  }
  switch (heard.agent) {
    case 'acknowledged':
      asked.push('agent');
      break;
    case 'no-answer':
      notes.push('its guest agent did not answer');
      break;
    case 'not-connected':
      notes.push('its guest agent has not connected (not running in the guest, or the guest is still booting)');
      break;
    case 'unsupported':
      notes.push(`the ${engine} engine does not connect the guest agent channel yet`);
      break;
    case 'absent':
      notes.push('it has no guest agent channel');
      break;
  }
  return { asked, notes };
}

/** The error for a guest none of the asked channels reached (the caller only wanted a request). */
export function unreachableError(name: string, heard: ShutdownResult, outcome: ShutdownOutcome): HostError {
  const detail = `domain '${name}' cannot be asked to shut down: ${outcome.notes.join('; ')}`;
  // Only an agent that exists but does not respond is libvirt's AGENT_UNRESPONSIVE.
  const agentOnly = heard.acpi === undefined && (heard.agent === 'no-answer' || heard.agent === 'not-connected');
  return agentOnly ? agentUnresponsive(detail) : operationUnsupported(detail);
}

/** Why a guest that was asked has not powered off by the timeout, as best the host knows. */
export function ignoredBecause(heard: ShutdownResult): string {
  const why: string[] = [];
  if (heard.acpi === 'pressed') why.push('it got the ACPI power button but did not act on it (is acpid, or its init\'s power-button handler, running?)');
  if (heard.acpi === 'not-enabled') why.push('its OS never enabled the ACPI power button');
  if (heard.agent === 'acknowledged') why.push("its guest agent took 'poweroff' but the guest did not power off");
  return why.join('; ');
}
