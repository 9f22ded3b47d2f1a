// Small real filesystems for tests of a full disk: a tmpfs of a given size (root only), and a
// filler that takes every free byte so that the next write fails with ENOSPC.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Tmpfs {
  dir: string;
  unmount: () => void;
}

/**
 * Mounts a tmpfs of `size` (mount's syntax: 2m, 8m) on `at`, or on a new directory under the
 * system's temp dir named from `prefix`. Returns why not (for a test's skip) when it cannot: mounting
 * needs root.
 */
export function mountTmpfs(prefix: string, size: string, at?: string): Tmpfs | string {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const dir = at ?? fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    if (!at) fs.rmdirSync(dir);
    return `cannot mount a tmpfs: ${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim()}`;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', [dir]);
      if (!at) fs.rmdirSync(dir);
    },
  };
}

/** Writes `dir`/filler until the filesystem is full; returns the bytes it took. */
export function fillUp(dir: string): number {
  const fd = fs.openSync(path.join(dir, 'filler'), 'a');
  const chunk = Buffer.alloc(64 * 1024, 0xee);
  let total = 0;
  try {
    for (;;) total += fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
  return total;
}
