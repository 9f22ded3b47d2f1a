// libvirt domain XML: parse into an ordered tree (so everything Domus does not model survives a
// round trip) plus the typed DomainConfig derived from it, and write it back like virsh dumpxml.

import type { DiskConfig, DomainConfig, GraphicsConfig, InterfaceConfig } from '../../../shared/domain.js';
import { BOOT_DEVICES, DISK_DEVICES, DOMAIN_CHILDREN } from '../../../shared/libvirt/schema.js';
import { ScaledValueError, scaledToKiB } from '../../../shared/libvirt/units.js';
import {
  XmlSyntaxError,
  childElements,
  createElement,
  ensureChild,
  firstChild,
  parseXmlTree,
  serializeXmlTree,
  setText,
  textContent,
  type XmlElement,
  type XmlNode,
} from './xml-tree.js';

// The tree helpers are part of this module's API so later mutators can be written against it.
export {
  childElements,
  createElement,
  ensureChild,
  firstChild,
  setText,
  textContent,
  type XmlElement,
  type XmlNode,
} from './xml-tree.js';

/**
 * 'xml-malformed': not well-formed XML; 'xml-invalid': well-formed but not a valid domain
 * definition; 'xml-unsupported': valid, but uses something Domus does not handle.
 */
export type DomainXmlErrorCode = 'xml-malformed' | 'xml-invalid' | 'xml-unsupported';

export class DomainXmlError extends Error {
  constructor(
    readonly code: DomainXmlErrorCode,
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'DomainXmlError';
  }
}

export interface DomainDocument {
  /** Top-level nodes in document order: the <domain> root and any comments around it. */
  nodes: XmlNode[];
  /** The <domain> element (also present in `nodes`). */
  root: XmlElement;
  /**
   * Typed view derived from `root`; the mutators below keep both in sync. `config.uuid` is ''
   * while the definition has no <uuid> (ensureUuid adds one).
   */
  config: DomainConfig;
}

function invalid(problem: string): DomainXmlError {
  return new DomainXmlError('xml-invalid', `invalid domain XML: ${problem}`);
}

export function parseDomainXml(xml: string): DomainDocument {
  let nodes: XmlNode[];
  try {
    nodes = parseXmlTree(xml);
  } catch (error) {
    if (!(error instanceof XmlSyntaxError)) throw error;
    const code = error.kind === 'unsupported' ? 'xml-unsupported' : error.kind === 'invalid' ? 'xml-invalid' : 'xml-malformed';
    throw new DomainXmlError(code, `invalid domain XML: ${error.message}`, error.line, error.column);
  }
  const root = nodes.find((node): node is XmlElement => node.type === 'element');
  if (!root || root.name !== 'domain') {
    throw invalid(`root element is <${root?.name}>, expected <domain>`);
  }
  return { nodes, root, config: deriveConfig(root) };
}

export function serializeDomainXml(doc: DomainDocument): string {
  return serializeXmlTree(doc.nodes);
}

/**
 * The XML a client is shown, as virsh dumpxml writes it: without `secure` (virsh --security-info)
 * VNC passwords are left out; for a running domain `vncTcp` is where its display really listens, so
 * an autoport display shows the port it got instead of -1.
 */
export function dumpDomainXml(doc: DomainDocument, opts: { secure: boolean; vncTcp?: { address: string; port: number } }): string {
  if (opts.secure && !opts.vncTcp) return serializeDomainXml(doc);
  const root = structuredClone(doc.root);
  const devices = firstChild(root, 'devices');
  const graphics = devices ? childElements(devices, 'graphics') : [];
  if (!opts.secure) for (const g of graphics) delete g.attributes.passwd;
  const vnc = graphics.find((g) => g.attributes.type === 'vnc');
  if (vnc && opts.vncTcp) {
    const { address, port } = opts.vncTcp;
    const autoport = doc.config.graphics.find((g) => g.type === 'vnc')?.autoport ?? true;
    const rest = Object.entries(vnc.attributes).filter(([name]) => !['type', 'port', 'autoport', 'listen'].includes(name));
    vnc.attributes = { type: 'vnc', port: String(port), autoport: autoport ? 'yes' : 'no', listen: address, ...Object.fromEntries(rest) };
    if (!childElements(vnc, 'listen').length) vnc.children.unshift(createElement('listen', { type: 'address', address }));
  }
  return serializeXmlTree(doc.nodes.map((n) => (n === doc.root ? root : n)));
}

// ---- Mutators ----

/**
 * Applies `edit` to a copy of the <domain> tree and re-derives the config from it. The document
 * only changes when the edited tree is valid; otherwise the DomainXmlError propagates.
 */
export function editDomain(doc: DomainDocument, edit: (root: XmlElement) => void): void {
  const draft = structuredClone(doc.root);
  edit(draft);
  const config = deriveConfig(draft);
  doc.nodes[doc.nodes.indexOf(doc.root)] = draft;
  doc.root = draft;
  doc.config = config;
}

/** Adds <uuid> after <name> when the definition has none; returns the domain's UUID. */
export function ensureUuid(doc: DomainDocument, generate: () => string): string {
  if (doc.config.uuid === '') {
    editDomain(doc, (root) => setText(ensureChild(root, 'uuid', DOMAIN_CHILDREN), generate()));
  }
  return doc.config.uuid;
}

/**
 * Gives every <interface> without a <mac> one, as libvirt does at define: 52:54:00 (the prefix QEMU
 * and libvirt use) and three bytes from `random`. Returns how many it added.
 */
export function ensureInterfaceMacs(doc: DomainDocument, random: () => Uint8Array): number {
  const missing = doc.config.interfaces.filter((i) => i.mac === undefined).length;
  if (!missing) return 0;
  const taken = new Set(doc.config.interfaces.map((i) => i.mac));
  editDomain(doc, (root) => {
    const devices = firstChild(root, 'devices');
    for (const iface of devices ? childElements(devices, 'interface') : []) {
      if (firstChild(iface, 'mac')) continue;
      const mac = newMac(taken, random);
      taken.add(mac);
      // libvirt writes <mac> first in an <interface>.
      iface.children.unshift(createElement('mac', { address: mac }));
    }
  });
  return missing;
}

/** A MAC as libvirt makes one (52:54:00 and three bytes from `random`) that none of `taken` has. */
export function newMac(taken: ReadonlySet<string | undefined>, random: () => Uint8Array): string {
  let mac: string;
  do mac = `52:54:00:${[...random().subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  while (taken.has(mac));
  return mac;
}

export function setName(doc: DomainDocument, name: string): void {
  editDomain(doc, (root) => setText(ensureChild(root, 'name', DOMAIN_CHILDREN), name));
}

/**
 * Sets <memory> and/or <currentMemory> (written in KiB, as libvirt does). Lowering the maximum
 * below a <currentMemory> lowers it too, like `virsh setmaxmem`; without one, the current
 * allocation follows <memory> anyway.
 */
export function setMemory(
  doc: DomainDocument,
  sizes: { memoryKiB?: number; currentMemoryKiB?: number },
): void {
  const memoryKiB = sizes.memoryKiB ?? doc.config.memoryKiB;
  let currentKiB = sizes.currentMemoryKiB;
  const hasCurrent = firstChild(doc.root, 'currentMemory') !== undefined;
  if (currentKiB === undefined && hasCurrent && doc.config.currentMemoryKiB > memoryKiB) currentKiB = memoryKiB;
  for (const value of [memoryKiB, currentKiB]) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      throw invalid(`memory size ${value} KiB must be a positive whole number`);
    }
  }
  editDomain(doc, (root) => {
    writeKiB(ensureChild(root, 'memory', DOMAIN_CHILDREN), memoryKiB);
    if (currentKiB !== undefined) writeKiB(ensureChild(root, 'currentMemory', DOMAIN_CHILDREN), currentKiB);
  });
}

function writeKiB(element: XmlElement, kib: number): void {
  element.attributes.unit = 'KiB';
  setText(element, String(kib));
}

/** Sets the vCPU count; a `current` attribute above it is dropped so the definition stays valid. */
export function setVcpus(doc: DomainDocument, count: number): void {
  if (!(Number.isSafeInteger(count) && count > 0)) {
    throw invalid(`vCPU count ${count} must be a positive whole number`);
  }
  editDomain(doc, (root) => {
    const vcpu = ensureChild(root, 'vcpu', DOMAIN_CHILDREN);
    setText(vcpu, String(count));
    const current = Number(vcpu.attributes.current);
    if (vcpu.attributes.current !== undefined && !(current <= count)) delete vcpu.attributes.current;
  });
}

// ---- Typed config ----

const LIFECYCLE_ACTIONS = ['destroy', 'restart', 'rename-restart', 'preserve'];
const CRASH_ACTIONS = [...LIFECYCLE_ACTIONS, 'coredump-destroy', 'coredump-restart'];

function isOneOf<T extends string>(values: readonly T[], value: string | undefined): value is T {
  return (values as readonly (string | undefined)[]).includes(value);
}

/** Node's process.arch → libvirt arch name: libvirt defaults <type arch> to the host's arch. */
const HOST_ARCH: Record<string, string> = { x64: 'x86_64', ia32: 'i686', arm64: 'aarch64', arm: 'armv7l' };

function deriveConfig(root: XmlElement): DomainConfig {
  const name = readName(root);
  const uuid = readUuid(root);
  const type = root.attributes.type;
  if (!type) throw invalid('<domain> has no type attribute');
  const memoryKiB = readMemory(root, 'memory');
  if (memoryKiB === undefined) throw invalid('<memory> is missing');
  if (memoryKiB === 0) throw invalid('<memory> must be larger than 0');
  const currentMemoryKiB = readMemory(root, 'currentMemory') ?? memoryKiB;
  if (currentMemoryKiB > memoryKiB) {
    throw invalid(`<currentMemory> (${currentMemoryKiB} KiB) is larger than <memory> (${memoryKiB} KiB)`);
  }
  const devices = firstChild(root, 'devices');
  const serials = devices ? childElements(devices, 'serial').length : 0;
  const consoles = devices ? childElements(devices, 'console').length : 0;
  const memballoon = devices && firstChild(devices, 'memballoon');
  return {
    name,
    uuid,
    title: optionalText(root, 'title'),
    description: optionalText(root, 'description'),
    type,
    memoryKiB,
    currentMemoryKiB,
    vcpus: readVcpus(root),
    os: readOs(root, type),
    // A SCSI passthrough LUN is no image: the engines refuse it at start (features.ts lunDisks).
    disks: devices ? childElements(devices, 'disk').flatMap((disk, index) => (disk.attributes.device === 'lun' ? [] : [readDisk(disk, index + 1)])) : [],
    graphics: devices ? childElements(devices, 'graphics').map((g, index) => readGraphics(g, index + 1)) : [],
    interfaces: devices ? childElements(devices, 'interface').map(readInterface) : [],
    // libvirt turns a lone serial-type <console> into serial0.
    serials: serials > 0 ? serials : Math.min(consoles, 1),
    balloon: memballoon?.attributes.model !== 'none',
    ...(memballoon && readBalloonOptions(memballoon)),
    onPoweroff: readLifecycle(root, 'on_poweroff', 'destroy', LIFECYCLE_ACTIONS),
    onReboot: readLifecycle(root, 'on_reboot', 'restart', LIFECYCLE_ACTIONS),
    onCrash: readLifecycle(root, 'on_crash', 'destroy', CRASH_ACTIONS),
  };
}

/** Trimmed text of the first child `name`, or undefined when absent or empty. */
function optionalText(parent: XmlElement, name: string): string | undefined {
  const element = firstChild(parent, name);
  const text = element && textContent(element).trim();
  return text === '' ? undefined : text;
}

function readName(root: XmlElement): string {
  const element = firstChild(root, 'name');
  if (!element) throw invalid('<name> is missing');
  const name = textContent(element).trim();
  if (name === '') throw invalid('<name> is empty');
  if (name.includes('/')) throw invalid(`<name> '${name}' must not contain '/'`);
  return name;
}

/** libvirt accepts 32 hex digits with hyphens anywhere; the config holds the canonical form. */
function readUuid(root: XmlElement): string {
  const element = firstChild(root, 'uuid');
  if (!element) return '';
  const raw = textContent(element).trim();
  const hex = raw.replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw invalid(`<uuid> '${raw}' is not a valid UUID`);
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
}

function readMemory(root: XmlElement, name: string): number | undefined {
  const element = firstChild(root, name);
  if (!element) return undefined;
  try {
    return scaledToKiB(textContent(element), element.attributes.unit);
  } catch (error) {
    if (error instanceof ScaledValueError) throw invalid(`<${name}> ${error.message}`);
    throw error;
  }
}

function readVcpus(root: XmlElement): number {
  const element = firstChild(root, 'vcpu');
  if (!element) return 1;
  const text = textContent(element).trim();
  const count = /^\d+$/.test(text) ? Number(text) : 0;
  if (count < 1) throw invalid(`<vcpu> value '${text}' must be a positive whole number`);
  return count;
}

/** The values libvirt's schema allows in <os firmware=...>. */
const FIRMWARE_KINDS = ['bios', 'efi'] as const;

function readOs(root: XmlElement, domainType: string): DomainConfig['os'] {
  const os = firstChild(root, 'os');
  const typeElement = os && firstChild(os, 'type');
  const osType = typeElement && textContent(typeElement).trim();
  // Xen's schema lets a <bootloader> domain leave <os> out: libvirt then takes it as a PV guest ('xen').
  const bootloader = optionalText(root, 'bootloader');
  if (!osType && !(bootloader && !os)) throw invalid('<os><type> is missing');
  const bootOrder = (os ? childElements(os, 'boot') : []).map((boot) => {
    const dev = boot.attributes.dev;
    if (!isOneOf(BOOT_DEVICES, dev)) {
      throw invalid(`<os><boot dev='${dev ?? ''}'> is not one of ${BOOT_DEVICES.join(', ')}`);
    }
    return dev;
  });
  return {
    type: osType || 'xen',
    // v86 only has an i686 CPU; for other engines libvirt picks the host's architecture.
    arch: typeElement?.attributes.arch ?? (domainType === 'v86' ? 'i686' : (HOST_ARCH[process.arch] ?? process.arch)),
    machine: typeElement?.attributes.machine,
    kernel: os && optionalText(os, 'kernel'),
    initrd: os && optionalText(os, 'initrd'),
    cmdline: os && optionalText(os, 'cmdline'),
    bootOrder,
    // Xen tools write these as <domain> children, not inside <os>.
    bootloader,
    bootloaderArgs: optionalText(root, 'bootloader_args'),
    ...(os && readFirmware(os)),
  };
}

/** <os firmware>, <loader> and <nvram>; only what the definition says is set. */
function readFirmware(os: XmlElement): Pick<DomainConfig['os'], 'firmware' | 'loader' | 'nvram'> {
  const attribute = os.attributes.firmware;
  if (attribute !== undefined && !isOneOf(FIRMWARE_KINDS, attribute)) {
    throw invalid(`<os firmware='${attribute}'> is not one of ${FIRMWARE_KINDS.join(', ')}`);
  }
  const loaderElement = firstChild(os, 'loader');
  const nvramElement = firstChild(os, 'nvram');
  // Flash-mapped firmware with a variable store is UEFI (OVMF) on a PC; a ROM <loader> is another BIOS.
  const flash = loaderElement?.attributes.type === 'pflash' || nvramElement !== undefined;
  const firmware = attribute ?? (flash ? 'efi' : loaderElement ? 'bios' : undefined);
  const loaderPath = optionalText(os, 'loader');
  const nvramPath = optionalText(os, 'nvram');
  const template = nvramElement?.attributes.template;
  const loader = loaderElement && {
    ...(loaderPath !== undefined && { path: loaderPath }),
    ...(loaderElement.attributes.type !== undefined && { type: loaderElement.attributes.type }),
    ...(loaderElement.attributes.secure === 'yes' && { secure: true }),
  };
  const nvram = nvramElement && { ...(nvramPath !== undefined && { path: nvramPath }), ...(template !== undefined && { template }) };
  return {
    ...(firmware !== undefined && { firmware }),
    ...(loader && { loader }),
    ...(nvram && { nvram }),
  };
}

/** Bus libvirt infers from the target name when <target bus> is absent. */
function busFromTarget(dev: string): string {
  if (dev.startsWith('hd')) return 'ide';
  if (dev.startsWith('sd')) return 'scsi';
  if (dev.startsWith('vd')) return 'virtio';
  if (dev.startsWith('xvd')) return 'xen';
  if (dev.startsWith('fd')) return 'fdc';
  if (dev.startsWith('ubd')) return 'uml';
  return 'ide';
}

/** Which <source> attribute names the image, per <disk type>; network and nvme disks have none. */
const DISK_SOURCE_ATTRIBUTE: Record<string, string> = { file: 'file', block: 'dev', volume: 'volume' };

function readDisk(disk: XmlElement, position: number): DiskConfig {
  const where = `devices/disk[${position}]`;
  const device = disk.attributes.device ?? 'disk';
  if (!isOneOf(DISK_DEVICES, device)) {
    throw new DomainXmlError('xml-unsupported', `invalid domain XML: ${where}: device '${device}' is not supported`);
  }
  const target = firstChild(disk, 'target')?.attributes;
  if (!target?.dev) throw invalid(`${where}: <target dev=...> is missing`);
  const sourceAttribute = DISK_SOURCE_ATTRIBUTE[disk.attributes.type ?? 'file'];
  const source = sourceAttribute ? firstChild(disk, 'source')?.attributes[sourceAttribute] : undefined;
  const bootOrder = firstChild(disk, 'boot')?.attributes.order;
  if (bootOrder !== undefined && !/^[1-9]\d*$/.test(bootOrder)) {
    throw invalid(`${where}: <boot order='${bootOrder}'> is not a positive whole number`);
  }
  return {
    device,
    source: source || undefined,
    format: firstChild(disk, 'driver')?.attributes.type ?? 'raw',
    target: target.dev,
    bus: target.bus ?? busFromTarget(target.dev),
    readonly: firstChild(disk, 'readonly') !== undefined,
    bootIndex: bootOrder === undefined ? undefined : Number(bootOrder),
  };
}

function readGraphics(graphics: XmlElement, position: number): GraphicsConfig {
  const where = `devices/graphics[${position}]`;
  const { type, port: portText, autoport, listen, passwd } = graphics.attributes;
  if (!type) throw invalid(`${where}: type attribute is missing`);
  if (portText !== undefined && !/^-?\d+$/.test(portText)) {
    throw invalid(`${where}: port '${portText}' is not a number`);
  }
  const port = portText === undefined ? undefined : Number(portText);
  const listenAddress = childElements(graphics, 'listen').find((l) => l.attributes.address)?.attributes.address;
  return {
    type,
    port: port !== undefined && port > 0 ? port : undefined,
    // No port, or the legacy port='-1', means libvirt allocates one.
    autoport: autoport === undefined ? port === undefined || port === -1 : autoport === 'yes',
    listen: listen ?? listenAddress,
    passwd,
  };
}

const MAC_ADDRESS = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function readInterface(iface: XmlElement): InterfaceConfig {
  const source = firstChild(iface, 'source')?.attributes;
  const mac = firstChild(iface, 'mac')?.attributes.address;
  if (mac !== undefined && !MAC_ADDRESS.test(mac)) throw invalid(`<interface><mac address='${mac}'> is not a MAC address (six hex pairs separated by colons)`);
  // The group bit makes a multicast address, which no NIC may have (libvirt refuses it too).
  if (mac !== undefined && Number.parseInt(mac.slice(0, 2), 16) & 1) throw invalid(`<interface><mac address='${mac}'> is a multicast address`);
  const link = firstChild(iface, 'link')?.attributes.state;
  if (link !== undefined && link !== 'up' && link !== 'down') throw invalid(`<interface><link state='${link}'> is not 'up' or 'down'`);
  return {
    type: iface.attributes.type ?? 'user',
    mac: mac?.toLowerCase(),
    model: firstChild(iface, 'model')?.attributes.type,
    source: source && (source.network ?? source.bridge ?? source.dev),
    ...(link && { link }),
  };
}

/** <memballoon>'s on/off (libvirt's virTristateSwitch) attributes; only those given are set. */
function readBalloonOptions(memballoon: XmlElement): Pick<DomainConfig, 'balloonAutodeflate' | 'balloonFreePageReporting'> {
  const options: Pick<DomainConfig, 'balloonAutodeflate' | 'balloonFreePageReporting'> = {};
  const fields = { autodeflate: 'balloonAutodeflate', freePageReporting: 'balloonFreePageReporting' } as const;
  for (const [attribute, field] of Object.entries(fields)) {
    const value = memballoon.attributes[attribute];
    if (value === undefined) continue;
    if (value !== 'on' && value !== 'off') throw invalid(`<memballoon ${attribute}='${value}'> is not 'on' or 'off'`);
    options[field] = value === 'on';
  }
  return options;
}

function readLifecycle(root: XmlElement, name: string, fallback: string, allowed: readonly string[]): string {
  const value = optionalText(root, name);
  if (value === undefined) return fallback;
  if (!allowed.includes(value)) throw invalid(`<${name}> value '${value}' is not one of ${allowed.join(', ')}`);
  return value;
}
