// Snapshot commands with virsh's names, flags and output: snapshot-create-as, snapshot-create,
// snapshot-list (--tree, --parent, --current), snapshot-info, snapshot-revert, snapshot-delete,
// snapshot-dumpxml, snapshot-current.
import type { SnapshotInfo } from '../../../shared/api.js';
import type { ApiClient } from '../../../shared/client.js';
import { attemptBare, CliError, need, readXmlFile, table, type Args, type Command } from '../command.js';

const say = (text: string): void => void process.stdout.write(text);

/** virsh's creation time: local time with the zone's offset ("2026-12-03 00:11:00 +0000"). */
export function creationTime(epochSec: number): string {
  const d = new Date(epochSec * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '-' : '+'}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${zone}`;
}

/** virsh's --tree (vshTreePrint): each root and its children drawn with |, +- and the same blank lines. */
export function snapshotTree(snaps: readonly Pick<SnapshotInfo, 'name' | 'parent'>[]): string {
  const lines: string[] = [];
  const children = (name: string) => snaps.filter((s) => s.parent === name);
  const walk = (name: string, indent: string, root: boolean, last: boolean): void => {
    lines.push(`${indent}${root ? '' : '+- '}${name}`);
    let inner = root ? indent : `${indent}${last ? ' ' : '|'} `;
    const kids = children(name);
    if (kids.length) lines.push(`${inner}  |`);
    inner += '  ';
    kids.forEach((k, i) => walk(k.name, inner, false, i === kids.length - 1));
    inner = inner.slice(0, -2);
    if (!kids.length && last) lines.push(inner);
  };
  for (const s of snaps) if (!s.parent || !snaps.some((o) => o.name === s.parent)) walk(s.name, '', true, true);
  return lines.map((l) => `${l}\n`).join('') + '\n';
}

/** The snapshot named, or with --current the current one (virsh's snapshot-info/-current rule). */
function snapshotArg(args: Args, index: number, command: string): string | undefined {
  const name = args.positional[index];
  if (name !== undefined && args.flags.has('current')) throw new CliError([`--current and a snapshot name are mutually exclusive`]);
  if (name === undefined && !args.flags.has('current')) throw new CliError([`command '${command}' requires <snapshotname> option`]);
  return name;
}

async function create(client: () => Promise<ApiClient>, domain: string, req: { name?: string; description?: string; diskOnly: boolean; xml?: string }, from?: string): Promise<void> {
  const api = await client();
  const r = await attemptBare(() => api.call('snapshot.create', { domain, ...req }));
  say(`Domain snapshot ${r.snapshot.name} created${from ? ` from '${from}'` : ''}\n`);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export const snapshotCommands: Record<string, Command> = {
  'snapshot-create-as': {
    usage: 'snapshot-create-as DOMAIN [NAME] [--description TEXT] [--disk-only] [--print-xml]',
    help: 'take a snapshot of a domain (a running guest: its memory too, and it runs on)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-create-as');
      const name = args.positional[1];
      const description = args.options.get('description');
      if (args.flags.has('print-xml')) {
        say(`<domainsnapshot>\n${name ? `  <name>${escapeXml(name)}</name>\n` : ''}${description ? `  <description>${escapeXml(description)}</description>\n` : ''}</domainsnapshot>\n\n`);
        return;
      }
      await create(client, domain, { name, description, diskOnly: args.flags.has('disk-only') });
    },
  },
  'snapshot-create': {
    usage: 'snapshot-create DOMAIN [XMLFILE] [--disk-only]',
    help: 'take a snapshot of a domain from a <domainsnapshot> XML file (or with a name of its creation time)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-create');
      const file = args.positional[1];
      const diskOnly = args.flags.has('disk-only');
      if (file === undefined) return create(client, domain, { diskOnly });
      const xml = readXmlFile(file);
      if (diskOnly) throw new CliError(['--disk-only with an XML file: put <memory snapshot=\'no\'/> in the file instead']);
      await create(client, domain, { xml, diskOnly: false }, file);
    },
  },
  'snapshot-list': {
    usage: 'snapshot-list DOMAIN [--tree] [--parent] [--current] [--name]',
    help: "list a domain's snapshots (--tree: as a tree; --parent: with each one's parent)",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-list');
      if (args.flags.has('tree') && args.flags.has('parent')) throw new CliError(['Options --tree and --parent are mutually exclusive']);
      const api = await client();
      let { snapshots } = await attemptBare(() => api.call('snapshot.list', { domain }));
      if (args.flags.has('current')) snapshots = snapshots.filter((s) => s.current);
      if (args.flags.has('tree')) return say(snapshotTree(snapshots));
      if (args.flags.has('name')) return say(snapshots.map((s) => `${s.name}\n`).join('') + '\n');
      const parent = args.flags.has('parent');
      const header = ['Name', 'Creation Time', 'State', ...(parent ? ['Parent'] : [])];
      say(table(header, snapshots.map((s) => [s.name, creationTime(s.createdAt), s.state, ...(parent ? [s.parent ?? ''] : [])])));
    },
  },
  'snapshot-info': {
    usage: 'snapshot-info DOMAIN [SNAPSHOT] [--current]',
    help: 'information about a snapshot (or the current one)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-info');
      const snapshot = snapshotArg(args, 1, 'snapshot-info');
      const api = await client();
      const { snapshot: s } = await attemptBare(() => api.call('snapshot.info', { domain, snapshot }));
      const rows: [string, string][] = [
        ['Name', s.name],
        ['Domain', domain],
        ['Current', s.current ? 'yes' : 'no'],
        ['State', s.state],
        ['Location', s.location],
        ['Parent', s.parent ?? '-'],
        ['Children', String(s.children)],
        ['Descendants', String(s.descendants)],
        ['Metadata', 'yes'],
      ];
      say(rows.map(([k, v]) => `${`${k}:`.padEnd(16)}${v}\n`).join('') + '\n');
    },
  },
  'snapshot-revert': {
    usage: 'snapshot-revert DOMAIN SNAPSHOT [--current] [--running] [--paused]',
    help: 'put a domain back as it was at a snapshot (disks, and memory for a running one)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-revert');
      const api = await client();
      const snapshot = snapshotArg(args, 1, 'snapshot-revert') ?? (await attemptBare(() => api.call('snapshot.info', { domain }))).snapshot.name;
      await attemptBare(() => api.call('snapshot.revert', { domain, snapshot, running: args.flags.has('running'), paused: args.flags.has('paused') }));
      say(`Domain snapshot ${snapshot} reverted\n\n`);
    },
  },
  'snapshot-delete': {
    usage: 'snapshot-delete DOMAIN SNAPSHOT [--current] [--children]',
    help: 'delete a snapshot (its children go to its parent; --children: deletes them too)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-delete');
      const api = await client();
      const snapshot = snapshotArg(args, 1, 'snapshot-delete') ?? (await attemptBare(() => api.call('snapshot.info', { domain }))).snapshot.name;
      await attemptBare(() => api.call('snapshot.delete', { domain, snapshot, children: args.flags.has('children') }));
      say(`Domain snapshot ${snapshot} deleted\n\n`);
    },
  },
  'snapshot-dumpxml': {
    usage: 'snapshot-dumpxml DOMAIN SNAPSHOT',
    help: "a snapshot's <domainsnapshot> XML",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-dumpxml');
      const snapshot = need(args, 1, 'snapshotname', 'snapshot-dumpxml');
      const api = await client();
      say((await attemptBare(() => api.call('snapshot.xml', { domain, snapshot }))).xml);
    },
  },
  'snapshot-current': {
    usage: 'snapshot-current DOMAIN [--name]',
    help: "the domain's current snapshot (its XML, or --name: its name)",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'snapshot-current');
      const api = await client();
      const { snapshot } = await attemptBare(() => api.call('snapshot.info', { domain }));
      if (args.flags.has('name')) return say(`${snapshot.name}\n`);
      say((await attemptBare(() => api.call('snapshot.xml', { domain, snapshot: snapshot.name }))).xml);
    },
  },
};
