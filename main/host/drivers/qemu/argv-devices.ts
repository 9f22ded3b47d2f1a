// The devices of a QEMU command line beyond disks and NICs, as libvirt's qemu driver writes them:
// video, sound (on -audiodev none: the guest has its card, the host plays nothing), inputs, USB
// and SCSI controllers, USB host devices, serial ports after Domus's console, and virtio-serial
// channels. What this QEMU cannot provide (capabilities/engines.ts) is a warning and is left out
// (an error on restore and incoming migration, where the layout must be the source's).
import fs from 'node:fs';
import path from 'node:path';
import type { DomainCapabilities } from '../../../../shared/capabilities.js';
import { checkDevice, inputKey } from '../../capabilities/check.js';
import { defaultUsbController, QEMU_INPUT_DEVICES, QEMU_SOUND_DEVICES, QEMU_USB_CONTROLLERS, QEMU_VIDEO_DEVICES } from '../../capabilities/engines.js';
import { childElements, firstChild, type XmlElement } from '../../domain/xml.js';
import type { SupportReport } from '../driver.js';

/** QEMU option values escape a comma by doubling it. */
export function optValue(value: string): string {
  return value.replace(/,/g, ',,');
}

export interface DeviceContext {
  /** The <devices> element (absent: none). */
  devices: XmlElement | undefined;
  machine: 'pc' | 'q35';
  stateDir: string;
  /** What this QEMU provides; absent, every device argv knows is assumed built in. */
  caps?: DomainCapabilities;
  /**
   * A restore or incoming migration: the devices must be the source's, so one this QEMU lacks is
   * an error rather than left out (the guest's state would not fit the other layout).
   */
  sameLayout: boolean;
  argv: string[];
  report: SupportReport;
  warn: (element: string, message: string) => void;
}

/** The PC's ISA serial ports (COM1-COM4); the first is Domus's console. */
const ISA_SERIAL_PORTS = 4;
/** QEMU's id of the USB controller Domus adds or names usb0; USB devices go on its bus. */
const USB_BUS = 'usb0';
const SCSI_BUS = 'scsi0';
const VIRTIO_SERIAL_BUS = 'virtio-serial0';
/** virtio-serial-pci's max_nr_ports; port 0 is the console's. */
const VIRTIO_SERIAL_PORTS = 31;
/** The file in the run directory a <channel type='unix'> listens on. */
export function channelSocket(stateDir: string, index: number): string {
  return path.join(stateDir, `channel${index}.sock`);
}

/** The USB controller's device (or 'none'); absent model: libvirt's default for the machine. */
function usbControllerDevice(ctx: DeviceContext, controller: XmlElement | undefined): string | undefined {
  const model = controller?.attributes.model;
  if (model === 'none') return undefined;
  const chosen = model ?? defaultUsbController(ctx.machine);
  const device = QEMU_USB_CONTROLLERS[chosen];
  if (device) return device;
  ctx.warn(`devices/controller[@type='usb']`, `USB controller model '${chosen}' is not one Domus wires on QEMU (${Object.keys(QEMU_USB_CONTROLLERS).join(', ')}); qemu-xhci is used`);
  return 'qemu-xhci';
}

/**
 * Adds the USB controller when the definition has one or a USB device needs one (as libvirt
 * does), and the SCSI controller for SCSI disks. Returns whether USB devices can be attached.
 */
export function controllerArgs(ctx: DeviceContext, needs: { usb: boolean; scsi: boolean }): { usb: boolean } {
  const controllers = ctx.devices ? childElements(ctx.devices, 'controller') : [];
  const usb = controllers.filter((c) => c.attributes.type === 'usb');
  if (usb.length > 1) ctx.warn(`devices/controller[@type='usb']`, 'only the first USB controller is connected');
  let usbReady = false;
  if (usb.length > 0 || needs.usb) {
    const device = usbControllerDevice(ctx, usb[0]);
    if (device) {
      ctx.argv.push('-device', `${device},id=${USB_BUS}`);
      usbReady = true;
    } else if (needs.usb) {
      ctx.report.errors.push("a USB device (input, disk or host device) needs a USB controller, and <controller type='usb' model='none'> removes it");
    }
  }
  const scsi = controllers.find((c) => c.attributes.type === 'scsi');
  const scsiModel = scsi?.attributes.model;
  if (scsiModel && scsiModel !== 'virtio-scsi') ctx.warn(`devices/controller[@type='scsi']`, `SCSI controller model '${scsiModel}' is not one Domus wires on QEMU; virtio-scsi is used`);
  if (scsi || needs.scsi) ctx.argv.push('-device', `virtio-scsi-pci,id=${SCSI_BUS}`);
  return { usb: usbReady };
}

/** The USB bus devices attach to. */
export const USB_DEVICE_BUS = `${USB_BUS}.0`;
export const SCSI_DEVICE_BUS = `${SCSI_BUS}.0`;

/** Whether the definition has devices that need a USB controller besides its disks. */
export function needsUsb(devices: XmlElement | undefined): boolean {
  if (!devices) return false;
  return (
    childElements(devices, 'input').some((i) => inputKey(i).endsWith(':usb')) ||
    childElements(devices, 'hostdev').some((h) => h.attributes.mode === 'subsystem' && h.attributes.type === 'usb')
  );
}

/** The reason this QEMU cannot provide `element`, said as a warning (an error where the layout must stay); true when it can. */
function provided(ctx: DeviceContext, element: XmlElement, where: string): boolean {
  const problem = ctx.caps && checkDevice(ctx.caps, element);
  if (problem && ctx.sameLayout) ctx.report.errors.push(`${where}: ${problem}; the guest's saved or migrated state has this device, so it cannot be left out here`);
  else if (problem) ctx.warn(where, `${problem}; kept in the definition, not provided`);
  return !problem;
}

/** <video>: the first is the display Domus's console shows; none: no display; absent: VGA. */
export function videoArgs(ctx: DeviceContext): void {
  const videos = ctx.devices ? childElements(ctx.devices, 'video') : [];
  if (videos.length > 1) ctx.warn('devices/video', `only the first <video> is connected (${videos.length} defined)`);
  const model = (videos[0] && firstChild(videos[0], 'model')?.attributes.type) ?? 'vga';
  if (model === 'none') return;
  const device = QEMU_VIDEO_DEVICES[model];
  if (!device || (videos[0] && !provided(ctx, videos[0], `devices/video/model[@type='${model}']`))) {
    if (!device) ctx.warn(`devices/video/model[@type='${model}']`, `video model ${model} is not one QEMU here provides (${Object.keys(QEMU_VIDEO_DEVICES).join(', ')}, none); the guest gets a VGA`);
    ctx.argv.push('-device', 'VGA,id=video0');
    return;
  }
  ctx.argv.push('-device', `${device},id=video0`);
}

/** <sound model>: each card on QEMU's 'none' audio backend. */
export function soundArgs(ctx: DeviceContext): void {
  const sounds = ctx.devices ? childElements(ctx.devices, 'sound') : [];
  let audiodev = false;
  sounds.forEach((sound, i) => {
    const model = sound.attributes.model ?? '';
    const where = `devices/sound[@model='${model}']`;
    const devices = QEMU_SOUND_DEVICES[model];
    if (!devices) {
      ctx.warn(where, `sound model '${model}' is not one QEMU here provides (${Object.keys(QEMU_SOUND_DEVICES).join(', ')}); kept in the definition, not provided`);
      return;
    }
    if (!provided(ctx, sound, where)) return;
    if (!audiodev) ctx.argv.push('-audiodev', 'none,id=audio0');
    audiodev = true;
    const [card, codec] = devices;
    if (codec) {
      ctx.argv.push('-device', `${card},id=sound${i}`, '-device', `${codec},id=sound${i}-codec0,bus=sound${i}.0,cad=0,audiodev=audio0`);
    } else {
      ctx.argv.push('-device', `${card},id=sound${i},audiodev=audio0`);
    }
  });
}

/** <input>: PS/2 is the PC's own; USB and virtio ones are devices. */
export function inputArgs(ctx: DeviceContext, usb: boolean): void {
  const inputs = ctx.devices ? childElements(ctx.devices, 'input') : [];
  inputs.forEach((input, i) => {
    const key = inputKey(input);
    if (key.endsWith(':ps2')) return;
    const where = `devices/input[@type='${input.attributes.type ?? 'mouse'}']`;
    const device = QEMU_INPUT_DEVICES[key];
    if (!device) {
      ctx.warn(where, `input ${key.replace(':', ' on ')} is not one QEMU here provides; the PS/2 keyboard and mouse are used`);
      return;
    }
    if (!provided(ctx, input, where)) return;
    if (key.endsWith(':usb')) {
      if (usb) ctx.argv.push('-device', `${device},id=input${i},bus=${USB_DEVICE_BUS}`);
      return;
    }
    ctx.argv.push('-device', `${device},id=input${i}`);
  });
}

const USB_ID = /^0x[0-9a-f]{4}$/i;

/** <hostdev mode='subsystem' type='usb'>: a host's USB device, by vendor:product or bus/address. */
export function hostdevArgs(ctx: DeviceContext, usb: boolean): void {
  const hostdevs = ctx.devices ? childElements(ctx.devices, 'hostdev') : [];
  hostdevs.forEach((hostdev, i) => {
    const { mode, type } = hostdev.attributes;
    const where = `devices/hostdev[@type='${type ?? ''}']`;
    if (mode !== 'subsystem' || type !== 'usb') {
      ctx.warn(where, `host device ${type ?? ''}: only USB devices are passed through on QEMU; kept in the definition, not provided`);
      return;
    }
    if (!provided(ctx, hostdev, where) || !usb) return;
    const source = firstChild(hostdev, 'source');
    const vendor = source && firstChild(source, 'vendor')?.attributes.id;
    const product = source && firstChild(source, 'product')?.attributes.id;
    const address = source && firstChild(source, 'address')?.attributes;
    let select: string;
    if (vendor !== undefined || product !== undefined) {
      if (!vendor || !product || !USB_ID.test(vendor) || !USB_ID.test(product)) {
        ctx.report.errors.push(`USB host device: <vendor id> and <product id> must both be given as 0x and four hex digits (got '${vendor ?? ''}', '${product ?? ''}')`);
        return;
      }
      select = `vendorid=${vendor},productid=${product}`;
    } else if (address && /^\d{1,3}$/.test(address.bus ?? '') && /^\d{1,3}$/.test(address.device ?? '')) {
      select = `hostbus=${Number(address.bus)},hostaddr=${Number(address.device)}`;
    } else {
      ctx.report.errors.push("USB host device: its <source> needs <vendor id/><product id/> or <address bus='N' device='N'/>");
      return;
    }
    ctx.argv.push('-device', `usb-host,${select},id=hostdev${i},bus=${USB_DEVICE_BUS}`);
  });
}

/**
 * Why QEMU may not open `file` as a port's log: it appends (append=on) to a regular file or
 * creates one, but a FIFO or device would block it (or feed the guest another device's data).
 */
export function chardevFileProblem(file: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `cannot check '${file}': ${(err as Error).message}`;
  }
  return stat.isFile() ? undefined : `'${file}' exists and is not a regular file (a port's file must be a regular file or not exist yet)`;
}

/** A <serial> or <channel>'s chardev options after 'id=', or the reason it has none here (`error`: the definition is refused). */
function chardev(element: XmlElement, id: string, socket: string): string | { problem: string; error?: boolean } {
  const type = element.attributes.type ?? 'pty';
  const source = firstChild(element, 'source')?.attributes;
  switch (type) {
    case 'pty':
      return `pty,id=${id}`;
    case 'null':
      return `null,id=${id}`;
    case 'unix':
      // Always in the guest's run directory: a definition does not choose where Domus listens.
      return `socket,id=${id},path=${optValue(socket)},server=on,wait=off`;
    case 'file': {
      if (!source?.path || !path.isAbsolute(source.path)) return { problem: "a file port needs <source path='/absolute/file'/>" };
      const problem = chardevFileProblem(source.path);
      if (problem) return { problem, error: true };
      // append=on: QEMU would otherwise truncate the file at every start.
      return `file,id=${id},path=${optValue(source.path)},append=on`;
    }
    default:
      return { problem: `type '${type}' is not provided (pty, unix, file, null)` };
  }
}

/** A <serial>'s <target port>, when it gives one as a number. */
function targetPort(serial: XmlElement): number | undefined {
  const port = firstChild(serial, 'target')?.attributes.port;
  return port !== undefined && /^\d{1,3}$/.test(port) ? Number(port) : undefined;
}

/**
 * <serial> after the first (Domus's console, COM1): more ISA ports, each on its own chardev, at
 * its <target port> (COM port+1; the guest's ttyS<port>) or else the next free one, as libvirt numbers them.
 */
export function serialArgs(ctx: DeviceContext): void {
  const serials = (ctx.devices ? childElements(ctx.devices, 'serial') : []).slice(1);
  const used = new Set([0, ...serials.map(targetPort).filter((p) => p !== undefined)]);
  const connected = new Set<number>();
  serials.forEach((serial) => {
    const where = `devices/serial[@type='${serial.attributes.type ?? 'pty'}']`;
    let port = targetPort(serial);
    if (port === undefined) {
      port = 1;
      while (used.has(port)) port++;
      used.add(port);
    } else if (port === 0) {
      ctx.warn(where, "serial port 0 is Domus's console (the first <serial>); this one is not connected");
      return;
    }
    if (port >= ISA_SERIAL_PORTS) {
      ctx.warn(where, `the PC has ${ISA_SERIAL_PORTS} serial ports; serial port ${port} is not connected`);
      return;
    }
    if (connected.has(port)) {
      ctx.warn(where, `serial port ${port} is given twice; only the first is connected`);
      return;
    }
    connected.add(port);
    if (!provided(ctx, serial, where)) return;
    const id = `serial${port}`;
    const value = chardev(serial, id, path.join(ctx.stateDir, `${id}.sock`));
    if (typeof value !== 'string') {
      if (value.error) ctx.report.errors.push(`serial port ${port}: ${value.problem}`);
      else ctx.warn(where, `serial port ${port}: ${value.problem}; not connected`);
      return;
    }
    ctx.argv.push('-chardev', value, '-device', `isa-serial,chardev=${id},id=${id},index=${port}`);
  });
}

/** <channel><target type='virtio' name>: ports of one virtio-serial controller. */
export function channelArgs(ctx: DeviceContext): void {
  const channels = ctx.devices ? childElements(ctx.devices, 'channel') : [];
  let controller = false;
  channels.forEach((channel, i) => {
    const target = firstChild(channel, 'target')?.attributes;
    const name = target?.name;
    const where = `devices/channel[@type='${channel.attributes.type ?? ''}']`;
    if (target?.type !== 'virtio' || !name) {
      ctx.warn(where, `channel ${name ?? channel.attributes.type ?? ''}: only virtio channels with a name (<target type='virtio' name='...'/>) are provided`);
      return;
    }
    if (!/^[\w.-]{1,100}$/.test(name)) {
      ctx.report.errors.push(`channel name '${name.slice(0, 100)}' is not a virtio-serial port name (letters, digits, '.', '_', '-')`);
      return;
    }
    if (!provided(ctx, channel, where)) return;
    if (channel.attributes.type !== 'unix' && channel.attributes.type !== 'pty') {
      ctx.warn(where, `channel ${name}: type '${channel.attributes.type ?? ''}' is not provided (unix, pty); not connected`);
      return;
    }
    if (i + 1 >= VIRTIO_SERIAL_PORTS) {
      ctx.warn(where, `channel ${name}: a virtio-serial controller has ${VIRTIO_SERIAL_PORTS - 1} ports; not connected`);
      return;
    }
    const id = `channel${i}`;
    const value = chardev(channel, id, channelSocket(ctx.stateDir, i)) as string;
    if (!controller) ctx.argv.push('-device', `virtio-serial-pci,id=${VIRTIO_SERIAL_BUS}`);
    controller = true;
    ctx.argv.push('-chardev', value, '-device', `virtserialport,bus=${VIRTIO_SERIAL_BUS}.0,nr=${i + 1},chardev=${id},id=${id},name=${name}`);
  });
}
