// One device's libvirt XML (virsh attach-device, detach-device, update-device) applied to a
// definition: what libvirt fills in when the XML leaves it out (disk targets, MACs, port numbers,
// the virtio-serial controller a channel needs), how it finds the device to remove or update, and
// which settings an update may change.
import { DISK_TARGET_PREFIX, freeDiskTarget } from '../../../shared/libvirt/disk-targets.js';
import { DomainXmlError, childElements, createElement, editDomain, firstChild, newMac, type DomainDocument, type XmlElement } from './xml.js';
import { parseXmlTree, XmlSyntaxError } from './xml-tree.js';

/** The device elements these operations take, in the order libvirt writes them inside <devices>. */
export const DEVICE_ELEMENTS = ['disk', 'controller', 'interface', 'input', 'sound', 'hostdev', 'graphics', 'video', 'serial', 'console', 'channel'] as const;
export type DeviceElement = (typeof DEVICE_ELEMENTS)[number];

/** libvirt's full <devices> order, so a new device lands where virsh dumpxml would show it. */
const DEVICES_ORDER = ['emulator', 'disk', 'controller', 'lease', 'filesystem', 'interface', 'smartcard', 'input', 'sound', 'hostdev', 'graphics', 'video', 'serial', 'parallel', 'console', 'channel'];

/** A device element is small; a bigger one is not a device description. */
const MAX_DEVICE_DEPTH = 8;

export class DeviceXmlError extends Error {
  constructor(
    readonly kind: 'invalid' | 'unsupported' | 'not-found' | 'conflict',
    message: string,
  ) {
    super(message);
    this.name = 'DeviceXmlError';
  }
}

/** Parses one device element; anything else (a whole <domain>, two devices, an unknown element) is refused with the reason. */
export function parseDeviceXml(xml: string): XmlElement {
  let nodes;
  try {
    nodes = parseXmlTree(xml);
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw new DeviceXmlError('invalid', err.message);
    throw err;
  }
  const root = nodes.find((n): n is XmlElement => n.type === 'element')!;
  if (!(DEVICE_ELEMENTS as readonly string[]).includes(root.name)) {
    throw new DeviceXmlError('unsupported', `<${root.name}> is not a device Domus attaches (one of ${DEVICE_ELEMENTS.map((e) => `<${e}>`).join(', ')})`);
  }
  if (depth(root) > MAX_DEVICE_DEPTH) throw new DeviceXmlError('invalid', `<${root.name}> nests deeper than ${MAX_DEVICE_DEPTH} levels`);
  return root;
}

function depth(el: XmlElement): number {
  return 1 + Math.max(0, ...childElements(el).map(depth));
}

function devicesOf(root: XmlElement): XmlElement {
  let devices = firstChild(root, 'devices');
  if (!devices) {
    devices = createElement('devices');
    root.children.push(devices);
  }
  return devices;
}

/** Inserts `el` after the last device of its kind or of a kind libvirt writes before it. */
function insertDevice(devices: XmlElement, el: XmlElement): void {
  const rank = DEVICES_ORDER.indexOf(el.name);
  let at = 0;
  devices.children.forEach((c, i) => {
    if (c.type === 'element' && DEVICES_ORDER.includes(c.name) && DEVICES_ORDER.indexOf(c.name) <= rank) at = i + 1;
  });
  devices.children.splice(at, 0, el);
}

function diskTarget(disk: XmlElement, taken: Set<string>): void {
  let target = firstChild(disk, 'target');
  if (!target) {
    target = createElement('target', {});
    disk.children.push(target);
  }
  if (target.attributes.dev) {
    if (taken.has(target.attributes.dev)) throw new DeviceXmlError('conflict', `target ${target.attributes.dev} already exists`);
    return;
  }
  // The bus libvirt takes for a disk <target> without one.
  const bus = target.attributes.bus ?? (disk.attributes.device === 'floppy' ? 'fdc' : 'ide');
  if (!DISK_TARGET_PREFIX[bus]) throw new DeviceXmlError('invalid', `disk bus '${bus}' is not one of ${Object.keys(DISK_TARGET_PREFIX).join(', ')}`);
  const free = freeDiskTarget(taken, bus, disk.attributes.device);
  if (!free) throw new DeviceXmlError('conflict', `no free target left on the ${bus} bus; name one with <target dev=...>`);
  target.attributes = { dev: free, bus, ...target.attributes };
}

/** The next number not in `used`, from 0. */
function nextFree(used: number[]): number {
  let n = 0;
  while (used.includes(n)) n++;
  return n;
}

function numberAttr(el: XmlElement | undefined, name: string): number | undefined {
  const v = el?.attributes[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** Adds `device` to the definition, filling in what libvirt assigns; returns the element as added. */
export function attachDeviceTo(doc: DomainDocument, device: XmlElement, random: () => Uint8Array): XmlElement {
  const el = structuredClone(device);
  editDomain(doc, (root) => {
    const devices = devicesOf(root);
    const existing = (name: string) => childElements(devices, name);
    switch (el.name) {
      case 'disk':
        diskTarget(el, new Set(existing('disk').map((d) => firstChild(d, 'target')?.attributes.dev ?? '')));
        break;
      case 'interface': {
        const macs = new Set(existing('interface').map((i) => firstChild(i, 'mac')?.attributes.address?.toLowerCase()));
        const given = firstChild(el, 'mac')?.attributes.address?.toLowerCase();
        if (given && macs.has(given)) throw new DeviceXmlError('conflict', `an interface with MAC address ${given} already exists`);
        if (!given) el.children.unshift(createElement('mac', { address: newMac(macs, random) }));
        break;
      }
      case 'serial':
      case 'console':
      case 'channel':
        numberTarget(el, existing(el.name));
        if (el.name === 'channel' && firstChild(el, 'target')?.attributes.type === 'virtio' && !existing('controller').some((c) => c.attributes.type === 'virtio-serial')) {
          insertDevice(devices, createElement('controller', { type: 'virtio-serial', index: '0' }));
        }
        break;
      case 'controller': {
        const type = el.attributes.type;
        if (!type) throw new DeviceXmlError('invalid', '<controller> has no type attribute');
        const same = existing('controller').filter((c) => c.attributes.type === type);
        const index = numberAttr(el, 'index');
        if (index === undefined) el.attributes.index = String(nextFree(same.map((c) => numberAttr(c, 'index') ?? 0)));
        else if (same.some((c) => numberAttr(c, 'index') === index)) throw new DeviceXmlError('conflict', `a ${type} controller with index ${index} already exists`);
        break;
      }
      case 'hostdev':
        checkHostdev(el);
        break;
    }
    insertDevice(devices, el);
  });
  return el;
}

/** <serial>, <console> and non-virtio <channel> get <target port> as libvirt numbers them. */
function numberTarget(el: XmlElement, same: XmlElement[]): void {
  if (el.name === 'channel' && !firstChild(el, 'target')) throw new DeviceXmlError('invalid', '<channel> needs a <target> (type virtio with a name, or guestfwd)');
  if (el.name === 'channel') return;
  let target = firstChild(el, 'target');
  if (!target) {
    target = createElement('target', {});
    el.children.push(target);
  }
  const used = same.map((s) => numberAttr(firstChild(s, 'target'), 'port') ?? 0);
  const port = numberAttr(target, 'port');
  if (port === undefined) target.attributes.port = String(nextFree(used));
  else if (used.includes(port)) throw new DeviceXmlError('conflict', `a <${el.name}> with target port ${port} already exists`);
}

function checkHostdev(el: XmlElement): void {
  if (el.attributes.mode !== 'subsystem' || el.attributes.type !== 'usb') {
    throw new DeviceXmlError('unsupported', `<hostdev mode='${el.attributes.mode ?? ''}' type='${el.attributes.type ?? ''}'> is not supported; only USB devices (mode='subsystem' type='usb') are passed through`);
  }
  const source = firstChild(el, 'source');
  const byId = source && firstChild(source, 'vendor') && firstChild(source, 'product');
  const byAddress = source && firstChild(source, 'address');
  if (!byId && !byAddress) throw new DeviceXmlError('invalid', "<hostdev> needs a <source> with <vendor id>/<product id> or <address bus device>");
}

/**
 * Whether `candidate` says everything `pattern` says: each of its attributes with the same value,
 * each of its child elements matched by one of the candidate's. libvirt finds a device to detach
 * by its identifying settings; a pattern that names only some of them matches more loosely.
 */
function describes(pattern: XmlElement, candidate: XmlElement): boolean {
  if (pattern.name !== candidate.name) return false;
  for (const [name, value] of Object.entries(pattern.attributes)) if (candidate.attributes[name] !== value) return false;
  return childElements(pattern).every((p) => childElements(candidate, p.name).some((c) => describes(p, c)));
}

/** What identifies a device: a disk's target, an interface's MAC; for other kinds the whole description. */
function identity(device: XmlElement): XmlElement {
  if (device.name === 'disk') {
    const dev = firstChild(device, 'target')?.attributes.dev;
    if (!dev) throw new DeviceXmlError('invalid', '<disk> needs <target dev=...> to say which disk');
    return createElement('disk', {}, [createElement('target', { dev })]);
  }
  const mac = device.name === 'interface' ? firstChild(device, 'mac')?.attributes.address : undefined;
  if (mac) return createElement('interface', {}, [createElement('mac', { address: mac.toLowerCase() })]);
  return device;
}

function normalised(el: XmlElement): XmlElement {
  const copy = structuredClone(el);
  const mac = copy.name === 'interface' ? firstChild(copy, 'mac') : undefined;
  if (mac?.attributes.address) mac.attributes.address = mac.attributes.address.toLowerCase();
  return copy;
}

/**
 * The one device `pattern` names; none is an error, and so are several that differ (saying how to
 * tell them apart). Several identical ones are interchangeable: the first is meant, as in libvirt.
 */
function findDevice(devices: XmlElement, pattern: XmlElement, what: string): XmlElement {
  const matches = childElements(devices, pattern.name).filter((c) => describes(pattern, normalised(c)));
  if (matches.length === 0) throw new DeviceXmlError('not-found', `no <${pattern.name}> in the definition matches the ${what}`);
  const [first] = matches;
  if (matches.some((m) => !describes(first!, m) || !describes(m, first!))) {
    throw new DeviceXmlError('conflict', `the ${what} matches ${matches.length} <${pattern.name}> devices; say which one (${pattern.name === 'interface' ? 'its <mac address>' : 'its <target port>, <address> or model'})`);
  }
  return matches[0]!;
}

/** Removes the device `device` describes; returns the element removed. */
export function detachDeviceFrom(doc: DomainDocument, device: XmlElement): XmlElement {
  let removed: XmlElement | undefined;
  editDomain(doc, (root) => {
    const devices = devicesOf(root);
    removed = findDevice(devices, identity(normalised(device)), 'device XML');
    devices.children = devices.children.filter((c) => c !== removed);
  });
  return removed!;
}

/**
 * The settings update-device may change, per kind (as libvirt's QEMU driver allows); any other
 * difference from the current device is refused, naming the setting.
 */
const UPDATABLE: Partial<Record<DeviceElement, { attributes: string[]; children: string[] }>> = {
  disk: { attributes: [], children: ['driver', 'source', 'readonly', 'shareable', 'boot'] },
  interface: { attributes: ['type'], children: ['source', 'model', 'link', 'boot', 'driver'] },
  graphics: { attributes: ['port', 'autoport', 'listen', 'passwd', 'passwdValidTo', 'keymap', 'connected'], children: ['listen'] },
  video: { attributes: [], children: ['model'] },
};

/** Replaces the matching device with `device` (its identity kept); returns the device before and after. */
export function updateDeviceIn(doc: DomainDocument, device: XmlElement): { before: XmlElement; after: XmlElement } {
  const allowed = UPDATABLE[device.name as DeviceElement];
  if (!allowed) throw new DeviceXmlError('unsupported', `update-device changes disks, interfaces, graphics and video; remove and attach a <${device.name}> instead`);
  let before: XmlElement | undefined;
  let after: XmlElement | undefined;
  editDomain(doc, (root) => {
    const devices = devicesOf(root);
    const same = childElements(devices, device.name);
    // Graphics are told apart by type; a lone video card or interface without a MAC is the one meant.
    const pattern =
      device.name === 'graphics'
        ? createElement('graphics', { type: device.attributes.type ?? '' })
        : device.name === 'video' || (device.name === 'interface' && !firstChild(device, 'mac'))
          ? same.length === 1
            ? same[0]!
            : device
          : identity(device);
    before = findDevice(devices, pattern, 'device XML');
    const next = normalised(device);
    if (device.name === 'interface' && !firstChild(next, 'mac')) next.children.unshift(structuredClone(firstChild(before, 'mac')!));
    if (device.name === 'disk') checkDiskUpdate(before, next);
    for (const name of new Set([...Object.keys(before.attributes), ...Object.keys(next.attributes)])) {
      if (before.attributes[name] !== next.attributes[name] && !allowed.attributes.includes(name)) {
        throw new DeviceXmlError('unsupported', `cannot change <${device.name} ${name}> with update-device ('${before.attributes[name] ?? ''}' to '${next.attributes[name] ?? ''}')`);
      }
    }
    for (const name of new Set(childElements(before).concat(childElements(next)).map((c) => c.name))) {
      if (allowed.children.includes(name)) continue;
      // What the XML leaves out of the fixed settings stays as it was (libvirt fills in the same).
      const was = childElements(before, name);
      const given = childElements(next, name);
      if (!given.length) next.children.push(...structuredClone(was));
      else if (given.length === was.length && given.every((g, i) => describes(g, was[i]!))) given.forEach((g, i) => (next.children[next.children.indexOf(g)] = structuredClone(was[i]!)));
      else throw new DeviceXmlError('unsupported', `cannot change <${name}> of a <${device.name}> with update-device`);
    }
    devices.children[devices.children.indexOf(before)] = next;
    after = next;
  });
  return { before: before!, after: after! };
}

/** Only a removable drive's medium may change; a hard disk's image is its identity. */
function checkDiskUpdate(before: XmlElement, next: XmlElement): void {
  const device = before.attributes.device ?? 'disk';
  if ((next.attributes.device ?? 'disk') !== device) throw new DeviceXmlError('unsupported', `cannot change a disk's device type from '${device}'`);
  if (device === 'disk' && JSON.stringify(firstChild(before, 'source') ?? null) !== JSON.stringify(firstChild(next, 'source') ?? null)) {
    throw new DeviceXmlError('unsupported', `cannot change the source of hard disk '${firstChild(before, 'target')?.attributes.dev}'; only a CD-ROM's or floppy's medium can be changed`);
  }
}

/** A DomainXmlError from editDomain (the result is no valid definition) as this module's error. */
export function asDeviceError(err: unknown): unknown {
  return err instanceof DomainXmlError ? new DeviceXmlError('invalid', err.message) : err;
}

/** Whether two devices say the same apart from their `except` children (what a live update may change). */
export function sameExcept(a: XmlElement, b: XmlElement, except: string): boolean {
  const strip = (el: XmlElement) => ({ ...el, children: el.children.filter((c) => !(c.type === 'element' && c.name === except)) });
  return describes(strip(a), strip(b)) && describes(strip(b), strip(a));
}
