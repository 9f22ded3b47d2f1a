// Engine commands: the connections (v86:///session, qemu:///session), QEMU's accelerator choice,
// virsh's domxml-to-native (format qemu-argv), which prints the QEMU command line of a definition,
// and domcapabilities, what an engine can give a guest and why not the rest.
import fs from 'node:fs';
import type { CapabilityChoice, DomainCapabilities } from '../../../shared/capabilities.js';
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
  domcapabilities: {
    usage: 'domcapabilities [--virttype v86|qemu] [DOMAIN]',
    help: "what the engine (the domain's, or the one named) can give a guest, device by device, and why it cannot give the rest",
    run: async (client, args) => {
      const engine = args.options.get('virttype');
      if (engine !== undefined && engine !== 'v86' && engine !== 'qemu') throw new CliError([`unknown virttype '${engine}' (expected v86 or qemu)`]);
      const domain = args.positional[0];
      const api = await client();
      const { capabilities } = await attempt('Failed to get the domain capabilities', () =>
        api.call('domain.capabilities', { ...(domain !== undefined && { domain }), ...(engine !== undefined && { engine }) }),
      );
      process.stdout.write(capabilitiesText(capabilities));
    },
  },
};

/** domcapabilities as a table: every choice, 'yes' or 'no' with the reason, then the limits. */
export function capabilitiesText(caps: DomainCapabilities): string {
  const rows: string[][] = [];
  const add = (device: string, setting: string, list: CapabilityChoice[]): void => {
    for (const c of list) rows.push([device, setting, c.value, c.unavailable ? `no: ${c.unavailable}` : 'yes']);
  };
  add('disk', 'device', caps.disk.device);
  add('disk', 'bus', caps.disk.bus);
  add('disk', 'format', caps.disk.format);
  add('disk', 'cache', caps.disk.cache);
  rows.push(['disk', 'resize', 'offline', caps.disk.resize.unavailable ? `no: ${caps.disk.resize.unavailable}` : 'yes']);
  rows.push(['disk', 'resize', 'live', caps.disk.resize.liveUnavailable ? `no: ${caps.disk.resize.liveUnavailable}` : 'yes']);
  add('interface', 'type', caps.interface.type);
  add('interface', 'model', caps.interface.model);
  add('graphics', 'type', caps.graphics.type);
  add('video', 'model', caps.video.model);
  add('input', 'type:bus', caps.input.device);
  add('sound', 'model', caps.sound.model);
  add('serial', 'type', caps.serial.type);
  add('channel', 'type', caps.channel.type);
  add('channel', 'target', caps.channel.target);
  rows.push(['hostdev', 'usb', 'subsystem', caps.hostdev.usb.unavailable ? `no: ${caps.hostdev.usb.unavailable}` : 'yes']);
  const head = `engine: ${caps.engine}${caps.machine ? `\nmachine: ${caps.machine}` : ''}\n\n`;
  const limits = Object.entries(caps.max).map(([kind, n]) => `at most ${n} ${kind}${n === 1 ? '' : 's'}`);
  const hotplug = Object.entries(caps.hotplug).map(([kind, why]) => `${kind}: ${why}`);
  return (
    head +
    table(['Device', 'Setting', 'Value', 'Available'], rows) +
    (limits.length ? `\nLimits: ${limits.join(', ')}\n` : '') +
    (hotplug.length ? `\nNot while running:\n${hotplug.map((h) => `  ${h}\n`).join('')}` : '')
  );
}
