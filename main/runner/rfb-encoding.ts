// RFB pixel formats and rectangle encoders. The framebuffer is RGBA; each viewer has its own
// pixel format, and every encoder writes in it. New encodings (CopyRect, Tight, ZRLE…) are added as
// another RectEncoder in ENCODERS.
import type { Framebuffer } from './framebuffer.js';

export const ENCODING_RAW = 0;
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

/** Encodes one rectangle (header included). */
export type RectEncoder = (fb: Framebuffer, r: Rect, pixels: PixelConverter) => Buffer[];

const encodeRaw: RectEncoder = (fb, r, pixels) => [rectHeader(r, ENCODING_RAW), pixels.convert(fb, r.x, r.y, r.w, r.h)];

export const ENCODERS = new Map<number, RectEncoder>([[ENCODING_RAW, encodeRaw]]);

/** The client's most preferred encoding that we implement; Raw is always allowed (RFB requires it). */
export function chooseEncoding(clientEncodings: readonly number[]): number {
  return clientEncodings.find((e) => ENCODERS.has(e)) ?? ENCODING_RAW;
}
