// Storage pools, volumes and disk devices: virsh's pool-list, vol-*, change-media, attach-disk
// and detach-disk, with virsh's flags and output shapes.
import path from 'node:path';
import type { ApiClient } from '../../../shared/client.js';
import { parseCapacity, prettyCapacity } from '../../../shared/libvirt/units.js';
import { attempt, CliError, domainInfo, need, table, type Args, type Command } from '../command.js';

function capacityArg(text: string, command: string): number {
  try {
    return parseCapacity(text);
  } catch (err) {
    throw new CliError([`command '${command}': ${(err as Error).message}`]);
  }
}

/** Volume lookups fail as virsh's do: "failed to get vol", then the cause. */
async function getVolume(api: ApiClient, volume: string, pool: string | undefined) {
  return (await attempt(`failed to get vol '${volume}'`, () => api.call('volume.info', { volume, pool }))).volume;
}

function poolOption(args: Args): string | undefined {
  return args.options.get('pool');
}

export const storageCommands: Record<string, Command> = {
  'pool-list': {
    usage: 'pool-list [--all] [--inactive] [--details]',
    help: 'list storage pools',
    run: async (client, args) => {
      const api = await client();
      const { pools } = await api.call('pool.list', {});
      const shown = pools.filter((p) => (args.flags.has('inactive') ? p.state === 'inactive' : args.flags.has('all') || p.state === 'running'));
      const yes = (b: boolean): string => (b ? 'yes' : 'no');
      if (args.flags.has('details')) {
        process.stdout.write(
          table(
            ['Name', 'State', 'Autostart', 'Persistent', 'Capacity', 'Allocation', 'Available'],
            shown.map((p) => [p.name, p.state, yes(p.autostart), 'yes', ...[p.capacityBytes, p.allocationBytes, p.availableBytes].map((n) => (p.state === 'running' ? prettyCapacity(n) : '-'))]),
          ),
        );
        return;
      }
      process.stdout.write(table(['Name', 'State', 'Autostart'], shown.map((p) => [p.name, p.state === 'running' ? 'active' : 'inactive', yes(p.autostart)])));
    },
  },
  'vol-list': {
    usage: 'vol-list POOL [--details]',
    help: 'list the volumes of a storage pool',
    run: async (client, args) => {
      const pool = need(args, 0, 'pool', 'vol-list');
      const api = await client();
      const { volumes } = await attempt(`failed to get pool '${pool}'`, () => api.call('volume.list', { pool }));
      if (args.flags.has('details')) {
        process.stdout.write(
          table(
            ['Name', 'Path', 'Type', 'Capacity', 'Allocation'],
            volumes.map((v) => [v.name, v.path, 'file', prettyCapacity(v.capacityBytes), prettyCapacity(v.allocationBytes)]),
          ),
        );
        return;
      }
      process.stdout.write(table(['Name', 'Path'], volumes.map((v) => [v.name, v.path])));
    },
  },
  'vol-create-as': {
    usage: 'vol-create-as POOL NAME CAPACITY [--format raw|qcow2]',
    help: 'create a volume (CAPACITY in bytes, or with a suffix: 512K, 10M, 2G)',
    run: async (client, args) => {
      const pool = need(args, 0, 'pool', 'vol-create-as');
      const name = need(args, 1, 'name', 'vol-create-as');
      const capacityBytes = capacityArg(need(args, 2, 'capacity', 'vol-create-as'), 'vol-create-as');
      const format = args.options.get('format') ?? 'raw';
      if (format !== 'raw' && format !== 'qcow2') throw new CliError([`unsupported volume format '${format}' (use raw or qcow2)`]);
      const api = await client();
      await attempt(`Failed to create vol ${name}`, () => api.call('volume.create', { pool, name, capacityBytes, format }));
      process.stdout.write(`Vol ${name} created\n\n`);
    },
  },
  'vol-clone': {
    usage: 'vol-clone VOL NEWNAME [--pool POOL]',
    help: 'clone a volume (holes stay holes)',
    run: async (client, args) => {
      const vol = need(args, 0, 'vol', 'vol-clone');
      const name = need(args, 1, 'newname', 'vol-clone');
      const api = await client();
      const from = await getVolume(api, vol, poolOption(args));
      await attempt(`Failed to clone vol from ${from.name}`, () => api.call('volume.clone', { pool: from.pool, source: from.name, name }));
      process.stdout.write(`Vol ${name} cloned from ${from.name}\n\n`);
    },
  },
  'vol-resize': {
    usage: 'vol-resize VOL CAPACITY [--pool POOL]',
    help: 'grow a volume to CAPACITY (shrinking is refused)',
    run: async (client, args) => {
      const vol = need(args, 0, 'vol', 'vol-resize');
      const text = need(args, 1, 'capacity', 'vol-resize');
      const capacityBytes = capacityArg(text, 'vol-resize');
      const api = await client();
      const v = await getVolume(api, vol, poolOption(args));
      await attempt(`Failed to change size of volume '${v.name}' to ${text}`, () => api.call('volume.resize', { pool: v.pool, name: v.name, capacityBytes }));
      process.stdout.write(`Size of volume '${v.name}' successfully changed to ${text}\n\n`);
    },
  },
  'vol-info': {
    usage: 'vol-info VOL [--pool POOL]',
    help: 'storage volume information',
    run: async (client, args) => {
      const vol = need(args, 0, 'vol', 'vol-info');
      const v = await getVolume(await client(), vol, poolOption(args));
      const rows = [
        ['Name:', v.name],
        ['Type:', 'file'],
        ['Capacity:', prettyCapacity(v.capacityBytes)],
        ['Allocation:', prettyCapacity(v.allocationBytes)],
      ];
      process.stdout.write(rows.map(([k, val]) => `${k.padEnd(16)}${val}\n`).join('') + '\n');
    },
  },
  'vol-path': {
    usage: 'vol-path VOL [--pool POOL]',
    help: 'print the path of a storage volume',
    run: async (client, args) => {
      const vol = need(args, 0, 'vol', 'vol-path');
      const v = await getVolume(await client(), vol, poolOption(args));
      process.stdout.write(`${v.path}\n\n`);
    },
  },
  'vol-delete': {
    usage: 'vol-delete VOL [--pool POOL]',
    help: 'delete a volume (refused while a running domain uses it)',
    run: async (client, args) => {
      const vol = need(args, 0, 'vol', 'vol-delete');
      const api = await client();
      const v = await getVolume(api, vol, poolOption(args));
      await attempt(`Failed to delete vol ${v.name}`, () => api.call('volume.delete', { pool: v.pool, name: v.name }));
      process.stdout.write(`Vol ${v.name} deleted\n\n`);
    },
  },
  'vol-upload': {
    usage: 'vol-upload VOLNAME FILE [--pool POOL]',
    help: 'create VOLNAME sized to FILE (a file on this computer) and upload FILE into it; Ctrl-C cancels',
    run: async (client, args) => {
      const name = need(args, 0, 'vol', 'vol-upload');
      const file = path.resolve(need(args, 1, 'file', 'vol-upload'));
      const pool = poolOption(args) ?? 'default';
      const api = await client();
      // Ctrl-C cancels the upload on the far side (its job id comes with the first progress event).
      let jobId: number | undefined;
      const off = api.on('job.progress', ({ job }) => {
        if (job.operation === 'upload' && job.volume?.pool === pool && job.volume.name === name) jobId = job.id;
      });
      const cancel = (): void => {
        if (jobId !== undefined) void api.call('volume.uploadAbort', { job: jobId }).catch(() => undefined);
      };
      process.once('SIGINT', cancel);
      try {
        const { volume, warnings } = await attempt(`cannot upload to volume ${name}`, () => api.call('volume.upload', { pool, name, file }));
        for (const w of warnings ?? []) process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(`Vol ${volume.name} uploaded (${prettyCapacity(volume.capacityBytes)}) to ${volume.path}\n\n`);
      } finally {
        process.off('SIGINT', cancel);
        off();
      }
    },
  },
  'change-media': {
    usage: 'change-media DOMAIN TARGET [SOURCE] --eject|--insert|--update [--live] [--config] [--current]',
    help: "insert, replace or eject a CD-ROM's medium",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'change-media');
      const target = need(args, 1, 'path', 'change-media');
      const source = args.positional[2];
      const actions = ['eject', 'insert', 'update'].filter((a) => args.flags.has(a));
      if (actions.length > 1) throw new CliError([`Options --${actions[0]} and --${actions[1]} are mutually exclusive`]);
      const action = actions[0] ?? (source ? 'update' : 'eject');
      if (action === 'eject' && source) throw new CliError(['--eject takes no source']);
      if (action !== 'eject' && !source) throw new CliError([`No source is specified for ${action}ing media`]);
      const api = await client();
      if (action === 'insert') {
        // virsh: --insert only into an empty drive; --update replaces a medium.
        const info = await domainInfo(api, domain);
        const disk = info.config.disks.find((d) => d.target === target || d.source === target);
        if (disk?.source) throw new CliError([`Failed to complete action insert on media`, `The disk device '${disk.target}' already has media`]);
      }
      await attempt(`Failed to complete action ${action} on media`, () =>
        api.call('domain.changeMedia', { domain, target, source, eject: action === 'eject', live: args.flags.has('live'), config: args.flags.has('config') }),
      );
      const done = { eject: 'ejected', insert: 'inserted', update: 'updated' }[action];
      process.stdout.write(`Successfully ${done} media.\n\n`);
    },
  },
  'attach-disk': {
    usage: 'attach-disk DOMAIN SOURCE TARGET [--type disk|cdrom] [--mode readonly] [--config] [--live]',
    help: 'attach a disk image to a domain (v86: --config only)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'attach-disk');
      const source = need(args, 1, 'source', 'attach-disk');
      const target = need(args, 2, 'target', 'attach-disk');
      const type = args.options.get('type') ?? 'disk';
      if (type !== 'disk' && type !== 'cdrom') throw new CliError([`unsupported disk type '${type}' (use disk or cdrom)`]);
      const mode = args.options.get('mode');
      if (mode !== undefined && mode !== 'readonly') throw new CliError([`unsupported mode '${mode}' (only readonly)`]);
      const api = await client();
      await attempt('Failed to attach disk', () =>
        api.call('domain.attachDisk', { domain, source, target, device: type, readonly: mode === 'readonly', live: args.flags.has('live'), config: args.flags.has('config') }),
      );
      process.stdout.write('Disk attached successfully\n\n');
    },
  },
  'detach-disk': {
    usage: 'detach-disk DOMAIN TARGET [--config] [--live]',
    help: 'detach a disk from a domain (v86: --config only)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'detach-disk');
      const target = need(args, 1, 'target', 'detach-disk');
      const api = await client();
      await attempt('Failed to detach disk', () => api.call('domain.detachDisk', { domain, target, live: args.flags.has('live'), config: args.flags.has('config') }));
      process.stdout.write('Disk detached successfully\n\n');
    },
  },
};
