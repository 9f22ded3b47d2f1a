// Disk devices in a definition: change a CD-ROM's medium, attach and detach disks (virsh
// change-media, attach-disk, detach-disk). Edits go through editDomain, so the document changes
// only when the result is a valid definition.
import path from 'node:path';
import type { DiskConfig } from '../../../shared/domain.js';
import { freeDiskTarget } from '../../../shared/libvirt/disk-targets.js';
import { childElements, createElement, editDomain, firstChild, type DomainDocument, type XmlElement } from '../domain/xml.js';
import { checkInputFile, InputFileError } from '../../common/input-file.js';
import { probeImage } from './image.js';
import { invalidArg, operationFailed, operationInvalid } from '../errors.js';

/** The disk a virsh "path" argument names: its target (hdc) or its current source file. */
export function findDisk(doc: DomainDocument, ref: string): DiskConfig {
  const disks = doc.config.disks;
  const disk = disks.find((d) => d.target === ref) ?? disks.find((d) => d.source && path.resolve(d.source) === path.resolve(ref));
  if (!disk) throw invalidArg(`No disk found whose source path or target is ${ref}`);
  return disk;
}

function diskElement(root: XmlElement, target: string): XmlElement {
  const devices = firstChild(root, 'devices');
  const el = devices && childElements(devices, 'disk').find((d) => firstChild(d, 'target')?.attributes.dev === target);
  if (!el) throw invalidArg(`No disk found whose source path or target is ${target}`);
  return el;
}

/** Inserts `source` into the removable drive `ref` (replacing any medium), or ejects it (undefined). */
export function setMedia(doc: DomainDocument, ref: string, source: string | undefined): DiskConfig {
  const disk = findDisk(doc, ref);
  if (disk.device === 'disk') throw operationInvalid(`The disk device '${disk.target}' is not removable`);
  if (!source && !disk.source) throw operationInvalid(`The disk device '${disk.target}' doesn't have media`);
  editDomain(doc, (root) => {
    const el = diskElement(root, disk.target);
    el.children = el.children.filter((c) => !(c.type === 'element' && c.name === 'source'));
    if (source) {
      el.attributes.type = 'file';
      // <source> comes after <driver>, before <target>, as libvirt writes it.
      const at = el.children.findIndex((c) => c.type === 'element' && c.name === 'target');
      el.children.splice(at < 0 ? el.children.length : at, 0, createElement('source', { file: source }));
    }
  });
  return findDisk(doc, disk.target);
}

export interface NewDisk {
  source?: string;
  target?: string;
  device: 'disk' | 'cdrom';
  readonly: boolean;
}

/** A medium or disk someone names must be a regular file; anything else is refused before it is opened. */
export function checkSourceImage(source: string): void {
  try {
    checkInputFile(source);
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    throw invalidArg(`cannot use '${source}': ${err.code === 'ENOENT' ? 'no such file' : err.kind ? `it ${err.reason}` : err.reason}`);
  }
}

/** An image's format as its header shows it, in <driver type>'s words: qcow2, or raw (an ISO is raw). */
export function probedFormat(source: string): 'raw' | 'qcow2' {
  try {
    return probeImage(source).format === 'qcow2' ? 'qcow2' : 'raw';
  } catch (err) {
    throw invalidArg(`cannot use '${source}': ${(err as Error).message}`);
  }
}

/** Adds a disk to <devices>; returns its target (given, or the first free IDE name; CD-ROMs prefer hdc, where v86's drive is). */
export function addDisk(doc: DomainDocument, spec: NewDisk): string {
  const used = new Set(doc.config.disks.map((d) => d.target));
  if (spec.target && used.has(spec.target)) throw operationFailed(`target '${spec.target}' already exists`);
  const target = spec.target ?? freeDiskTarget(used, 'ide', spec.device);
  if (!target) throw operationInvalid(`no free IDE target left (hda to hdd are taken); name one with the target argument`);
  if (spec.device === 'disk' && !spec.source) throw invalidArg('a disk needs a source image');
  let format = 'raw';
  if (spec.source) {
    checkSourceImage(spec.source);
    format = probedFormat(spec.source);
  }
  const children = [createElement('driver', { type: format })];
  if (spec.source) children.push(createElement('source', { file: spec.source }));
  children.push(createElement('target', { dev: target, bus: target.startsWith('hd') ? 'ide' : target.startsWith('sd') ? 'sata' : 'virtio' }));
  if (spec.readonly || spec.device === 'cdrom') children.push(createElement('readonly'));
  editDomain(doc, (root) => {
    let devices = firstChild(root, 'devices');
    if (!devices) {
      devices = createElement('devices');
      root.children.push(devices);
    }
    const disks = childElements(devices, 'disk');
    const after = disks.length ? devices.children.indexOf(disks[disks.length - 1]) + 1 : childElements(devices, 'emulator').length ? devices.children.indexOf(firstChild(devices, 'emulator')!) + 1 : 0;
    devices.children.splice(after, 0, createElement('disk', { type: 'file', device: spec.device }, children));
  });
  return target;
}

/** Removes the disk `ref` (target or source path); returns what it was. */
export function removeDisk(doc: DomainDocument, ref: string): DiskConfig {
  const disk = findDisk(doc, ref);
  editDomain(doc, (root) => {
    const el = diskElement(root, disk.target);
    const devices = firstChild(root, 'devices')!;
    devices.children = devices.children.filter((c) => c !== el);
  });
  return disk;
}
