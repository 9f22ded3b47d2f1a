// Copy-before-write stores for v86 disk snapshots. The image file always holds the disk as it is
// now (so qemu-img, the storage pages and a next boot see it as it is); each snapshot has, per
// writable disk, a store of the chunks that have changed since: the guest's first write to a chunk
// copies the chunk's old contents into every store that lacks it. A snapshot's disk is then the
// image with its store laid over it; revert writes the store back (saving the chunks it overwrites
// into the other stores first), delete removes the store file and frees its space at once.
// Cost: a chunk changed after N snapshots is kept N times; a first write to a chunk costs one
// chunk read and one write per store lacking it, later writes nothing extra.
//
// File layout: a 4 KiB header (magic, version, chunk size, disk size), then the chunk bitmap, then
// the chunk data at dataStart + chunk × chunkSize in a sparse file (only stored chunks take space).
import fs from 'node:fs';

const MAGIC = Buffer.from('DOMUSCOW');
const VERSION = 1;
const HEADER_BYTES = 4096;
export const CHUNK_BYTES = 64 * 1024;
/** A store is bounded by its disk: images above 2 TiB are not snapshotted this way. */
const MAX_DISK_BYTES = 2 ** 41;

export class CowStoreError extends Error {
  override name = 'CowStoreError';
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export class CowStore {
  private readonly bitmap: Buffer;
  private readonly dataStart: number;
  readonly chunks: number;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly diskBytes: number,
    bitmap?: Buffer,
  ) {
    this.chunks = Math.ceil(diskBytes / CHUNK_BYTES);
    this.bitmap = bitmap ?? Buffer.alloc(Math.ceil(this.chunks / 8));
    this.dataStart = HEADER_BYTES + align(this.bitmap.length, 4096);
  }

  /** A new, empty store for a disk of `diskBytes` (the disk as it is now is the snapshot's). */
  static create(file: string, diskBytes: number): CowStore {
    if (!Number.isSafeInteger(diskBytes) || diskBytes <= 0 || diskBytes > MAX_DISK_BYTES) throw new CowStoreError(`cannot snapshot a disk of ${diskBytes} bytes`);
    const fd = fs.openSync(file, 'wx+', 0o600);
    const store = new CowStore(file, fd, diskBytes);
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      MAGIC.copy(header, 0);
      header.writeUInt32LE(VERSION, 8);
      header.writeUInt32LE(CHUNK_BYTES, 12);
      header.writeBigUInt64LE(BigInt(diskBytes), 16);
      fs.writeSync(fd, header, 0, HEADER_BYTES, 0);
      fs.writeSync(fd, store.bitmap, 0, store.bitmap.length, HEADER_BYTES);
      fs.ftruncateSync(fd, store.dataStart);
      fs.fsyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw err;
    }
    return store;
  }

  /** Opens a store for a disk of `diskBytes`; a store of another size or a foreign file is refused. */
  static open(file: string, diskBytes: number): CowStore {
    const fd = fs.openSync(file, 'r+');
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      if (fs.readSync(fd, header, 0, HEADER_BYTES, 0) !== HEADER_BYTES || !header.subarray(0, 8).equals(MAGIC)) throw new CowStoreError(`'${file}' is not a Domus snapshot store`);
      const version = header.readUInt32LE(8);
      const chunk = header.readUInt32LE(12);
      const size = Number(header.readBigUInt64LE(16));
      if (version !== VERSION || chunk !== CHUNK_BYTES) throw new CowStoreError(`snapshot store '${file}' has version ${version} and ${chunk}-byte chunks; this Domus reads version ${VERSION} with ${CHUNK_BYTES}`);
      if (size !== diskBytes) throw new CowStoreError(`snapshot store '${file}' is for a disk of ${size} bytes, but the disk now has ${diskBytes} (resized since the snapshot)`);
      const bitmap = Buffer.alloc(Math.ceil(Math.ceil(size / CHUNK_BYTES) / 8));
      if (fs.readSync(fd, bitmap, 0, bitmap.length, HEADER_BYTES) !== bitmap.length) throw new CowStoreError(`snapshot store '${file}' is truncated`);
      return new CowStore(file, fd, size, bitmap);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  has(chunk: number): boolean {
    return (this.bitmap[chunk >> 3] & (1 << (chunk & 7))) !== 0;
  }

  /** Chunks held, in order. */
  *held(): Generator<number> {
    for (let c = 0; c < this.chunks; c++) if (this.has(c)) yield c;
  }

  /** Keeps `data` as the snapshot's contents of `chunk`: data first, then the bit that says it is there. */
  keep(chunk: number, data: Uint8Array): void {
    fs.writeSync(this.fd, data, 0, data.length, this.dataStart + chunk * CHUNK_BYTES);
    this.bitmap[chunk >> 3] |= 1 << (chunk & 7);
    fs.writeSync(this.fd, this.bitmap, chunk >> 3, 1, HEADER_BYTES + (chunk >> 3));
  }

  read(chunk: number): Buffer {
    const out = Buffer.alloc(chunkLength(chunk, this.diskBytes));
    fs.readSync(this.fd, out, 0, out.length, this.dataStart + chunk * CHUNK_BYTES);
    return out;
  }

  sync(): void {
    fs.fsyncSync(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function chunkLength(chunk: number, diskBytes: number): number {
  return Math.min(CHUNK_BYTES, diskBytes - chunk * CHUNK_BYTES);
}

function readChunk(diskFd: number, chunk: number, diskBytes: number): Buffer {
  const out = Buffer.alloc(chunkLength(chunk, diskBytes));
  let done = 0;
  while (done < out.length) {
    const n = fs.readSync(diskFd, out, done, out.length - done, chunk * CHUNK_BYTES + done);
    if (n === 0) break;
    done += n;
  }
  return out;
}

/**
 * Before the bytes [start, start + length) of the disk change: copies each chunk they touch into
 * every store that does not hold it yet (read once from the disk, whatever the number of stores).
 */
export function keepBeforeWrite(diskFd: number, diskBytes: number, stores: readonly CowStore[], start: number, length: number): void {
  if (!stores.length || length <= 0) return;
  const first = Math.floor(start / CHUNK_BYTES);
  const last = Math.min(Math.floor((start + length - 1) / CHUNK_BYTES), Math.ceil(diskBytes / CHUNK_BYTES) - 1);
  for (let c = first; c <= last; c++) {
    const lacking = stores.filter((s) => !s.has(c));
    if (!lacking.length) continue;
    const old = readChunk(diskFd, c, diskBytes);
    for (const s of lacking) s.keep(c, old);
  }
}

/**
 * Puts the disk back as it was at `target`'s snapshot: every chunk `target` holds is written back,
 * each after the disk's current contents went to the `others` that lack it (so they stay exact).
 * Returns the bytes written back. The disk's writer must be stopped.
 */
export function revertDisk(diskPath: string, target: CowStore, others: readonly CowStore[]): number {
  const fd = fs.openSync(diskPath, 'r+');
  let bytes = 0;
  try {
    const size = fs.fstatSync(fd).size;
    if (size !== target.diskBytes) throw new CowStoreError(`disk '${diskPath}' has ${size} bytes, but its snapshot store '${target.path}' is for ${target.diskBytes} (resized since the snapshot)`);
    for (const c of target.held()) {
      keepBeforeWrite(fd, size, others, c * CHUNK_BYTES, 1);
      const data = target.read(c);
      fs.writeSync(fd, data, 0, data.length, c * CHUNK_BYTES);
      bytes += data.length;
    }
    fs.fsyncSync(fd);
    for (const s of others) s.sync();
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}
