// Device edits of a domain (virsh change-media, attach-disk, detach-disk, attach-device,
// detach-device, update-device, domblkinfo, blockresize): the definition, the running guest, or
// both, with virsh's --live/--config/--current and the engine's limits.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DomainSummary, Result } from '../../shared/api.js';
import type { DeviceKind } from '../../shared/capabilities.js';
import { checkDevice } from './capabilities/index.js';
import { asDeviceError, attachDeviceTo, detachDeviceFrom, DeviceXmlError, parseDeviceXml, sameExcept, updateDeviceIn } from './domain/device-xml.js';
import { childElements, createElement, firstChild, parseDomainXml, serializeDomainXml, type DomainDocument, type XmlElement } from './domain/xml.js';
import { configUnsupported, invalidArg, operationFailed, operationInvalid, operationUnsupported, xmlError } from './errors.js';
import type { Interfaces } from './interfaces.js';
import type { DomainRecord, DomainRegistry } from './registry.js';
import { addDisk, checkSourceImage, findDisk, probedFormat, removeDisk, setMedia, type NewDisk } from './storage/devices.js';
import { probeImage, resizeImage } from './storage/image.js';
import { samePath } from './storage/in-use.js';
import { imageOp } from './storage/pools.js';

type Scope = { live: boolean; config: boolean };

export class Devices {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly interfaces: Interfaces,
  ) {}

  /** virsh change-media: a CD-ROM's medium; `source` inserts (or replaces), none ejects. */
  async changeMedia(ref: string, p: { target: string; source?: string; eject: boolean; live: boolean; config: boolean }): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    if (p.eject === (p.source !== undefined)) throw invalidArg(p.eject ? 'eject takes no source image' : 'a source image is required to insert or update the medium');
    const source = p.source === undefined ? undefined : path.resolve(p.source);
    if (source) checkSourceImage(source);
    const { live, config } = this.registry.scope(rec, p);
    // Both edits are checked before either is made.
    const liveDoc = live ? parseDomainXml(serializeDomainXml(rec.liveDoc!)) : undefined;
    const disk = liveDoc && setMedia(liveDoc, p.target, source);
    if (disk) {
      const drive = rec.liveDoc!.config.disks.find((d) => d.device === 'cdrom');
      if (!rec.live!.changeMedia || drive?.target !== disk.target) {
        throw operationUnsupported(`the ${this.registry.engineOf(rec)} engine can change the medium of the first CD-ROM drive only${drive ? ` (${drive.target})` : ''}; use --config`);
      }
    }
    const draft = config ? parseDomainXml(serializeDomainXml(rec.doc)) : undefined;
    if (draft) setMedia(draft, p.target, source);
    await this.registry.configThenLive(rec, draft, async () => {
      if (!disk) return;
      await rec.live!.changeMedia!(source).catch((err: Error) => {
        throw operationFailed(`cannot change the medium of '${disk.target}': ${err.message}`);
      });
      rec.liveDoc = liveDoc;
    });
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  /** virsh attach-disk; no engine hot-plugs disks yet, so --live is refused. */
  attachDisk(ref: string, p: NewDisk & { live: boolean; config: boolean }): { domain: DomainSummary; target: string } {
    const rec = this.registry.lookup(ref);
    const { live, config } = this.registry.scope(rec, p);
    if (live) throw operationUnsupported(`${this.registry.engineOf(rec)} cannot hot-plug disks, use --config`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    const target = addDisk(draft, { ...p, source: p.source === undefined ? undefined : path.resolve(p.source) });
    if (config) this.registry.persist(rec, draft);
    this.registry.emitLifecycle(rec, 'defined');
    return { domain: this.registry.summary(rec), target };
  }

  /** virsh detach-disk; no engine hot-unplugs disks yet, so --live is refused. */
  detachDisk(ref: string, p: { target: string; live: boolean; config: boolean }): DomainSummary {
    const rec = this.registry.lookup(ref);
    const { live, config } = this.registry.scope(rec, p);
    if (live) throw operationUnsupported(`${this.registry.engineOf(rec)} cannot hot-unplug disks, use --config`);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    removeDisk(draft, p.target);
    if (config) this.registry.persist(rec, draft);
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  /** virsh attach-device: into the definition; live only where the engine hot-plugs (a NIC on a virtual network). */
  async attachDevice(ref: string, p: { xml: string } & Scope): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const device = deviceFrom(p.xml);
    const scope = this.registry.scope(rec, p);
    if (scope.live) {
      const nic = this.liveNic(rec, device, 'attach');
      return (await this.interfaces.attach(ref, { ...nic, ...scope })).domain;
    }
    if (device.name === 'disk') checkDiskSource(device, true);
    const draft = copy(rec.doc);
    const added = deviceEdit(() => attachDeviceTo(draft, device, () => randomBytes(3)));
    this.checkEngine(rec, draft, added);
    return this.commit(rec, draft);
  }

  /** virsh detach-device: the one device the XML matches; live only for a NIC the engine unplugs. */
  async detachDevice(ref: string, p: { xml: string } & Scope): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const device = deviceFrom(p.xml);
    const scope = this.registry.scope(rec, p);
    if (scope.live) {
      const { type, mac } = this.liveNic(rec, device, 'detach');
      return this.interfaces.detach(ref, { type, mac, ...scope });
    }
    const draft = copy(rec.doc);
    deviceEdit(() => detachDeviceFrom(draft, device));
    return this.commit(rec, draft);
  }

  /**
   * virsh update-device: the matching device's settings replaced. Live: a CD-ROM's medium (change-media)
   * and an interface's link state (domif-setlink), the changes the engines make to a running guest.
   */
  async updateDevice(ref: string, p: { xml: string } & Scope): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const device = deviceFrom(p.xml);
    const scope = this.registry.scope(rec, p);
    // Live, the update must match the running device but for its medium: no <driver> is added.
    if (device.name === 'disk') checkDiskSource(device, !scope.live);
    const draft = copy(scope.live ? rec.liveDoc! : rec.doc);
    const { before, after } = deviceEdit(() => updateDeviceIn(draft, device));
    if (scope.live) {
      const engine = this.registry.engineOf(rec);
      if (device.name === 'disk' && before.attributes.device !== 'disk' && sameExcept(before, after, 'source')) {
        const target = firstChild(before, 'target')!.attributes.dev!;
        const source = firstChild(after, 'source')?.attributes.file;
        return this.changeMedia(ref, { target, source, eject: source === undefined, ...scope });
      }
      if (device.name === 'interface' && sameExcept(before, after, 'link')) {
        const state = firstChild(after, 'link')?.attributes.state === 'down' ? 'down' : 'up';
        return this.interfaces.setLink(ref, { interface: firstChild(before, 'mac')!.attributes.address!, state, ...scope });
      }
      throw operationUnsupported(`the ${engine} engine changes only a CD-ROM's medium and an interface's link state in a running guest; use --config`);
    }
    this.checkEngine(rec, draft, after);
    return this.commit(rec, draft);
  }

  /** virsh domblkinfo: capacity (what the guest sees), allocation (what the file occupies), physical (the file's size). */
  blockInfo(ref: string, target: string): Result<'domain.blockInfo'> {
    const rec = this.registry.lookup(ref);
    const source = diskImage(rec.liveDoc ?? rec.doc, target);
    try {
      const probe = probeImage(source);
      return { capacity: probe.capacityBytes, allocation: probe.allocationBytes, physical: fs.statSync(source).size };
    } catch (err) {
      throw operationFailed(`cannot read the image of disk '${target}': ${(err as Error).message}`);
    }
  }

  /** virsh blockresize: grows the image (shut off) or has the running engine grow it; shrinking is refused. */
  async blockResize(ref: string, target: string, sizeBytes: number): Promise<Result<'domain.blockResize'>> {
    const rec = this.registry.lookup(ref);
    const doc = rec.liveDoc ?? rec.doc;
    const disk = findDisk(doc, target);
    if (disk.device !== 'disk') throw operationInvalid(`disk '${disk.target}' is a ${disk.device}; only a hard disk's image can be resized`);
    const source = diskImage(doc, target);
    const { capacity } = this.blockInfo(ref, target);
    if (sizeBytes < capacity) throw operationInvalid(`cannot shrink disk '${disk.target}' from ${capacity} to ${sizeBytes} bytes: shrinking would cut off the guest's data (only growing is supported)`);
    if (rec.live) {
      if (!rec.live.blockResize) throw operationUnsupported(`the ${this.registry.engineOf(rec)} engine cannot grow a disk under a running guest; shut the domain down and resize it then`);
      await rec.live.blockResize(disk.target, sizeBytes).catch((err: Error) => {
        throw operationFailed(`cannot resize disk '${disk.target}': ${err.message}`);
      });
    } else {
      // Another guest reading the image would see its disk change size under it.
      const user = this.registry.records().find((r) => r !== rec && r.live && (r.liveDoc ?? r.doc).config.disks.some((d) => d.source && samePath(d.source, source)));
      if (user) throw operationInvalid(`the image of disk '${disk.target}' is in use by running domain '${user.doc.config.name}'; shut it down first`);
      await imageOp(`cannot resize disk '${disk.target}'`, () => resizeImage(source, sizeBytes));
    }
    return { domain: this.registry.summary(rec), capacity: this.blockInfo(ref, target).capacity };
  }

  /** The interface settings the engines plug into or unplug from a running guest; anything else is refused with why. */
  private liveNic(rec: DomainRecord, device: XmlElement, verb: 'attach' | 'detach'): { type: 'network' | 'user'; source?: string; model?: string; mac?: string } {
    const engine = this.registry.engineOf(rec);
    if (device.name !== 'interface') throw operationUnsupported(`the ${engine} engine cannot ${verb} a <${device.name}> in a running guest; use --config`);
    const type = device.attributes.type ?? 'user';
    if (type !== 'network' && type !== 'user') throw operationUnsupported(`an interface of type '${type}' is not connected by the engines here; use --config`);
    // Detach finds the card by type and MAC: the rest of a dumped <interface> (<alias>, <address>, <target>...) does not matter.
    const extra = verb === 'attach' && childElements(device).find((c) => !['mac', 'source', 'model'].includes(c.name));
    if (extra) throw operationUnsupported(`the ${engine} engine cannot plug an interface with <${extra.name}> into a running guest; use --config`);
    const source = firstChild(device, 'source')?.attributes.network;
    const model = firstChild(device, 'model')?.attributes.type;
    const mac = firstChild(device, 'mac')?.attributes.address;
    return { type, ...(source && { source }), ...(model && { model }), ...(mac && { mac }) };
  }

  /**
   * Refuses a device the domain's engine cannot provide, with the engine's reason: its capabilities
   * must offer every choice the device makes, and the definition with it may not say anything the
   * engines' validation warns about that it did not say before (a second NIC on v86).
   */
  private checkEngine(rec: DomainRecord, draft: DomainDocument, device: XmlElement): void {
    const engine = this.registry.engineOf(rec);
    const caps = this.registry.driverOf(rec).domainCapabilities(draft.config.os.machine);
    if (caps) {
      const reason = checkDevice(caps, device);
      if (reason) throw configUnsupported(`the ${engine} engine cannot provide this <${device.name}>: ${reason}`);
      const max = caps.max[device.name as DeviceKind];
      const count = childElements(firstChild(draft.root, 'devices')!, device.name).length;
      if (max !== undefined && count > max) throw configUnsupported(`the ${engine} engine connects at most ${max} <${device.name}> device${max > 1 ? 's' : ''}; this would be number ${count}`);
    }
    const known = new Set(this.registry.supported(rec.doc).warnings.map((w) => w.message));
    const fresh = this.registry.supported(draft).warnings.filter((w) => !known.has(w.message));
    if (fresh.length) throw configUnsupported(`the ${this.registry.engineOf(rec)} engine cannot provide this <${device.name}>: ${fresh.map((w) => w.message).join('; ')}`);
  }

  private commit(rec: DomainRecord, draft: DomainDocument): DomainSummary {
    this.registry.persist(rec, draft);
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }
}

function copy(doc: DomainDocument): DomainDocument {
  return parseDomainXml(serializeDomainXml(doc));
}

/** device-xml's errors as the API's (virsh's codes: XML_ERROR, CONFIG_UNSUPPORTED, OPERATION_FAILED). */
function deviceEdit<T>(edit: () => T): T {
  try {
    return edit();
  } catch (raw) {
    const err = asDeviceError(raw);
    if (!(err instanceof DeviceXmlError)) throw err;
    const make = { invalid: xmlError, unsupported: configUnsupported, 'not-found': operationFailed, conflict: operationFailed }[err.kind];
    throw make(err.message);
  }
}

function deviceFrom(xml: string): XmlElement {
  return deviceEdit(() => parseDeviceXml(xml));
}

/**
 * A file a new or updated disk names must be a regular file (as attach-disk checks it) whose format
 * its <driver type> says: qcow2 opened as raw would show the guest the qcow2 metadata (and let it
 * write a header naming any backing file). Without a type, `fill` writes in the probed one.
 */
function checkDiskSource(disk: XmlElement, fill: boolean): void {
  const file = firstChild(disk, 'source')?.attributes.file;
  if (file === undefined) return;
  const source = path.resolve(file);
  checkSourceImage(source);
  const probed = probedFormat(source);
  const driver = firstChild(disk, 'driver');
  const declared = driver?.attributes.type;
  if (declared === undefined) {
    if (!fill) return;
    if (driver) driver.attributes.type = probed;
    else disk.children.unshift(createElement('driver', { type: probed }));
    return;
  }
  const says = declared === 'qcow2' ? 'qcow2' : declared === 'raw' || declared === 'iso' ? 'raw' : undefined;
  if (says && says !== probed) throw invalidArg(`'${source}' is a ${probed} image, but the disk's <driver type='${declared}'> says ${says}: give type='${probed}' (or leave the type out)`);
}

function diskImage(doc: DomainDocument, target: string): string {
  const disk = findDisk(doc, target);
  if (!disk.source) throw operationInvalid(`disk '${disk.target}' has no image`);
  if (!path.isAbsolute(disk.source)) throw invalidArg(`disk '${disk.target}' names a relative path '${disk.source}'`);
  return disk.source;
}

