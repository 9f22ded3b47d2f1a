// The fsimage fuzz loop's target: everything a caller can do with an image, walked as far as it goes.
import { chooseBoot, BootError, findBootConfig, findKernels, inspectImage } from '../fsimage/index.js';
import { DiskImage } from '../fsimage/image.js';
import { FsImageError } from '../fsimage/errors.js';
import type { Filesystem } from '../fsimage/vfs.js';

const MAX_NODES = 3000;

/** Runs every reader call on `file`; returns how many calls ended in FsImageError/BootError. Anything else propagates. */
export function exercise(file: string, timeoutMs = 10_000): { ok: number; errors: number } {
  const tally = { ok: 0, errors: 0 };
  const attempt = (fn: () => unknown): void => {
    try {
      fn();
      tally.ok++;
    } catch (err) {
      if (err instanceof FsImageError || err instanceof BootError) tally.errors++;
      else throw err;
    }
  };
  let img: DiskImage | undefined;
  attempt(() => (img = DiskImage.open(file, { timeoutMs })));
  if (img) {
    try {
      for (const { fs } of img.filesystems()) {
        attempt(() => walk(fs, attempt));
        attempt(() => findBootConfig(fs));
        attempt(() => findKernels(fs));
      }
      const opened = img;
      attempt(() => chooseBoot(opened, {}));
    } finally {
      img.close();
    }
  }
  attempt(() => inspectImage(file));
  return tally;
}

function walk(fs: Filesystem, attempt: (fn: () => unknown) => void): void {
  const queue = ['/'];
  let seen = 0;
  while (queue.length && seen < MAX_NODES) {
    const dir = queue.shift() as string;
    let entries: ReturnType<Filesystem['readdir']> = [];
    attempt(() => (entries = fs.readdir(dir)));
    for (const e of entries) {
      if (++seen > MAX_NODES) break;
      const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
      attempt(() => fs.stat(p));
      if (e.kind === 'dir') queue.push(p);
      else if (e.kind === 'symlink') {
        attempt(() => fs.readlink(p));
        attempt(() => fs.readFile(p, 4 << 20));
      } else if (e.kind === 'file') attempt(() => fs.readFile(p, 4 << 20));
    }
  }
}
