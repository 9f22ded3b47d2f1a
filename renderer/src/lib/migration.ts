// The Migrate dialog's logic, apart from the page: where a domain can go, the request its form
// makes (with what is wrong with each field), and how a running or finished migration reads.
import type { JobInfo, MigrationOutcome, MigrationProgressInfo, Params } from '@shared/api';
import { connectionLabel, customUriProblem } from './connections';
import { formatBytes, formatDuration } from './format';

export interface Destination {
  uri: string;
  label: string;
  /** Why it cannot be chosen, or absent. */
  off?: string;
}

/**
 * The known places a domain of `source` (a libvirt connection's URI; undefined: this computer) can
 * go: the libvirt connections that are open, other than its own; for a libvirt host's domain, this
 * computer's engines are listed but off (the libvirt host would have to reach them itself).
 */
export function migrationDestinations(source: string | undefined, libvirt: readonly { uri: string; state: string }[], engines: readonly string[]): Destination[] {
  const out: Destination[] = [];
  for (const c of libvirt) {
    if (c.uri === source) continue;
    out.push({ uri: c.uri, label: connectionLabel(c.uri), ...(c.state === 'connected' ? {} : { off: 'Not connected' }) });
  }
  if (source !== undefined) {
    for (const uri of engines) out.push({ uri, label: `This computer (${connectionLabel(uri)})`, off: "A libvirt host cannot reach this computer's engines" });
  }
  return out;
}

export interface MigrationForm {
  destination: string;
  live: boolean;
  postcopy: boolean;
  persistent: boolean;
  undefineSource: boolean;
  copyStorage: boolean;
  /** As typed: empty means libvirt's default. */
  bandwidth: string;
  timeout: string;
}

export type MigrationFormProblems = Partial<Record<'destination' | 'bandwidth' | 'timeout' | 'postcopy', string>>;

function wholeProblem(text: string, max: number, unit: string): string | undefined {
  const t = text.trim();
  if (!t) return undefined;
  if (!/^\d+$/.test(t) || Number(t) < 1) return `A whole number of ${unit}, at least 1.`;
  if (Number(t) > max) return `At most ${max.toLocaleString('en')} ${unit}.`;
  return undefined;
}

/** What is wrong with each field (the host checks the same, this says it before asking). */
export function migrationFormProblems(form: MigrationForm): MigrationFormProblems {
  const problems: MigrationFormProblems = {};
  const dest = form.destination.trim() ? customUriProblem(form.destination) : 'Choose a destination, or enter its URI.';
  if (dest) problems.destination = dest;
  const bandwidth = wholeProblem(form.bandwidth, 1_000_000, 'MiB/s');
  if (bandwidth) problems.bandwidth = bandwidth;
  const timeout = wholeProblem(form.timeout, 86_400, 'seconds');
  if (timeout) problems.timeout = timeout;
  if (form.postcopy && !form.live) problems.postcopy = 'Post-copy needs a live migration.';
  return problems;
}

/** The domain.migrate request the form makes, but for the domain (check migrationFormProblems first). */
export function migrationRequest(form: MigrationForm): Omit<Params<'domain.migrate'>, 'domain'> {
  return {
    destination: form.destination.trim(),
    live: form.live,
    postcopy: form.postcopy,
    persistent: form.persistent,
    undefineSource: form.undefineSource,
    copyStorageAll: form.copyStorage,
    ...(form.bandwidth.trim() ? { bandwidthMiBs: Number(form.bandwidth.trim()) } : {}),
    ...(form.timeout.trim() ? { timeoutS: Number(form.timeout.trim()) } : {}),
  };
}

const PHASES: Record<MigrationProgressInfo['phase'], string> = {
  begin: 'Starting',
  prepare: 'Preparing the destination',
  precopy: 'Copying memory while the guest runs',
  stopcopy: 'Guest paused: copying the rest',
  postcopy: 'Running on the destination: fetching the rest (post-copy)',
  finish: 'Starting the guest on the destination',
  confirm: 'Finishing',
};

/** A running migration's lines: phase, and the figures libvirt's domjobinfo shows. */
export function migrationProgressLines(job: JobInfo): { phase: string; figures: string[] } {
  const m = job.migration;
  if (!m) return { phase: 'Starting', figures: [] };
  const figures: string[] = [];
  if (m.iteration > 0) figures.push(`Pass ${m.iteration}`);
  if (m.phase !== 'begin' && m.phase !== 'prepare') figures.push(`${formatBytes(m.remainingBytes)} remaining`);
  if (m.dirtyRateBytesPerSec !== undefined) figures.push(`dirtied ${formatBytes(m.dirtyRateBytesPerSec)}/s`);
  return { phase: PHASES[m.phase], figures };
}

/** The finished migration in one line: downtime, total time, what was sent. */
export function migrationOutcomeText(r: MigrationOutcome): string {
  const how = r.postcopy ? ', switched to post-copy' : '';
  const passes = `${r.iterations} ${r.iterations === 1 ? 'pass' : 'passes'}`;
  return `Downtime ${formatDuration(r.downtimeMs)}, total ${formatDuration(r.totalMs)}; ${formatBytes(r.transferredBytes)} sent in ${passes}${how}.`;
}
