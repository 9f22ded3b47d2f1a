// `domus clone`: virt-clone's options over the host's domain.clone. virt-clone wants a path for
// each disk it copies (--file, in disk order) unless --auto-clone names them, and a name unless
// --auto-clone makes one; the plan is asked first (a dry run) so that a missing path is named.
import type { ApiClient } from '../../../shared/client.js';
import { attempt, CliError, hostFile, type Args, type Command } from '../command.js';

interface CloneOptions {
  original?: string;
  name?: string;
  uuid?: string;
  files: string[];
  macs: string[];
  skipCopy: string[];
  autoClone: boolean;
  pause: boolean;
}

const VALUE_OPTIONS: Record<string, 'original' | 'name' | 'uuid' | 'files' | 'macs' | 'skipCopy'> = {
  '--original': 'original',
  '-o': 'original',
  '--name': 'name',
  '-n': 'name',
  '--uuid': 'uuid',
  '-u': 'uuid',
  '--file': 'files',
  '-f': 'files',
  '--mac': 'macs',
  '-m': 'macs',
  '--skip-copy': 'skipCopy',
};

function parseCloneArgs(raw: string[]): CloneOptions {
  const o: CloneOptions = { files: [], macs: [], skipCopy: [], autoClone: false, pause: false };
  for (let i = 0; i < raw.length; i++) {
    const eq = raw[i].startsWith('--') ? raw[i].indexOf('=') : -1;
    const key = eq > 0 ? raw[i].slice(0, eq) : raw[i];
    if (key === '--auto-clone') o.autoClone = true;
    else if (key === '--pause') o.pause = true;
    else if (VALUE_OPTIONS[key]) {
      const value = eq > 0 ? raw[i].slice(eq + 1) : raw[++i];
      if (value === undefined) throw new CliError([`option ${key} needs a value`]);
      const field = VALUE_OPTIONS[key];
      if (field === 'files' || field === 'macs' || field === 'skipCopy') o[field].push(value);
      else o[field] = value;
    } else throw new CliError([`command 'clone' doesn't support argument ${raw[i]}`]);
  }
  return o;
}

async function run(client: () => Promise<ApiClient>, args: Args): Promise<void> {
  const o = parseCloneArgs(args.raw);
  if (!o.original) throw new CliError(['An original domain to clone is required (--original NAME)']);
  if (!o.name && !o.autoClone) throw new CliError(['A name is required for the new domain (--name NAME), or use --auto-clone']);
  const api = await client();
  const request = { domain: o.original, name: o.name, uuid: o.uuid, macs: o.macs, files: o.files.map((f) => hostFile(args, f)), skipCopy: o.skipCopy, pause: o.pause };
  const context = `Failed to clone domain '${o.original}'`;
  const plan = await attempt(context, () => api.call('domain.clone', { ...request, dryRun: true }));
  const copies = plan.disks.filter((d) => d.action === 'copy');
  // As virt-clone: every disk to copy needs a path, unless --auto-clone makes them.
  if (!o.autoClone && copies.length > o.files.length) {
    throw new CliError([`A disk path must be specified to clone '${copies[o.files.length].source}' (--file PATH, or --auto-clone)`]);
  }
  const progress = api.on('job.progress', ({ job }) => {
    if (job.operation === 'clone' && job.domain === o.original && job.totalBytes) process.stderr.write(`\rCloning: [${Math.floor((job.processedBytes / job.totalBytes) * 100)} %]`);
  });
  const abort = (): void => void api.call('domain.jobAbort', { domain: o.original! }).catch(() => undefined);
  process.once('SIGINT', abort);
  try {
    const r = await attempt(context, () => api.call('domain.clone', { ...request, name: plan.name, uuid: plan.uuid }));
    if (copies.length) process.stderr.write('\n');
    if (r.job && r.job.status === 'aborted') throw new CliError([context, 'operation aborted: job aborted by the user']);
    process.stdout.write(`${r.disks.map(diskLine).join('\n')}${r.disks.length ? '\n' : ''}${r.resumed === true ? `Domain '${o.original}' was paused for the copy and runs again\n` : ''}${r.resumed === false ? `Domain '${o.original}' was paused for the copy and could not be resumed: resume it with 'domus resume ${o.original}'\n` : ''}\nClone '${r.name}' created successfully.\n`);
  } finally {
    progress();
    process.off('SIGINT', abort);
  }
}

function diskLine(d: { target: string; source: string; action: string; file: string }): string {
  return d.action === 'copy' ? `Copied ${d.target} '${d.source}' to '${d.file}'` : `Shared ${d.target} '${d.source}'`;
}

export const cloneCommands: Record<string, Command> = {
  clone: {
    usage: 'clone --original DOMAIN (--name NEW | --auto-clone) [--file PATH]... [--mac MAC]... [--uuid UUID] [--skip-copy TARGET]... [--pause]',
    help: "clone a domain as virt-clone does: new name, UUID and MACs; writable disks copied to --file paths in disk order (or beside the originals with --auto-clone), CD-ROMs and read-only disks shared; a running domain must be paused or shut off, or --pause pauses it for the copy",
    run,
  },
};
