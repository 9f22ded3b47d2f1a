// Unpacked kernels, kept between boots. Unpacking the sample kernel's XZ payload takes about a second
// of every v86 start and reboot (kernel-unpack.ts); the result depends only on the bzImage's bytes and
// the address limit, so it is kept under the user's cache directory, named by those, and read back in
// a few milliseconds. Anything wrong with the cache (a directory or entry this user does not own
// alone, a damaged entry, no room) costs only the unpacking, never the boot.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, writeFileAtomic } from '../common/fsutil.js';
import { unpackKernel, type UnpackedKernel } from './kernel-unpack.js';
import { log } from './log.js';

/** Entries kept: a user boots a handful of kernels; each is ~30 MiB. */
export const KERNEL_CACHE_ENTRIES = 4;
/** Larger images (a kernel without an initrd may unpack up to the guest's RAM) are not kept. */
export const KERNEL_CACHE_MAX_BYTES = 128 * 1024 * 1024;
/** Bumped when kernel-unpack.ts's output changes: older entries are then never named again (and pruned). */
const LAYOUT_VERSION = 2;
const MAGIC = 'DOMUSKRN';
/** Magic, version, entry point, format, CRC-32 of the image, image length. */
const HEADER_BYTES = 8 + 4 + 4 + 4 + 4 + 8;
const FORMATS: UnpackedKernel['format'][] = ['xz', 'gzip'];
/** A temporary file this old was left by a runner that died while writing it. */
const STALE_TMP_MS = 10 * 60_000;

/** $XDG_CACHE_HOME/domus/kernels, else ~/.cache/…; undefined when the user has no home directory. */
export function kernelCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'domus', 'kernels');
  } catch {
    return undefined;
  }
}

type Unpacked = UnpackedKernel | { skipped: string };

/**
 * The image one direct-kernel boot of `bzimage` gives v86, a buffer of its own: the bzImage unpacked
 * (from the cache when it holds it), else a copy of the bzImage, which then decompresses itself in
 * the guest. Its own, because v86 writes setup-header fields into what it gets and keeps it for the
 * machine's life, and the emulator frees it once the kernel is in guest RAM.
 */
export async function bootKernelImage(bzimage: ArrayBuffer, limit: number): Promise<ArrayBuffer> {
  const t0 = Date.now();
  const dir = kernelCacheDir();
  const unpacked = await cachedUnpack(dir, bzimage, limit, () => unpackKernel(bzimage, limit));
  if ('skipped' in unpacked) {
    log('info', `kernel booted as it is (its own decompressor runs in the guest): ${unpacked.skipped}`);
    return bzimage.slice(0);
  }
  const how = unpacked.cached ? `read from ${dir}` : 'unpacked on the host';
  log('info', `kernel ${how} (${unpacked.format}, entry 0x${unpacked.entry.toString(16)}) in ${Date.now() - t0} ms`);
  return unpacked.image;
}

/** `unpack()`'s result for this bzImage and limit, from the cache when it holds it. */
export async function cachedUnpack(dir: string | undefined, bzimage: ArrayBuffer, limit: number, unpack: () => Promise<Unpacked>): Promise<Unpacked & { cached?: boolean }> {
  if (!dir || !ownDirectory(dir, true)) return unpack();
  const key = crypto.createHash('sha256').update(new Uint8Array(bzimage)).update(`:${limit}:${LAYOUT_VERSION}`).digest('hex');
  const file = path.join(dir, `${key}.kernel`);
  const hit = read(file);
  if (hit) return { ...hit, cached: true };
  const unpacked = await unpack();
  if (!('skipped' in unpacked) && unpacked.image.byteLength <= KERNEL_CACHE_MAX_BYTES) write(file, unpacked);
  return unpacked;
}

/**
 * Whether `dir` is a directory (not a link) of this user's that nobody else can write to; with
 * `create`, made (0700) where missing. Another user who could plant an entry would choose the code
 * a guest boots.
 */
function ownDirectory(dir: string, create: boolean): boolean {
  try {
    if (create) makeDirs(dir);
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function read(file: string): UnpackedKernel | undefined {
  let fd: number;
  try {
    // No link to elsewhere; O_NONBLOCK: a FIFO put there must not hold the boot.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid?.() || st.size < HEADER_BYTES) return undefined;
    const header = Buffer.alloc(HEADER_BYTES);
    if (fs.readSync(fd, header, 0, HEADER_BYTES, 0) !== HEADER_BYTES || header.toString('latin1', 0, 8) !== MAGIC || header.readUInt32LE(8) !== LAYOUT_VERSION) return undefined;
    const format = FORMATS[header.readUInt32LE(16)];
    const length = Number(header.readBigUInt64LE(24));
    if (!format || length > KERNEL_CACHE_MAX_BYTES || st.size !== HEADER_BYTES + length) return undefined;
    // Its own ArrayBuffer, exactly the image (bootKernelImage).
    const image = new ArrayBuffer(length);
    const bytes = new Uint8Array(image);
    if (fs.readSync(fd, bytes, 0, length, HEADER_BYTES) !== length) return undefined;
    // A crash after the rename can leave the right length with other bytes in it.
    if (zlib.crc32(bytes) !== header.readUInt32LE(20)) return undefined;
    try {
      const now = new Date();
      fs.futimesSync(fd, now, now); // recently used: pruned last
    } catch {
      // kept all the same
    }
    return { image, entry: header.readUInt32LE(12), format };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Atomically (writeFileAtomic), so a reader sees a whole entry or none. */
function write(file: string, kernel: UnpackedKernel): void {
  const image = new Uint8Array(kernel.image);
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt32LE(LAYOUT_VERSION, 8);
  header.writeUInt32LE(kernel.entry, 12);
  header.writeUInt32LE(FORMATS.indexOf(kernel.format), 16);
  header.writeUInt32LE(zlib.crc32(image), 20);
  header.writeBigUInt64LE(BigInt(image.byteLength), 24);
  try {
    writeFileAtomic(file, [header, image], PRIVATE_FILE_MODE, false);
    prune(path.dirname(file));
  } catch {
    // no room, or the directory went away: the next boot unpacks again
  }
}

/** Keeps the most recently used entries; removes what runners that died while writing left. */
function prune(dir: string): void {
  const now = Date.now();
  const entries: { file: string; used: number }[] = [];
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    try {
      const used = fs.lstatSync(file).mtimeMs;
      if (name.endsWith('.kernel')) entries.push({ file, used });
      else if (name.endsWith('.tmp') && now - used > STALE_TMP_MS) fs.rmSync(file, { force: true });
    } catch {
      // removed meanwhile by another runner
    }
  }
  entries.sort((a, b) => b.used - a.used);
  for (const { file } of entries.slice(KERNEL_CACHE_ENTRIES)) fs.rmSync(file, { force: true });
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
  for (const d of missing) fs.mkdirSync(d, { mode: PRIVATE_DIR_MODE });
}
