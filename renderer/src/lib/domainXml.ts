// Edits of libvirt domain XML in the renderer, on the browser's own DOMParser/XMLSerializer. Each
// Details page reads its fields from the definition and writes them back into the same document,
// so everything the page does not know (unknown elements, attributes, comments, metadata of other
// tools) is left exactly where it was; the host validates the result when it is defined.
import { DISK_CHILDREN, DOMAIN_CHILDREN, INTERFACE_CHILDREN, OS_CHILDREN, type BootDevice, type DiskDevice } from '@shared/libvirt/schema';
import { ScaledValueError, scaledToKiB } from '@shared/libvirt/units';

/** A document that is not well-formed XML, or not a <domain>; line/column when the parser says. */
export class XmlProblem extends Error {
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'XmlProblem';
  }
}

export function parseDomainXml(xml: string): XMLDocument {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const error = doc.getElementsByTagName('parsererror')[0];
  if (error) {
    // Chromium: "This page contains the following errors:error on line 3 at column 5: …Below is…"
    const text = (error.textContent ?? '').replace(/^This page contains the following errors:/, '').replace(/Below is a rendering.*$/s, '').trim();
    const at = /line (\d+) at column (\d+)/.exec(text);
    throw new XmlProblem(`not well-formed XML: ${text}`, at ? Number(at[1]) : undefined, at ? Number(at[2]) : undefined);
  }
  const root = doc.documentElement;
  if (root.localName !== 'domain') throw new XmlProblem(`the root element is <${root.localName}>, expected <domain>`);
  return doc;
}

export function serializeDomainXml(doc: XMLDocument): string {
  return new XMLSerializer().serializeToString(doc);
}

// ---- Tree helpers ----

export function children(parent: Element, name?: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstElementChild; n; n = n.nextElementSibling) if (name === undefined || n.localName === name) out.push(n);
  return out;
}

export function child(parent: Element, name: string): Element | undefined {
  return children(parent, name)[0];
}

function text(el: Element | undefined): string {
  return el?.textContent ?? '';
}

/** The whitespace before `el`, i.e. its indentation, when the document is pretty-printed. */
function leadingSpace(el: Node): string | null {
  const prev = el.previousSibling;
  return prev && prev.nodeType === Node.TEXT_NODE && /^\s*$/.test(prev.nodeValue ?? '') ? (prev.nodeValue ?? '') : null;
}

/** Inserts `el` before `ref` (or at the end), indented like its siblings so dumps stay readable. */
function insertIndented(parent: Element, el: Element, ref: Element | null): void {
  const doc = parent.ownerDocument;
  const sibling = ref ?? parent.lastElementChild;
  const indent = sibling ? leadingSpace(sibling) : null;
  if (ref) {
    parent.insertBefore(el, ref);
    if (indent !== null) parent.insertBefore(doc.createTextNode(indent), ref);
    return;
  }
  if (sibling && indent !== null) {
    // After the last element: keep the closing tag's own indentation at the end.
    const tail = sibling.nextSibling;
    parent.insertBefore(doc.createTextNode(indent), tail);
    parent.insertBefore(el, tail);
    return;
  }
  if (!sibling) {
    const outer = leadingSpace(parent);
    if (outer !== null) {
      const inner = outer + '  ';
      while (parent.firstChild) parent.removeChild(parent.firstChild);
      parent.append(doc.createTextNode(inner), el, doc.createTextNode(outer));
      return;
    }
  }
  parent.appendChild(el);
}

/** Removes `el` with its indentation. */
export function removeElement(el: Element): void {
  const prev = el.previousSibling;
  if (prev && leadingSpace(el) !== null) prev.parentNode?.removeChild(prev);
  el.parentNode?.removeChild(el);
}

/** The first child `order` ranks after `name`: where a new <name> goes (null: at the end). */
function successor(parent: Element, name: string, order: readonly string[]): Element | null {
  const rank = order.indexOf(name);
  return rank < 0 ? null : (children(parent).find((c) => order.indexOf(c.localName) > rank) ?? null);
}

/** The first <name> child, created in libvirt's order among its siblings when missing. */
export function ensureChild(parent: Element, name: string, order: readonly string[]): Element {
  const existing = child(parent, name);
  if (existing) return existing;
  const el = parent.ownerDocument.createElement(name);
  insertIndented(parent, el, successor(parent, name, order));
  return el;
}

/** Sets the text of the <name> child; an empty or undefined value removes the element. */
function setChildText(parent: Element, name: string, value: string | undefined, order: readonly string[]): void {
  if (value === undefined || value === '') {
    const el = child(parent, name);
    if (el) removeElement(el);
    return;
  }
  ensureChild(parent, name, order).textContent = value;
}

function setAttr(el: Element, name: string, value: string | undefined): void {
  if (value === undefined || value === '') el.removeAttribute(name);
  else el.setAttribute(name, value);
}

function writeOsBoot(doc: XMLDocument, os: Element, f: BootFields): void {
  setChildText(os, 'kernel', f.kernel.trim(), OS_CHILDREN);
  setChildText(os, 'initrd', f.initrd.trim(), OS_CHILDREN);
  setChildText(os, 'cmdline', f.cmdline, OS_CHILDREN);
  // Rewrite the <boot dev> list only when it changed, so untouched attributes stay as written.
  const current = children(os, 'boot');
  if (current.map((b) => b.getAttribute('dev')).join() !== f.bootOrder.join()) {
    for (const b of current) removeElement(b);
    for (const dev of f.bootOrder) {
      const el = doc.createElement('boot');
      el.setAttribute('dev', dev);
      insertIndented(os, el, successor(os, 'boot', OS_CHILDREN));
    }
  }
}

// ---- Overview ----

export interface OverviewFields {
  title: string;
  description: string;
}

export function readOverview(doc: XMLDocument): OverviewFields {
  const root = doc.documentElement;
  return { title: text(child(root, 'title')), description: text(child(root, 'description')) };
}

export function writeOverview(doc: XMLDocument, f: OverviewFields): void {
  const root = doc.documentElement;
  // A title is one line in libvirt (virDomainSetMetadata refuses newlines).
  setChildText(root, 'title', f.title.replace(/[\r\n]+/g, ' '), DOMAIN_CHILDREN);
  setChildText(root, 'description', f.description, DOMAIN_CHILDREN);
}

export interface Identity {
  name: string;
  uuid: string;
  type: string;
}

export function readIdentity(doc: XMLDocument): Identity {
  const root = doc.documentElement;
  return { name: text(child(root, 'name')), uuid: text(child(root, 'uuid')), type: root.getAttribute('type') ?? '' };
}

// ---- CPUs ----

export interface CpuFields {
  vcpus: number;
}

export function readCpus(doc: XMLDocument): CpuFields {
  const vcpu = child(doc.documentElement, 'vcpu');
  return { vcpus: vcpu ? Number(text(vcpu).trim()) || 1 : 1 };
}

export function writeCpus(doc: XMLDocument, f: CpuFields): void {
  const vcpu = ensureChild(doc.documentElement, 'vcpu', DOMAIN_CHILDREN);
  vcpu.textContent = String(f.vcpus);
  // A current count above the new maximum would make the definition invalid.
  const current = vcpu.getAttribute('current');
  if (current !== null && !(Number(current) <= f.vcpus)) vcpu.removeAttribute('current');
}

// ---- Memory ----

export interface MemoryFields {
  /** <memory>: the maximum, KiB. */
  maxKiB: number;
  /** <currentMemory>: the balloon target, KiB (the maximum when absent). */
  currentKiB: number;
}

/** A size element in KiB; 0 when it is not a size libvirt would accept (the host refuses such a definition). */
function sizeKiB(el: Element): number {
  try {
    return scaledToKiB(text(el), el.getAttribute('unit') ?? undefined);
  } catch (err) {
    if (err instanceof ScaledValueError) return 0;
    throw err;
  }
}

export function readMemory(doc: XMLDocument): MemoryFields {
  const root = doc.documentElement;
  const memory = child(root, 'memory');
  const current = child(root, 'currentMemory');
  const maxKiB = memory ? sizeKiB(memory) : 0;
  return { maxKiB, currentKiB: current ? sizeKiB(current) : maxKiB };
}

export function writeMemory(doc: XMLDocument, f: MemoryFields): void {
  const root = doc.documentElement;
  const memory = ensureChild(root, 'memory', DOMAIN_CHILDREN);
  memory.setAttribute('unit', 'KiB');
  memory.textContent = String(f.maxKiB);
  const current = ensureChild(root, 'currentMemory', DOMAIN_CHILDREN);
  current.setAttribute('unit', 'KiB');
  current.textContent = String(Math.min(f.currentKiB, f.maxKiB));
}

// ---- Boot options ----

export interface BootFields {
  /** <os><boot dev=…/> in order. */
  bootOrder: BootDevice[];
  kernel: string;
  initrd: string;
  cmdline: string;
  /** <bootloader> (pygrub) and <bootloader_args>; null when the definition has no bootloader. */
  bootloader: string | null;
  bootloaderArgs: string;
}

export function readBoot(doc: XMLDocument): BootFields {
  const root = doc.documentElement;
  const os = child(root, 'os');
  const bootloader = child(root, 'bootloader');
  return {
    bootOrder: os ? children(os, 'boot').map((b) => (b.getAttribute('dev') ?? 'hd') as BootDevice) : [],
    kernel: text(os && child(os, 'kernel')),
    initrd: text(os && child(os, 'initrd')),
    cmdline: text(os && child(os, 'cmdline')),
    bootloader: bootloader ? text(bootloader) : null,
    bootloaderArgs: text(child(root, 'bootloader_args')),
  };
}

export function writeBoot(doc: XMLDocument, f: BootFields): void {
  const root = doc.documentElement;
  let os = child(root, 'os');
  // A Xen PV definition with a <bootloader> may have no <os> (libvirt reads it as type 'xen'): one
  // is added, with that type, only when something goes in it.
  if (!os && (f.kernel.trim() || f.initrd.trim() || f.cmdline || f.bootOrder.length)) {
    os = ensureChild(root, 'os', DOMAIN_CHILDREN);
    setChildText(os, 'type', 'xen', OS_CHILDREN);
  }
  if (os) writeOsBoot(doc, os, f);
  if (f.bootloader !== null) {
    ensureChild(root, 'bootloader', DOMAIN_CHILDREN).textContent = f.bootloader;
    setChildText(root, 'bootloader_args', f.bootloaderArgs, DOMAIN_CHILDREN);
  } else {
    for (const name of ['bootloader', 'bootloader_args']) {
      const el = child(root, name);
      if (el) removeElement(el);
    }
  }
}

// ---- Disks ----

export interface DiskFields {
  device: DiskDevice;
  /** <source file|dev>; '' for an empty drive. */
  source: string;
  target: string;
  bus: string;
  format: string;
  /** <driver cache>; '' for the engine's default. */
  cache: string;
  readonly: boolean;
}

export function diskElements(doc: XMLDocument): Element[] {
  const dev = child(doc.documentElement, 'devices');
  return dev ? children(dev, 'disk') : [];
}

export function readDisk(el: Element): DiskFields {
  const source = child(el, 'source');
  const target = child(el, 'target');
  return {
    device: (el.getAttribute('device') ?? 'disk') as DiskDevice,
    source: source?.getAttribute('file') ?? source?.getAttribute('dev') ?? '',
    target: target?.getAttribute('dev') ?? '',
    bus: target?.getAttribute('bus') ?? '',
    format: child(el, 'driver')?.getAttribute('type') ?? '',
    cache: child(el, 'driver')?.getAttribute('cache') ?? '',
    readonly: child(el, 'readonly') !== undefined,
  };
}

export function readDisks(doc: XMLDocument): DiskFields[] {
  return diskElements(doc).map(readDisk);
}

/** Finds a disk by its target device name, the identity libvirt uses for disks. */
export function findDisk(doc: XMLDocument, target: string): Element | undefined {
  return diskElements(doc).find((d) => child(d, 'target')?.getAttribute('dev') === target);
}

export function writeDisk(el: Element, f: DiskFields): void {
  const doc = el.ownerDocument;
  el.setAttribute('device', f.device);
  // An unchanged source is left as written: a libvirt pool volume (<source pool= volume=>) or a
  // network disk reads as no path here and must not lose its source.
  if (f.source !== readDisk(el).source) writeDiskSource(el, f.source);
  const target = ensureChild(el, 'target', DISK_CHILDREN);
  target.setAttribute('dev', f.target);
  setAttr(target, 'bus', f.bus);
  if (f.format) {
    const driver = ensureChild(el, 'driver', DISK_CHILDREN);
    if (!driver.getAttribute('name')) driver.setAttribute('name', 'qemu');
    driver.setAttribute('type', f.format);
  }
  if (f.cache) ensureChild(el, 'driver', DISK_CHILDREN).setAttribute('cache', f.cache);
  else child(el, 'driver')?.removeAttribute('cache');
  const ro = child(el, 'readonly');
  if (f.readonly && !ro) insertIndented(el, doc.createElement('readonly'), successor(el, 'readonly', DISK_CHILDREN));
  if (!f.readonly && ro) removeElement(ro);
}

function writeDiskSource(el: Element, path: string): void {
  const old = child(el, 'source');
  if (!path) {
    if (old) removeElement(old);
    return;
  }
  // A block device keeps dev=; everything else becomes a file, whatever kind of source it had.
  const block = el.getAttribute('type') === 'block';
  if (!block) el.setAttribute('type', 'file');
  const source = ensureChild(el, 'source', DISK_CHILDREN);
  if (old && !block) for (const name of [...source.getAttributeNames()]) if (name !== 'startupPolicy') source.removeAttribute(name);
  source.setAttribute(block ? 'dev' : 'file', path);
}

// ---- Network interfaces ----

export interface NicFields {
  type: string;
  mac: string;
  /** network=, bridge= or dev=, as the type says. */
  source: string;
  model: string;
}

/** The NIC models offered in the pickers (others can be typed): what QEMU and v86 emulate. */
export const NIC_MODELS = ['virtio', 'e1000', 'rtl8139', 'ne2k_pci'] as const;

const SOURCE_ATTR: Record<string, string> = { network: 'network', bridge: 'bridge', direct: 'dev' };

export function interfaceElements(doc: XMLDocument): Element[] {
  const dev = child(doc.documentElement, 'devices');
  return dev ? children(dev, 'interface') : [];
}

export function readNic(el: Element): NicFields {
  const type = el.getAttribute('type') ?? 'user';
  const source = child(el, 'source');
  return {
    type,
    mac: child(el, 'mac')?.getAttribute('address') ?? '',
    source: SOURCE_ATTR[type] ? (source?.getAttribute(SOURCE_ATTR[type]) ?? '') : '',
    model: child(el, 'model')?.getAttribute('type') ?? '',
  };
}

export function writeNic(el: Element, f: NicFields): void {
  el.setAttribute('type', f.type);
  if (f.mac) ensureChild(el, 'mac', INTERFACE_CHILDREN).setAttribute('address', f.mac.toLowerCase());
  else {
    const mac = child(el, 'mac');
    if (mac) removeElement(mac);
  }
  const attr = SOURCE_ATTR[f.type];
  if (attr && f.source) {
    const source = ensureChild(el, 'source', INTERFACE_CHILDREN);
    for (const a of Object.values(SOURCE_ATTR)) if (a !== attr) source.removeAttribute(a);
    source.setAttribute(attr, f.source);
  } else if (!attr) {
    const source = child(el, 'source');
    if (source && Object.values(SOURCE_ATTR).some((a) => source.hasAttribute(a))) removeElement(source);
  }
  if (f.model) ensureChild(el, 'model', INTERFACE_CHILDREN).setAttribute('type', f.model);
  else {
    const model = child(el, 'model');
    if (model) removeElement(model);
  }
}

/** The interface's <link state>: libvirt's default is up. */
export function readNicLink(el: Element): 'up' | 'down' {
  return child(el, 'link')?.getAttribute('state') === 'down' ? 'down' : 'up';
}

// ---- Display ----

export interface DisplayFields {
  type: string;
  /** 'auto' (autoport) or a port number. */
  port: string;
  listen: string;
  /** The password as written (the host's dumpxml carries it, like virsh dumpxml --security-info). */
  passwd: string;
}

export function graphicsElements(doc: XMLDocument): Element[] {
  const dev = child(doc.documentElement, 'devices');
  return dev ? children(dev, 'graphics') : [];
}

export function readDisplay(el: Element): DisplayFields {
  const autoport = el.getAttribute('autoport') !== 'no' && (el.getAttribute('port') ?? '-1') === '-1';
  const listenEl = child(el, 'listen');
  return {
    type: el.getAttribute('type') ?? 'vnc',
    port: autoport || el.getAttribute('autoport') === 'yes' ? 'auto' : (el.getAttribute('port') ?? 'auto'),
    listen: el.getAttribute('listen') ?? listenEl?.getAttribute('address') ?? '',
    passwd: el.getAttribute('passwd') ?? '',
  };
}

export function writeDisplay(el: Element, f: DisplayFields): void {
  if (f.port === 'auto') {
    el.setAttribute('autoport', 'yes');
    el.removeAttribute('port');
  } else {
    el.setAttribute('autoport', 'no');
    el.setAttribute('port', f.port);
  }
  setAttr(el, 'listen', f.listen);
  // libvirt keeps <listen type='address'> in step with the listen attribute.
  const listenEl = child(el, 'listen');
  if (listenEl && (listenEl.getAttribute('type') ?? 'address') === 'address') {
    if (f.listen) listenEl.setAttribute('address', f.listen);
    else removeElement(listenEl);
  }
  setAttr(el, 'passwd', f.passwd);
}

// ---- Whole-definition helpers ----

/** Applies `edit` to a fresh copy of `xml` and returns the new XML. */
export function editXml(xml: string, edit: (doc: XMLDocument) => void): string {
  const doc = parseDomainXml(xml);
  edit(doc);
  return serializeDomainXml(doc);
}

/**
 * Line-by-line differences between two XML texts (an LCS diff: definitions are a few hundred
 * lines), for the "applies now vs at next boot" view.
 */
export function lineDiff(a: string, b: string): { kind: 'same' | 'del' | 'add'; line: string }[] {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  const lcs: Uint16Array[] = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: { kind: 'same' | 'del' | 'add'; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ kind: 'same', line: x[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ kind: 'del', line: x[i++] });
    else out.push({ kind: 'add', line: y[j++] });
  }
  while (i < n) out.push({ kind: 'del', line: x[i++] });
  while (j < m) out.push({ kind: 'add', line: y[j++] });
  return out;
}
