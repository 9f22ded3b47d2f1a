// Live migration of a v86 guest between two runners: the stream, the source's iterative pre-copy and
// the destination's receiver. v86 has no dirty log, so the source keeps a shadow copy of guest memory
// (RAM, then VRAM) as last sent and compares against it (guest-pages.ts scan), and the runner is one
// thread, so a scan or a copy is never raced by the guest. The shadow starts zeroed, as the
// destination's memory does, so round 1 sends exactly the non-zero pages.
//
// Stream (all integers little-endian): the 64 hex characters of the endpoint's token; a header
// (MAGIC, VERSION, RAM bytes, VRAM bytes, page size); then records, each a type byte:
// PAGE (u32 index, 4096 bytes), ZERO (u32 index), STATE (u32 length, v86 device state without RAM
// and VRAM), META (u32 length, JSON), END. Page indexes count RAM pages, then VRAM pages. The
// destination restores the STATE after the last pages (once: restoring twice, the first time over
// incomplete memory, left a guest whose shell no longer answered) and answers END with ACK once the
// guest runs (or waits paused, if it was paused).
import crypto from 'node:crypto';
import net from 'node:net';
import { z } from 'zod';
import { clearFreshMemory, PAGE, pageView, scan, type GuestMemory } from './guest-pages.js';
import type { MigrateArgs, MigrateResult, MigrationProgressEvent, RunState } from './protocol.js';

const MAGIC = 0x4d363844; // "D86M"
const VERSION = 1;
const HEADER_BYTES = 20;
const REC_PAGE = 1;
const REC_ZERO = 2;
const REC_STATE = 3;
const REC_META = 4;
const REC_END = 5;
const ACK = Buffer.from('OK\n');
const TOKEN_CHARS = 64;
/** Device state without RAM and VRAM: ~0.3 MiB measured; the bound leaves room for bigger VGA modes. */
const MAX_STATE_BYTES = 16 << 20;
const MAX_META_BYTES = 64 << 10;
/** A source that sends nothing for this long has gone. */
const IDLE_TIMEOUT_MS = 60_000;
const ACK_TIMEOUT_MS = 60_000;
/** Pages per write: 256 pages ≈ 1 MiB. */
const BATCH_PAGES = 256;
/** How often a copy round reports its progress. */
const PROGRESS_MS = 500;
/** Pre-copy gives up converging after this many rounds, or after this many rounds without a smaller dirty set. */
const MAX_ROUNDS = 30;
const MAX_STALLED_ROUNDS = 3;

/** What the source sends besides memory and device state. */
const metaSchema = z.strictObject({ running: z.boolean(), agentConnected: z.boolean() });
export type MigrationMeta = z.infer<typeof metaSchema>;

/** Parses 'unix:/path' or 'tcp:host:port' ('tcp:[::1]:port' for IPv6). */
export function parseEndpoint(uri: string): { path: string } | { host: string; port: number } {
  if (uri.startsWith('unix:/')) return { path: uri.slice('unix:'.length) };
  const m = /^tcp:(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(uri);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new Error(`bad migration endpoint '${uri}': expected unix:/path or tcp:host:port`);
  return { host: m[1] ?? m[2]!, port };
}

export function formatEndpoint(address: net.AddressInfo | string): string {
  if (typeof address === 'string') return `unix:${address}`;
  return address.family === 'IPv6' ? `tcp:[${address.address}]:${address.port}` : `tcp:${address.address}:${address.port}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Source

export interface MigrationSource {
  /** Fresh views of guest memory (wasm memory may have grown since the last call). */
  memory(): Promise<GuestMemory>;
  state(): RunState;
  pause(): Promise<void>;
  resume(): Promise<void>;
  deviceState(): Promise<Uint8Array>;
  agentConnected(): boolean;
}

/** The source's connection: batched writes, backpressure, bandwidth limit, and its failure. */
class Sender {
  sent = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private failure: Error | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly socket: net.Socket,
    private readonly bytesPerMs: number | undefined,
    private readonly signal: AbortSignal,
  ) {
    socket.on('error', (err) => (this.failure ??= new Error(`migration connection failed: ${err.message}`)));
    socket.on('close', () => (this.failure ??= new Error('the destination closed the migration connection')));
  }

  check(): void {
    if (this.signal.aborted) throw new Error('migration aborted');
    if (this.failure) throw this.failure;
  }

  push(data: Buffer): void {
    this.batch.push(data);
    this.batchBytes += data.length;
  }

  get pending(): number {
    return this.batchBytes;
  }

  async flush(): Promise<void> {
    this.check();
    if (this.batchBytes === 0) return;
    const data = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    this.sent += data.length;
    if (!this.socket.write(data)) await this.drained();
    if (this.bytesPerMs) {
      const due = this.started + this.sent / this.bytesPerMs;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    this.check();
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.signal.removeEventListener('abort', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
      this.signal.addEventListener('abort', done);
    });
  }

  /** Waits for the destination's acknowledgement of END. */
  ack(): Promise<void> {
    return new Promise((resolve, reject) => {
      let got = Buffer.alloc(0);
      const timer = setTimeout(() => finish(new Error(`the destination did not acknowledge the migration within ${ACK_TIMEOUT_MS / 1000} s`)), ACK_TIMEOUT_MS);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.socket.off('data', onData);
        this.socket.off('close', onClose);
        this.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onData = (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]).subarray(0, ACK.length);
        if (got.length === ACK.length) finish(got.equals(ACK) ? undefined : new Error('the destination answered the migration with something else than its acknowledgement'));
      };
      const onClose = () => finish(new Error('the destination closed the connection before acknowledging the migration (see its log)'));
      const onAbort = () => finish(new Error('migration aborted'));
      this.socket.on('data', onData);
      this.socket.on('close', onClose);
      this.signal.addEventListener('abort', onAbort);
    });
  }
}

function connect(uri: string, signal: AbortSignal): Promise<net.Socket> {
  const where = parseEndpoint(uri);
  return new Promise((resolve, reject) => {
    const socket = 'path' in where ? net.connect(where.path) : net.connect({ host: where.host, port: where.port });
    const fail = (err: Error) => {
      socket.destroy();
      reject(new Error(`cannot connect to the migration destination ${uri}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    };
    const onAbort = () => fail(new Error('migration aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.off('error', fail);
      signal.removeEventListener('abort', onAbort);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

const ZERO_PAGE = new Uint8Array(PAGE);

/**
 * Streams the guest to `args.uri`: pre-copy rounds while it runs, then pause, the last dirty pages and
 * the device state; resolves once the destination acknowledged (the guest stays paused here). On any
 * failure or abort, resumes the guest if this paused it and rejects.
 */
export async function migrateOut(
  source: MigrationSource,
  args: MigrateArgs,
  signal: AbortSignal,
  onProgress: (p: MigrationProgressEvent) => void,
): Promise<MigrateResult> {
  const startedAt = Date.now();
  const wasRunning = source.state() === 'running';
  let pausedHere = false;
  const socket = await connect(args.uri, signal);
  const sender = new Sender(socket, args.bandwidthMiBs ? (args.bandwidthMiBs * 1024 * 1024) / 1000 : undefined, signal);
  try {
    let memory = await source.memory();
    const ramPages = memory.ram.length / PAGE;
    const totalPages = ramPages + memory.vram.length / PAGE;
    const totalBytes = totalPages * PAGE;
    const shadow = { ram: new Uint8Array(memory.ram.length), vram: new Uint8Array(memory.vram.length) };
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(VERSION, 4);
    header.writeUInt32LE(memory.ram.length, 8);
    header.writeUInt32LE(memory.vram.length, 12);
    header.writeUInt32LE(PAGE, 16);
    sender.push(Buffer.from(args.token, 'ascii'));
    sender.push(header);
    await sender.flush();

    const dirtyPages = (): number[] => {
      const out: number[] = [];
      scan(memory.ram, shadow.ram, 0, out);
      scan(memory.vram, shadow.vram, ramPages, out);
      return out;
    };
    /**
     * Sends the pages listed (as they are now), updating the shadow; yields to the guest between
     * batches, reporting progress at most every PROGRESS_MS so that a slow round is not silent.
     */
    const sendPages = async (pages: number[], progress: (remainingBytes: number) => void): Promise<void> => {
      let inBatch = 0;
      let sentPages = 0;
      let reportedAt = Date.now();
      for (const index of pages) {
        const live = pageView(memory, index);
        const copy = pageView(shadow, index);
        copy.set(live);
        const zero = Buffer.compare(copy, ZERO_PAGE) === 0;
        const rec = Buffer.allocUnsafe(zero ? 5 : 5 + PAGE);
        rec[0] = zero ? REC_ZERO : REC_PAGE;
        rec.writeUInt32LE(index, 1);
        if (!zero) rec.set(copy, 5);
        sender.push(rec);
        sentPages++;
        if (++inBatch === BATCH_PAGES) {
          inBatch = 0;
          await sender.flush();
          memory = await source.memory();
          if (Date.now() - reportedAt >= PROGRESS_MS) {
            reportedAt = Date.now();
            progress((pages.length - sentPages) * PAGE);
          }
        }
      }
      await sender.flush();
    };
    const record = (type: number, body?: Uint8Array) => {
      const head = Buffer.alloc(body ? 5 : 1);
      head[0] = type;
      if (body) head.writeUInt32LE(body.length, 1);
      sender.push(head);
      if (body) sender.push(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    };
    let pausedAt: number | undefined;
    const pause = async () => {
      pausedAt = Date.now();
      if (source.state() === 'running') {
        await source.pause();
        pausedHere = true;
      }
    };

    if (!args.live) await pause();
    let iteration = 0;
    let nonZeroRamBytes = 0;
    let rate = 0; // bytes per ms, of the last round
    let best = Infinity;
    let stalled = 0;
    let lastScanAt = Date.now();
    let scanMs = 0;
    for (;;) {
      iteration++;
      memory = await source.memory();
      const t0 = Date.now();
      let dirty = dirtyPages();
      scanMs = Date.now() - t0;
      const dirtyBytes = dirty.length * PAGE;
      const dirtyRate = iteration > 1 ? (dirtyBytes * 1000) / Math.max(1, t0 - lastScanAt) : undefined;
      lastScanAt = t0;
      if (iteration === 1) nonZeroRamBytes = dirty.filter((p) => p < ramPages).length * PAGE;
      const paused = source.state() === 'paused';
      if (!paused && iteration > 1) {
        stalled = dirty.length < best ? 0 : stalled + 1;
        best = Math.min(best, dirty.length);
        // The pause costs a scan, the dirty pages at the last round's rate, and the device state.
        const expectedMs = scanMs + (rate > 0 ? dirtyBytes / rate : Infinity);
        if (expectedMs <= args.maxDowntimeMs || iteration >= MAX_ROUNDS || stalled >= MAX_STALLED_ROUNDS) {
          await pause();
          memory = await source.memory();
          dirty = dirtyPages();
        }
      }
      const final = source.state() === 'paused';
      pausedAt ??= final ? Date.now() : undefined;
      const phase = final ? 'stopcopy' : 'precopy';
      const sentBefore = sender.sent;
      const sendStart = Date.now();
      const report = (remainingBytes: number) =>
        onProgress({ phase, iteration, totalBytes, transferredBytes: sender.sent, remainingBytes, ...(dirtyRate !== undefined && { dirtyRateBytesPerSec: Math.round(dirtyRate) }) });
      // Remaining counts down within a round: its dirty bytes at the start, 0 once it is sent.
      report(dirtyBytes);
      await sendPages(dirty, report);
      rate = (sender.sent - sentBefore) / Math.max(1, Date.now() - sendStart);
      report(0);
      if (!final) continue;

      const sentAt = Date.now();
      const state = await source.deviceState();
      const stateAt = Date.now();
      const meta = Buffer.from(JSON.stringify({ running: wasRunning, agentConnected: source.agentConnected() } satisfies MigrationMeta));
      record(REC_STATE, state);
      record(REC_META, meta);
      record(REC_END);
      const acked = sender.ack();
      await sender.flush();
      await acked;
      const now = Date.now();
      socket.destroy();
      const downtimeParts = { pauseAndPagesMs: sentAt - (pausedAt ?? startedAt), deviceStateMs: stateAt - sentAt, restoreAndAckMs: now - stateAt };
      return {
        downtimeMs: now - (pausedAt ?? startedAt),
        totalMs: now - startedAt,
        iterations: iteration,
        transferredBytes: sender.sent,
        nonZeroRamBytes,
        finalPages: dirty.length,
        deviceStateBytes: state.length,
        downtimeParts,
      };
    }
  } catch (err) {
    socket.destroy();
    if (pausedHere && wasRunning) await source.resume();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Destination

export interface MigrationTarget {
  /** Views of this (not started) machine's memory; RAM and VRAM sizes are the configured ones. */
  memory(): Promise<GuestMemory>;
  /** Restores the device state over the memory received (the CPU has not run). */
  restore(state: Uint8Array): Promise<void>;
  /** The stream is complete: the guest starts (runs if it ran there). */
  start(meta: MigrationMeta): Promise<void>;
}

/** Reads exact lengths from a socket in paused mode; fails on end, error, idle timeout. */
class Reader {
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly socket: net.Socket) {
    const stop = (err: Error) => {
      this.failure ??= err;
      this.wake?.();
    };
    socket.on('readable', () => this.wake?.());
    socket.on('end', () => stop(new Error('the migration stream ended early')));
    socket.on('close', () => stop(new Error('the migration connection closed early')));
    socket.on('error', (err) => stop(new Error(`migration connection failed: ${err.message}`)));
    socket.setTimeout(IDLE_TIMEOUT_MS, () => {
      stop(new Error(`the migration source sent nothing for ${IDLE_TIMEOUT_MS / 1000} s`));
      socket.destroy();
    });
  }

  async read(n: number): Promise<Buffer> {
    for (;;) {
      const chunk = this.socket.read(n) as Buffer | null;
      if (chunk && chunk.length === n) return chunk;
      if (chunk) throw new Error('the migration stream ended early');
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/**
 * Checks the token a new connection must send first, in constant time; resolves false (the caller
 * drops the connection) for anything else, or nothing within `timeoutMs`.
 */
export async function checkToken(socket: net.Socket, token: string, timeoutMs = 10_000): Promise<boolean> {
  const expected = Buffer.from(token, 'ascii');
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  try {
    const got = await new Reader(socket).read(TOKEN_CHARS);
    return expected.length === TOKEN_CHARS && crypto.timingSafeEqual(got, expected);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Receives one migration stream (after the token) into `target`, every length checked against this
 * machine's configuration, then restores it and acknowledges. Returns the guest's run state.
 */
export async function migrateIn(socket: net.Socket, target: MigrationTarget): Promise<MigrationMeta> {
  const reader = new Reader(socket);
  const memory = await target.memory();
  const header = await reader.read(HEADER_BYTES);
  const magic = header.readUInt32LE(0);
  const version = header.readUInt32LE(4);
  const ramBytes = header.readUInt32LE(8);
  const vramBytes = header.readUInt32LE(12);
  const pageSize = header.readUInt32LE(16);
  if (magic !== MAGIC) throw new Error('not a v86 migration stream (bad magic)');
  if (version !== VERSION) throw new Error(`migration stream version ${version}, this runner reads ${VERSION}`);
  if (pageSize !== PAGE) throw new Error(`migration stream page size ${pageSize}, expected ${PAGE}`);
  if (ramBytes !== memory.ram.length) throw new Error(`the guest has ${ramBytes} bytes of RAM, this machine ${memory.ram.length}`);
  if (vramBytes !== memory.vram.length) throw new Error(`the guest has ${vramBytes} bytes of VRAM, this machine ${memory.vram.length}`);
  const totalPages = (ramBytes + vramBytes) / PAGE;
  // The source's shadow starts zeroed: so does this memory.
  clearFreshMemory(memory);
  let state: Buffer | undefined;
  let meta: MigrationMeta | undefined;
  const body = async (what: string, max: number): Promise<Buffer> => {
    const length = (await reader.read(4)).readUInt32LE(0);
    if (length > max) throw new Error(`migration stream: ${what} of ${length} bytes (at most ${max})`);
    return reader.read(length);
  };
  for (;;) {
    const type = (await reader.read(1))[0];
    if (type === REC_PAGE || type === REC_ZERO) {
      const index = (await reader.read(4)).readUInt32LE(0);
      if (index >= totalPages) throw new Error(`migration stream: page ${index} beyond the guest's ${totalPages}`);
      if (state) throw new Error('migration stream: a page after the device state');
      const page = pageView(memory, index);
      if (type === REC_PAGE) page.set(await reader.read(PAGE));
      else page.fill(0);
    } else if (type === REC_STATE) {
      if (state) throw new Error('migration stream: a second device state');
      state = await body('device state', MAX_STATE_BYTES);
    } else if (type === REC_META) {
      let parsed: unknown;
      try {
        parsed = JSON.parse((await body('metadata', MAX_META_BYTES)).toString('utf8'));
      } catch (err) {
        throw new Error(`migration stream: bad metadata (${(err as Error).message})`);
      }
      const checked = metaSchema.safeParse(parsed);
      if (!checked.success) throw new Error('migration stream: bad metadata');
      meta = checked.data;
    } else if (type === REC_END) {
      break;
    } else {
      throw new Error(`migration stream: unknown record type ${type}`);
    }
  }
  if (!state || !meta) throw new Error('migration stream ended without the device state');
  await target.restore(state);
  await target.start(meta);
  await new Promise<void>((resolve, reject) => socket.end(ACK, () => resolve()).once('error', reject));
  return meta;
}
