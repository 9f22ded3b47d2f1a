// RFB (VNC) server for the guest screen, keyboard and mouse: protocol 3.8 (3.3 and 3.7 clients
// accepted), security None or VNC Authentication, Raw, ZRLE and Tight encodings with CopyRect for
// scrolls, DesktopSize, CompressLevel and QEMU Extended Key Event pseudo-encodings. Each viewer has
// its own pixel format, encoder state and a copy of what its client holds; the framebuffer is polled
// only while some viewer waits for an update, and only changed rows of changed tiles are sent.
import crypto from 'node:crypto';
import type { Socket } from 'node:net';
import { DEFAULT_MAX_BUFFERED_BYTES } from '../common/jsonl.js';
import { TILE, type Framebuffer } from './framebuffer.js';
import { LEFT_SHIFT, RIGHT_SHIFT, keyFromKeysym, keyFromQemuKeycode, scancodeBytes } from '../common/keymap.js';
import {
  ENCODERS,
  ENCODING_COPYRECT,
  ENCODING_RAW,
  EncoderContext,
  PSEUDO_COMPRESS_LEVEL_0,
  PSEUDO_DESKTOP_SIZE,
  PSEUDO_QEMU_EXTENDED_KEY,
  PixelConverter,
  SERVER_PIXEL_FORMAT,
  chooseEncoding,
  copyRect,
  readPixelFormat,
  rectHeader,
  unsupportedPixelFormat,
  writePixelFormat,
  type Rect,
} from './rfb-encoding.js';
import { AuthThrottle } from './auth-throttle.js';
import { VNC_CHALLENGE_BYTES, vncAuthCheck } from '../common/vnc-auth.js';

/** Where viewer input goes (the Emulator). */
export interface RfbInput {
  sendScancodes(codes: readonly number[]): Promise<void>;
  mouseMove(dx: number, dy: number): void;
  mouseAbsolute(x: number, y: number, width: number, height: number): void;
  mouseButtons(left: boolean, middle: boolean, right: boolean): void;
  mouseWheel(notches: number): void;
}

export interface RfbServerOptions {
  /** Desktop name sent in ServerInit. */
  name: string;
  framebuffer: Framebuffer;
  input: RfbInput;
  /** Resolves when the framebuffer can be read (the emulator is loaded). */
  ready: Promise<void>;
  /** Enables VNC Authentication instead of None. */
  password?: string;
  log: (message: string) => void;
  /** Poll period while a viewer waits for changes. */
  pollMs?: number;
}

const SECURITY_NONE = 1;
const SECURITY_VNC = 2;
/** ClientCutText larger than this closes the connection (we ignore its contents anyway). */
const MAX_CUT_TEXT = 16 * 1024 * 1024;
/** Unprocessed input beyond this (a client flooding us before ServerInit) closes the connection. */
const MAX_PENDING_INPUT = 32 * 1024 * 1024;
/** Updates a client has not read beyond this (it asks and never reads) close the connection. */
const MAX_PENDING_OUTPUT = DEFAULT_MAX_BUFFERED_BYTES;
/**
 * More changed rectangles than this in one update are sent as their bounding box: every rectangle
 * is a zlib flush, and each flush is a round trip to libuv's thread pool and back through the
 * emulator's busy event loop (~3 ms). A scrolling screen made ~50 of them, 150 ms an update; one
 * box with the unchanged parts in it costs a millisecond more to compress.
 */
const MAX_RECTS = 8;
/** After a viewer's input, how often and how long the screen is polled for the guest's answer. */
const INPUT_POLL_MS = 4;
const INPUT_FOLLOW_MS = 150;

/** Probe rows (minus one) looked up in the client's copy to find a scroll. */
const SCROLL_PROBES = 8;
/** A scroll is sent as CopyRect when it moves at least this many rows (a text line). */
const SCROLL_MIN_ROWS = 16;

const MSG_SET_PIXEL_FORMAT = 0;
const MSG_SET_ENCODINGS = 2;
const MSG_UPDATE_REQUEST = 3;
const MSG_KEY = 4;
const MSG_POINTER = 5;
const MSG_CUT_TEXT = 6;
const MSG_QEMU = 255;
const QEMU_EXTENDED_KEY = 0;

export class RfbServer {
  readonly options: RfbServerOptions & { pollMs: number };
  private readonly viewers = new Set<RfbViewer>();
  private timer: NodeJS.Timeout | undefined;
  /** Until then the screen is polled at INPUT_POLL_MS: a viewer's input is being answered. */
  private followInputUntil = 0;
  private lastPollAt = 0;
  private immediate: NodeJS.Immediate | undefined;
  private loaded = false;
  private readonly throttles = new Map<string, AuthThrottle>();

  constructor(options: RfbServerOptions) {
    this.options = { pollMs: 33, ...options };
    // A machine that never loads (a state file that fails its checks) ends the runner elsewhere.
    options.ready.then(
      () => {
        this.loaded = true;
        this.schedule(true);
      },
      () => undefined,
    );
  }

  /** Takes over an accepted connection; `listener` names where it came in, for the auth throttle. */
  accept(socket: Socket, listener = 'unix'): void {
    let throttle = this.throttles.get(listener);
    if (!throttle) {
      throttle = new AuthThrottle();
      this.throttles.set(listener, throttle);
    }
    const viewer = new RfbViewer(this, socket, throttle);
    this.viewers.add(viewer);
    socket.on('close', () => {
      this.viewers.delete(viewer);
      viewer.disconnected();
    });
  }

  closeAll(): void {
    for (const v of this.viewers) v.socket.destroy();
    clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
  }

  /** Refreshes the framebuffer now (ServerInit needs the current size). */
  refreshNow(): void {
    this.options.framebuffer.refresh();
  }

  /** A viewer has a request pending: serve it now (`soon`) or at the next poll. */
  schedule(soon: boolean): void {
    if (!this.loaded) return;
    if (soon) {
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        this.poll();
      });
    } else if (!this.timer) {
      const now = Date.now();
      const ms = now < this.followInputUntil ? INPUT_POLL_MS : this.options.pollMs;
      // Polls keep their own rhythm (as QEMU's refresh timer does): time spent encoding and on the
      // client's next request counts towards the interval instead of adding to it.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.poll();
      }, Math.max(0, this.lastPollAt + ms - now));
    }
  }

  /**
   * A key or pointer event went to the guest: its answer (an echoed character, a moved cursor)
   * usually follows within a few milliseconds, so poll often for a moment instead of waiting for
   * the next regular poll. Polls that find nothing changed cost little: v86 tracks VRAM writes.
   */
  inputArrived(): void {
    this.followInputUntil = Date.now() + INPUT_FOLLOW_MS;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.schedule(false);
  }

  private poll(): void {
    const waiting = [...this.viewers].filter((v) => v.waiting);
    // No viewer waiting: no capture work at all until the next request.
    if (waiting.length === 0) return;
    this.lastPollAt = Date.now();
    try {
      this.options.framebuffer.refresh();
    } catch (err) {
      // A capture bug must cost the viewers, not the guest.
      for (const v of waiting) v.fail(err);
      return;
    }
    for (const v of waiting) v.guarded(() => v.serve());
    if (waiting.some((v) => v.waiting)) this.schedule(false);
  }
}

type Phase = 'version' | 'security' | 'vnc-response' | 'vnc-checking' | 'client-init' | 'server-init' | 'ready' | 'closed';

class RfbViewer {
  readonly socket: Socket;
  private readonly server: RfbServer;
  private readonly label: string;
  private phase: Phase = 'version';
  private minor = 8;
  private input: Buffer = Buffer.alloc(0);
  private challenge: Buffer = Buffer.alloc(0);
  // Display state.
  private pixels = new PixelConverter(SERVER_PIXEL_FORMAT);
  private encoding = ENCODING_RAW;
  private readonly encoder = new EncoderContext();
  private copyRect = false;
  private desktopSize = false;
  private extendedKeys = false;
  private announceExtendedKeys = false;
  private width = 0;
  private height = 0;
  private geometrySeq = -1;
  /** Per tile, the refresh number of the pixels this viewer has. */
  private seen = new Uint32Array(0);
  /**
   * The framebuffer's RGBA as the client holds it (zero = unknown: never equal to a pixel, whose
   * alpha is 255). Changed tiles are compared with it to send only rows that differ, and scrolls are
   * found in it.
   */
  private shadow = Buffer.alloc(0);
  private request: (Rect & { incremental: boolean }) | undefined;
  /** An update is being encoded (compression runs off-thread); the next one waits for it. */
  private busy = false;
  // Input state.
  private pressed = new Set<number>();
  private buttons = 0;
  private pointer: { x: number; y: number } | undefined;

  private static nextId = 1;

  constructor(
    server: RfbServer,
    socket: Socket,
    private readonly throttle: AuthThrottle,
  ) {
    this.server = server;
    this.socket = socket;
    this.label = `vnc viewer #${RfbViewer.nextId++}`;
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.write('RFB 003.008\n');
  }

  get waiting(): boolean {
    return this.phase === 'ready' && this.request !== undefined && !this.busy;
  }

  private log(message: string): void {
    this.server.options.log(`${this.label}: ${message}`);
  }

  private close(reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.log(`closing: ${reason}`);
    this.socket.destroy();
  }

  fail(err: unknown): void {
    this.close(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }

  /** Runs protocol work for this viewer; an exception closes the viewer, never the runner. */
  guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(err);
    }
  }

  private onData(data: Buffer): void {
    this.input = this.input.length ? Buffer.concat([this.input, data]) : data;
    if (this.input.length > MAX_PENDING_INPUT) {
      this.close(`more than ${MAX_PENDING_INPUT} bytes of unprocessed input`);
      return;
    }
    this.guarded(() => this.pump());
  }

  private consume(n: number): Buffer {
    const b = this.input.subarray(0, n);
    this.input = this.input.subarray(n);
    return b;
  }

  /** Handles one complete message if buffered; returns false when more bytes are needed. */
  private step(): boolean {
    switch (this.phase) {
      case 'version':
        return this.onVersion();
      case 'security':
        return this.onSecurityChoice();
      case 'vnc-response':
        return this.onVncResponse();
      case 'client-init':
        return this.onClientInit();
      case 'ready':
        return this.onMessage();
      case 'vnc-checking': // input waits for the throttle's turn
      case 'server-init': // input waits until ServerInit is out
      case 'closed':
        return false;
    }
  }

  private onVersion(): boolean {
    if (this.input.length < 12) return false;
    const text = this.consume(12).toString('latin1');
    const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(text);
    if (!m || Number(m[1]) !== 3) {
      this.close(`bad protocol version ${JSON.stringify(text)}`);
      return false;
    }
    // RFB 3.8 §7.1.1: unknown minors below 7 are treated as 3.3; 3.889 (Apple) and later as 3.8.
    const minor = Number(m[2]);
    this.minor = minor >= 8 ? 8 : minor === 7 ? 7 : 3;
    const type = this.server.options.password ? SECURITY_VNC : SECURITY_NONE;
    if (this.minor === 3) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(type);
      this.socket.write(b);
      this.startSecurity(type);
    } else {
      this.socket.write(Buffer.from([1, type]));
      this.phase = 'security';
    }
    return true;
  }

  private onSecurityChoice(): boolean {
    if (this.input.length < 1) return false;
    const chosen = this.consume(1)[0];
    const offered = this.server.options.password ? SECURITY_VNC : SECURITY_NONE;
    if (chosen !== offered) {
      this.securityFailed(`security type ${chosen} was not offered`);
      return false;
    }
    this.startSecurity(chosen);
    return true;
  }

  private startSecurity(type: number): void {
    if (type === SECURITY_VNC) {
      this.challenge = crypto.randomBytes(VNC_CHALLENGE_BYTES);
      this.socket.write(this.challenge);
      this.phase = 'vnc-response';
      return;
    }
    // SecurityResult follows None only in 3.8.
    if (this.minor === 8) this.socket.write(Buffer.alloc(4));
    this.phase = 'client-init';
  }

  private onVncResponse(): boolean {
    if (this.input.length < VNC_CHALLENGE_BYTES) return false;
    const response = this.consume(VNC_CHALLENGE_BYTES);
    this.phase = 'vnc-checking';
    // The check runs even if the client leaves meanwhile: closing early buys no extra guesses.
    const queued = this.throttle.enqueue(() => {
      const ok = vncAuthCheck(this.server.options.password ?? '', this.challenge, response);
      this.guarded(() => this.authenticated(ok));
      return ok;
    });
    if (!queued) this.securityFailed('too many authentication attempts; try again later');
    return false;
  }

  private authenticated(ok: boolean): void {
    if (this.phase !== 'vnc-checking') return;
    if (!ok) {
      this.securityFailed('authentication failed');
      return;
    }
    this.socket.write(Buffer.alloc(4));
    this.phase = 'client-init';
    this.pump();
  }

  /** Handles every complete message buffered. */
  private pump(): void {
    while (this.phase !== 'closed' && this.step());
  }

  private securityFailed(reason: string): void {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1);
    const parts = [head];
    if (this.minor === 8) {
      const text = Buffer.from(reason, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(text.length);
      parts.push(len, text);
    }
    this.phase = 'closed';
    this.log(`security failure: ${reason}`);
    this.socket.end(Buffer.concat(parts));
  }

  private onClientInit(): boolean {
    if (this.input.length < 1) return false;
    this.consume(1); // shared flag: every viewer shares the screen
    this.phase = 'server-init';
    void this.server.options.ready.then(() => this.guarded(() => this.sendServerInit()));
    return false;
  }

  private sendServerInit(): void {
    if (this.phase !== 'server-init' || this.socket.destroyed) return;
    this.server.refreshNow();
    const fb = this.server.options.framebuffer;
    this.width = fb.width;
    this.height = fb.height;
    this.geometrySeq = fb.geometrySeq;
    this.seen = new Uint32Array(fb.tilesX * fb.tilesY);
    this.shadow = Buffer.alloc(fb.width * fb.height * 4);
    const name = Buffer.from(this.server.options.name, 'utf8');
    const head = Buffer.alloc(4);
    head.writeUInt16BE(this.width, 0);
    head.writeUInt16BE(this.height, 2);
    const nameLen = Buffer.alloc(4);
    nameLen.writeUInt32BE(name.length);
    this.socket.write(Buffer.concat([head, writePixelFormat(SERVER_PIXEL_FORMAT), nameLen, name]));
    this.phase = 'ready';
    this.log(`connected (RFB 3.${this.minor}, ${this.width}x${this.height})`);
    this.onData(Buffer.alloc(0));
  }

  private onMessage(): boolean {
    const b = this.input;
    if (b.length < 1) return false;
    switch (b[0]) {
      case MSG_SET_PIXEL_FORMAT: {
        if (b.length < 20) return false;
        const pf = readPixelFormat(this.consume(20), 4);
        const why = unsupportedPixelFormat(pf);
        if (why) {
          this.close(why);
          return false;
        }
        this.pixels = new PixelConverter(pf);
        return true;
      }
      case MSG_SET_ENCODINGS: {
        if (b.length < 4) return false;
        const n = b.readUInt16BE(2);
        if (b.length < 4 + 4 * n) return false;
        const msg = this.consume(4 + 4 * n);
        const list: number[] = [];
        for (let i = 0; i < n; i++) list.push(msg.readInt32BE(4 + 4 * i));
        this.setEncodings(list);
        return true;
      }
      case MSG_UPDATE_REQUEST: {
        if (b.length < 10) return false;
        const m = this.consume(10);
        this.onUpdateRequest(m[1] !== 0, m.readUInt16BE(2), m.readUInt16BE(4), m.readUInt16BE(6), m.readUInt16BE(8));
        return true;
      }
      case MSG_KEY: {
        if (b.length < 8) return false;
        const m = this.consume(8);
        this.onKeysym(m[1] !== 0, m.readUInt32BE(4));
        return true;
      }
      case MSG_POINTER: {
        if (b.length < 6) return false;
        const m = this.consume(6);
        this.onPointer(m[1], m.readUInt16BE(2), m.readUInt16BE(4));
        return true;
      }
      case MSG_CUT_TEXT: {
        if (b.length < 8) return false;
        const len = b.readUInt32BE(4);
        if (len > MAX_CUT_TEXT) {
          this.close(`ClientCutText of ${len} bytes`);
          return false;
        }
        if (b.length < 8 + len) return false;
        this.consume(8 + len); // clipboard is not forwarded to the guest
        return true;
      }
      case MSG_QEMU: {
        if (b.length < 2) return false;
        if (b[1] !== QEMU_EXTENDED_KEY) {
          this.close(`unsupported QEMU client message subtype ${b[1]}`);
          return false;
        }
        if (b.length < 12) return false;
        const m = this.consume(12);
        this.onQemuKey(m.readUInt16BE(2) !== 0, m.readUInt32BE(4), m.readUInt32BE(8));
        return true;
      }
      default:
        this.close(`unknown client message type ${b[0]}`);
        return false;
    }
  }

  private setEncodings(list: number[]): void {
    this.encoding = chooseEncoding(list);
    this.copyRect = list.includes(ENCODING_COPYRECT);
    const level = list.find((e) => e >= PSEUDO_COMPRESS_LEVEL_0 && e <= PSEUDO_COMPRESS_LEVEL_0 + 9);
    // zlib's level is fixed when a stream starts: it applies to streams not yet used.
    if (level !== undefined) this.encoder.level = level - PSEUDO_COMPRESS_LEVEL_0;
    this.desktopSize = list.includes(PSEUDO_DESKTOP_SIZE);
    const ext = list.includes(PSEUDO_QEMU_EXTENDED_KEY);
    // The client learns that we accept extended key events from an empty rect with that encoding.
    if (ext && !this.extendedKeys) this.announceExtendedKeys = true;
    this.extendedKeys = ext;
  }

  private onUpdateRequest(incremental: boolean, x: number, y: number, w: number, h: number): void {
    this.request = { incremental, x, y, w, h };
    if (!incremental) this.forget({ x, y, w, h });
    this.server.schedule(!incremental || this.announceExtendedKeys);
  }

  /** Marks the tiles of a region as not held by the client, so they are sent again. */
  private forget(r: Rect): void {
    const fb = this.server.options.framebuffer;
    if (this.geometrySeq !== fb.geometrySeq) return; // everything is resent after a resize anyway
    const tx1 = Math.min(fb.tilesX, Math.ceil((r.x + r.w) / TILE));
    const ty1 = Math.min(fb.tilesY, Math.ceil((r.y + r.h) / TILE));
    for (let ty = Math.floor(r.y / TILE); ty < ty1; ty++) {
      for (let tx = Math.floor(r.x / TILE); tx < tx1; tx++) this.seen[ty * fb.tilesX + tx] = 0;
    }
    const x1 = Math.min(fb.width, r.x + r.w);
    for (let y = r.y; y < Math.min(fb.height, r.y + r.h) && r.x < x1; y++) this.shadow.fill(0, (y * fb.width + r.x) * 4, (y * fb.width + x1) * 4);
  }

  /** Sends what the pending request asks for, if there is anything; called after a refresh. */
  serve(): void {
    const req = this.request;
    if (!req || this.phase !== 'ready' || this.busy) return;
    const fb = this.server.options.framebuffer;
    if (this.geometrySeq !== fb.geometrySeq) {
      this.geometrySeq = fb.geometrySeq;
      this.seen = new Uint32Array(fb.tilesX * fb.tilesY);
      this.shadow = Buffer.alloc(fb.width * fb.height * 4);
      if (this.desktopSize) {
        // DesktopSize goes alone; the client then holds nothing and gets the whole screen next.
        this.width = fb.width;
        this.height = fb.height;
        this.request = undefined;
        this.writeUpdate([[rectHeader({ x: 0, y: 0, w: fb.width, h: fb.height }, PSEUDO_DESKTOP_SIZE)]]);
        return;
      }
      // A client without DesktopSize keeps its size; it gets the part of the new screen that fits.
    }
    const first: Buffer[][] = [];
    if (this.announceExtendedKeys) {
      this.announceExtendedKeys = false;
      first.push([rectHeader({ x: 0, y: 0, w: 0, h: 0 }, PSEUDO_QEMU_EXTENDED_KEY)]);
    }
    const { scroll, rects: changed } = this.changes(req);
    const rects = changed.length > MAX_RECTS ? [boundingBox(changed)] : changed;
    // The copy goes before the other rectangles: the client copies from what it held before them.
    if (scroll) first.push(copyRect(scroll.to, scroll.from.x, scroll.from.y));
    if (first.length === 0 && rects.length === 0) return; // nothing new: keep waiting
    this.request = undefined;
    const encoder = ENCODERS.get(this.encoding) ?? ENCODERS.get(ENCODING_RAW)!;
    // Every encoder reads the framebuffer before its first await, so the update is of this moment.
    const encoded = rects.map((r) => encoder(fb, r, this.pixels, this.encoder));
    this.busy = true;
    Promise.all(encoded).then(
      (parts) => {
        this.busy = false;
        if (this.phase !== 'ready') return;
        this.writeUpdate([...first, ...parts.flat()]);
        // A client that asked again while this one was being encoded.
        if (this.request) this.server.schedule(!this.request.incremental);
      },
      (err: unknown) => this.fail(err),
    );
  }

  private writeUpdate(rects: Buffer[][]): void {
    if (this.socket.writableLength > MAX_PENDING_OUTPUT) {
      this.close(`not reading (over ${MAX_PENDING_OUTPUT} bytes queued)`);
      return;
    }
    const head = Buffer.alloc(4);
    head.writeUInt8(0, 0); // FramebufferUpdate
    head.writeUInt16BE(rects.length, 2);
    this.socket.write(Buffer.concat([head, ...rects.flat()]));
  }

  /**
   * What changed inside the requested region since the client's copy (the shadow): a vertical
   * scroll, if one moved at least a text line, then the changed rows of each changed tile, merged
   * into runs along each tile row and runs of equal span merged down the rows. Updates the shadow
   * to what the client will hold. A tile counts as held by the client once any of it is sent
   * (clients practically always ask for the whole screen).
   */
  private changes(req: Rect): { scroll?: { to: Rect; from: { x: number; y: number } }; rects: Rect[] } {
    const fb = this.server.options.framebuffer;
    const W = fb.width;
    const width = Math.min(this.width, W);
    const height = Math.min(this.height, fb.height);
    const rx0 = Math.min(req.x, width);
    const ry0 = Math.min(req.y, height);
    const rx1 = Math.min(req.x + req.w, width);
    const ry1 = Math.min(req.y + req.h, height);
    if (rx0 >= rx1 || ry0 >= ry1) return { rects: [] };
    const dirty: number[] = [];
    for (let ty = Math.floor(ry0 / TILE); ty * TILE < ry1; ty++) {
      for (let tx = Math.floor(rx0 / TILE); tx * TILE < rx1; tx++) {
        const t = ty * fb.tilesX + tx;
        if (fb.tileStamp[t] > this.seen[t]) {
          this.seen[t] = fb.tileStamp[t];
          dirty.push(t);
        }
      }
    }
    if (dirty.length === 0) return { rects: [] };
    const cur = Buffer.from(fb.rgba.buffer, fb.rgba.byteOffset, fb.rgba.byteLength);
    const shadow = this.shadow;
    let scroll: { to: Rect; from: { x: number; y: number } } | undefined;
    const yA = Math.max(ry0, Math.floor(dirty[0] / fb.tilesX) * TILE);
    const yB = Math.min(ry1, (Math.floor(dirty[dirty.length - 1] / fb.tilesX) + 1) * TILE);
    if (this.copyRect && rx0 === 0 && rx1 === W && this.width === W && this.height === fb.height && yB - yA >= 2 * SCROLL_MIN_ROWS) {
      const found = this.findScroll(cur, yA, yB);
      if (found) {
        const rb = W * 4;
        shadow.copyWithin(found.y * rb, (found.y + found.dy) * rb, (found.y + found.dy + found.rows) * rb);
        scroll = { to: { x: 0, y: found.y, w: W, h: found.rows }, from: { x: 0, y: found.y + found.dy } };
      }
    }
    const rects: Rect[] = [];
    let open: Rect[] = []; // runs of the previous tile row, still extendable downwards
    let row: Rect[] = [];
    let rowTy = -1;
    const closeRow = () => {
      const next: Rect[] = [];
      for (const r of row) {
        const above = open.find((o) => o.x === r.x && o.w === r.w && o.y + o.h === r.y);
        if (above) {
          above.h += r.h;
          next.push(above);
        } else {
          rects.push(r);
          next.push(r);
        }
      }
      open = next;
      row = [];
    };
    for (const t of dirty) {
      const ty = Math.floor(t / fb.tilesX);
      const tx = t % fb.tilesX;
      if (ty !== rowTy) {
        closeRow();
        if (ty !== rowTy + 1) open = [];
        rowTy = ty;
      }
      const x0 = Math.max(rx0, tx * TILE);
      const x1 = Math.min(rx1, (tx + 1) * TILE);
      const y0 = Math.max(ry0, ty * TILE);
      const y1 = Math.min(ry1, (ty + 1) * TILE);
      let first = -1;
      let last = -1;
      for (let y = y0; y < y1; y++) {
        const o0 = (y * W + x0) * 4;
        const o1 = (y * W + x1) * 4;
        if (cur.compare(shadow, o0, o1, o0, o1) === 0) continue;
        cur.copy(shadow, o0, o0, o1);
        if (first < 0) first = y;
        last = y;
      }
      if (first < 0) continue;
      const r = { x: x0, y: first, w: x1 - x0, h: last - first + 1 };
      const prev = row[row.length - 1];
      if (prev && prev.x + prev.w === r.x && prev.y === r.y && prev.h === r.h) prev.w += r.w;
      else row.push(r);
    }
    closeRow();
    return { scroll, rects };
  }

  /**
   * A vertical scroll between the client's copy and the screen, full width, within rows [yA, yB):
   * rows y.. of the screen equal rows y+dy.. of the shadow. Candidate shifts come from a few changed,
   * non-uniform probe rows looked up in the shadow; the longest run of equal rows wins.
   */
  private findScroll(cur: Buffer, yA: number, yB: number): { y: number; dy: number; rows: number } | undefined {
    const fb = this.server.options.framebuffer;
    const H = fb.height;
    const rb = fb.width * 4;
    const shadow = this.shadow;
    const same = (y: number, sy: number) => cur.compare(shadow, sy * rb, sy * rb + rb, y * rb, y * rb + rb) === 0;
    const uniform = (y: number) => cur.compare(cur, y * rb, y * rb + rb - 4, y * rb + 4, y * rb + rb) === 0;
    const shifts = new Set<number>();
    for (let k = 1; k < SCROLL_PROBES; k++) {
      const y = yA + Math.floor(((yB - yA) * k) / SCROLL_PROBES);
      if (uniform(y) || same(y, y)) continue;
      let matches = 0;
      for (let sy = 0; sy < H && matches < 3; sy++) {
        if (sy !== y && same(y, sy)) {
          shifts.add(sy - y);
          matches++;
        }
      }
    }
    let best: { y: number; dy: number; rows: number } | undefined;
    for (const dy of shifts) {
      const from = Math.max(yA, -dy);
      const to = Math.min(yB, H - dy);
      let runStart = -1;
      for (let y = from; y <= to; y++) {
        if (y < to && same(y, y + dy)) {
          if (runStart < 0) runStart = y;
          continue;
        }
        if (runStart >= 0 && y - runStart >= SCROLL_MIN_ROWS && (!best || y - runStart > best.rows)) best = { y: runStart, dy, rows: y - runStart };
        runStart = -1;
      }
    }
    return best;
  }

  // Input.

  private sendKeys(bytes: number[]): void {
    if (bytes.length === 0) return;
    this.server.options.input.sendScancodes(bytes).catch((err: Error) => this.log(`keyboard: ${err.message}`));
    this.server.inputArrived();
  }

  private onKeysym(down: boolean, keysym: number): void {
    const k = keyFromKeysym(keysym);
    if (!k) return;
    if (!down) {
      if (this.pressed.delete(k.key)) this.sendKeys(scancodeBytes(k.key, false));
      return;
    }
    const heldShifts = [LEFT_SHIFT, RIGHT_SHIFT].filter((s) => this.pressed.has(s));
    const bytes: number[] = [];
    // The client sends the keysym it wants ('!'), with its own Shift state; make the US key
    // produce it: add a Shift around the press, or lift the held ones.
    if (k.shift === true && heldShifts.length === 0) {
      bytes.push(...scancodeBytes(LEFT_SHIFT, true), ...scancodeBytes(k.key, true), ...scancodeBytes(LEFT_SHIFT, false));
    } else if (k.shift === false && heldShifts.length > 0) {
      for (const s of heldShifts) bytes.push(...scancodeBytes(s, false));
      bytes.push(...scancodeBytes(k.key, true));
      for (const s of heldShifts) bytes.push(...scancodeBytes(s, true));
    } else {
      bytes.push(...scancodeBytes(k.key, true));
    }
    this.pressed.add(k.key);
    this.sendKeys(bytes);
  }

  private onQemuKey(down: boolean, keysym: number, keycode: number): void {
    const key = keyFromQemuKeycode(keycode) ?? keyFromKeysym(keysym)?.key;
    if (key === undefined) return;
    if (down) this.pressed.add(key);
    else if (!this.pressed.delete(key)) return;
    this.sendKeys(scancodeBytes(key, down));
  }

  private onPointer(mask: number, x: number, y: number): void {
    const input = this.server.options.input;
    const last = this.pointer;
    if (!last || last.x !== x || last.y !== y) {
      if (last) input.mouseMove(x - last.x, y - last.y);
      input.mouseAbsolute(x, y, this.width, this.height);
      this.pointer = { x, y };
    }
    const pressedNow = mask & ~this.buttons;
    if ((mask & 7) !== (this.buttons & 7)) input.mouseButtons((mask & 1) !== 0, (mask & 2) !== 0, (mask & 4) !== 0);
    // Buttons 4 and 5 are one wheel notch up / down per press.
    if (pressedNow & 8) input.mouseWheel(1);
    if (pressedNow & 16) input.mouseWheel(-1);
    this.buttons = mask;
    this.server.inputArrived();
  }

  /** A viewer that disconnects must not leave keys or buttons held in the guest. */
  disconnected(): void {
    if (this.phase !== 'closed') this.log('disconnected');
    this.phase = 'closed';
    const bytes: number[] = [];
    for (const key of this.pressed) bytes.push(...scancodeBytes(key, false));
    this.pressed.clear();
    this.sendKeys(bytes);
    this.encoder.close();
    if (this.buttons & 7) this.server.options.input.mouseButtons(false, false, false);
    this.buttons = 0;
  }
}

function boundingBox(rects: readonly Rect[]): Rect {
  const x = Math.min(...rects.map((r) => r.x));
  const y = Math.min(...rects.map((r) => r.y));
  const w = Math.max(...rects.map((r) => r.x + r.w)) - x;
  const h = Math.max(...rects.map((r) => r.y + r.h)) - y;
  return { x, y, w, h };
}
