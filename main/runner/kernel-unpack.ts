// Direct kernel boot without the guest's own decompressor. Most of the time before a v86 guest's
// first kernel line goes to the bzImage's XZ decompressor running as emulated code (about 24 of 38 s
// under load, measured 2026-12-03). The runner unpacks the payload on the host instead and gives v86
// a flat image: the real-mode setup unchanged, then memory from 1 MiB with the kernel's segments at
// their physical addresses, and the setup header's code32_start (the hook the boot protocol leaves
// to boot loaders) pointing at the uncompressed kernel's own 32-bit entry, so that the setup code
// jumps straight into it. Anything this does not recognise is booted as it was.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

type XzModule = typeof import('xz-decompress');

const MiB = 1024 * 1024;
/** Where v86 copies the protected-mode part of a bzImage. */
const PM_ADDRESS = 0x100000;

export interface UnpackedKernel {
  image: ArrayBuffer;
  /** The payload's compression, for the log. */
  format: 'xz' | 'gzip';
  entry: number;
}

/**
 * A flat image of `bzimage`, or why not (the caller then boots the bzImage as is). `limit` is the
 * guest-physical address the image must stay below (the initrd's place, or the end of RAM).
 */
export async function unpackKernel(bzimage: ArrayBuffer, limit: number): Promise<UnpackedKernel | { skipped: string }> {
  const got = await kernelElf(bzimage, (size) => (size > limit - PM_ADDRESS ? `the kernel unpacks to ${size} bytes, more than fits below ${limit / MiB} MiB` : undefined));
  if ('skipped' in got) return got;
  const flat = flatten(Buffer.from(bzimage, 0, got.setupLength), got.elf, limit);
  return typeof flat === 'string' ? { skipped: flat } : { image: flat.image, entry: flat.entry, format: got.format };
}

/**
 * The uncompressed kernel (vmlinux, an ELF) in a bzImage's payload, or why not. `refuse` sees the
 * uncompressed size before anything is unpacked.
 */
export async function kernelElf(
  bzimage: ArrayBuffer,
  refuse: (size: number) => string | undefined = () => undefined,
): Promise<{ elf: Buffer; format: UnpackedKernel['format']; setupLength: number } | { skipped: string }> {
  const bz = Buffer.from(bzimage);
  if (bz.length < 0x268 || bz.toString('latin1', 0x202, 0x206) !== 'HdrS') return { skipped: 'not a bzImage' };
  if (bz.readUInt16LE(0x206) < 0x208) return { skipped: 'boot protocol before 2.08 (no payload fields)' };
  const setupLength = ((bz[0x1f1] || 4) + 1) * 512;
  const payloadOffset = bz.readUInt32LE(0x248);
  const payloadLength = bz.readUInt32LE(0x24c);
  const start = setupLength + payloadOffset;
  // The build appends the uncompressed size (4 bytes) to every payload.
  if (payloadLength < 16 || start + payloadLength > bz.length) return { skipped: 'payload outside the file' };
  const payload = bz.subarray(start, start + payloadLength - 4);
  const size = bz.readUInt32LE(start + payloadLength - 4);
  const refused = refuse(size);
  if (refused) return { skipped: refused };
  try {
    if (payload[0] === 0x1f && payload[1] === 0x8b) return { elf: zlib.gunzipSync(payload, { maxOutputLength: size }), format: 'gzip', setupLength };
    if (payload.subarray(0, 6).equals(XZ_MAGIC)) {
      const got = await unxz(payload, size);
      return typeof got === 'string' ? { skipped: got } : { elf: got, format: 'xz', setupLength };
    }
    return { skipped: 'the payload is neither XZ nor gzip' };
  } catch (err) {
    return { skipped: `the payload does not unpack: ${(err as Error).message}` };
  }
}

export interface LoadSegment {
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

/** The PT_LOAD segments of a 32-bit little-endian i386 executable, or why they cannot be read. */
export function elfLoads(elf: Buffer): LoadSegment[] | string {
  if (elf.length < 52 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 1 || elf[5] !== 1) return 'the payload is not a 32-bit little-endian ELF';
  if (elf.readUInt16LE(16) !== 2 || elf.readUInt16LE(18) !== 3) return 'the payload is not an i386 executable';
  const phoff = elf.readUInt32LE(28);
  const phentsize = elf.readUInt16LE(42);
  const phnum = elf.readUInt16LE(44);
  if (phentsize < 32 || phnum === 0 || phnum > 64 || phoff + phnum * phentsize > elf.length) return 'bad ELF program headers';
  const loads: LoadSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const h = phoff + i * phentsize;
    if (elf.readUInt32LE(h) !== 1) continue;
    const [offset, vaddr, paddr, filesz, memsz] = [4, 8, 12, 16, 20].map((o) => elf.readUInt32LE(h + o));
    if (filesz > memsz || offset + filesz > elf.length) return 'a segment lies outside the ELF';
    loads.push({ offset, vaddr, paddr, filesz, memsz });
  }
  return loads;
}

/** The setup code, then memory from 1 MiB as the kernel's PT_LOAD segments fill it. */
function flatten(setup: Buffer, elf: Buffer, limit: number): { image: ArrayBuffer; entry: number } | string {
  const loads = elfLoads(elf);
  if (typeof loads === 'string') return loads;
  const entry = elf.readUInt32LE(24);
  const outside = loads.find((l) => l.paddr < PM_ADDRESS || l.paddr + l.memsz > limit);
  if (outside) return `a segment at 0x${outside.paddr.toString(16)} does not fit between 1 MiB and ${limit / MiB} MiB`;
  if (!loads.some((l) => entry >= l.paddr && entry < l.paddr + l.filesz)) return 'the entry point is in no loaded segment';
  const end = Math.max(...loads.map((l) => l.paddr + l.memsz));
  const out = new Uint8Array(setup.length + end - PM_ADDRESS);
  out.set(setup);
  for (const l of loads) out.set(elf.subarray(l.offset, l.offset + l.filesz), setup.length + l.paddr - PM_ADDRESS);
  new DataView(out.buffer).setUint32(0x214, entry, true); // code32_start
  return { image: out.buffer, entry };
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
const FILTER_X86 = 0x04;
const FILTER_LZMA2 = 0x21;

function readVarint(b: Buffer, at: { pos: number }): number {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    if (at.pos >= b.length) throw new Error('truncated XZ header');
    const byte = b[at.pos++];
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (!(byte & 0x80)) return value;
  }
  throw new Error('bad XZ number');
}

function writeVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

const crc = (bytes: Uint8Array): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(zlib.crc32(bytes));
  return b;
};
const pad4 = (n: number): number[] => new Array<number>((4 - (n % 4)) % 4).fill(0);

/**
 * A kernel's XZ payload: one block, filters x86 BCJ + LZMA2 (scripts/xz_wrap.sh). The wasm decoder
 * (xz-embedded) has no BCJ filter, so the block is re-wrapped as plain LZMA2 in a stream without a
 * check, decoded, and the x86 filter undone here.
 */
export async function unxz(stream: Buffer, size: number): Promise<Buffer | string> {
  if (stream.length < 32 || stream.toString('latin1', stream.length - 2) !== 'YZ') return 'no XZ stream footer';
  const checkSize = CHECK_SIZES[stream[7] & 0x0f];
  const footer = stream.length - 12;
  const indexSize = (stream.readUInt32LE(footer + 4) + 1) * 4;
  const at = { pos: footer - indexSize };
  if (at.pos < 12 || stream[at.pos++] !== 0) return 'no XZ index';
  if (readVarint(stream, at) !== 1) return 'the XZ stream has more than one block';
  const unpadded = readVarint(stream, at);
  const uncompressed = readVarint(stream, at);
  if (uncompressed !== size) return `the XZ index says ${uncompressed} bytes, the kernel header ${size}`;

  const headerSize = (stream[12] + 1) * 4;
  const flags = stream[13];
  const h = { pos: 14 };
  if (flags & 0x40) readVarint(stream, h);
  if (flags & 0x80) readVarint(stream, h);
  const filters: { id: number; props: Buffer }[] = [];
  for (let i = 0; i <= (flags & 3); i++) {
    const id = readVarint(stream, h);
    const n = readVarint(stream, h);
    filters.push({ id, props: stream.subarray(h.pos, h.pos + n) });
    h.pos += n;
  }
  if (h.pos > 12 + headerSize - 4) return 'bad XZ block header';
  const [bcj, lzma2] = filters.length === 2 ? filters : [undefined, filters[0]];
  if (lzma2?.id !== FILTER_LZMA2 || lzma2.props.length !== 1) return 'the XZ block is not LZMA2';
  if (bcj && (bcj.id !== FILTER_X86 || bcj.props.length !== 0)) return `XZ filter 0x${bcj.id.toString(16)} is not supported`;
  const dataStart = 12 + headerSize;
  const dataLength = unpadded - headerSize - checkSize;
  if (dataLength <= 0 || dataStart + dataLength > footer - indexSize) return 'bad XZ block size';

  const header = [0, 0x00, FILTER_LZMA2, 1, lzma2.props[0], 0, 0, 0];
  header[0] = (header.length + 4) / 4 - 1;
  const blockHeader = Buffer.from(header);
  const index = [0x00, ...writeVarint(1), ...writeVarint(blockHeader.length + 4 + dataLength), ...writeVarint(size)];
  index.push(...pad4(index.length));
  const indexBytes = Buffer.from(index);
  const backward = Buffer.alloc(6);
  backward.writeUInt32LE((indexBytes.length + 4) / 4 - 1);
  const rewrapped = Buffer.concat([
    XZ_MAGIC,
    Buffer.from([0, 0]),
    crc(Buffer.from([0, 0])),
    blockHeader,
    crc(blockHeader),
    stream.subarray(dataStart, dataStart + dataLength),
    Buffer.from(pad4(dataLength)),
    indexBytes,
    crc(indexBytes),
    crc(backward),
    backward,
    Buffer.from('YZ'),
  ]);
  const out = Buffer.alloc(size);
  let filled = 0;
  // Loaded here, not at the top: a runner that finds the kernel in its cache, or restores and is not rebooted, never needs it.
  const xz = createRequire(import.meta.url)('xz-decompress') as XzModule;
  const reader = new xz.XzReadableStream(new Blob([rewrapped]).stream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (filled + value.length > size) return 'the XZ data unpacks to more than its index says';
      out.set(value, filled);
      filled += value.length;
    }
  } finally {
    releaseXzInstance(xz);
  }
  if (filled !== size) return `the XZ data unpacks to ${filled} bytes, its index says ${size}`;
  if (bcj) undoX86Filter(out);
  return out;
}

/**
 * xz-decompress keeps its wasm instance in static fields for the life of the process, and with it a
 * wasm memory grown to ~35 MiB by a kernel's dictionary (wasm memory never shrinks): dropped once
 * the kernel is out, so the garbage collector frees it. A later unpack (a reboot) instantiates anew.
 */
function releaseXzInstance(xz: XzModule): void {
  const cached = xz.XzReadableStream as unknown as { _moduleInstance?: unknown; _moduleInstancePromise?: unknown };
  cached._moduleInstance = undefined;
  cached._moduleInstancePromise = undefined;
}

/** xz's x86 BCJ decoder (xz-embedded's bcj_x86), for one buffer starting at offset 0. */
function undoX86Filter(buf: Uint8Array): void {
  const allowed = [true, true, true, false, true, false, false, false];
  const bitNum = [0, 1, 2, 2, 3, 3, 3, 3];
  const msbyte = (b: number): boolean => b === 0x00 || b === 0xff;
  let prevPos = -1;
  let prevMask = 0;
  const size = buf.length - 4;
  for (let i = 0; i < size; i++) {
    if ((buf[i] & 0xfe) !== 0xe8) continue;
    const gap = i - prevPos;
    if (gap > 3) {
      prevMask = 0;
    } else {
      prevMask = (prevMask << (gap - 1)) & 7;
      if (prevMask !== 0) {
        const b = buf[i + 4 - bitNum[prevMask]];
        if (!allowed[prevMask] || msbyte(b)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          continue;
        }
      }
    }
    prevPos = i;
    if (msbyte(buf[i + 4])) {
      let src = (buf[i + 1] | (buf[i + 2] << 8) | (buf[i + 3] << 16) | (buf[i + 4] << 24)) >>> 0;
      let dest: number;
      for (;;) {
        dest = (src - (i + 5)) >>> 0;
        if (prevMask === 0) break;
        const j = bitNum[prevMask] * 8;
        const b = (dest >>> (24 - j)) & 0xff;
        if (!msbyte(b)) break;
        src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
      }
      dest &= 0x01ffffff;
      dest = (dest | (0 - (dest & 0x01000000))) >>> 0;
      buf[i + 1] = dest & 0xff;
      buf[i + 2] = (dest >>> 8) & 0xff;
      buf[i + 3] = (dest >>> 16) & 0xff;
      buf[i + 4] = dest >>> 24;
      i += 4;
    } else {
      prevMask = (prevMask << 1) | 1;
    }
  }
}
