// A small RFB (VNC) client for tests and the console benchmark: handshake with VNC authentication,
// Raw, CopyRect, ZRLE and Tight rectangles decoded into the client's pixel format, input messages.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { vncAuthResponse } from '../common/vnc-auth.js';
import { connectUnix } from './connect-unix.js';
import { sleep } from './harness.js';
import type { PixelFormat } from '../runner/rfb-encoding.js';

/** Buffered reads of exact byte counts from a socket. */
class Reader {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed = false;

  constructor(socket: Duplex) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  get buffered(): number {
    return this.buf.length;
  }

  async read(n: number, timeoutMs = 20_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout reading ${n} bytes`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

export interface RfbRect {
  x: number;
  y: number;
  w: number;
  h: number;
  encoding: number;
  /** Decoded pixel bytes (Raw, ZRLE, Tight) in the client's pixel format, row by row. */
  pixels?: Buffer;
  /** CopyRect: where the client copies the rectangle from. */
  copyFrom?: { x: number; y: number };
}

/** A client-side inflate stream: each rectangle's data ends with a sync flush, so it inflates whole. */
class Inflater {
  private readonly z = zlib.createInflate();
  private chunks: Buffer[] = [];
  constructor() {
    this.z.on('data', (c: Buffer) => this.chunks.push(c));
  }
  inflate(data: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.z.once('error', reject);
      this.z.write(data);
      this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.z.off('error', reject);
        const out = Buffer.concat(this.chunks);
        this.chunks = [];
        resolve(out);
      });
    });
  }
  close(): void {
    this.z.close();
  }
}

/** A pixel format a client asks for with SetPixelFormat (always true colour). */
export type ClientPixelFormat = Omit<PixelFormat, 'trueColour'>;

/** A minimal RFB client: handshake, updates (Raw and pseudo-rects), input messages. */
export class RfbClient {
  width = 0;
  height = 0;
  name = '';
  bytesPerPixel = 4;
  format: ClientPixelFormat = { bitsPerPixel: 32, depth: 24, bigEndian: false, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0 };
  /** Compressed bytes received (the rectangles' payloads as sent), for the benchmark. */
  received = 0;
  /** false: ZRLE rectangles are counted but not inflated or decoded (the benchmark's client). */
  decode = true;
  private zrle: Inflater | undefined;
  private readonly tight: Inflater[] = [];
  private constructor(
    readonly socket: Duplex,
    private readonly reader: Reader,
  ) {}

  /** Over any byte stream, e.g. a WebSocket's (ws's createWebSocketStream). */
  static fromStream(stream: Duplex): RfbClient {
    return new RfbClient(stream, new Reader(stream));
  }

  static async open(file: string): Promise<RfbClient> {
    const socket = await connectUnix(file, 20_000);
    return new RfbClient(socket, new Reader(socket));
  }

  static async openTcp(port: number, host = '127.0.0.1'): Promise<RfbClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, host, () => resolve(s));
      s.once('error', reject);
    });
    return new RfbClient(socket, new Reader(socket));
  }

  read(n: number, timeoutMs?: number): Promise<Buffer> {
    return this.reader.read(n, timeoutMs);
  }

  /** Runs the handshake up to ServerInit; throws on a security failure (with the server's reason in 3.8). */
  /** `response` computes the VNC Authentication answer itself (instead of from `password`). */
  async handshake(opts: { version?: string; password?: string; response?: (challenge: Buffer) => Buffer } = {}): Promise<void> {
    const version = opts.version ?? '003.008';
    const server = (await this.read(12)).toString('latin1');
    if (server !== 'RFB 003.008\n') throw new Error(`server version ${JSON.stringify(server)}`);
    this.socket.write(`RFB ${version}\n`);
    let type: number;
    if (version === '003.003') {
      type = (await this.read(4)).readUInt32BE(0);
    } else {
      const n = (await this.read(1))[0];
      const types = [...(await this.read(n))];
      type = types[0];
      this.socket.write(Buffer.from([type]));
    }
    if (type === 2) {
      const challenge = await this.read(16);
      this.socket.write(opts.response ? opts.response(challenge) : vncAuthResponse(opts.password ?? '', challenge));
    }
    if (type === 2 || version === '003.008') {
      const result = (await this.read(4)).readUInt32BE(0);
      if (result !== 0) {
        let reason = '';
        if (version === '003.008') reason = (await this.read((await this.read(4)).readUInt32BE(0))).toString('utf8');
        throw new Error(`security failure: ${reason}`);
      }
    }
    this.socket.write(Buffer.from([1])); // ClientInit, shared
    const init = await this.read(24);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    this.bytesPerPixel = init[4] / 8;
    this.format = {
      bitsPerPixel: init[4], depth: init[5], bigEndian: init[6] !== 0,
      redMax: init.readUInt16BE(8), greenMax: init.readUInt16BE(10), blueMax: init.readUInt16BE(12),
      redShift: init[14], greenShift: init[15], blueShift: init[16],
    };
    this.name = (await this.read(init.readUInt32BE(20))).toString('utf8');
  }

  setPixelFormat(pf: ClientPixelFormat): void {
    const b = Buffer.alloc(20);
    b[0] = 0;
    b[4] = pf.bitsPerPixel;
    b[5] = pf.depth;
    b[6] = pf.bigEndian ? 1 : 0;
    b[7] = 1;
    b.writeUInt16BE(pf.redMax, 8);
    b.writeUInt16BE(pf.greenMax, 10);
    b.writeUInt16BE(pf.blueMax, 12);
    b[14] = pf.redShift;
    b[15] = pf.greenShift;
    b[16] = pf.blueShift;
    this.socket.write(b);
    this.bytesPerPixel = pf.bitsPerPixel / 8;
    this.format = pf;
  }

  setEncodings(list: number[]): void {
    const b = Buffer.alloc(4 + 4 * list.length);
    b[0] = 2;
    b.writeUInt16BE(list.length, 2);
    list.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
    this.socket.write(b);
  }

  requestUpdate(incremental: boolean, x = 0, y = 0, w = this.width, h = this.height): void {
    const b = Buffer.alloc(10);
    b[0] = 3;
    b[1] = incremental ? 1 : 0;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    b.writeUInt16BE(w, 6);
    b.writeUInt16BE(h, 8);
    this.socket.write(b);
  }

  /** Reads one FramebufferUpdate (Raw rects get their pixels; DesktopSize updates width/height). */
  async readUpdate(timeoutMs = 20_000): Promise<RfbRect[]> {
    const head = await this.read(4, timeoutMs);
    if (head[0] !== 0) throw new Error(`unexpected server message type ${head[0]}`);
    const rects: RfbRect[] = [];
    for (let i = head.readUInt16BE(2); i > 0; i--) {
      const h = await this.read(12, timeoutMs);
      const r: RfbRect = { x: h.readUInt16BE(0), y: h.readUInt16BE(2), w: h.readUInt16BE(4), h: h.readUInt16BE(6), encoding: h.readInt32BE(8) };
      if (r.encoding === 0) {
        r.pixels = await this.read(r.w * r.h * this.bytesPerPixel, timeoutMs);
        this.received += r.pixels.length;
      } else if (r.encoding === 1) {
        const src = await this.read(4, timeoutMs);
        r.copyFrom = { x: src.readUInt16BE(0), y: src.readUInt16BE(2) };
        this.received += 4;
      } else if (r.encoding === 16) {
        const len = (await this.read(4, timeoutMs)).readUInt32BE(0);
        const data = await this.read(len, timeoutMs);
        this.received += 4 + len;
        this.zrle ??= new Inflater();
        if (this.decode) r.pixels = decodeZrle(await this.zrle.inflate(data), r, this.format);
      } else if (r.encoding === 7) {
        r.pixels = await this.readTight(r, timeoutMs);
      } else if (r.encoding === -223) {
        this.width = r.w;
        this.height = r.h;
      } else if (r.encoding !== -258) throw new Error(`unexpected encoding ${r.encoding}`);
      rects.push(r);
    }
    return rects;
  }

  private async readTight(r: RfbRect, timeoutMs: number): Promise<Buffer> {
    const pf = this.format;
    const bpp = pf.bitsPerPixel / 8;
    const rgb = pf.bitsPerPixel === 32 && pf.depth === 24 && pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255;
    const tsize = rgb ? 3 : bpp;
    const take = async (n: number) => {
      this.received += n;
      return this.read(n, timeoutMs);
    };
    const tpixel = (b: Buffer, o: number): Buffer => {
      if (!rgb) return b.subarray(o, o + bpp);
      const out = Buffer.alloc(4);
      const px = ((b[o] << pf.redShift) | (b[o + 1] << pf.greenShift) | (b[o + 2] << pf.blueShift)) >>> 0;
      if (pf.bigEndian) out.writeUInt32BE(px);
      else out.writeUInt32LE(px);
      return out;
    };
    const control = (await take(1))[0];
    for (let i = 0; i < 4; i++) if (control & (1 << i)) this.tight[i]?.close(), (this.tight[i] = new Inflater());
    const out = Buffer.alloc(r.w * r.h * bpp);
    if ((control >> 4) === 8) {
      const px = tpixel(await take(tsize), 0);
      for (let o = 0; o < out.length; o += bpp) px.copy(out, o);
      return out;
    }
    if ((control >> 4) > 8) throw new Error(`Tight control 0x${control.toString(16)} not handled by the test client`);
    const stream = (control >> 4) & 3;
    let filter = 0;
    if (control & 0x40) filter = (await take(1))[0];
    let colours: Buffer[] = [];
    if (filter === 1) {
      const n = (await take(1))[0] + 1;
      const pal = await take(n * tsize);
      colours = Array.from({ length: n }, (_, i) => tpixel(pal, i * tsize));
    } else if (filter !== 0) throw new Error(`Tight filter ${filter} not handled by the test client`);
    const rowBytes = filter === 1 ? (colours.length === 2 ? Math.ceil(r.w / 8) : r.w) : r.w * tsize;
    const size = rowBytes * r.h;
    let data: Buffer;
    if (size < 12) data = await take(size);
    else {
      let len = 0;
      for (let shift = 0; ; shift += 7) {
        const b = (await take(1))[0];
        len |= (b & 0x7f) << shift;
        if (!(b & 0x80) || shift === 14) break;
      }
      this.tight[stream] ??= new Inflater();
      data = await this.tight[stream].inflate(await take(len));
    }
    if (data.length !== size) throw new Error(`Tight rect inflated to ${data.length} bytes, expected ${size}`);
    for (let y = 0, o = 0; y < r.h; y++) {
      for (let x = 0; x < r.w; x++, o += bpp) {
        if (filter === 1) {
          const idx = colours.length === 2 ? (data[y * rowBytes + (x >> 3)] >> (7 - (x & 7))) & 1 : data[y * rowBytes + x];
          colours[idx].copy(out, o);
        } else tpixel(data, (y * r.w + x) * tsize).copy(out, o);
      }
    }
    return out;
  }

  /** True if no server message arrives within `ms`. */
  async quietFor(ms: number): Promise<boolean> {
    await sleep(ms);
    return this.reader.buffered === 0;
  }

  key(down: boolean, keysym: number): void {
    const b = Buffer.alloc(8);
    b[0] = 4;
    b[1] = down ? 1 : 0;
    b.writeUInt32BE(keysym, 4);
    this.socket.write(b);
  }

  qemuKey(down: boolean, keysym: number, keycode: number): void {
    const b = Buffer.alloc(12);
    b[0] = 255;
    b[1] = 0;
    b.writeUInt16BE(down ? 1 : 0, 2);
    b.writeUInt32BE(keysym, 4);
    b.writeUInt32BE(keycode, 8);
    this.socket.write(b);
  }

  /** Types text like a real client: Shift_L held around characters that need it. */
  typeKeysyms(text: string): void {
    const shifted = '~!@#$%^&*()_+{}|:"<>?ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    for (const ch of text) {
      const keysym = ch === '\n' ? 0xff0d : ch.charCodeAt(0);
      const shift = shifted.includes(ch);
      if (shift) this.key(true, 0xffe1);
      this.key(true, keysym);
      this.key(false, keysym);
      if (shift) this.key(false, 0xffe1);
    }
  }

  close(): void {
    this.socket.destroy();
    this.zrle?.close();
    for (const t of this.tight) t?.close();
  }
}

/** Decodes a ZRLE rectangle's inflated data into pixels of the client's format. */
function decodeZrle(data: Buffer, r: RfbRect, pf: ClientPixelFormat): Buffer {
  const bpp = pf.bitsPerPixel / 8;
  const used = ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
  const low3 = (used & 0xff000000) === 0;
  const high3 = (used & 0xff) === 0;
  const compact = pf.bitsPerPixel === 32 && pf.depth <= 24 && (low3 || high3);
  const csize = compact ? 3 : bpp;
  // Where the three bytes sit in the 4-byte pixel.
  const at = compact && (low3 ? pf.bigEndian : !pf.bigEndian) ? 1 : 0;
  let p = 0;
  const cpixel = (): Buffer => {
    const px = Buffer.alloc(bpp);
    data.copy(px, compact ? at : 0, p, p + csize);
    p += csize;
    return px;
  };
  const out = Buffer.alloc(r.w * r.h * bpp);
  for (let ty = 0; ty < r.h; ty += 64) {
    for (let tx = 0; tx < r.w; tx += 64) {
      const tw = Math.min(64, r.w - tx);
      const th = Math.min(64, r.h - ty);
      const put = (i: number, px: Buffer) => px.copy(out, ((ty + Math.floor(i / tw)) * r.w + tx + (i % tw)) * bpp);
      const sub = data[p++];
      if (sub === 0) {
        for (let i = 0; i < tw * th; i++) put(i, cpixel());
      } else if (sub === 1) {
        const px = cpixel();
        for (let i = 0; i < tw * th; i++) put(i, px);
      } else if (sub <= 16) {
        const pal = Array.from({ length: sub }, cpixel);
        const bits = sub === 2 ? 1 : sub <= 4 ? 2 : 4;
        for (let y = 0; y < th; y++) {
          for (let x = 0; x < tw; x++) {
            const bit = x * bits;
            put(y * tw + x, pal[(data[p + (bit >> 3)] >> (8 - bits - (bit & 7))) & ((1 << bits) - 1)]);
          }
          p += Math.ceil((tw * bits) / 8);
        }
      } else if (sub === 128 || sub >= 130) {
        const pal = sub === 128 ? [] : Array.from({ length: sub - 128 }, cpixel);
        for (let i = 0; i < tw * th; ) {
          let px: Buffer;
          let run = 1;
          if (sub === 128) {
            px = cpixel();
            run = 0;
          } else {
            const idx = data[p++];
            px = pal[idx & 0x7f];
            if (!(idx & 0x80)) {
              put(i++, px);
              continue;
            }
            run = 0;
          }
          for (;;) {
            const b = data[p++];
            run += b;
            if (b !== 255) break;
          }
          for (let k = 0; k <= run; k++) put(i++, px);
        }
      } else throw new Error(`bad ZRLE subencoding ${sub}`);
    }
  }
  if (p !== data.length) throw new Error(`ZRLE rect left ${data.length - p} bytes undecoded`);
  return out;
}

/** Runner RGBA pixels converted to what a client with `pf` should receive. */
export function expectedPixels(rgba: Uint8Array, width: number, x: number, y: number, w: number, h: number, pf: ClientPixelFormat): Buffer {
  const bpp = pf.bitsPerPixel / 8;
  const out = Buffer.alloc(w * h * bpp);
  let o = 0;
  for (let row = y; row < y + h; row++) {
    for (let col = x; col < x + w; col++, o += bpp) {
      const s = (row * width + col) * 4;
      const px =
        ((Math.round((rgba[s] * pf.redMax) / 255) << pf.redShift) |
          (Math.round((rgba[s + 1] * pf.greenMax) / 255) << pf.greenShift) |
          (Math.round((rgba[s + 2] * pf.blueMax) / 255) << pf.blueShift)) >>>
        0;
      if (bpp === 4) pf.bigEndian ? out.writeUInt32BE(px, o) : out.writeUInt32LE(px, o);
      else if (bpp === 2) pf.bigEndian ? out.writeUInt16BE(px, o) : out.writeUInt16LE(px, o);
      else out[o] = px;
    }
  }
  return out;
}
