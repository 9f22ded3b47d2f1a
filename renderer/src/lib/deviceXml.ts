// Libvirt device XML for Add Hardware and the device pages (virsh attach-device / detach-device
// read the same), and the devices of a definition beyond disks, NICs and displays: video cards,
// inputs, sound cards, serial ports and consoles, channels, USB host devices, controllers.
import type { HostUsbDevice } from '@shared/capabilities';
import { DISK_TARGET_PREFIX, freeDiskTarget } from '@shared/libvirt/disk-targets';
import { child, children } from './domainXml';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
function attr(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** `<name a='1' b='2'/>` with the attributes that have a value. */
function tag(name: string, attrs: Record<string, string | undefined>, inner?: string): string {
  const list = Object.entries(attrs)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .map(([k, v]) => ` ${k}='${attr(v)}'`)
    .join('');
  return inner === undefined ? `<${name}${list}/>` : `<${name}${list}>${inner}</${name}>`;
}

// ---- Builders ----

export interface NewDisk {
  device: string;
  /** '' for an empty CD-ROM or floppy drive. */
  path: string;
  /** <driver type>; '' leaves it out: an existing image's format is the host's to probe, not a guess from its name. */
  format: string;
  bus: string;
  target: string;
  cache: string;
  readonly: boolean;
}

export function diskXml(d: NewDisk): string {
  return tag(
    'disk',
    { type: 'file', device: d.device },
    tag('driver', { name: 'qemu', type: d.format, cache: d.cache === 'default' ? undefined : d.cache }) +
      (d.path ? tag('source', { file: d.path }) : '') +
      tag('target', { dev: d.target, bus: d.bus }) +
      (d.readonly || d.device === 'cdrom' ? '<readonly/>' : ''),
  );
}

export interface NewNic {
  /** 'network' or 'user'. */
  type: string;
  network: string;
  model: string;
  mac: string;
  link: 'up' | 'down';
}

export function interfaceXml(n: NewNic): string {
  return tag(
    'interface',
    { type: n.type },
    tag('mac', { address: n.mac.toLowerCase() }) +
      (n.type === 'network' ? tag('source', { network: n.network }) : '') +
      tag('model', { type: n.model }) +
      (n.link === 'down' ? tag('link', { state: 'down' }) : ''),
  );
}

export function graphicsXml(g: { type: string; listen: string; port: string; passwd: string }): string {
  return tag('graphics', { type: g.type, autoport: g.port === 'auto' ? 'yes' : 'no', port: g.port === 'auto' ? undefined : g.port, listen: g.listen, passwd: g.passwd });
}

export const videoXml = (model: string): string => tag('video', {}, tag('model', { type: model }));
/** `device`: 'type:bus', as the capabilities list inputs. */
export function inputXml(device: string): string {
  const [type, bus] = device.split(':');
  return tag('input', { type, bus });
}
export const soundXml = (model: string): string => tag('sound', { model });

/** A serial port; `path`: the file or socket of a file/unix port. */
export function serialXml(s: { type: string; port: number; path: string }): string {
  const source = s.type === 'file' || s.type === 'unix' ? tag('source', { mode: s.type === 'unix' ? 'bind' : undefined, path: s.path }) : '';
  return tag('serial', { type: s.type }, source + tag('target', { port: String(s.port) }));
}

export function channelXml(c: { type: string; name: string }): string {
  return tag('channel', { type: c.type }, (c.type === 'unix' ? tag('source', { mode: 'bind' }) : '') + tag('target', { type: 'virtio', name: c.name }));
}

/** A host USB device by vendor and product, or by bus and device number when another device in
 * `all` has the same vendor and product (the IDs alone would not say which of them). */
export function usbHostdevXml(d: HostUsbDevice, all: HostUsbDevice[]): string {
  const twin = all.some((o) => o !== d && o.vendorId === d.vendorId && o.productId === d.productId);
  const source = twin ? tag('address', { bus: String(d.bus), device: String(d.device) }) : tag('vendor', { id: `0x${d.vendorId}` }) + tag('product', { id: `0x${d.productId}` });
  return tag('hostdev', { mode: 'subsystem', type: 'usb', managed: 'yes' }, `<source>${source}</source>`);
}

/** A locally administered MAC in QEMU's 52:54:00 range, as libvirt generates them. */
export function randomMac(): string {
  const b = crypto.getRandomValues(new Uint8Array(3));
  return ['52', '54', '00', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** The first free target name for a disk on `bus` (vda, sdb, hdc…), as the host's attach-device picks it. */
export function nextDiskTarget(doc: XMLDocument, bus: string, device = 'disk'): string {
  const free = freeDiskTarget(new Set(diskTargets(doc)), bus, device);
  if (!free) throw new Error(`no free ${DISK_TARGET_PREFIX[bus] ?? bus} target is left`);
  return free;
}

function diskTargets(doc: XMLDocument): string[] {
  const dev = child(doc.documentElement, 'devices');
  return dev ? children(dev, 'disk').map((d) => child(d, 'target')?.getAttribute('dev') ?? '') : [];
}

// ---- The other devices of a definition ----

export const OTHER_KINDS = ['video', 'input', 'sound', 'serial', 'console', 'channel', 'hostdev', 'controller'] as const;
export type OtherKind = (typeof OTHER_KINDS)[number];

export function deviceElements(doc: XMLDocument, kind: OtherKind): Element[] {
  const dev = child(doc.documentElement, 'devices');
  return dev ? children(dev, kind) : [];
}

/** The device's own XML, as detach-device and update-device take it. */
export function deviceXmlOf(el: Element): string {
  return new XMLSerializer().serializeToString(el);
}

/** What a device page edits, one shape for every kind (the fields a kind has not stay ''). */
export interface DeviceFields {
  /** video: model; input: 'type:bus'; sound: model; serial/console/channel: the type; hostdev: 'usb'; controller: its type. */
  type: string;
  /** serial/console: the target port; channel: the target name; hostdev: 'bus.device' when its source is an address; controller: its model. */
  target: string;
  /** serial/console/channel: the file or socket path; hostdev: 'vendor:product' (hex). */
  source: string;
}

/** The bus libvirt gives an <input> written without one. */
const INPUT_DEFAULT_BUS: Record<string, string> = { tablet: 'usb', mouse: 'ps2', keyboard: 'ps2' };

/** A serial port number as the page takes it: 0 to 31. */
export const validSerialPort = (port: string): boolean => /^(\d|[12]\d|3[01])$/.test(port);

export function readDevice(kind: OtherKind, el: Element): DeviceFields {
  const target = child(el, 'target');
  const source = child(el, 'source');
  switch (kind) {
    case 'video':
      return { type: child(el, 'model')?.getAttribute('type') ?? '', target: '', source: '' };
    case 'input': {
      const type = el.getAttribute('type') ?? '';
      return { type: `${type}:${el.getAttribute('bus') ?? INPUT_DEFAULT_BUS[type] ?? ''}`, target: '', source: '' };
    }
    case 'sound':
      return { type: el.getAttribute('model') ?? '', target: '', source: '' };
    case 'serial':
    case 'console':
      return { type: el.getAttribute('type') ?? 'pty', target: target?.getAttribute('port') ?? '0', source: source?.getAttribute('path') ?? '' };
    case 'channel':
      return { type: el.getAttribute('type') ?? 'unix', target: target?.getAttribute('name') ?? '', source: source?.getAttribute('path') ?? '' };
    case 'hostdev': {
      const id = (name: string): string => (source && child(source, name)?.getAttribute('id')?.replace(/^0x/i, '')) ?? '';
      const address = source && child(source, 'address');
      return {
        type: el.getAttribute('type') ?? '',
        target: address ? `${address.getAttribute('bus') ?? ''}.${address.getAttribute('device') ?? ''}` : '',
        source: address ? '' : `${id('vendor')}:${id('product')}`,
      };
    }
    case 'controller':
      return { type: el.getAttribute('type') ?? '', target: el.getAttribute('model') ?? '', source: el.getAttribute('index') ?? '0' };
  }
}

function ensure(el: Element, name: string, first = false): Element {
  const found = child(el, name);
  if (found) return found;
  const made = el.ownerDocument.createElement(name);
  if (first && el.firstChild) el.insertBefore(made, el.firstChild);
  else el.appendChild(made);
  return made;
}

function setOrDrop(el: Element, name: string, value: string): void {
  if (value) el.setAttribute(name, value);
  else el.removeAttribute(name);
}

/** The kinds a device page edits; USB host devices and controllers are shown read-only. */
export type EditableKind = Exclude<OtherKind, 'hostdev' | 'controller'>;
export const isEditable = (kind: OtherKind): kind is EditableKind => kind !== 'hostdev' && kind !== 'controller';

/** Writes the fields a page edits back into the device's element; the rest of it stays as written. */
export function writeDevice(kind: EditableKind, el: Element, f: DeviceFields): void {
  switch (kind) {
    case 'video':
      ensure(el, 'model').setAttribute('type', f.type);
      return;
    case 'input': {
      const [type, bus] = f.type.split(':');
      el.setAttribute('type', type);
      setOrDrop(el, 'bus', bus);
      return;
    }
    case 'sound':
      el.setAttribute('model', f.type);
      return;
    case 'serial':
    case 'console':
    case 'channel': {
      el.setAttribute('type', f.type);
      const pathType = f.type === 'file' || f.type === 'unix';
      const source = child(el, 'source');
      if (pathType) {
        const s = source ?? ensure(el, 'source', true);
        setOrDrop(s, 'path', f.source);
        if (f.type === 'unix' && !s.getAttribute('mode')) s.setAttribute('mode', 'bind');
      } else if (source) el.removeChild(source);
      const target = ensure(el, 'target');
      if (kind === 'channel') {
        if (!target.getAttribute('type')) target.setAttribute('type', 'virtio');
        target.setAttribute('name', f.target);
      } else target.setAttribute('port', f.target);
      return;
    }
  }
}
