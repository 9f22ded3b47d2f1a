// The Dump Memory dialog's rules: which options go together (as domain.coreDump's refinements say),
// what a dump path must be, where one goes by default, and how the outcome reads.
import { fileTimestamp, formatBytes } from './format';

export interface DumpOptions {
  /** Keep the guest running during the dump (otherwise it is paused, then resumed). */
  live: boolean;
  /** Reset the guest after the dump. */
  reset: boolean;
  /** Stop the guest after the dump, as crashed. */
  crash: boolean;
}

export const NO_DUMP_OPTIONS: DumpOptions = { live: false, reset: false, crash: false };

/** Which options can be ticked given the others: crash goes with neither live nor reset. */
export function allowedDumpOptions(o: DumpOptions): DumpOptions {
  return { live: !o.crash, reset: !o.crash, crash: !o.live && !o.reset };
}

/** Ticks or unticks one option; one that does not go with the others stays off. */
export function toggleDumpOption(o: DumpOptions, which: keyof DumpOptions, on: boolean): DumpOptions {
  if (on && !allowedDumpOptions(o)[which]) return o;
  return { ...o, [which]: on };
}

/** Why `file` cannot be a dump's path ('' when it can); `where` names the host it is on. */
export function dumpPathProblem(file: string, where: string): string {
  const path = file.trim();
  if (!path) return 'Give the file to write the dump to.';
  if (!path.startsWith('/')) return `Give an absolute path on ${where}.`;
  if (path.endsWith('/')) return 'The path names a folder: add a file name.';
  return '';
}

/** A fresh file in `folder` named after the guest and the time: "web-20260101-120000.core". */
export function defaultDumpPath(folder: string, name: string, date = new Date()): string {
  return `${folder.replace(/\/+$/, '')}/${name}-${fileTimestamp(date)}.core`;
}

/** The done message: the path, and the file's size where it could be read. */
export function dumpDoneText(file: string, sizeBytes: number | undefined, where: string): string {
  return sizeBytes === undefined ? `Written to ${file} on ${where}.` : `Written to ${file} on ${where} (${formatBytes(sizeBytes)}).`;
}
