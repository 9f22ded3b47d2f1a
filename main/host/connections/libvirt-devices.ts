// Definition and device edits on a libvirt connection, as virsh makes them: create (transient),
// desc (title/description metadata), change-media, attach-disk, detach-disk, attach/detach/
// update-device, domblkinfo, blockresize, nodedev-list --cap usb_device, and domxml-to-native.
// Device XML is cut from libvirt's own definition of the domain, so what is sent back is what libvirt
// wrote, changed only where the user asked.
import type { DomainSummary } from '../../../shared/api.js';
import type { HostUsbDevice } from '../../../shared/capabilities.js';
import { parseDomainXml, type DomainDocument } from '../domain/xml.js';
import { childElements, createElement, firstChild, parseXmlTree, serializeXmlTree, textContent, type XmlElement } from '../domain/xml-tree.js';
import { definitionChanged, HostError, invalidArg, operationFailed, operationInvalid } from '../errors.js';
import { setMedia } from '../storage/devices.js';
import type { LibvirtConnection, LibvirtMethods, NonnullDomain } from './libvirt.js';
import type { LibvirtStorage } from './libvirt-storage.js';

/** virDomainModificationImpact: neither flag is VIR_DOMAIN_AFFECT_CURRENT, as virsh sends it. */
const AFFECT_LIVE = 1;
const AFFECT_CONFIG = 2;
/** virDomainXMLFlags. */
const XML_INACTIVE = 2;
/** virDomainBlockResizeFlags: the size is in bytes, not KiB. */
const BLOCK_RESIZE_BYTES = 1;
/** At most this many USB devices are listed (libvirt's REMOTE_NODE_DEVICE_LIST_MAX is larger). */
const MAX_USB_DEVICES = 1024;
/** virDomainCreateFlags. */
const START_PAUSED = 1;
/** virDomainMetadataType. */
const METADATA_DESCRIPTION = 0;
const METADATA_TITLE = 1;

/** Disk targets libvirt's QEMU picks a bus from: virtio disks, and IDE for CD-ROMs on the 'pc' machine. */
const DISK_TARGETS = Array.from({ length: 26 }, (_, i) => `vd${String.fromCharCode(97 + i)}`);
const CDROM_TARGETS = ['hdc', 'hdd', 'hdb', 'hda'];

/** A device edit's virDomainModificationImpact from the request's live and config flags. */
export function impact(p: Record<string, unknown>): number {
  return (p.live ? AFFECT_LIVE : 0) | (p.config ? AFFECT_CONFIG : 0);
}

/** The definition an edit with these flags applies to: the running one when live (or current on a running domain), else the next boot's. */
export async function editedDefinition(conn: LibvirtConnection, dom: NonnullDomain, flags: number): Promise<DomainDocument> {
  const running = dom.id >= 0 || (await conn.rpcCall('REMOTE_PROC_DOMAIN_IS_ACTIVE', { dom })).active === 1;
  const live = (flags & AFFECT_LIVE) !== 0 || (flags === 0 && running);
  const { xml } = await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags: live ? 0 : XML_INACTIVE });
  return parseDomainXml(xml as string);
}

export function deviceMethods(conn: LibvirtConnection, storage: LibvirtStorage): LibvirtMethods {
  const definition = (dom: NonnullDomain, flags: number): Promise<DomainDocument> => editedDefinition(conn, dom, flags);
  const diskXml = (doc: DomainDocument, target: string): string => {
    const devices = firstChild(doc.root, 'devices');
    const el = devices && childElements(devices, 'disk').find((d) => firstChild(d, 'target')?.attributes.dev === target);
    if (!el) throw invalidArg(`No disk found whose source path or target is ${target}`);
    return serializeXmlTree([el]);
  };
  /** The disk a virsh "path" argument names on the libvirt host: its target, or its source file as given. */
  const targetOf = (doc: DomainDocument, ref: string): string => {
    const disk = doc.config.disks.find((d) => d.target === ref) ?? doc.config.disks.find((d) => d.source === ref);
    if (!disk) throw invalidArg(`No disk found whose source path or target is ${ref}`);
    return disk.target;
  };
  /** A new disk's format: its volume's when a pool holds it, raw otherwise (as virsh attach-disk without --subdriver). */
  const formatOf = async (source: string): Promise<string> => {
    try {
      return (await storage.describe(await storage.volume(source))).format === 'qcow2' ? 'qcow2' : 'raw';
    } catch (err) {
      if (err instanceof HostError && (err.code === 'NO_STORAGE_VOL' || err.code === 'NO_STORAGE_POOL')) return 'raw';
      throw err;
    }
  };
  const summary = async (dom: NonnullDomain): Promise<{ domain: DomainSummary }> => ({ domain: await conn.summary(dom) });
  const deviceXmlCall =
    (proc: 'REMOTE_PROC_DOMAIN_ATTACH_DEVICE_FLAGS' | 'REMOTE_PROC_DOMAIN_DETACH_DEVICE_FLAGS' | 'REMOTE_PROC_DOMAIN_UPDATE_DEVICE_FLAGS') =>
    async (p: Record<string, unknown> & { domain?: string }) => {
      const dom = await conn.lookup(p.domain!);
      await conn.rpcCall(proc, { dom, xml: p.xml as string, flags: impact(p) });
      return summary(dom);
    };

  return {
    'domain.createTransient': async (p) => {
      const { dom } = await conn.rpcCall('REMOTE_PROC_DOMAIN_CREATE_XML', { xml_desc: p.xml as string, flags: p.paused ? START_PAUSED : 0 });
      return { ...(await summary(dom)), warnings: [] };
    },
    'domain.setMetadata': async (p) => {
      const dom = await conn.lookup(p.domain!);
      if (p.expectGeneration !== undefined) {
        const current = await conn.generation(dom);
        if (current !== p.expectGeneration) {
          throw definitionChanged(`domain '${dom.name}' was changed on ${conn.uri} since you loaded it (your copy is generation ${String(p.expectGeneration)}, the host has ${current}); reload it and make your change again`);
        }
      }
      const flags = impact(p);
      for (const [type, text] of [[METADATA_TITLE, p.title], [METADATA_DESCRIPTION, p.description]] as const) {
        if (text === undefined) continue;
        // An empty text removes the element, as virsh desc "" does.
        await conn.rpcCall('REMOTE_PROC_DOMAIN_SET_METADATA', { dom, type, metadata: text === '' ? null : (text as string), key: null, uri: null, flags });
      }
      return { ...(await summary(dom)), generation: await conn.generation(dom) };
    },
    'domain.changeMedia': async (p) => {
      if (p.eject === (p.source !== undefined)) throw invalidArg(p.eject ? 'eject takes no source image' : 'a source image is required to insert or update the medium');
      const dom = await conn.lookup(p.domain!);
      const flags = impact(p);
      const doc = await definition(dom, flags);
      const target = targetOf(doc, p.target as string);
      setMedia(doc, target, p.source as string | undefined);
      await conn.rpcCall('REMOTE_PROC_DOMAIN_UPDATE_DEVICE_FLAGS', { dom, xml: diskXml(doc, target), flags });
      return summary(dom);
    },
    'domain.attachDisk': async (p) => {
      const device = p.device as 'disk' | 'cdrom';
      const source = p.source as string | undefined;
      if (device === 'disk' && !source) throw invalidArg('a disk needs a source image');
      if (source && !source.startsWith('/')) throw invalidArg(`'${source}' must be an absolute path on the host of ${conn.uri}`);
      const dom = await conn.lookup(p.domain!);
      const flags = impact(p);
      const doc = await definition(dom, flags);
      const used = new Set(doc.config.disks.map((d) => d.target));
      const given = p.target as string | undefined;
      if (given && used.has(given)) throw operationFailed(`target '${given}' already exists`);
      const target = given ?? (device === 'cdrom' ? CDROM_TARGETS : DISK_TARGETS).find((t) => !used.has(t));
      if (!target) throw operationInvalid(`no free ${device === 'cdrom' ? 'IDE' : 'virtio'} target left; name one with the target argument`);
      const bus = target.startsWith('hd') ? 'ide' : target.startsWith('sd') ? 'sata' : 'virtio';
      const children: XmlElement[] = [createElement('driver', { name: 'qemu', type: source ? await formatOf(source) : 'raw' })];
      if (source) children.push(createElement('source', { file: source }));
      children.push(createElement('target', { dev: target, bus }));
      if (p.readonly || device === 'cdrom') children.push(createElement('readonly'));
      const xml = serializeXmlTree([createElement('disk', { type: 'file', device }, children)]);
      await conn.rpcCall('REMOTE_PROC_DOMAIN_ATTACH_DEVICE_FLAGS', { dom, xml, flags });
      return { ...(await summary(dom)), target };
    },
    'domain.detachDisk': async (p) => {
      const dom = await conn.lookup(p.domain!);
      const flags = impact(p);
      const doc = await definition(dom, flags);
      await conn.rpcCall('REMOTE_PROC_DOMAIN_DETACH_DEVICE_FLAGS', { dom, xml: diskXml(doc, targetOf(doc, p.target as string)), flags });
      return summary(dom);
    },
    // libvirt parses, completes and checks the device itself; its error is the reason shown.
    'domain.attachDevice': deviceXmlCall('REMOTE_PROC_DOMAIN_ATTACH_DEVICE_FLAGS'),
    'domain.detachDevice': deviceXmlCall('REMOTE_PROC_DOMAIN_DETACH_DEVICE_FLAGS'),
    'domain.updateDevice': deviceXmlCall('REMOTE_PROC_DOMAIN_UPDATE_DEVICE_FLAGS'),
    'domain.blockInfo': async (p) => {
      const dom = await conn.lookup(p.domain!);
      const info = await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_BLOCK_INFO', { dom, path: p.target as string, flags: 0 });
      return { capacity: Number(info.capacity), allocation: Number(info.allocation), physical: Number(info.physical) };
    },
    'domain.blockResize': async (p) => {
      const dom = await conn.lookup(p.domain!);
      const target = p.target as string;
      // libvirt grows or shrinks alike; shrinking is refused here as on the local engines.
      const before = await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_BLOCK_INFO', { dom, path: target, flags: 0 });
      const size = p.sizeBytes as number;
      if (size < Number(before.capacity)) throw operationInvalid(`cannot shrink disk '${target}' from ${before.capacity} to ${size} bytes: shrinking would cut off the guest's data (only growing is supported)`);
      const running = dom.id >= 0 || (await conn.rpcCall('REMOTE_PROC_DOMAIN_IS_ACTIVE', { dom })).active === 1;
      if (running) await conn.rpcCall('REMOTE_PROC_DOMAIN_BLOCK_RESIZE', { dom, disk: target, size: BigInt(size), flags: BLOCK_RESIZE_BYTES });
      else {
        // libvirt's blockresize needs a running domain; a shut-off one's image is grown as its volume (vol-resize).
        const source = (await definition(dom, AFFECT_CONFIG)).config.disks.find((d) => d.target === target)?.source;
        if (!source) throw invalidArg(`No disk found whose source path or target is ${target}`);
        const vol = await storage.volume(source).catch((err: unknown) => {
          if (err instanceof HostError && err.code === 'NO_STORAGE_VOL') throw operationInvalid(`domain '${dom.name}' is not running and '${source}' is in no storage pool of ${conn.uri}; libvirt grows a shut-off domain's disk as a pool's volume only`);
          throw err;
        });
        await conn.rpcCall('REMOTE_PROC_STORAGE_VOL_RESIZE', { vol, capacity: BigInt(size), flags: 0 });
      }
      const after = await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_BLOCK_INFO', { dom, path: target, flags: 0 });
      return { ...(await summary(dom)), capacity: Number(after.capacity) };
    },
    'host.usbDevices': async () => {
      const { names } = await conn.rpcCall('REMOTE_PROC_NODE_LIST_DEVICES', { cap: 'usb_device', maxnames: MAX_USB_DEVICES, flags: 0 });
      const devices: HostUsbDevice[] = [];
      for (const name of names as string[]) {
        const { xml } = await conn.rpcCall('REMOTE_PROC_NODE_DEVICE_GET_XML_DESC', { name, flags: 0 });
        const device = usbDeviceOf(xml as string);
        if (device) devices.push(device);
      }
      return { devices };
    },
    'domain.toNative': async (p) => {
      if ((p.domain === undefined) === (p.xml === undefined)) throw invalidArg('give either a domain or its XML');
      const domainXml = (p.xml as string | undefined) ?? ((await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom: await conn.lookup(p.domain!), flags: XML_INACTIVE })).xml as string);
      const { nativeConfig } = await conn.rpcCall('REMOTE_PROC_CONNECT_DOMAIN_XML_TO_NATIVE', { nativeFormat: 'qemu-argv', domainXml, flags: 0 });
      return { argv: shellWords(nativeConfig as string).filter((w, i, all) => !(/^[A-Z_][A-Z0-9_]*=/.test(w) && all.slice(0, i).every((v) => /^[A-Z_][A-Z0-9_]*=/.test(v)))) };
    },
  };
}

/** A node device's XML (<capability type='usb_device'> with bus, device, vendor and product) as a HostUsbDevice. */
export function usbDeviceOf(xml: string): HostUsbDevice | undefined {
  const root = parseXmlTree(xml).find((n): n is XmlElement => n.type === 'element');
  const cap = root && childElements(root, 'capability').find((c) => c.attributes.type === 'usb_device');
  if (!cap) return undefined;
  const num = (name: string): number => Number(textContent(firstChild(cap, name) ?? createElement(name)).trim());
  const id = (el: XmlElement | undefined): string | undefined => /^0x([0-9a-f]{4})$/i.exec(el?.attributes.id ?? '')?.[1]?.toLowerCase();
  const vendorEl = firstChild(cap, 'vendor');
  const productEl = firstChild(cap, 'product');
  const [bus, device, vendorId, productId] = [num('bus'), num('device'), id(vendorEl), id(productEl)];
  if (!(Number.isInteger(bus) && bus > 0 && Number.isInteger(device) && device > 0 && vendorId && productId)) return undefined;
  const vendor = vendorEl && textContent(vendorEl).trim();
  const product = productEl && textContent(productEl).trim();
  return { bus, device, vendorId, productId, ...(vendor && { vendor }), ...(product && { product }) };
}

/**
 * libvirt's qemu-argv text as words: one option per line joined by backslash-newlines, values with
 * spaces or shell characters in single quotes (virBufferEscapeShell: a quote inside is '\'').
 */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw operationFailed('libvirt sent a command line with an unterminated quote');
      word += text.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '\\') {
      if (text[i + 1] !== '\n') word += text[i + 1] ?? '';
      if (text[i + 1] !== '\n') inWord = true;
      i++;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}
