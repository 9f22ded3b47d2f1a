// Disk image files: probe (format, capacity, allocation), create, clone and grow. Raw images are
// plain sparse files handled here; qcow2 goes through qemu-img (QEMU's own tool, which knows the
// format's metadata). Every new file appears complete or not at all: it is built under a temporary
// name, fsynced, then linked to its final name (link fails if the name exists, so nothing is
// overwritten) and the directory is fsynced.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fsyncPath, systemErrorText } from '../../common/fsutil.js';
import { InputFileError, openInputFile } from '../../common/input-file.js';

const run = promisify(execFile);
const readAsync = promisify(fs.read);
const writeAsync = promisify(fs.write);

export type ImageFormat = 'raw' | 'qcow2' | 'iso' | 'unknown';

export class ImageError extends Error {
  constructor(
    readonly kind: 'exists' | 'not-found' | 'invalid' | 'unsupported' | 'io',
    message: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

export interface ImageProbe {
  format: ImageFormat;
  /** What the guest sees (qcow2: the virtual size from the header). */
  capacityBytes: number;
  /** What the file occupies on the host (st_blocks × 512): less than the capacity when sparse. */
  allocationBytes: number;
}

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
/** ISO 9660 primary volume descriptor: "CD001" at sector 16 (2048-byte sectors), offset 1. */
const ISO_MAGIC_OFFSET = 16 * 2048 + 1;

export function probeImage(file: string): ImageProbe {
  const { fd, stats: st } = openUntrusted(file);
  try {
    const allocationBytes = st.blocks * 512;
    const head = Buffer.alloc(32);
    const n = fs.readSync(fd, head, 0, 32, 0);
    if (n >= 32 && head.readUInt32BE(0) === QCOW2_MAGIC) {
      return { format: 'qcow2', capacityBytes: Number(head.readBigUInt64BE(24)), allocationBytes };
    }
    const iso = Buffer.alloc(5);
    if (st.size > ISO_MAGIC_OFFSET + 5 && fs.readSync(fd, iso, 0, 5, ISO_MAGIC_OFFSET) === 5 && iso.toString('latin1') === 'CD001') {
      return { format: 'iso', capacityBytes: st.size, allocationBytes };
    }
    return { format: 'raw', capacityBytes: st.size, allocationBytes };
  } finally {
    fs.closeSync(fd);
  }
}

/** A volume's file, opened without blocking on whatever kind of file the path turned out to be. */
function openUntrusted(file: string): { fd: number; stats: fs.Stats } {
  try {
    return openInputFile(file);
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    throw new ImageError(err.code === 'ENOENT' ? 'not-found' : err.kind ? 'invalid' : 'io', err.message);
  }
}

/** The qemu-img binary, or an error that says how to get it. */
async function qemuImg(): Promise<string> {
  try {
    await run('qemu-img', ['--version']);
    return 'qemu-img';
  } catch {
    throw new ImageError('unsupported', "qcow2 images need qemu-img, which is not installed: install Debian's package 'qemu-utils' (apt-get install qemu-utils)");
  }
}

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
}

/** Gives the finished temporary file its name without ever replacing an existing file. */
function publish(tmp: string, file: string): void {
  fsyncPath(tmp);
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ImageError('exists', `'${file}' already exists`);
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncPath(path.dirname(file));
}

async function building(file: string, build: (tmp: string) => Promise<void> | void): Promise<void> {
  if (fs.existsSync(file)) throw new ImageError('exists', `'${file}' already exists`);
  const tmp = tempName(file);
  try {
    await build(tmp);
    publish(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw ioError(err, `cannot write '${file}'`);
  }
}

/** A failed system call (a full disk) as an ImageError saying what could not be done and why. */
function ioError(err: unknown, what: string): unknown {
  if (err instanceof ImageError || typeof (err as NodeJS.ErrnoException).code !== 'string') return err;
  return new ImageError('io', `${what}: ${systemErrorText(err)}`);
}

/** Runs qemu-img on `file` (or its temporary `tmp`); its complaint becomes an ImageError naming `file`. */
async function runQemuImg(args: string[], file: string, tmp = file): Promise<void> {
  const tool = await qemuImg();
  try {
    await run(tool, args);
  } catch (err) {
    const stderr = ((err as { stderr?: string }).stderr ?? '').trim();
    if (!stderr) throw err;
    // "qemu-img: /dir/.x.tmp: Could not write qcow2 header: No space left on device"
    const why = stderr.replace(/^qemu-img: /, '').replace(`${tmp}: `, '');
    throw new ImageError('io', `qemu-img ${args[0]} '${file}': ${why}`);
  }
}

/** A new empty image: raw is a sparse file of the capacity (no block allocated), qcow2 via qemu-img. */
export async function createImage(file: string, capacityBytes: number, format: 'raw' | 'qcow2'): Promise<void> {
  if (format === 'qcow2') await qemuImg();
  await building(file, async (tmp) => {
    if (format === 'qcow2') {
      await runQemuImg(['create', '-q', '-f', 'qcow2', tmp, String(capacityBytes)], file, tmp);
      return;
    }
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.ftruncateSync(fd, capacityBytes);
    } finally {
      fs.closeSync(fd);
    }
  });
}

const COPY_CHUNK = 1024 * 1024;
const BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

export interface CloneOptions {
  /** false: always copy (tests of the copy on filesystems that can reflink). */
  reflink?: boolean;
  /** Bytes of the source done so far (a reflink reports the whole at once). */
  onProgress?: (doneBytes: number) => void;
  /** Stops the copy between chunks; nothing of the new file is left. */
  signal?: AbortSignal;
}

/** The error of a copy stopped through its signal. */
export class CopyAborted extends Error {}

/**
 * Copies `source` to a new file, keeping holes: a reflink when the filesystem can share blocks
 * (btrfs, XFS, APFS: instant, no space used), otherwise a copy that writes only the non-zero 4 KiB
 * blocks into a file of the same size, so a sparse image stays sparse. The copy goes chunk by chunk
 * through the event loop, so a long one reports progress and can be stopped.
 */
export async function cloneImage(source: string, file: string, opts: CloneOptions = {}): Promise<void> {
  await building(file, async (tmp) => {
    if (opts.reflink !== false) {
      try {
        fs.copyFileSync(source, tmp, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE_FORCE);
        opts.onProgress?.(fs.statSync(tmp).size);
        return;
      } catch {
        fs.rmSync(tmp, { force: true });
      }
    }
    await sparseCopy(source, tmp, opts);
  });
}

async function sparseCopy(source: string, target: string, opts: CloneOptions): Promise<void> {
  const reading = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw ioError(err, `cannot read '${source}'`);
    }
  };
  const { fd: src, stats } = openUntrusted(source);
  let dst: number | undefined;
  try {
    dst = fs.openSync(target, 'wx', 0o644);
    const size = stats.size;
    fs.ftruncateSync(dst, size);
    const buf = Buffer.alloc(COPY_CHUNK);
    for (let pos = 0; pos < size; ) {
      if (opts.signal?.aborted) throw new CopyAborted(`copy of '${source}' stopped`);
      const { bytesRead: n } = await reading(() => readAsync(src, buf, 0, Math.min(COPY_CHUNK, size - pos), pos));
      if (n === 0) throw new ImageError('io', `'${source}' ended early (at byte ${pos} of ${size})`);
      // Write each run of non-zero blocks in one call; zero blocks stay holes. The last block of
      // the file may be short.
      let runStart = -1;
      for (let off = 0; off < n; off += BLOCK) {
        const end = Math.min(off + BLOCK, n);
        const zero = ZERO_BLOCK.compare(buf, off, end, 0, end - off) === 0;
        if (!zero && runStart < 0) runStart = off;
        if (zero && runStart >= 0) {
          await writeAll(dst, buf.subarray(runStart, off), pos + runStart);
          runStart = -1;
        }
      }
      if (runStart >= 0) await writeAll(dst, buf.subarray(runStart, n), pos + runStart);
      pos += n;
      opts.onProgress?.(pos);
    }
  } finally {
    fs.closeSync(src);
    if (dst !== undefined) fs.closeSync(dst);
  }
}

/** A write may be short (a filesystem filling up): the rest is written until done or an error. */
async function writeAll(fd: number, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) done += (await writeAsync(fd, data, done, data.length - done, position + done)).bytesWritten;
}

/** Grows an image to `capacityBytes`; shrinking would cut off guest data and is refused. */
export async function resizeImage(file: string, capacityBytes: number): Promise<void> {
  const probe = probeImage(file);
  if (capacityBytes < probe.capacityBytes) {
    throw new ImageError(
      'invalid',
      `cannot shrink '${path.basename(file)}' from ${probe.capacityBytes} to ${capacityBytes} bytes: shrinking would cut off the guest's data (only growing is supported)`,
    );
  }
  if (capacityBytes === probe.capacityBytes) return;
  if (probe.format === 'qcow2') {
    await runQemuImg(['resize', '-q', file, String(capacityBytes)], file);
  } else if (probe.format === 'raw') {
    // One ftruncate: the file has either the old or the new size; the new part is a hole.
    const fd = fs.openSync(file, 'r+');
    try {
      fs.ftruncateSync(fd, capacityBytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } else {
    throw new ImageError('unsupported', `cannot resize '${path.basename(file)}': ${probe.format} images have a fixed size`);
  }
}
