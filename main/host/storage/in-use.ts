// Disks in use: a writable disk belongs to one running domain at a time (two guests writing one
// filesystem destroy it); read-only disks and CD-ROM media may be shared. libvirt gets the same
// from its lock manager (virtlockd); here the host knows every running domain.
import fs from 'node:fs';
import path from 'node:path';
import type { DiskConfig } from '../../../shared/domain.js';

/** One domain's disks, as the storage layer sees them. */
export interface DiskUser {
  name: string;
  uuid: string;
  running: boolean;
  disks: DiskConfig[];
}

/** Same file: same real path, or the same inode when both exist. */
export function samePath(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** A disk the guest can write: a hard disk without <readonly/>. CD-ROMs are always read-only. */
export function writable(disk: DiskConfig): boolean {
  return disk.device === 'disk' && !disk.readonly;
}

/**
 * Why `disks` (of domain `self`) cannot be used now, or undefined: a disk that this domain would
 * write and another running domain uses, or a disk another running domain writes.
 */
export function diskConflict(self: string, disks: DiskConfig[], users: DiskUser[]): string | undefined {
  for (const disk of disks) {
    if (!disk.source) continue;
    for (const other of users) {
      if (!other.running || other.uuid === self) continue;
      const theirs = other.disks.find((d) => d.source && samePath(d.source, disk.source!));
      if (!theirs || (!writable(disk) && !writable(theirs))) continue;
      const how = writable(theirs) ? 'writes to it' : 'uses it';
      return `disk '${disk.source}' (${disk.target}) is in use by running domain '${other.name}', which ${how}; a disk image can be written by one running domain at a time (make both read-only to share it)`;
    }
  }
  return undefined;
}
