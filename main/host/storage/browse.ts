// host.browse: one host directory for the GUI's file chooser (virt-manager's "Browse Local"):
// directories first, then the files the filter lets through; hidden entries are left out.
import fs from 'node:fs';
import path from 'node:path';
import type { BrowseListing } from '../../../shared/api.js';
import { invalidArg } from '../errors.js';

export type BrowseFilter = 'any' | 'iso' | 'disk' | 'kernel';

const FILTERS: Record<BrowseFilter, (name: string) => boolean> = {
  any: () => true,
  iso: (n) => /\.iso$/i.test(n),
  disk: (n) => /\.(img|raw|qcow2|iso)$/i.test(n),
  kernel: (n) => /^(vmlinuz|bzImage|initrd)/.test(n),
};

export function browse(dir: string, filter: BrowseFilter): BrowseListing {
  const where = path.resolve(dir);
  let dirents: fs.Dirent[];
  try {
    dirents = fs.readdirSync(where, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (err as Error).message;
    throw invalidArg(`cannot list '${where}': ${why}`);
  }
  const entries: BrowseListing['entries'] = [];
  for (const d of dirents) {
    if (d.name.startsWith('.')) continue;
    const full = path.join(where, d.name);
    let st: fs.Stats;
    try {
      // stat, not lstat: a link to an image or a directory is offered as what it points to.
      st = fs.statSync(full);
    } catch {
      continue;
    }
    if (st.isDirectory()) entries.push({ name: d.name, path: full, kind: 'dir', sizeBytes: 0, mtime: st.mtimeMs });
    else if (st.isFile() && FILTERS[filter](d.name)) entries.push({ name: d.name, path: full, kind: 'file', sizeBytes: st.size, mtime: st.mtimeMs });
  }
  entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'dir' ? -1 : 1));
  const parent = path.dirname(where);
  return { path: where, parent: parent === where ? undefined : parent, entries };
}
