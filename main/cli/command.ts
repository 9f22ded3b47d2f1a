// What every `domus` command is made of: parsed arguments, virsh-style errors and output helpers.
import fs from 'node:fs';
import path from 'node:path';
import type { Result } from '../../shared/api.js';
import type { ApiClient } from '../../shared/client.js';

export const DEFAULT_URI = 'v86:///session';

/** A failure printed virsh-style: each line prefixed with "error: ". */
export class CliError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
  }
}

export interface Args {
  positional: string[];
  flags: Set<string>;
  options: Map<string, string>;
  /** The command's arguments as given, for a command that parses its own (clone: virt-clone's repeated options). */
  raw: string[];
  /** The libvirt connection (-c URI) the command is for; absent for the host's own engines. */
  connection?: string;
}

/**
 * A file the host reads or writes (save, restore): on the host's own engines a path here, made
 * absolute; on a libvirt connection a path on the libvirt host, which must be absolute there since
 * the daemon's working directory is nobody's to guess (virsh passes it unchanged).
 */
export function hostFile(args: Args, file: string): string {
  if (!args.connection) return path.resolve(file);
  if (!path.posix.isAbsolute(file)) throw new CliError([`'${file}' must be an absolute path on the host of ${args.connection}`]);
  return file;
}

/** Flags that take a value (`--timeout 30` or `--timeout=30`); every other flag is a switch. */
export const VALUE_FLAGS = new Set(['timeout', 'mode', 'domain', 'op', 'event', 'codeset', 'holdtime', 'pool', 'format', 'type', 'mac', 'source', 'model', 'interface', 'description', 'bandwidth', 'after', 'storage', 'virttype', 'cap']);

export function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Set<string>();
  const options = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (eq > 0) options.set(key, a.slice(eq + 1));
    else if (VALUE_FLAGS.has(key)) {
      const value = argv[++i];
      if (value === undefined) throw new CliError([`option --${key} needs a value`]);
      options.set(key, value);
    } else flags.add(key);
  }
  return { positional, flags, options, raw: argv };
}

/**
 * Refuses options a command does not take, as virsh does; the ones it takes are those its usage
 * line names, so the help and the check cannot drift apart.
 */
export function checkOptions(name: string, command: Command, args: Args): void {
  const known = new Set([...command.usage.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]));
  for (const key of [...args.flags, ...args.options.keys()]) {
    if (!known.has(key)) throw new CliError([`command '${name}' doesn't support option --${key}`]);
  }
}

export type Command = {
  usage: string;
  help: string;
  run: (client: () => Promise<ApiClient>, args: Args) => Promise<void>;
};

/** Reads an XML file named on the command line; a file that cannot be read fails as virsh's does. */
export function readXmlFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError([`Failed to open file '${file}': ${code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}`]);
  }
}

export function need(args: Args, index: number, what: string, command: string): string {
  const v = args.positional[index];
  if (v === undefined) throw new CliError([`command '${command}' requires <${what}> option`]);
  return v;
}

/** Runs an API call; on failure prints virsh's two-line error (context, then the cause). */
export async function attempt<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const message = (err as Error).message;
    if ((err as { code?: string }).code === 'NO_DOMAIN') {
      const m = /'([^']*)'/.exec(message);
      throw new CliError([`failed to get domain '${m?.[1] ?? ''}'`]);
    }
    throw new CliError([context, message]);
  }
}

/** attempt() for commands whose failures virsh prints as the bare libvirt error, with no context line. */
export async function attemptBare<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await attempt('', fn);
  } catch (err) {
    if (err instanceof CliError) throw new CliError(err.lines.filter((l) => l !== ''));
    throw err;
  }
}

/** A domain's summary, by name, UUID or id; a lookup that fails says so as virsh's do. */
export function domainInfo(api: ApiClient, name: string): Promise<Result<'domain.info'>> {
  return attempt(`failed to get domain '${name}'`, () => api.call('domain.info', { domain: name }));
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => ' ' + cells.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd();
  // virsh's dashes run two past the widest row (every column at its full width), not the header.
  const width = 1 + widths.reduce((n, w) => n + w, 0) + 3 * (widths.length - 1);
  return [line(header), '-'.repeat(width + 2), ...rows.map(line), ''].join('\n') + '\n';
}

/** The command `command DOMAIN`: calls one method on the domain and says what became of it, "Domain 'x' <done>". */
export function simpleDomainOp(
  method: 'domain.start' | 'domain.destroy' | 'domain.suspend' | 'domain.resume' | 'domain.reboot' | 'domain.reset',
  done: string,
  command: string,
): Command['run'] {
  return async (client, args) => {
    const name = need(args, 0, 'domain', command);
    const api = await client();
    const r = await attempt(`Failed to ${command} domain '${name}'`, () => api.call(method, { domain: name }));
    process.stdout.write(`Domain '${r.domain.name}' ${done}\n\n`);
    if ('warnings' in r) for (const w of r.warnings ?? []) process.stderr.write(`warning: ${w.message}\n`);
  };
}
