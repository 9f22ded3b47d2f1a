// Unpacked kernels, kept between boots. Unpacking the sample kernel's XZ payload takes about a second
// of every v86 start and reboot (kernel-unpack.ts); the result depends only on the bzImage's bytes and
// the address limit, so it is kept under the user's cache directory, named by those, and read back in
// a few milliseconds. A cache entry that cannot be read or written costs only the unpacking.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { UnpackedKernel } from './kernel-unpack.js';

/** Entries kept: a user boots a handful of kernels; each is ~30 MiB. */
export const KERNEL_CACHE_ENTRIES = 4;
/** Bumped when the unpacker's output changes: older entries are then never named again (and pruned). */
const LAYOUT_VERSION = 1;
const MAGIC = 'DOMUSKRN';
/** Magic, version, entry point, format, image length. */
const HEADER_BYTES = 8 + 4 + 4 + 4 + 8;
const FORMATS: UnpackedKernel['format'][] = ['xz', 'gzip'];

export function kernelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'domus', 'kernels');
}

type Unpacked = UnpackedKernel | { skipped: string };

/** `unpack()`'s result for this bzImage and limit, from the cache when it holds it. */
export async function cachedUnpack(dir: string, bzimage: ArrayBuffer, limit: number, unpack: () => Promise<Unpacked>): Promise<Unpacked & { cached?: boolean }> {
  const key = crypto.createHash('sha256').update(new Uint8Array(bzimage)).update(`:${limit}:${LAYOUT_VERSION}`).digest('hex');
  const file = path.join(dir, `${key}.kernel`);
  const hit = read(file);
  if (hit) return { ...hit, cached: true };
  const unpacked = await unpack();
  if (!('skipped' in unpacked)) write(dir, file, unpacked);
  return unpacked;
}

function read(file: string): UnpackedKernel | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    if (fs.readSync(fd, header, 0, HEADER_BYTES, 0) !== HEADER_BYTES || header.toString('latin1', 0, 8) !== MAGIC || header.readUInt32LE(8) !== LAYOUT_VERSION) return undefined;
    const format = FORMATS[header.readUInt32LE(16)];
    const length = Number(header.readBigUInt64LE(20));
    if (!format || fs.fstatSync(fd).size !== HEADER_BYTES + length) return undefined;
    // Its own ArrayBuffer, exactly the image: v86 keeps it for the machine's life.
    const image = new ArrayBuffer(length);
    if (fs.readSync(fd, new Uint8Array(image), 0, length, HEADER_BYTES) !== length) return undefined;
    const now = new Date();
    fs.futimesSync(fd, now, now); // recently used: pruned last
    return { image, entry: header.readUInt32LE(12), format };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Written under a temporary name and renamed, so a reader sees a whole entry or none. */
function write(dir: string, file: string, kernel: UnpackedKernel): void {
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    makeDirs(dir);
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32LE(LAYOUT_VERSION, 8);
    header.writeUInt32LE(kernel.entry, 12);
    header.writeUInt32LE(FORMATS.indexOf(kernel.format), 16);
    header.writeBigUInt64LE(BigInt(kernel.image.byteLength), 20);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, header);
      fs.writeSync(fd, new Uint8Array(kernel.image));
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    prune(dir);
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // its directory could not be made: nothing was written
    }
  }
}

/**
 * mkdir -p without fs.mkdirSync's `recursive`, which never returns on some paths a user may name
 * (Node 20 loops on ENOENT under /proc, e.g. XDG_CACHE_HOME=/proc/x).
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) {
    if (path.dirname(d) === d) break;
    missing.unshift(d);
  }
  for (const d of missing) fs.mkdirSync(d, { mode: 0o700 });
}

/** Keeps the most recently used entries. */
function prune(dir: string): void {
  const entries = fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.kernel'))
    .map((name) => ({ file: path.join(dir, name), used: fs.statSync(path.join(dir, name)).mtimeMs }))
    .sort((a, b) => b.used - a.used);
  for (const { file } of entries.slice(KERNEL_CACHE_ENTRIES)) fs.rmSync(file, { force: true });
}
