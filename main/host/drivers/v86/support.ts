// What v86 can run of a domain definition. Anything the engine lacks but the guest can do
// without is a warning (the definition keeps it; the nearest supported device is used); anything
// the guest cannot run without is an error.

import type { DefinitionWarning, DiskConfig, DomainConfig } from '../../../../shared/domain.js';
import { isPygrub, usesBootloader } from '../../images/bootloader.js';
import { formatKiB } from '../../../../shared/libvirt/units.js';
import { XEN_PV_OS_TYPES, lunDisks, uefiSource } from '../../domain/features.js';
import { checkDevice } from '../../capabilities/check.js';
import { v86Capabilities } from '../../capabilities/engines.js';
import { childElements, firstChild, type XmlElement } from '../../domain/xml.js';

export interface EngineSupport {
  warnings: DefinitionWarning[];
  errors: string[];
}

const MiB = 1024;
const GiB = 1024 * MiB;
/** Below this the BIOS and any useful guest do not fit. */
const V86_MIN_MEMORY_KiB = 16 * MiB;
/** v86 is a 32-bit PC: its CPU clamps guest RAM to just under 2 GiB (2 GiB − 128 KiB). */
export const V86_MAX_MEMORY_KiB = 2 * GiB - MiB;
/** v86 copies the initrd to this guest-physical address, whatever the memory size. */
export const V86_INITRD_ADDRESS_KiB = 64 * MiB;

const X86_ARCHES = new Set(['i686', 'i586', 'i486', 'i386', 'x86_64']);
/** Formats v86 can read as a flat image; 'iso' is libvirt's name for raw CD images. */
const RAW_FORMATS = new Set(['raw', 'iso']);
/** Buses virt-install always writes; v86 has the equivalent built in, so they are not worth a word. */
const IMPLICIT_CONTROLLERS = new Set(['pci', 'ide', 'sata', 'fdc', 'virtio-serial', 'xenbus']);
/** <devices> children covered by the typed config or by dedicated checks below. */
const CHECKED_DEVICES = new Set([
  'emulator',
  'disk',
  'controller',
  'interface',
  'serial',
  'console',
  'channel',
  'input',
  'graphics',
  'sound',
  'audio',
  'video',
  'memballoon',
  'hostdev',
]);
const DEVICE_LABELS: Record<string, string> = {
  rng: 'random number generator',
  watchdog: 'watchdog',
  redirdev: 'USB redirection',
  redirfilter: 'USB redirection filter',
  smartcard: 'smartcard',
  filesystem: 'shared filesystem',
  tpm: 'TPM',
  shmem: 'shared memory device',
  panic: 'panic device',
  vsock: 'vsock',
  iommu: 'IOMMU',
  crypto: 'crypto device',
  hub: 'USB hub',
  parallel: 'parallel port',
  memory: 'memory module',
};
const NOT_PROVIDED = 'kept in the definition, not provided by v86';
const V86_CAPABILITIES = v86Capabilities();


class Report implements EngineSupport {
  readonly warnings: DefinitionWarning[] = [];
  readonly errors: string[] = [];
  private readonly seen = new Set<string>();

  /** One warning per distinct element and message: two identical redirdevs make one line. */
  warn(element: string, message: string): void {
    const key = `${element}\n${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.warnings.push({ element, message });
  }

  error(message: string): void {
    this.errors.push(message);
  }
}

/**
 * Checks a definition against v86. `root` is the parsed <domain> element: devices that
 * DomainConfig does not model (controllers, inputs, channels, sound, video...) are only checked
 * when it is given.
 */
export function checkV86Support(config: DomainConfig, root: XmlElement | undefined): EngineSupport {
  const report = new Report();
  checkCpuAndOs(config, report);
  checkMemory(config, report);
  checkDisks(config, report);
  checkConsoleAndNetwork(config, report);
  const devices = root && firstChild(root, 'devices');
  if (devices) checkOtherDevices(devices, report);
  for (const target of root ? lunDisks(root) : []) report.error(`SCSI LUN passthrough (<disk device='lun'> ${target}) is not provided by v86`);
  return { warnings: report.warnings, errors: report.errors };
}

function checkCpuAndOs(config: DomainConfig, report: Report): void {
  const { os } = config;
  if (config.vcpus > 1) {
    report.warn('vcpu', `v86 emulates one CPU; the guest gets 1 vCPU instead of ${config.vcpus}`);
  }
  if (!X86_ARCHES.has(os.arch)) {
    report.error(`arch ${os.arch} cannot run on v86, which emulates a 32-bit x86 (i686) PC`);
  } else if (os.arch === 'x86_64') {
    // virt-install writes x86_64 for every x86 guest, so this cannot be an error.
    report.warn('os/type[@arch]', 'v86 is a 32-bit i686 CPU; 64-bit-only guests will not boot');
  }
  if (XEN_PV_OS_TYPES.has(os.type)) {
    report.warn('os/type', `Xen paravirtualized guest (os type '${os.type}'): v86 runs it as a PC; PV-only kernels will not boot`);
  } else if (os.type !== 'hvm') {
    report.error(`os type '${os.type}' cannot run on v86, which only runs full PC guests (hvm)`);
  }
  if (os.firmware === 'efi') {
    report.error(`UEFI firmware (${uefiSource(config)}): v86 has a BIOS (SeaBIOS) only`);
  } else if (os.loader?.path) {
    report.warn('os/loader', `loader ${os.loader.path} is not used; v86 boots with its SeaBIOS`);
  }
  if (isPygrub(os.bootloader)) {
    // pygrub is run in-process at every start (main/host/bootloader.ts) unless a <kernel> is given.
    // Without a disk, checkDisks reports that there is nothing to boot.
    if (os.kernel) report.warn('bootloader', `bootloader ${os.bootloader} is not run: the <kernel> given boots directly`);
  } else if (os.bootloader) {
    report.warn('bootloader', `bootloader ${os.bootloader} is not run; v86 boots the disk through its BIOS`);
  }
}

function checkMemory(config: DomainConfig, report: Report): void {
  const memory = formatKiB(config.memoryKiB);
  if (config.memoryKiB < V86_MIN_MEMORY_KiB) {
    report.error(`memory ${memory} is too small; v86 needs at least ${formatKiB(V86_MIN_MEMORY_KiB)}`);
  } else if (config.memoryKiB > V86_MAX_MEMORY_KiB) {
    // A KVM guest defined with more RAM still boots here: it gets what a 32-bit PC can have.
    report.warn('memory', `memory ${memory} is more than v86's 32-bit PC can have; the guest gets ${formatKiB(V86_MAX_MEMORY_KiB)}`);
  }
  // v86's virtio-balloon offers neither feature bit; the memory it takes stays taken until setmem.
  if (config.balloon && config.balloonAutodeflate) report.warn('devices/memballoon[@autodeflate]', `balloon autodeflate: ${NOT_PROVIDED}`);
  if (config.balloon && config.balloonFreePageReporting) report.warn('devices/memballoon[@freePageReporting]', `balloon free page reporting: ${NOT_PROVIDED}`);
  if (config.os.kernel && config.os.initrd && config.memoryKiB <= V86_INITRD_ADDRESS_KiB) {
    const address = formatKiB(V86_INITRD_ADDRESS_KiB);
    report.error(
      `memory ${memory} is too small for the initrd: v86 loads it at ${address}, ` +
        `so memory must exceed ${address} plus the initrd size`,
    );
  }
}

/** IDE as v86 wires it: hda and hdb on the primary channel, the CD-ROM on the secondary. */
const V86_SLOTS: Record<DiskConfig['device'], { count: number; bus: string; what: string }> = {
  disk: { count: 2, bus: 'ide', what: 'two IDE hard disks (hda, hdb)' },
  cdrom: { count: 1, bus: 'ide', what: 'one IDE CD-ROM drive' },
  floppy: { count: 2, bus: 'fdc', what: 'two floppy drives (fda, fdb)' },
};

function checkDisks(config: DomainConfig, report: Report): void {
  const { disks } = config;
  // Non-raw images are skipped, so they neither boot the guest nor take a drive slot; empty
  // CD-ROM and floppy drives are attached (v86 emulates them ejected), empty hard disks are not.
  const nonRaw = disks.filter((disk) => disk.source !== undefined && !RAW_FORMATS.has(disk.format));
  const attached = disks.filter((disk) => !nonRaw.includes(disk) && (disk.source !== undefined || disk.device !== 'disk'));
  const bootable = config.os.kernel !== undefined || attached.some((disk) => disk.source !== undefined);

  if (!bootable && nonRaw.length > 0) {
    const names = nonRaw.map((disk) => `${disk.target} (${disk.format})`).join(', ');
    report.error(`nothing to boot: v86 needs raw disk images and ${names} ${nonRaw.length > 1 ? 'are' : 'is'} not raw`);
  } else if (!bootable && config.os.bootOrder.includes('network')) {
    report.error(`nothing to boot: network boot (<boot dev='network'/>) is not provided by v86, and there is no <kernel> and no disk or CD-ROM with a source image`);
  } else if (!bootable) {
    report.error('nothing to boot: no <kernel>, and no disk or CD-ROM with a source image');
  } else {
    for (const disk of nonRaw) {
      report.warn(diskElement(disk), `${diskLabel(disk)} is ${disk.format}; v86 needs raw images, so it is skipped`);
    }
  }
  for (const disk of disks) {
    if (disk.device === 'disk' && disk.source === undefined) {
      report.warn(diskElement(disk), `${diskLabel(disk)} has no source image and is skipped`);
    }
  }

  if (bootable && config.os.bootOrder.includes('network') && !config.os.kernel && !usesBootloader(config)) {
    const only = config.os.bootOrder.every((d) => d === 'network');
    report.warn("os/boot[@dev='network']", `network boot (PXE) is not provided by v86; ${only ? 'the guest boots from its disks instead' : 'the other boot devices are tried'}`);
  }
  for (const [device, slot] of Object.entries(V86_SLOTS)) {
    const count = attached.filter((disk) => disk.device === device).length;
    if (count > slot.count) report.error(`v86 has ${slot.what}; the definition attaches ${count}`);
  }
  for (const disk of attached) {
    const bus = V86_SLOTS[disk.device].bus;
    if (disk.bus !== bus) {
      report.warn(diskElement(disk), `${diskLabel(disk)} (${disk.bus} bus) is attached as ${bus.toUpperCase()}`);
    }
  }
}

function diskElement(disk: DiskConfig): string {
  return `devices/disk[@target='${disk.target}']`;
}

function diskLabel(disk: DiskConfig): string {
  const kind = disk.device === 'cdrom' ? 'CD-ROM' : disk.device;
  return `${kind} ${disk.target}`;
}

function checkConsoleAndNetwork(config: DomainConfig, report: Report): void {
  for (const graphics of config.graphics) {
    if (graphics.type === 'spice') {
      report.warn("devices/graphics[@type='spice']", 'SPICE is not available; the console uses VNC');
    } else if (graphics.type !== 'vnc') {
      report.warn(`devices/graphics[@type='${graphics.type}']`, `${graphics.type} graphics are not available; the console uses VNC`);
    }
  }
  if (config.serials > 1) {
    report.warn('devices/serial', `only the first serial port is connected (${config.serials} defined)`);
  }
  let connected = 0;
  for (const iface of config.interfaces) {
    const where = iface.source ? `${iface.type} '${iface.source}'` : iface.type;
    const element = `devices/interface[@type='${iface.type}']`;
    if (iface.type !== 'network' || !iface.source) {
      report.warn(element, `interface on ${where}: only interfaces on a virtual network (type='network') are connected`);
      continue;
    }
    // v86 has one NIC, an ne2k or a virtio-net.
    if (++connected > 1) {
      report.warn(element, `interface on ${where}: v86 has one network card; only the first interface is connected`);
      continue;
    }
    const native = iface.model === undefined || iface.model === 'virtio' || iface.model === 'ne2k_pci' || iface.model === 'ne2k_isa';
    if (!native) report.warn(element, `interface on ${where} (model ${iface.model}): emulated as ne2k_pci, the NIC v86 has besides virtio`);
  }
}

function checkOtherDevices(devices: XmlElement, report: Report): void {
  for (const device of childElements(devices)) {
    const { type, model, bus } = device.attributes;
    switch (device.name) {
      case 'controller':
        if (type && !IMPLICIT_CONTROLLERS.has(type) && model !== 'none') {
          const label = type === 'usb' || type === 'scsi' ? type.toUpperCase() : type;
          report.warn(
            `devices/controller[@type='${type}']`,
            `${label} controller${model ? ` (${model})` : ''}: ${NOT_PROVIDED}`,
          );
        }
        break;
      // The kinds v86's capabilities describe: their reasons are the ones forms grey choices with.
      // (The guest agent's channel is provided: a virtio console carries Domus's agent protocol.)
      case 'input':
      case 'channel':
      case 'sound':
      case 'video':
      case 'hostdev': {
        const problem = checkDevice(V86_CAPABILITIES, device);
        const videoModel = device.name === 'video' ? firstChild(device, 'model')?.attributes.type : undefined;
        const which = videoModel ? `model[@type='${videoModel}']` : type ? `[@type='${type}']` : model ? `[@model='${model}']` : '';
        if (problem) report.warn(`devices/${device.name}${device.name === 'video' && which ? '/' : ''}${which}`, `${problem}; ${NOT_PROVIDED}`);
        break;
      }
      default:
        if (!CHECKED_DEVICES.has(device.name)) {
          const label = DEVICE_LABELS[device.name] ?? `<${device.name}>`;
          const kind = model ?? type;
          report.warn(`devices/${device.name}`, `${label}${kind ? ` (${kind})` : ''}: ${NOT_PROVIDED}`);
        }
    }
  }
}

