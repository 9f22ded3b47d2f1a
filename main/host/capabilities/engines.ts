// What each local engine can give a guest (virsh domcapabilities), derived from what its driver
// really wires: v86's runner (main/runner/) and QEMU's command line (drivers/qemu/argv.ts). A choice
// an engine lacks stays in the list with the reason, so forms grey it and support checks warn with it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { CapabilityChoice, DeviceKind, DomainCapabilities } from '../../../shared/capabilities.js';
import { GUEST_AGENT_CHANNEL } from '../domain/features.js';
import { findQemu } from '../drivers/qemu/binary.js';

export type LocalEngine = 'v86' | 'qemu';

export interface EngineCapabilityOptions {
  /** The guest's machine type (pc, q35, pc-i440fx-7.2…); QEMU's SATA needs q35. */
  machine?: string;
  /** QEMU's device names (`-device help`); probed from the binary on PATH when absent. */
  qemuDevices?: ReadonlySet<string>;
}

const choice = (value: string, label: string, unavailable?: string): CapabilityChoice => (unavailable ? { value, label, unavailable } : { value, label });

/** Labels of every value the forms offer, in the order they offer them. */
const LABELS = {
  diskDevice: { disk: 'Disk', cdrom: 'CD-ROM', floppy: 'Floppy' },
  bus: { ide: 'IDE', sata: 'SATA', scsi: 'SCSI (virtio-scsi)', virtio: 'VirtIO', usb: 'USB', fdc: 'Floppy controller' },
  format: { raw: 'raw', qcow2: 'qcow2' },
  cache: { default: 'Default', none: 'none', writeback: 'writeback', writethrough: 'writethrough', directsync: 'directsync', unsafe: 'unsafe' },
  ifaceType: { network: 'Virtual network', user: 'Usermode (slirp)', bridge: 'Bridge', direct: 'macvtap (direct)' },
  nicModel: { virtio: 'virtio', e1000: 'e1000', e1000e: 'e1000e', rtl8139: 'rtl8139', ne2k_pci: 'ne2k_pci' },
  graphics: { vnc: 'VNC', spice: 'SPICE' },
  video: { vga: 'VGA', cirrus: 'Cirrus', virtio: 'Virtio', bochs: 'Bochs', qxl: 'QXL', none: 'None' },
  input: {
    'mouse:ps2': 'PS/2 mouse',
    'keyboard:ps2': 'PS/2 keyboard',
    'tablet:usb': 'USB tablet',
    'mouse:usb': 'USB mouse',
    'keyboard:usb': 'USB keyboard',
    'tablet:virtio': 'Virtio tablet',
    'mouse:virtio': 'Virtio mouse',
    'keyboard:virtio': 'Virtio keyboard',
  },
  sound: { ich6: 'HDA (ICH6)', ich9: 'HDA (ICH9)', ac97: 'AC97', es1370: 'ES1370', sb16: 'Sound Blaster 16' },
  serial: { pty: 'Pseudo TTY (pty)', unix: 'Unix socket', file: 'File', tcp: 'TCP', null: 'Null' },
  channelType: { unix: 'Unix socket', pty: 'Pseudo TTY (pty)', spicevmc: 'SPICE agent (spicevmc)' },
  channelTarget: { [GUEST_AGENT_CHANNEL]: 'QEMU guest agent', 'com.redhat.spice.0': 'SPICE agent' },
} as const;

/** Every value of a list, each with the reason `why` gives (undefined: provided). */
function choices<K extends string>(labels: Record<K, string>, why: (value: K) => string | undefined): CapabilityChoice[] {
  return (Object.keys(labels) as K[]).map((value) => choice(value, labels[value], why(value)));
}

export const V86_ONLY_AGENT = 'v86 carries the guest agent channel only';
const ONLY_NETWORK = 'only interfaces on a virtual network are connected';
const NO_SPICE = "Domus's console and viewers speak VNC; SPICE is not provided";

/** v86 0.5: the devices its runner builds (IDE, ne2k/virtio-net, stdvga, PS/2, SB16, one UART). */
export function v86Capabilities(): DomainCapabilities {
  return {
    engine: 'v86',
    disk: {
      device: choices(LABELS.diskDevice, () => undefined),
      bus: choices(LABELS.bus, (bus) => (bus === 'ide' || bus === 'fdc' ? undefined : `v86 has IDE only (two hard disks, one CD-ROM) and a floppy controller; a ${LABELS.bus[bus]} disk is attached as IDE`)),
      format: choices(LABELS.format, (f) => (f === 'raw' ? undefined : 'v86 reads raw images only')),
      cache: choices(LABELS.cache, (c) => (c === 'default' ? undefined : "v86 has no host cache modes: its runner reads and writes the image itself")),
      resize: { liveUnavailable: "v86 cannot change a running guest's disk size" },
    },
    interface: {
      type: choices(LABELS.ifaceType, (t) => (t === 'network' ? undefined : ONLY_NETWORK)),
      model: choices(LABELS.nicModel, (m) => (m === 'virtio' || m === 'ne2k_pci' ? undefined : 'v86 has an ne2k_pci and a virtio-net card; other models are emulated as ne2k_pci')),
    },
    graphics: { type: choices(LABELS.graphics, (g) => (g === 'vnc' ? undefined : NO_SPICE)) },
    video: { model: choices(LABELS.video, (m) => (m === 'vga' ? undefined : m === 'none' ? 'v86 always has its standard VGA card' : 'v86 has the standard VGA (stdvga) only')) },
    input: {
      device: choices(LABELS.input, (i) => {
        if (i.endsWith(':ps2')) return undefined;
        const ps2 = `the PS/2 ${i.startsWith('keyboard') ? 'keyboard' : 'mouse'} is used`;
        return i.endsWith(':usb') ? `v86 has no USB; ${ps2}` : `v86 has no virtio input; ${ps2}`;
      }),
    },
    sound: { model: choices(LABELS.sound, (m) => (m === 'sb16' ? undefined : 'v86 has a Sound Blaster 16 only (always present)')) },
    serial: { type: choices(LABELS.serial, (t) => (t === 'pty' ? undefined : "v86's one serial port is Domus's serial console")) },
    channel: {
      type: choices(LABELS.channelType, (t) => (t === 'unix' ? undefined : 'v86 carries the guest agent channel only, on its virtio console')),
      target: choices(LABELS.channelTarget, (t) => (t === GUEST_AGENT_CHANNEL ? undefined : V86_ONLY_AGENT)),
    },
    hostdev: { usb: { unavailable: 'v86 has no USB' } },
    hotplug: notHotPluggable('v86', []),
    max: { disk: 5, interface: 1, video: 1, sound: 1, serial: 1, channel: 1, graphics: 1 },
  };
}

/** Per kind the reason it cannot be plugged live, except the kinds the driver plugs (`live`). */
function notHotPluggable(engine: string, live: DeviceKind[]): Partial<Record<DeviceKind, string>> {
  const kinds: DeviceKind[] = ['disk', 'interface', 'graphics', 'video', 'input', 'sound', 'serial', 'channel', 'hostdev'];
  return Object.fromEntries(kinds.filter((k) => !live.includes(k)).map((k) => [k, `${engine} cannot add or remove a ${k} while the guest runs (a CD-ROM's medium can be changed)`]));
}

/** libvirt's <video model> → QEMU's device on the primary display. */
export const QEMU_VIDEO_DEVICES: Record<string, string> = { vga: 'VGA', cirrus: 'cirrus-vga', virtio: 'virtio-vga', bochs: 'bochs-display', qxl: 'qxl-vga' };
/** libvirt's <sound model> → QEMU's devices (HDA: the controller, then its codec). */
export const QEMU_SOUND_DEVICES: Record<string, string[]> = {
  ich6: ['intel-hda', 'hda-duplex'],
  ich9: ['ich9-intel-hda', 'hda-duplex'],
  ac97: ['AC97'],
  es1370: ['ES1370'],
  sb16: ['sb16'],
};
/** <input type>:<bus> → QEMU's device, for the buses that need one (PS/2 is the PC's own). */
export const QEMU_INPUT_DEVICES: Record<string, string> = {
  'tablet:usb': 'usb-tablet',
  'mouse:usb': 'usb-mouse',
  'keyboard:usb': 'usb-kbd',
  'tablet:virtio': 'virtio-tablet-pci',
  'mouse:virtio': 'virtio-mouse-pci',
  'keyboard:virtio': 'virtio-keyboard-pci',
};
/** <controller type='usb' model> → QEMU's device. */
export const QEMU_USB_CONTROLLERS: Record<string, string> = {
  'qemu-xhci': 'qemu-xhci',
  'nec-xhci': 'nec-usb-xhci',
  'ich9-ehci1': 'ich9-usb-ehci1',
  'piix3-uhci': 'piix3-usb-uhci',
};

/** The USB controller model a machine gets when the definition names none (libvirt's default). */
export function defaultUsbController(machine: 'pc' | 'q35'): string {
  return machine === 'q35' ? 'qemu-xhci' : 'piix3-uhci';
}

/** QEMU here: what argv.ts wires, less what this QEMU binary was built without. */
export function qemuCapabilities(opts: { machine?: string; devices: ReadonlySet<string> }): DomainCapabilities {
  const machine = opts.machine?.includes('q35') ? 'q35' : 'pc';
  const lacks = (...devices: string[]): string | undefined => {
    const missing = devices.filter((d) => !opts.devices.has(d));
    return missing.length ? `this QEMU has no ${missing.join(', ')} device (not built in)` : undefined;
  };
  const usbController = QEMU_USB_CONTROLLERS[defaultUsbController(machine)]!;
  const usbWhy = lacks(usbController);
  return {
    engine: 'qemu',
    machine,
    disk: {
      device: choices(LABELS.diskDevice, () => undefined),
      bus: choices(LABELS.bus, (bus) => {
        if (bus === 'sata') return machine === 'q35' ? undefined : 'SATA (AHCI) needs machine q35; the pc machine has IDE';
        if (bus === 'scsi') return lacks('virtio-scsi-pci', 'scsi-hd');
        if (bus === 'usb') return lacks(usbController, 'usb-storage');
        return undefined;
      }),
      format: choices(LABELS.format, () => undefined),
      cache: choices(LABELS.cache, () => undefined),
      resize: {},
    },
    interface: {
      type: choices(LABELS.ifaceType, (t) => (t === 'network' ? undefined : ONLY_NETWORK)),
      model: choices(LABELS.nicModel, (m) => lacks(QEMU_NIC_DEVICES[m]!)),
    },
    graphics: { type: choices(LABELS.graphics, (g) => (g === 'vnc' ? undefined : NO_SPICE)) },
    video: { model: choices(LABELS.video, (m) => (m === 'none' ? undefined : lacks(QEMU_VIDEO_DEVICES[m]!))) },
    input: {
      device: choices(LABELS.input, (i) => {
        const device = QEMU_INPUT_DEVICES[i];
        if (!device) return undefined;
        return i.endsWith(':usb') ? (usbWhy ?? lacks(device)) : lacks(device);
      }),
    },
    sound: { model: choices(LABELS.sound, (m) => lacks(...QEMU_SOUND_DEVICES[m]!)) },
    serial: { type: choices(LABELS.serial, (t) => (t === 'tcp' ? 'Domus on QEMU connects serial ports to a pty, a unix socket, a file or nothing, not to TCP' : undefined)) },
    channel: {
      type: choices(LABELS.channelType, (t) => (t === 'spicevmc' ? NO_SPICE : lacks('virtio-serial-pci', 'virtserialport'))),
      target: choices(LABELS.channelTarget, (t) => (t === GUEST_AGENT_CHANNEL ? lacks('virtio-serial-pci') : NO_SPICE)),
    },
    hostdev: { usb: { unavailable: usbWhy ?? lacks('usb-host') } },
    hotplug: {
      ...notHotPluggable('Domus on QEMU', machine === 'q35' ? [] : ['interface']),
      ...(machine === 'q35' && { interface: 'a q35 machine started by Domus has no PCIe root port to plug a network card into (the pc machine has); add it to the definition and restart the guest' }),
    },
    max: { video: 1 },
  };
}

/** libvirt's NIC <model type> → QEMU's device. */
export const QEMU_NIC_DEVICES: Record<string, string> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  e1000e: 'e1000e',
  rtl8139: 'rtl8139',
  ne2k_pci: 'ne2k_pci',
};

const deviceCache = new Map<string, ReadonlySet<string>>();

/** The device names `qemu-system-x86_64 -device help` lists; cached per binary and mtime. */
export function probeQemuDevices(envPath?: string): ReadonlySet<string> {
  const qemu = findQemu(envPath);
  if (!qemu.path || qemu.problem) throw new Error(qemu.problem ?? 'QEMU not found');
  const key = `${qemu.path}:${fs.statSync(qemu.path).mtimeMs}`;
  const hit = deviceCache.get(key);
  if (hit) return hit;
  const out = execFileSync(qemu.path, ['-nodefaults', '-machine', 'none', '-device', 'help'], {
    encoding: 'utf8',
    timeout: 10_000,
    maxBuffer: 4 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const names = new Set([...out.matchAll(/^name "([^"]{1,100})"/gm)].map((m) => m[1]!));
  deviceCache.set(key, names);
  return names;
}

/** virsh domcapabilities for a local engine. */
export function engineCapabilities(engine: LocalEngine, opts: EngineCapabilityOptions = {}): DomainCapabilities {
  if (engine === 'v86') return v86Capabilities();
  return qemuCapabilities({ machine: opts.machine, devices: opts.qemuDevices ?? probeQemuDevices() });
}
