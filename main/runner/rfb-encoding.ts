// RFB pixel formats and rectangle encoders (Raw, ZRLE, Tight's fill/palette/basic zlib; CopyRect is
// decided by the viewer, which knows what the client holds). The framebuffer is RGBA; each viewer has
// its own pixel format, and every encoder writes in it. ZRLE and Tight keep zlib streams for the
// whole connection (node:zlib, Z_SYNC_FLUSH after each rectangle), as the protocol requires.
import zlib from 'node:zlib';
import type { Framebuffer } from './framebuffer.js';

export const ENCODING_RAW = 0;
export const ENCODING_COPYRECT = 1;
export const ENCODING_TIGHT = 7;
export const ENCODING_ZRLE = 16;
/** CompressLevel pseudo-encodings: -256 + level (0–9). */
export const PSEUDO_COMPRESS_LEVEL_0 = -256;
export const PSEUDO_DESKTOP_SIZE = -223;
export const PSEUDO_QEMU_EXTENDED_KEY = -258;

export interface PixelFormat {
  bitsPerPixel: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** What ServerInit announces: 32 bpp, depth 24, little-endian, 0x00RRGGBB. */
export const SERVER_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
};

export function writePixelFormat(pf: PixelFormat): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(pf.bitsPerPixel, 0);
  b.writeUInt8(pf.depth, 1);
  b.writeUInt8(pf.bigEndian ? 1 : 0, 2);
  b.writeUInt8(pf.trueColour ? 1 : 0, 3);
  b.writeUInt16BE(pf.redMax, 4);
  b.writeUInt16BE(pf.greenMax, 6);
  b.writeUInt16BE(pf.blueMax, 8);
  b.writeUInt8(pf.redShift, 10);
  b.writeUInt8(pf.greenShift, 11);
  b.writeUInt8(pf.blueShift, 12);
  return b;
}

export function readPixelFormat(b: Buffer, offset: number): PixelFormat {
  return {
    bitsPerPixel: b.readUInt8(offset),
    depth: b.readUInt8(offset + 1),
    bigEndian: b.readUInt8(offset + 2) !== 0,
    trueColour: b.readUInt8(offset + 3) !== 0,
    redMax: b.readUInt16BE(offset + 4),
    greenMax: b.readUInt16BE(offset + 6),
    blueMax: b.readUInt16BE(offset + 8),
    redShift: b.readUInt8(offset + 10),
    greenShift: b.readUInt8(offset + 11),
    blueShift: b.readUInt8(offset + 12),
  };
}

/** Why a pixel format cannot be served, or undefined if it can. */
export function unsupportedPixelFormat(pf: PixelFormat): string | undefined {
  if (!pf.trueColour) return 'colour-map pixel formats are not supported';
  if (pf.bitsPerPixel !== 8 && pf.bitsPerPixel !== 16 && pf.bitsPerPixel !== 32) {
    return `${pf.bitsPerPixel} bits per pixel is not supported (8, 16 or 32)`;
  }
  const fits = (max: number, shift: number) => max > 0 && max < 65536 && shift + Math.log2(max + 1) <= pf.bitsPerPixel;
  if (!fits(pf.redMax, pf.redShift) || !fits(pf.greenMax, pf.greenShift) || !fits(pf.blueMax, pf.blueShift)) {
    return 'colour fields do not fit in the pixel';
  }
  return undefined;
}

/** Converts RGBA framebuffer pixels into one client's pixel format. */
export class PixelConverter {
  readonly bytesPerPixel: number;
  private readonly red = new Uint32Array(256);
  private readonly green = new Uint32Array(256);
  private readonly blue = new Uint32Array(256);

  constructor(readonly format: PixelFormat) {
    this.bytesPerPixel = format.bitsPerPixel / 8;
    for (let v = 0; v < 256; v++) {
      this.red[v] = Math.round((v * format.redMax) / 255) << format.redShift;
      this.green[v] = Math.round((v * format.greenMax) / 255) << format.greenShift;
      this.blue[v] = Math.round((v * format.blueMax) / 255) << format.blueShift;
    }
  }

  /** One framebuffer word (RGBA bytes read as a little-endian int) as the client's pixel value. */
  value(word: number): number {
    return (this.red[word & 0xff] | this.green[(word >>> 8) & 0xff] | this.blue[(word >>> 16) & 0xff]) >>> 0;
  }

  /** Writes a pixel value in the client's size and byte order. */
  write(out: Buffer, o: number, px: number): void {
    const bpp = this.bytesPerPixel;
    if (bpp === 4) this.format.bigEndian ? out.writeUInt32BE(px, o) : out.writeUInt32LE(px, o);
    else if (bpp === 2) this.format.bigEndian ? out.writeUInt16BE(px, o) : out.writeUInt16LE(px, o);
    else out[o] = px;
  }

  /** Pixels of the rectangle, row by row, in the client's format. */
  convert(fb: Framebuffer, x: number, y: number, w: number, h: number): Buffer {
    const bpp = this.bytesPerPixel;
    const out = Buffer.alloc(w * h * bpp);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const little = !this.format.bigEndian;
    const src = fb.rgba;
    const { red, green, blue } = this;
    let o = 0;
    for (let row = y; row < y + h; row++) {
      let s = (row * fb.width + x) * 4;
      for (let col = 0; col < w; col++, s += 4, o += bpp) {
        const px = (red[src[s]] | green[src[s + 1]] | blue[src[s + 2]]) >>> 0;
        if (bpp === 4) view.setUint32(o, px, little);
        else if (bpp === 2) view.setUint16(o, px, little);
        else out[o] = px;
      }
    }
    return out;
  }
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function rectHeader(r: Rect, encoding: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(r.x, 0);
  b.writeUInt16BE(r.y, 2);
  b.writeUInt16BE(r.w, 4);
  b.writeUInt16BE(r.h, 6);
  b.writeInt32BE(encoding, 8);
  return b;
}

/** A CopyRect rectangle: the client copies (sx, sy) of its own screen to r. */
export function copyRect(r: Rect, sx: number, sy: number): Buffer[] {
  const src = Buffer.alloc(4);
  src.writeUInt16BE(sx, 0);
  src.writeUInt16BE(sy, 2);
  return [rectHeader(r, ENCODING_COPYRECT), src];
}

/**
 * One zlib stream of a connection. Rectangles are compressed in the order they are submitted (the
 * client inflates them in that order); each ends with a sync flush so the client can decode it.
 * Compression runs on libuv's thread pool, off the emulator's thread.
 */
export class ZStream {
  private readonly deflate: zlib.Deflate;
  private chunks: Buffer[] = [];
  private chain: Promise<unknown> = Promise.resolve();

  constructor(level: number) {
    this.deflate = zlib.createDeflate({ level });
    this.deflate.on('data', (c: Buffer) => this.chunks.push(c));
  }

  compress(data: Buffer): Promise<Buffer> {
    const done = this.chain.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          this.deflate.write(data, (err) => err && reject(err));
          this.deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            const out = Buffer.concat(this.chunks);
            this.chunks = [];
            resolve(out);
          });
        }),
    );
    this.chain = done.catch(() => undefined);
    return done;
  }

  close(): void {
    this.deflate.close();
  }
}

/** Per-connection encoder state: its zlib streams (created on first use) and the client's level. */
export class EncoderContext {
  private readonly streams = new Map<string, ZStream>();
  /** zlib level from the client's CompressLevel pseudo-encoding; 1 by default (speed over size). */
  level = 1;

  stream(name: string): ZStream {
    let s = this.streams.get(name);
    if (!s) this.streams.set(name, (s = new ZStream(this.level)));
    return s;
  }

  close(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }
}

/**
 * Encodes one rectangle (header included). The framebuffer is read synchronously, before the first
 * await, so the pixels are those of the moment the update was built.
 */
export type RectEncoder = (fb: Framebuffer, r: Rect, pixels: PixelConverter, ctx: EncoderContext) => Promise<Buffer[][]>;

const encodeRaw: RectEncoder = (fb, r, pixels) => Promise.resolve([[rectHeader(r, ENCODING_RAW), pixels.convert(fb, r.x, r.y, r.w, r.h)]]);

function words(fb: Framebuffer): Int32Array {
  return new Int32Array(fb.rgba.buffer, fb.rgba.byteOffset, fb.rgba.byteLength >> 2);
}

/**
 * Distinct colours of a region in order of first appearance, or undefined beyond `max`. The map
 * gives each colour's index.
 */
function palette(src: Int32Array, stride: number, r: Rect, max: number): Map<number, number> | undefined {
  const pal = new Map<number, number>();
  let last = src[r.y * stride + r.x] ^ 1;
  for (let y = r.y; y < r.y + r.h; y++) {
    for (let i = y * stride + r.x, end = i + r.w; i < end; i++) {
      const v = src[i];
      if (v === last || pal.has(v)) {
        last = v;
        continue;
      }
      if (pal.size === max) return undefined;
      pal.set(v, pal.size);
      last = v;
    }
  }
  return pal;
}

/** Growable byte buffer for building uncompressed encoder output. */
class Bytes {
  buf: Buffer;
  n = 0;
  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }
  ensure(extra: number): void {
    if (this.n + extra <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.n + extra));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }
  byte(v: number): void {
    this.ensure(1);
    this.buf[this.n++] = v;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.n);
  }
}

// ZRLE (RFB 3.8 §7.7.6): 64×64 tiles, each solid, packed palette (2–16 colours), palette RLE
// (17–127) or raw, in CPIXELs, all through the connection's zlib stream.

const ZRLE_TILE = 64;

/** Writes pixels in the client's format: `size` bytes a pixel. */
interface PixelWriter {
  size: number;
  put: (out: Bytes, word: number) => void;
}

/** Every pixel in full (bytesPerPixel), where ZRLE's CPIXEL and Tight's TPIXEL cannot be shorter. */
function fullPixelWriter(pixels: PixelConverter): PixelWriter {
  const bpp = pixels.bytesPerPixel;
  return {
    size: bpp,
    put: (out, word) => {
      out.ensure(bpp);
      pixels.write(out.buf, out.n, pixels.value(word));
      out.n += bpp;
    },
  };
}

/** CPIXEL writer: 3 bytes when a 32-bpp pixel's colour bits fit in its low or high three bytes. */
function cpixelWriter(pixels: PixelConverter): PixelWriter {
  const pf = pixels.format;
  const used = ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
  const low3 = (used & 0xff000000) === 0;
  const high3 = (used & 0xff) === 0;
  if (pf.bitsPerPixel === 32 && pf.depth <= 24 && pf.trueColour && (low3 || high3)) {
    // The three bytes that carry colour, in the client's byte order.
    const skipFirst = low3 ? pf.bigEndian : !pf.bigEndian;
    const tmp = Buffer.alloc(4);
    return {
      size: 3,
      put: (out, word) => {
        pixels.write(tmp, 0, pixels.value(word));
        out.ensure(3);
        tmp.copy(out.buf, out.n, skipFirst ? 1 : 0, skipFirst ? 4 : 3);
        out.n += 3;
      },
    };
  }
  return fullPixelWriter(pixels);
}

function zrleTile(out: Bytes, src: Int32Array, stride: number, t: Rect, cpix: PixelWriter): void {
  const pal = palette(src, stride, t, 127);
  if (pal && pal.size === 1) {
    out.byte(1);
    cpix.put(out, src[t.y * stride + t.x]);
    return;
  }
  if (pal && pal.size <= 16) {
    out.byte(pal.size);
    for (const c of pal.keys()) cpix.put(out, c);
    const bits = pal.size === 2 ? 1 : pal.size <= 4 ? 2 : 4;
    out.ensure(Math.ceil((t.w * bits) / 8) * t.h);
    for (let y = t.y; y < t.y + t.h; y++) {
      let acc = 0;
      let nbits = 0;
      for (let i = y * stride + t.x, end = i + t.w; i < end; i++) {
        acc = (acc << bits) | pal.get(src[i])!;
        nbits += bits;
        if (nbits === 8) {
          out.buf[out.n++] = acc;
          acc = 0;
          nbits = 0;
        }
      }
      if (nbits) out.buf[out.n++] = acc << (8 - nbits);
    }
    return;
  }
  if (pal) {
    out.byte(128 + pal.size);
    for (const c of pal.keys()) cpix.put(out, c);
    for (let y = t.y; y < t.y + t.h; y++) {
      for (let x = t.x; x < t.x + t.w; ) {
        const v = src[y * stride + x];
        let run = 1;
        while (x + run < t.x + t.w && src[y * stride + x + run] === v) run++;
        x += run;
        // Runs do not cross rows here (allowed, but rows keep it simple); length-1 in 255-byte steps.
        if (run === 1) {
          out.byte(pal.get(v)!);
        } else {
          out.byte(pal.get(v)! | 128);
          let rest = run - 1;
          while (rest >= 255) {
            out.byte(255);
            rest -= 255;
          }
          out.byte(rest);
        }
      }
    }
    return;
  }
  out.byte(0);
  for (let y = t.y; y < t.y + t.h; y++) for (let i = y * stride + t.x, end = i + t.w; i < end; i++) cpix.put(out, src[i]);
}

const encodeZrle: RectEncoder = async (fb, r, pixels, ctx) => {
  const src = words(fb);
  const cpix = cpixelWriter(pixels);
  const out = new Bytes(1024);
  for (let ty = r.y; ty < r.y + r.h; ty += ZRLE_TILE) {
    for (let tx = r.x; tx < r.x + r.w; tx += ZRLE_TILE) {
      const t = { x: tx, y: ty, w: Math.min(ZRLE_TILE, r.x + r.w - tx), h: Math.min(ZRLE_TILE, r.y + r.h - ty) };
      zrleTile(out, src, fb.width, t, cpix);
    }
  }
  const data = await ctx.stream('zrle').compress(out.result());
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return [[rectHeader(r, ENCODING_ZRLE), len, data]];
};

// Tight (basic compression without JPEG): a one-colour rectangle is a fill; up to 256 colours go
// through the palette filter (1 bit per pixel for two); otherwise the pixels are copied. Data of 12
// bytes or more is zlib-compressed on stream 0 (full colour), 1 (two colours) or 2 (indexed), the
// layout of TightVNC's server. Rectangles are at most 2048 pixels wide and 64 Ki pixels large.

const TIGHT_MAX_WIDTH = 2048;
const TIGHT_MAX_PIXELS = 65536;
const TIGHT_FILL = 0x80;
const TIGHT_EXPLICIT_FILTER = 0x40;
const TIGHT_FILTER_PALETTE = 1;
const TIGHT_MIN_TO_COMPRESS = 12;

/** TPIXEL writer: R, G, B bytes for 32-bpp depth-24 8-8-8 clients, else the client's pixel. */
function tpixelWriter(pixels: PixelConverter): PixelWriter {
  const pf = pixels.format;
  if (pf.bitsPerPixel === 32 && pf.depth === 24 && pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255) {
    return {
      size: 3,
      put: (out, word) => {
        out.ensure(3);
        out.buf[out.n++] = word & 0xff;
        out.buf[out.n++] = (word >>> 8) & 0xff;
        out.buf[out.n++] = (word >>> 16) & 0xff;
      },
    };
  }
  return fullPixelWriter(pixels);
}

function compactLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x4000) return Buffer.from([(n & 0x7f) | 0x80, n >> 7]);
  return Buffer.from([(n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14]);
}

async function tightData(ctx: EncoderContext, stream: number, data: Buffer): Promise<Buffer[]> {
  if (data.length < TIGHT_MIN_TO_COMPRESS) return [data];
  const z = await ctx.stream(`tight${stream}`).compress(data);
  return [compactLength(z.length), z];
}

function tightRect(fb: Framebuffer, r: Rect, pixels: PixelConverter, ctx: EncoderContext): Promise<Buffer[]> {
  const src = words(fb);
  const stride = fb.width;
  const tpix = tpixelWriter(pixels);
  const pal = palette(src, stride, r, 256);
  const head = rectHeader(r, ENCODING_TIGHT);
  if (pal && pal.size === 1) {
    const out = new Bytes(1 + tpix.size);
    out.byte(TIGHT_FILL);
    tpix.put(out, src[r.y * stride + r.x]);
    return Promise.resolve([head, out.result()]);
  }
  if (pal) {
    const stream = pal.size === 2 ? 1 : 2;
    const prefix = new Bytes(3 + pal.size * tpix.size);
    prefix.byte((stream << 4) | TIGHT_EXPLICIT_FILTER);
    prefix.byte(TIGHT_FILTER_PALETTE);
    prefix.byte(pal.size - 1);
    for (const c of pal.keys()) tpix.put(prefix, c);
    const rowBytes = pal.size === 2 ? Math.ceil(r.w / 8) : r.w;
    const data = Buffer.alloc(rowBytes * r.h);
    let o = 0;
    for (let y = r.y; y < r.y + r.h; y++) {
      const row = y * stride + r.x;
      if (pal.size === 2) {
        for (let x = 0; x < r.w; x++) if (pal.get(src[row + x])) data[o + (x >> 3)] |= 0x80 >> (x & 7);
      } else {
        for (let x = 0; x < r.w; x++) data[o + x] = pal.get(src[row + x])!;
      }
      o += rowBytes;
    }
    return tightData(ctx, stream, data).then((d) => [head, prefix.result(), ...d]);
  }
  const data = new Bytes(r.w * r.h * tpix.size);
  for (let y = r.y; y < r.y + r.h; y++) for (let i = y * stride + r.x, end = i + r.w; i < end; i++) tpix.put(data, src[i]);
  return tightData(ctx, 0, data.result()).then((d) => [head, Buffer.from([0]), ...d]);
}

const encodeTight: RectEncoder = async (fb, r, pixels, ctx) => {
  const parts: Promise<Buffer[]>[] = [];
  for (let x = r.x; x < r.x + r.w; x += TIGHT_MAX_WIDTH) {
    const w = Math.min(TIGHT_MAX_WIDTH, r.x + r.w - x);
    const rows = Math.max(1, Math.floor(TIGHT_MAX_PIXELS / w));
    for (let y = r.y; y < r.y + r.h; y += rows) parts.push(tightRect(fb, { x, y, w, h: Math.min(rows, r.y + r.h - y) }, pixels, ctx));
  }
  return Promise.all(parts);
};

export const ENCODERS = new Map<number, RectEncoder>([
  [ENCODING_RAW, encodeRaw],
  [ENCODING_ZRLE, encodeZrle],
  [ENCODING_TIGHT, encodeTight],
]);

/** The client's most preferred encoding that we implement; Raw is always allowed (RFB requires it). */
export function chooseEncoding(clientEncodings: readonly number[]): number {
  return clientEncodings.find((e) => ENCODERS.has(e)) ?? ENCODING_RAW;
}
