// The sample guest with the sample ext2 disk (build-guests.sh's disk.img): its initrd with the IDE
// and filesystem modules added, a domain definition, and the disk's partition read on the host.
import fs from 'node:fs';
import path from 'node:path';
import { guest, guestsBuilt, sampleGuestXml } from './harness.js';

const MODULES = guest('disk-modules.cpio.gz');
/** The sample disk's ext2 partition starts at sector 2048 (build-guests.sh PART_START). */
const PART_OFFSET = 2048 * 512;

export function diskGuestBuilt(): boolean {
  return guestsBuilt() && fs.existsSync(MODULES);
}

/** Writes the sample initrd with the disk modules appended (the kernel unpacks concatenated initramfs archives in turn). */
export function diskGuestInitrd(dir: string): string {
  const initrd = path.join(dir, 'initrd-disks.gz');
  fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(guest('initrd.gz')), fs.readFileSync(MODULES)]));
  return initrd;
}

/** An IDE disk (or CD-ROM, whose source may be empty) for diskGuestXml. */
export function ideDisk(d: { file?: string; dev: string; format?: string; cdrom?: boolean }): string {
  const source = d.file ? `\n      <source file='${d.file}'/>` : '';
  return `<disk type='file' device='${d.cdrom ? 'cdrom' : 'disk'}'>
      <driver type='${d.format ?? 'raw'}'/>${source}
      <target dev='${d.dev}' bus='ide'/>${d.cdrom ? '\n      <readonly/>' : ''}
    </disk>`;
}

/** The sample PV guest booting diskGuestInitrd's initrd, with the given disks. */
export function diskGuestXml(name: string, engine: string, initrd: string, disks: string[]): string {
  return sampleGuestXml(name, engine, disks.join('\n    '), { initrd });
}

/** Copies the ext2 partition out of a raw disk image so that debugfs/e2fsck can read it. */
export function extPartition(rawImage: string, out: string): string {
  fs.writeFileSync(out, fs.readFileSync(rawImage).subarray(PART_OFFSET));
  return out;
}
