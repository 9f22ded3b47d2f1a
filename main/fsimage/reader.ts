// Bounded positional reads from an image file. Every read is checked against the file (or slice)
// bounds and counted against a budget, so a hostile image cannot make the host read without end.
import fs from 'node:fs';
import { InputFileError, openInputFile } from '../common/input-file.js';
import { FsImageError, corrupt, limit } from './errors.js';

export const MiB = 1024 * 1024;

export interface Budget {
  /** Total bytes that may be read from the file over the reader's life. */
  maxBytesRead: number;
  /** Largest single read (and so the largest buffer allocated for one). */
  maxReadBytes: number;
  /** Wall-clock deadline (Date.now() value) after which every read fails. */
  deadline: number;
}

export const DEFAULT_BUDGET = {
  maxBytesRead: 1024 * MiB,
  maxReadBytes: 256 * MiB,
  timeoutMs: 60_000,
};

/** An open image file. Close it when done. */
export class ImageFile {
  readonly size: number;
  bytesRead = 0;
  private readonly budget: Budget;

  private constructor(
    readonly path: string,
    private fd: number | undefined,
    size: number,
    budget: Partial<typeof DEFAULT_BUDGET>,
  ) {
    this.size = size;
    const b = { ...DEFAULT_BUDGET, ...budget };
    this.budget = { maxBytesRead: b.maxBytesRead, maxReadBytes: b.maxReadBytes, deadline: Date.now() + b.timeoutMs };
  }

  static open(file: string, budget: Partial<typeof DEFAULT_BUDGET> = {}): ImageFile {
    let fd: number;
    let st: fs.Stats;
    try {
      ({ fd, stats: st } = openInputFile(file, { blockDevices: true }));
    } catch (err) {
      if (err instanceof InputFileError && err.kind) throw new FsImageError('io', err.message);
      throw new FsImageError('io', `cannot open '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      let size = st.size;
      if (st.isBlockDevice()) size = blockDeviceSize(fd);
      return new ImageFile(file, fd, size, budget);
    } catch (err) {
      fs.closeSync(fd);
      if (err instanceof FsImageError) throw err;
      throw new FsImageError('io', `cannot read '${file}': ${(err as Error).message}`);
    }
  }

  /** Reads exactly `length` bytes at `offset` (both checked against the file and the budget). */
  read(offset: number, length: number): Buffer {
    if (this.fd === undefined) throw new FsImageError('io', 'image is closed');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw corrupt(`invalid read of ${length} bytes at ${offset}`);
    }
    if (offset + length > this.size) {
      throw corrupt(`read of ${length} bytes at ${offset} is beyond the end of the image (${this.size} bytes)`);
    }
    if (length > this.budget.maxReadBytes) throw limit(`a single read of ${length} bytes exceeds the limit of ${this.budget.maxReadBytes}`);
    if (this.bytesRead + length > this.budget.maxBytesRead) {
      throw limit(`reading more than ${this.budget.maxBytesRead} bytes from the image exceeds the budget`);
    }
    if (Date.now() > this.budget.deadline) throw limit('reading the image took too long');
    this.bytesRead += length;
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      } catch (err) {
        throw new FsImageError('io', `read error in '${this.path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (n === 0) throw new FsImageError('io', `'${this.path}' ended early (it shrank while being read)`);
      done += n;
    }
    return buf;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A block device's size: fstat says 0, so seek-free probing by reading at doubling offsets. */
function blockDeviceSize(fd: number): number {
  const one = Buffer.alloc(1);
  let lo = 0;
  let hi = 1;
  while (fs.readSync(fd, one, 0, 1, hi * 512) === 1 && hi < 2 ** 40) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fs.readSync(fd, one, 0, 1, mid * 512) === 1) lo = mid;
    else hi = mid;
  }
  return hi * 512;
}

/** A byte range of the image (a partition, or the whole disk) with reads checked against it. */
export class Slice {
  constructor(
    readonly image: ImageFile,
    readonly start: number,
    readonly size: number,
  ) {
    if (start < 0 || size < 0 || start + size > image.size) {
      throw corrupt(`range of ${size} bytes at ${start} is outside the image (${image.size} bytes)`);
    }
  }

  read(offset: number, length: number): Buffer {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw corrupt(`read of ${length} bytes at ${offset} is outside the filesystem (${this.size} bytes)`);
    }
    return this.image.read(this.start + offset, length);
  }
}

/** A small cache of fixed-size blocks over a slice, for metadata read again and again. */
export class BlockCache {
  private readonly blocks = new Map<number, Buffer>();
  constructor(
    private readonly slice: Slice,
    readonly blockSize: number,
    private readonly capacity = 512,
  ) {}

  block(n: number): Buffer {
    const hit = this.blocks.get(n);
    if (hit) {
      this.blocks.delete(n);
      this.blocks.set(n, hit);
      return hit;
    }
    const buf = this.slice.read(n * this.blockSize, this.blockSize);
    if (this.blocks.size >= this.capacity) this.blocks.delete(this.blocks.keys().next().value as number);
    this.blocks.set(n, buf);
    return buf;
  }
}
