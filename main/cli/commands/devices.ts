// Devices from libvirt XML and disk images: virsh's attach-device, detach-device, update-device,
// domblkinfo, blockresize and nodedev-list --cap usb_device, with virsh's flags and output.
import type { HostUsbDevice } from '../../../shared/capabilities.js';
import { parseCapacity, prettyCapacity } from '../../../shared/libvirt/units.js';
import { attempt, CliError, need, readXmlFile, type Command } from '../command.js';
import { deviceScope } from './network.js';

type DeviceMethod = 'domain.attachDevice' | 'domain.detachDevice' | 'domain.updateDevice';

function deviceCommand(name: string, method: DeviceMethod, verb: string, done: string, help: string): Command {
  return {
    usage: `${name} DOMAIN FILE [--live] [--config] [--current] [--persistent]`,
    help,
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', name);
      const file = need(args, 1, 'file', name);
      const xml = readXmlFile(file);
      const api = await client();
      const scope = await deviceScope(api, domain, args);
      await attempt(`Failed to ${verb} device from ${file}`, () => api.call(method, { domain, xml, ...scope }));
      process.stdout.write(`Device ${done} successfully\n\n`);
    },
  };
}

/** virsh's blockresize SIZE: a scaled integer in KiB when it has no suffix (B for bytes). */
function resizeArg(text: string): number {
  try {
    return parseCapacity(/^\s*\d+\s*$/.test(text) ? `${text}KiB` : text);
  } catch (err) {
    throw new CliError([`Numeric value '${text}' for <size> option is malformed or out of range`, (err as Error).message]);
  }
}

/** libvirt's node device name of a USB device, from its bus and device numbers. */
function usbName(d: HostUsbDevice): string {
  return `usb_${String(d.bus).padStart(3, '0')}_${String(d.device).padStart(3, '0')}`;
}

export const deviceCommands: Record<string, Command> = {
  'attach-device': deviceCommand('attach-device', 'domain.attachDevice', 'attach', 'attached', 'attach a device from a libvirt XML file'),
  'detach-device': deviceCommand('detach-device', 'domain.detachDevice', 'detach', 'detached', 'detach the device a libvirt XML file describes'),
  'update-device': deviceCommand('update-device', 'domain.updateDevice', 'update', 'updated', "change a device's settings from a libvirt XML file"),
  domblkinfo: {
    usage: 'domblkinfo DOMAIN TARGET [--human]',
    help: "a disk's capacity, allocation and physical size",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'domblkinfo');
      const target = need(args, 1, 'device', 'domblkinfo');
      const api = await client();
      const info = await attempt('failed to get block info', () => api.call('domain.blockInfo', { domain, target }));
      const show = (n: number): string => (args.flags.has('human') ? prettyCapacity(n, 3) : String(n));
      const rows = [
        ['Capacity:', info.capacity],
        ['Allocation:', info.allocation],
        ['Physical:', info.physical],
      ] as const;
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(15)} ${show(v)}\n`).join('') + '\n');
    },
  },
  blockresize: {
    usage: 'blockresize DOMAIN TARGET SIZE',
    help: 'grow a disk (SIZE in KiB, or with a suffix: 512M, 2G); shrinking is refused',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'blockresize');
      const target = need(args, 1, 'path', 'blockresize');
      const sizeBytes = resizeArg(need(args, 2, 'size', 'blockresize'));
      const api = await client();
      await attempt(`Failed to resize block device '${target}'`, () => api.call('domain.blockResize', { domain, target, sizeBytes }));
      process.stdout.write(`Block device '${target}' is resized\n\n`);
    },
  },
  'nodedev-list': {
    usage: 'nodedev-list --cap usb_device',
    help: "the host's USB devices (for <hostdev> passthrough)",
    run: async (client, args) => {
      const cap = args.options.get('cap');
      if (cap !== 'usb_device') throw new CliError([`only --cap usb_device is listed here${cap ? `, not '${cap}'` : ''}`]);
      const api = await client();
      const { devices } = await attempt('Failed to list node devices', () => api.call('host.usbDevices', {}));
      process.stdout.write(devices.map((d) => `${usbName(d)}\n`).join('') + '\n');
    },
  },
};
