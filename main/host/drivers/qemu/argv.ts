// libvirt domain XML → QEMU command line, the way libvirt's qemu driver builds it: -nodefaults and
// -no-user-config, then every device explicitly. What QEMU could run but Domus does not wire up
// (SPICE, some network types...) is a warning, as on v86; what cannot run at all is an error.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { DiskConfig, GraphicsConfig } from '../../../../shared/domain.js';
import { childElements, firstChild, type DomainDocument, type XmlElement } from '../../domain/xml.js';
import { formatKiB } from '../../../../shared/libvirt/units.js';
import { VNC_PORT_BASE } from '../../../runner/protocol.js';
import { isPygrub, usesBootloader } from '../../images/bootloader.js';
import { XEN_PV_OS_TYPES, lunDisks, uefiSource } from '../../domain/features.js';
import { resolveUefi, type UefiFlash } from './uefi.js';
import { planNics } from '../../network/attach.js';
import type { SupportReport } from '../driver.js';
import { openPrivateLog } from '../../../common/fsutil.js';
import type { DomainCapabilities } from '../../../../shared/capabilities.js';
import { QEMU_NIC_DEVICES } from '../../capabilities/engines.js';
import {
  channelArgs,
  controllerArgs,
  hostdevArgs,
  inputArgs,
  needsUsb,
  optValue,
  SCSI_DEVICE_BUS,
  serialArgs,
  soundArgs,
  USB_DEVICE_BUS,
  videoArgs,
  type DeviceContext,
} from './argv-devices.js';

export { optValue } from './argv-devices.js';

/**
 * The serial port's chardev: QEMU's pipe backend reads <base>.in and writes <base>.out. Not a socket
 * with logfile=: while the host's socket is full, QEMU 7.2 logs a byte whose write failed with
 * EAGAIN and the serial port then sends it again, so the log doubled bytes under load ("DDebian").
 * A regular file never refuses a write, and QEMU holds the FIFO open read-write, so a host going
 * away is no end of input.
 */
const SERIAL_PIPE = 'serial';

/** File names in a QEMU domain's run directory (<run>/<uuid>/). */
export const QEMU_FILES = {
  /** Marks the directory as a QEMU domain's, with what the host needs to re-attach. */
  meta: 'qemu.json',
  /** Written by QEMU itself (-pidfile); named like the v86 runner's so tools find either. */
  pid: 'runner.pid',
  /** QEMU's stdout and stderr. */
  log: 'qemu.log',
  qmp: 'qmp.sock',
  /** A FIFO: what the host types into the guest's serial port. */
  serialIn: `${SERIAL_PIPE}.in`,
  /** Everything the guest wrote to its serial port, also while no host was attached. */
  console: `${SERIAL_PIPE}.out`,
  vnc: 'vnc.sock',
  liveXml: 'live.xml',
} as const;

export type QemuPaths = { [K in keyof typeof QEMU_FILES]: string };

export function qemuPaths(stateDir: string): QemuPaths {
  return Object.fromEntries(Object.entries(QEMU_FILES).map(([k, v]) => [k, path.join(stateDir, v)])) as QemuPaths;
}

/** The serial port's files, made before QEMU opens them so that they are owner-only and what the pipe chardev expects. */
export function createSerialFiles(files: QemuPaths): void {
  fs.closeSync(openPrivateLog(files.console));
  execFileSync('mkfifo', ['-m', '600', files.serialIn]);
}

export interface ArgvOptions {
  stateDir: string;
  accel: 'kvm' | 'tcg';
  /** Wait for migrate-incoming (restore). */
  incoming?: boolean;
  /**
   * An incoming live migration: no -S, so that the guest runs as soon as it has arrived (post-copy
   * needs it running at the switch); a guest paused on the source arrives paused.
   */
  migration?: boolean;
  /** Where UEFI variable stores live when the definition's <nvram> names no file. */
  nvramDir: string;
  /** The port socket of a virtual network's switch (NetworkSwitches.paths(name).ports). */
  networkSocket: (network: string) => string;
  /** QEMU's firmware descriptor directories (uefi.ts); tests give their own. */
  firmwareDirs?: string[];
  /** What this QEMU provides (engineCapabilities): devices it lacks are warned about and left out. */
  caps?: DomainCapabilities;
}

const MiB = 1024;
const MIN_MEMORY_KiB = 16 * MiB;
const X86_ARCHES = new Set(['i686', 'i586', 'i486', 'i386', 'x86_64']);
/** Image formats QEMU's block layer opens; libvirt names raw CD images 'iso'. */
const FORMATS = new Set(['raw', 'iso', 'qcow2', 'qcow', 'vmdk', 'vdi', 'vhdx', 'vpc', 'qed']);
const IDE_TARGETS = ['hda', 'hdb', 'hdc', 'hdd'];
const NOT_WIRED = 'kept in the definition, not provided by Domus on QEMU';
/** <driver cache> values QEMU's -drive takes ('default' leaves QEMU's own). */
const CACHE_MODES = new Set(['none', 'writeback', 'writethrough', 'directsync', 'unsafe']);

/** Checks the definition and builds QEMU's argv (without the binary). */
export function buildArgv(doc: DomainDocument, opts: ArgvOptions): { argv: string[]; report: SupportReport; uefi?: UefiFlash } {
  const { config } = doc;
  const report: SupportReport = { warnings: [], errors: [] };
  const warn = (element: string, message: string): void => {
    if (!report.warnings.some((w) => w.element === element && w.message === message)) report.warnings.push({ element, message });
  };
  const files = qemuPaths(opts.stateDir);
  const features = firstChild(doc.root, 'features');
  const acpi = features !== undefined && firstChild(features, 'acpi') !== undefined;

  if (!X86_ARCHES.has(config.os.arch)) report.errors.push(`arch ${config.os.arch} cannot run on qemu-system-x86_64`);
  if (XEN_PV_OS_TYPES.has(config.os.type)) {
    warn('os/type', `Xen paravirtualized guest (os type '${config.os.type}'): QEMU runs it as a PC; PV-only kernels will not boot`);
  } else if (config.os.type !== 'hvm') {
    report.errors.push(`os type '${config.os.type}' cannot run on QEMU here, which runs full PC guests (hvm)`);
  }
  if (config.memoryKiB < MIN_MEMORY_KiB) report.errors.push(`memory ${formatKiB(config.memoryKiB)} is too small; QEMU guests need at least ${formatKiB(MIN_MEMORY_KiB)}`);
  if (config.os.bootloader && !isPygrub(config.os.bootloader)) warn('bootloader', `bootloader ${config.os.bootloader} is not run; QEMU boots the disk through its BIOS`);
  const machine = config.os.machine?.includes('q35') ? 'q35' : 'pc';
  let uefi: UefiFlash | undefined;
  if (config.os.firmware === 'efi') {
    const found = resolveUefi(config, machine, opts.nvramDir, opts.firmwareDirs);
    if ('problem' in found) report.errors.push(`UEFI firmware (${uefiSource(config)}): ${found.problem}`);
    else uefi = found;
  } else if (config.os.loader?.path) {
    warn('os/loader', `loader ${config.os.loader.path} is not used; QEMU boots with its SeaBIOS`);
  }
  for (const target of lunDisks(doc.root)) report.errors.push(`SCSI LUN passthrough (<disk device='lun'> ${target}) is not provided by Domus on QEMU`);

  // <graphics type='vnc'>: a second VNC display on TCP (QEMU 7.2 takes one listener per -vnc and
  // several -vnc options with distinct id=), next to the private unix socket Domus's own viewers use.
  // Both show the same console. password=on makes QEMU refuse every client until the host sets the
  // password over QMP, which it does before the guest runs; the password never goes on the command line.
  const vnc = config.graphics.find((g) => g.type === 'vnc');
  const vncPassword = vnc?.passwd !== undefined && vnc.passwd !== '';
  const argv = [
    '-name', `guest=${optValue(config.name)},debug-threads=on`,
    '-uuid', config.uuid,
    '-machine', `${machine},acpi=${acpi ? 'on' : 'off'}`,
    '-accel', opts.accel,
    '-cpu', opts.accel === 'kvm' ? 'host,-arch-capabilities' : 'max',
    '-m', String(Math.max(1, Math.round(config.memoryKiB / MiB))),
    '-smp', String(config.vcpus),
    '-nodefaults',
    '-no-user-config',
    // The guest powering off leaves QEMU alive in state 'shutdown', so a host that was away learns
    // why it stopped; the host then quits it.
    '-no-shutdown',
    '-action', 'panic=pause',
    '-display', 'none',
    '-pidfile', files.pid,
    '-qmp', `unix:${optValue(files.qmp)},server=on,wait=off`,
    '-chardev', `pipe,id=serial0,path=${optValue(path.join(opts.stateDir, SERIAL_PIPE))}`,
    '-serial', 'chardev:serial0',
    '-vnc', `unix:${optValue(files.vnc)},id=${VNC_DISPLAYS.unix}${vncPassword ? ',password=on' : ''}`,
    ...(vnc ? ['-vnc', vncTcpValue(vnc, vncPassword, report)] : []),
    '-device', 'pvpanic',
    // Start stopped: the host connects QMP and the serial input, then sends cont.
    ...(opts.migration ? [] : ['-S']),
  ];
  const devices = firstChild(doc.root, 'devices');
  const ctx: DeviceContext = { devices, machine, stateDir: opts.stateDir, caps: opts.caps, sameLayout: Boolean(opts.incoming || opts.migration), argv, report, warn };
  // The display stays the first PCI device, where it always was: a saved state's layout must match.
  videoArgs(ctx);
  if (uefi) {
    // As libvirt: the firmware read-only, the variable store writable (both raw flash).
    argv.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optValue(uefi.code)}`);
    argv.push('-drive', `if=pflash,format=raw,unit=1,file=${optValue(uefi.vars)}`);
  }
  if (config.balloon) {
    // As libvirt: deflate-on-oom and free-page-reporting only when <memballoon> asks, so by default
    // the guest's MemTotal follows the balloon (with deflate-on-oom the ballooned pages show as used).
    const onOff = (v: boolean) => (v ? 'on' : 'off');
    const balloon = ['virtio-balloon-pci', 'id=balloon0'];
    if (config.balloonAutodeflate !== undefined) balloon.push(`deflate-on-oom=${onOff(config.balloonAutodeflate)}`);
    if (config.balloonFreePageReporting !== undefined) balloon.push(`free-page-reporting=${onOff(config.balloonFreePageReporting)}`);
    argv.push('-device', balloon.join(','));
  }
  if (config.os.kernel) {
    argv.push('-kernel', config.os.kernel);
    if (config.os.initrd) argv.push('-initrd', config.os.initrd);
    if (config.os.cmdline) argv.push('-append', config.os.cmdline);
  }

  const bootable = config.os.kernel !== undefined || config.disks.some((d) => d.source !== undefined);
  // -nodefaults gives the guest no NIC, and Domus connects none yet: there is no PXE to boot from.
  const network = config.os.bootOrder.includes('network') && !config.os.kernel;
  if (!bootable && network) {
    report.errors.push(`nothing to boot: network boot (<boot dev='network'/>) needs a connected network, which Domus does not give QEMU guests yet, and there is no <kernel> and no disk or CD-ROM with a source image`);
  } else if (!bootable) {
    report.errors.push('nothing to boot: no <kernel>, and no disk or CD-ROM with a source image');
  } else if (network && !usesBootloader(config)) {
    const only = config.os.bootOrder.every((d) => d === 'network');
    warn("os/boot[@dev='network']", `network boot (PXE) needs a connected network, which Domus does not give QEMU guests yet; ${only ? 'the guest boots from its disks instead' : 'the other boot devices are tried'}`);
  }
  const wired = (d: DiskConfig) => d.source !== undefined || d.device !== 'disk';
  const { usb } = controllerArgs(ctx, {
    usb: needsUsb(devices) || config.disks.some((d) => wired(d) && d.bus === 'usb' && d.device === 'disk'),
    scsi: config.disks.some((d) => wired(d) && d.bus === 'scsi' && d.device !== 'floppy'),
  });
  const usedIde = new Set<number>();
  const ideDisks: { disk: DiskConfig; cache?: string; index?: number }[] = [];
  let virtioCount = 0;
  for (const disk of config.disks) {
    const el = `devices/disk[@target='${disk.target}']`;
    if (disk.source !== undefined && !FORMATS.has(disk.format)) {
      report.errors.push(`disk ${disk.target}: image format '${disk.format}' is not one QEMU opens here (${[...FORMATS].join(', ')})`);
      continue;
    }
    if (disk.device === 'disk' && disk.source === undefined) {
      warn(el, `disk ${disk.target} has no source image and is skipped`);
      continue;
    }
    if (disk.device === 'floppy') {
      if (disk.source) argv.push('-drive', `if=floppy,format=raw,file=${optValue(disk.source)}`);
      continue;
    }
    const cache = diskCache(devices, disk.target);
    if (cache !== undefined && !CACHE_MODES.has(cache)) {
      report.errors.push(`disk ${disk.target}: cache mode '${cache}' is not one QEMU takes (default, ${[...CACHE_MODES].join(', ')})`);
      continue;
    }
    if (disk.bus === 'virtio' && disk.device === 'disk') {
      argv.push('-drive', driveValue(disk, `if=virtio,index=${virtioCount++}`, cache));
      continue;
    }
    // SCSI disks on the virtio-scsi controller, USB disks as usb-storage: an if=none drive and its device.
    if (disk.bus === 'scsi') {
      argv.push('-drive', driveValue(disk, `if=none,media=${disk.device === 'cdrom' ? 'cdrom' : 'disk'}`, cache));
      argv.push('-device', `${disk.device === 'cdrom' ? 'scsi-cd' : 'scsi-hd'},bus=${SCSI_DEVICE_BUS},drive=${optValue(driveId(disk.target))},id=${optValue(disk.target)}`);
      continue;
    }
    if (disk.bus === 'usb' && disk.device === 'disk' && usb) {
      argv.push('-drive', driveValue(disk, 'if=none', cache));
      argv.push('-device', `usb-storage,bus=${USB_DEVICE_BUS},drive=${optValue(driveId(disk.target))},id=${optValue(disk.target)}`);
      continue;
    }
    if (disk.bus !== 'ide' && !(machine === 'q35' && disk.bus === 'sata')) {
      warn(el, `${disk.device} ${disk.target} (${disk.bus} bus) is attached as IDE`);
    }
    const slot = IDE_TARGETS.indexOf(disk.target);
    if (slot >= 0 && !usedIde.has(slot)) {
      usedIde.add(slot);
      ideDisks.push({ disk, cache, index: slot });
    } else {
      ideDisks.push({ disk, cache });
    }
  }
  for (const entry of ideDisks) {
    if (entry.index !== undefined) continue;
    const free = [0, 1, 2, 3].find((i) => !usedIde.has(i));
    if (free === undefined) {
      report.errors.push(`the PC's IDE controller has four drives; disk ${entry.disk.target} has no slot left`);
      continue;
    }
    usedIde.add(free);
    entry.index = free;
  }
  for (const { disk, cache, index } of ideDisks) {
    if (index === undefined) continue;
    argv.push('-drive', driveValue(disk, `if=ide,index=${index},media=${disk.device === 'cdrom' ? 'cdrom' : 'disk'}`, cache));
  }
  const order = config.os.bootOrder.flatMap((d) => (d === 'network' ? [] : [{ hd: 'c', cdrom: 'd', fd: 'a' }[d]])).join('');
  if (order && !config.os.kernel) argv.push('-boot', `order=${order}`);
  if (config.disks.some((d) => d.bootIndex !== undefined)) {
    warn('devices/disk/boot', 'per-device <boot order> is not used; the <os><boot> order applies');
  }

  for (const g of config.graphics) {
    if (g.type !== 'vnc') warn(`devices/graphics[@type='${g.type}']`, `${g.type} graphics are not available; the console uses VNC`);
    else if (g !== vnc) warn("devices/graphics[@type='vnc']", 'only the first VNC <graphics> gets a TCP listener');
  }
  for (const iface of config.interfaces) {
    if (iface.type === 'network' && iface.source) continue;
    warn(`devices/interface[@type='${iface.type}']`, `interface on ${iface.source ? `${iface.type} '${iface.source}'` : iface.type}: only interfaces on a virtual network (type='network') are connected`);
  }
  soundArgs(ctx);
  inputArgs(ctx, usb);
  hostdevArgs(ctx, usb);
  serialArgs(ctx);
  channelArgs(ctx);
  // The NICs stay the last PCI devices: the pc machine gives slots in command-line order, and a NIC
  // hot-plugged with device_add (no addr=) takes the next free slot after every device above. A
  // restore or incoming migration rebuilds the command line with that NIC in the definition; placed
  // before the sound cards, inputs or virtio-serial it would sit elsewhere and the state not load.
  for (const [i, nic] of planNics(config, opts.networkSocket).entries()) {
    // Absent, a NIC is an e1000, the NIC QEMU gives x86 machines by default (libvirt leaves it to QEMU too).
    const model = nic.model ?? 'e1000';
    const device = QEMU_NIC_DEVICES[model];
    if (!device) {
      report.errors.push(`interface model '${model}' is not one QEMU here provides (${Object.keys(QEMU_NIC_DEVICES).join(', ')})`);
      continue;
    }
    // The switch speaks -netdev stream's framing on a unix socket: QEMU is a client of it.
    argv.push('-netdev', `stream,id=net${i},server=off,addr.type=unix,addr.path=${optValue(nic.socket)}`);
    argv.push('-device', `${device},netdev=net${i},mac=${nic.mac},id=nic${i}`);
  }
  for (const device of devices ? childElements(devices) : []) {
    const { model } = device.attributes;
    if (['redirdev', 'smartcard', 'filesystem', 'tpm', 'rng', 'watchdog'].includes(device.name)) {
      warn(`devices/${device.name}`, `<${device.name}>${model ? ` (${model})` : ''}: ${NOT_WIRED}`);
    }
  }
  if (opts.incoming || opts.migration) argv.push('-incoming', 'defer');
  return { argv, report, ...(uefi && { uefi }) };
}

/** QEMU's id= of the two VNC displays, which QMP's set_password and query-vnc-servers name. */
export const VNC_DISPLAYS = { unix: 'unix', tcp: 'tcp' } as const;
/** QEMU's -vnc takes a display number, the port less 5900 (libvirt's range is the same). */
const VNC_PORT_LAST = 65535;

/**
 * The TCP display's -vnc value. autoport (or port -1) lets QEMU bind the first free port from 5900
 * with to=, so two guests starting at once cannot race for a port Domus found free.
 */
function vncTcpValue(g: GraphicsConfig, password: boolean, report: SupportReport): string {
  const address = g.listen ?? '127.0.0.1';
  const host = address.includes(':') ? `[${address}]` : address;
  const fixed = !g.autoport && g.port !== undefined;
  if (fixed && (g.port! < VNC_PORT_BASE || g.port! > VNC_PORT_LAST)) {
    report.errors.push(`VNC port ${g.port} is outside ${VNC_PORT_BASE}-${VNC_PORT_LAST}, the ports QEMU's VNC display numbers reach`);
  }
  const display = fixed ? `${g.port! - VNC_PORT_BASE}` : `0,to=${VNC_PORT_LAST - VNC_PORT_BASE}`;
  return `${optValue(host)}:${display},id=${VNC_DISPLAYS.tcp}${password ? ',password=on' : ''}`;
}

/** A drive's id, the name QMP commands (eject, blockdev-change-medium) take: the disk's target. */
export function driveId(target: string): string {
  return `drive-${target}`;
}

/** A disk's <driver cache>, which the typed config leaves out; 'default' is QEMU's own. */
function diskCache(devices: XmlElement | undefined, target: string): string | undefined {
  const disk = (devices ? childElements(devices, 'disk') : []).find((d) => firstChild(d, 'target')?.attributes.dev === target);
  const cache = disk && firstChild(disk, 'driver')?.attributes.cache;
  return cache === 'default' ? undefined : cache;
}

function driveValue(disk: DiskConfig, where: string, cache: string | undefined): string {
  const parts = [where];
  if (disk.source !== undefined) {
    parts.push(`file=${optValue(disk.source)}`, `format=${disk.format === 'iso' ? 'raw' : disk.format}`);
  }
  if (disk.readonly || disk.device === 'cdrom') parts.push('readonly=on');
  if (cache !== undefined) parts.push(`cache=${cache}`);
  parts.push(`id=${optValue(driveId(disk.target))}`);
  return parts.join(',');
}
