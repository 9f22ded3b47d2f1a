// Engine commands: the connections (v86:///session, qemu:///session), QEMU's accelerator choice and
// virsh's domxml-to-native (format qemu-argv), which prints the QEMU command line of a definition.
import fs from 'node:fs';
import { attempt, CliError, table, type Command } from '../command.js';
import { shellQuote } from '../../common/shell.js';

export const qemuCommands: Record<string, Command> = {
  connections: {
    usage: 'connections',
    help: 'list the hypervisor connections (engines) with availability, version and acceleration',
    run: async (client) => {
      const api = await client();
      const { connections } = await attempt('Failed to list connections', () => api.call('host.connections', {}));
      const rows = connections.map((c) => [
        c.uri,
        c.available ? 'available' : 'unavailable',
        c.version ?? '-',
        c.accel ? `${c.accel.using} (mode ${c.accel.mode}, kvm usable: ${c.accel.kvmUsable === null ? 'not probed' : c.accel.kvmUsable ? 'yes' : 'no'})` : '-',
      ]);
      process.stdout.write(table(['URI', 'State', 'Version', 'Acceleration'], rows));
      for (const c of connections) {
        if (c.problem) process.stdout.write(`${c.uri}: ${c.problem}\n`);
        if (c.accel?.reason) process.stdout.write(`${c.uri}: ${c.accel.reason}\n`);
      }
    },
  },
  accel: {
    usage: 'accel [auto|kvm|tcg]',
    help: "show or set QEMU's accelerator for KVM domains ('auto' trusts KVM only after a probe guest boots under it)",
    run: async (client, args) => {
      const api = await client();
      const mode = args.positional[0];
      let info;
      if (mode === undefined) {
        info = (await api.call('host.connections', {})).connections.find((c) => c.engine === 'qemu');
      } else {
        if (mode !== 'auto' && mode !== 'kvm' && mode !== 'tcg') throw new CliError([`unknown accelerator mode '${mode}' (expected auto, kvm or tcg)`]);
        info = (await attempt('Failed to set the accelerator', () => api.call('host.setAccel', { mode }))).connection;
      }
      if (!info?.accel) throw new CliError([`QEMU is not available${info?.problem ? `: ${info.problem}` : ''}`]);
      const a = info.accel;
      process.stdout.write(`mode: ${a.mode}\nusing: ${a.using}\nkvm usable: ${a.kvmUsable === null ? 'not probed' : a.kvmUsable ? 'yes' : 'no'}\n${a.reason ? `reason: ${a.reason}\n` : ''}`);
    },
  },
  'domxml-to-native': {
    usage: 'domxml-to-native qemu-argv FILE.xml | domxml-to-native qemu-argv --domain DOMAIN',
    help: 'print the QEMU command line for a domain definition',
    run: async (client, args) => {
      const format = args.positional[0];
      if (format !== 'qemu-argv') throw new CliError([`unsupported native format '${format ?? ''}' (Domus knows qemu-argv)`]);
      const domain = args.options.get('domain');
      const file = args.positional[1];
      if ((domain === undefined) === (file === undefined)) throw new CliError(['give either FILE.xml or --domain DOMAIN']);
      let xml: string | undefined;
      if (file !== undefined) {
        try {
          xml = fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw new CliError([`Failed to open file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
        }
      }
      const api = await client();
      const { argv } = await attempt('Failed to convert the definition to qemu-argv', () => api.call('domain.toNative', domain !== undefined ? { domain } : { xml }));
      process.stdout.write(`${argv.map(shellQuote).join(' ')}\n`);
    },
  },
};
