// The saved-state file ("domus save"/"domus restore"): a guest's complete v86 state plus what is
// needed to check it before restoring it. Shared by the runner (writes and restores) and the host
// (reads the header of a file to learn which domain it holds); nothing here starts an emulator.
//
// Layout (integers little-endian):
//   0   8  magic "\x89DOMUS\r\n" (the high byte and CR LF catch 7-bit and newline-mangling copies)
//   8   4  format version (STATE_FORMAT_VERSION)
//   12  4  header length H
//   16  32 SHA-256 of the header bytes
//   48  H  header: JSON, UTF-8 (StateHeader)
//   48+H   payload: header.payloadBytes long, SHA-256 in the header; the engine's own (v86: the layout
//          of main/runner/state-payload.ts; QEMU: its migration stream)
//
// Format 1 held v86's save_state() output as the v86 payload; its v86 states are refused with a
// clear error (a v86 upgrade makes every state unusable the same way, by engineVersion).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { fillFileAtomic, systemErrorText } from './fsutil.js';
import { InputFileError, openInputFile } from './input-file.js';

export const STATE_FORMAT_VERSION = 2;
/** Older formats still read, for the engines whose payload did not change. */
const OLDER_FORMATS: Record<number, string[]> = { 1: ['qemu'] };
const MAGIC = Buffer.from([0x89, 0x44, 0x4f, 0x4d, 0x55, 0x53, 0x0d, 0x0a]);
/** The fixed prefix: magic, format version, header length, header SHA-256. */
export const PREFIX_BYTES = 48;
/** A header is a few KiB plus the domain XML; anything near this is not a header. */
const MAX_HEADER_BYTES = 16 * 1024 * 1024;
const IO_CHUNK_BYTES = 4 * 1024 * 1024;

export const STATE_ENGINE = 'v86';
/** v86's npm version without build metadata ("0.5.462"): v86 may change its state layout in any release. */
export const STATE_ENGINE_VERSION = (createRequire(import.meta.url)('v86/package.json') as { version: string }).version.replace(/\+.*$/, '');

/** Which engine (and exact version) a state file must come from to be restored. */
export interface StateEngine {
  engine: string;
  version: string;
}
const V86_STATE_ENGINE: StateEngine = { engine: STATE_ENGINE, version: STATE_ENGINE_VERSION };

/** The engine named in a state file's header, read without checking anything else (to pick a driver). */
export function peekStateEngine(file: string): string | undefined {
  let fd: number;
  try {
    ({ fd } = openInputFile(file));
  } catch {
    return undefined;
  }
  try {
    const prefix = Buffer.alloc(PREFIX_BYTES);
    if (readExactly(fd, prefix, 0) < PREFIX_BYTES || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    const headerBytes = prefix.readUInt32LE(12);
    if (headerBytes > MAX_HEADER_BYTES) return undefined;
    const raw = Buffer.alloc(headerBytes);
    readExactly(fd, raw, PREFIX_BYTES);
    const engine = (JSON.parse(raw.toString('utf8')) as { engine?: unknown }).engine;
    return typeof engine === 'string' ? engine : undefined;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** The emulated hardware a state belongs to; a restore needs exactly the same. */
export interface StateMachine {
  memoryBytes: number;
  vgaMemoryBytes: number;
  acpi: boolean;
  balloon: boolean;
  /** v86's virtio console, the guest agent's channel. */
  guestAgent: boolean;
  /** Sizes of the attached images. Their contents are not in the state: they stay in the image files. */
  disks: { cdrom?: number; hda?: number; hdb?: number };
  /** The NIC model (v86 has an ne2k when nothing else is asked for; states from before NICs had that). */
  nic?: 'ne2k' | 'virtio';
}

export interface StateHeader {
  format: number;
  engine: string;
  engineVersion: string;
  name: string;
  uuid: string;
  /** The domain definition the guest ran with (libvirt domain XML). */
  domainXml: string;
  /** ISO 8601. */
  createdAt: string;
  machine: StateMachine;
  /** What the runner knew about the guest when it saved it. */
  guest: { agentConnected: boolean };
  payloadBytes: number;
  /** Hex SHA-256 of the payload. */
  payloadSha256: string;
}

const byteCount = z.number().int().nonnegative();

const stateHeaderSchema: z.ZodType<StateHeader> = z.object({
  format: z.number().int(),
  engine: z.string(),
  engineVersion: z.string(),
  name: z.string().min(1),
  uuid: z.string().min(1),
  domainXml: z.string(),
  createdAt: z.string(),
  machine: z.object({
    memoryBytes: byteCount,
    vgaMemoryBytes: byteCount,
    acpi: z.boolean(),
    balloon: z.boolean(),
    guestAgent: z.boolean(),
    disks: z.object({ cdrom: byteCount.optional(), hda: byteCount.optional(), hdb: byteCount.optional() }),
    nic: z.enum(['ne2k', 'virtio']).optional(),
  }),
  guest: z.object({ agentConnected: z.boolean() }),
  payloadBytes: byteCount,
  payloadSha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** A state file that cannot be used; the message names the file and the reason. */
export class StateFileError extends Error {
  override name = 'StateFileError';
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

function sha256(data: Uint8Array): Buffer {
  return crypto.createHash('sha256').update(data).digest();
}

function readExactly(fd: number, into: Uint8Array, position: number): number {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export interface Located {
  header: StateHeader;
  payloadOffset: number;
}

/** Checks everything but the payload checksum; the file is only read. */
function locate(fd: number, file: string, expect: StateEngine = V86_STATE_ENGINE): Located {
  const size = fs.fstatSync(fd).size;
  const fail = (why: string) => new StateFileError(`state file '${file}' ${why}`);
  const prefix = Buffer.alloc(PREFIX_BYTES);
  const got = readExactly(fd, prefix, 0);
  if (got < MAGIC.length || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) throw fail('is not a Domus state file');
  if (got < PREFIX_BYTES) throw fail('is truncated');
  const version = prefix.readUInt32LE(8);
  if (version !== STATE_FORMAT_VERSION && !OLDER_FORMATS[version]) {
    throw fail(`has format version ${version}; this Domus reads version ${STATE_FORMAT_VERSION}`);
  }
  const headerBytes = prefix.readUInt32LE(12);
  if (headerBytes > MAX_HEADER_BYTES) throw fail(`is corrupt: header length ${headerBytes}`);
  if (size < PREFIX_BYTES + headerBytes) throw fail('is truncated');
  const raw = Buffer.alloc(headerBytes);
  readExactly(fd, raw, PREFIX_BYTES);
  if (!sha256(raw).equals(prefix.subarray(16, 48))) throw fail('is corrupt: header checksum mismatch');
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw fail('is corrupt: the header is not JSON');
  }
  const parsed = stateHeaderSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fail(`is corrupt: header ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const header = parsed.data;
  if (header.format !== version) throw fail(`is corrupt: header format ${header.format}, file format ${version}`);
  if (version !== STATE_FORMAT_VERSION && !OLDER_FORMATS[version]!.includes(header.engine)) {
    throw fail(`has format version ${version}, from an older Domus whose ${header.engine} states this one cannot restore`);
  }
  if (header.engine !== expect.engine || header.engineVersion !== expect.version) {
    const ours = header.engine === expect.engine ? expect.version : `${expect.engine} ${expect.version}`;
    throw fail(`was written by engine ${header.engine} ${header.engineVersion}, this is ${ours}`);
  }
  const end = PREFIX_BYTES + headerBytes + header.payloadBytes;
  if (size < end) throw fail('is truncated');
  if (size > end) throw fail(`is corrupt: ${size - end} unexpected bytes after the payload`);
  return { header, payloadOffset: PREFIX_BYTES + headerBytes };
}

function openForReading(file: string): number {
  try {
    return openInputFile(file).fd;
  } catch (err) {
    if (err instanceof InputFileError && err.kind) throw new StateFileError(`state file ${err.message}`);
    throw new StateFileError(`cannot read state file '${file}': ${errnoText(err)}`);
  }
}

/**
 * Reads and checks a state file (structure, engine, size, header checksum; the payload checksum
 * unless `payload` is 'unchecked', for an engine that checks it as it reads the payload) and
 * returns its header. Throws a StateFileError naming the file and the problem. The payload is
 * hashed in chunks, so a large file costs one read pass and little memory.
 */
export function readStateHeader(file: string, expect?: StateEngine, payload: 'checked' | 'unchecked' = 'checked'): StateHeader {
  if (payload === 'unchecked') {
    const { fd, header } = openStateFile(file, expect);
    fs.closeSync(fd);
    return header;
  }
  return readStateFile(file, expect).header;
}

/** readStateHeader, plus where the payload starts (engines that stream it from the file). */
export function readStateFile(file: string, expect?: StateEngine): { header: StateHeader; payloadOffset: number } {
  const fd = openForReading(file);
  try {
    const { header, payloadOffset } = locate(fd, file, expect);
    const hash = crypto.createHash('sha256');
    const chunk = Buffer.alloc(Math.min(IO_CHUNK_BYTES, Math.max(1, header.payloadBytes)));
    for (let done = 0; done < header.payloadBytes; ) {
      const want = Math.min(chunk.length, header.payloadBytes - done);
      // Short only if the file shrank since locate() measured it.
      if (readExactly(fd, chunk.subarray(0, want), payloadOffset + done) < want) throw new StateFileError(`state file '${file}' is truncated`);
      hash.update(chunk.subarray(0, want));
      done += want;
    }
    checkPayloadDigest(file, header, hash.digest('hex'));
    return { header, payloadOffset };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Opens a state file and checks all but its payload checksum (a StateFileError naming the problem).
 * The caller reads the payload from `fd` (one descriptor: a file renamed over `file` meanwhile is not
 * mixed in), checks it with checkPayloadDigest, and closes `fd`.
 */
export function openStateFile(file: string, expect?: StateEngine): Located & { fd: number } {
  const fd = openForReading(file);
  try {
    return { ...locate(fd, file, expect), fd };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** A StateFileError unless `digest` (hex SHA-256 of the payload as read) is the header's. */
export function checkPayloadDigest(file: string, header: StateHeader, digest: string): void {
  if (digest !== header.payloadSha256) throw new StateFileError(`state file '${file}' is corrupt: checksum mismatch`);
}

export interface WriteStateOptions {
  /** Called after each chunk reaches the file. */
  onProgress?: (processedBytes: number, totalBytes: number) => void;
  /** Aborting stops the write between chunks; the temporary file is removed and nothing is left. */
  signal?: AbortSignal;
}

export class StateWriteAborted extends Error {
  override name = 'StateWriteAborted';
}

/**
 * A payload taken from memory that may change as soon as the event loop turns (a paused guest's RAM:
 * a NIC frame or a balloon reply lands in it even while the CPU is stopped). `take` is called once the
 * file is open, and what it returns is written and hashed without yielding, so that the file is one
 * instant's copy; progress is reported as it goes, and an abort is honoured before and after.
 */
export interface TakenPayload {
  /** `header`: what of the header is only known with the payload (the guest agent's state). */
  take(): { bytes: number; batches: Iterable<Uint8Array[]>; header?: Partial<Omit<StateHeader, 'format' | 'payloadBytes' | 'payloadSha256'>> };
}

/**
 * Writes a state file atomically: a temporary file in the target directory, written in chunks with
 * progress, fsync'd, renamed over `file`, then the directory fsync'd. On failure or abort the
 * temporary file is removed and `file` is untouched. Returns the file size and the payload checksum.
 */
export async function writeStateFile(
  file: string,
  fields: Omit<StateHeader, 'format' | 'payloadBytes' | 'payloadSha256'>,
  payload: Uint8Array | TakenPayload,
  opts: WriteStateOptions = {},
): Promise<{ bytes: number; checksum: string }> {
  if (!(payload instanceof Uint8Array)) return writeChunks(file, fields, payload, opts);
  const bytes = payload;
  function* chunks(): Generator<Uint8Array[]> {
    for (let off = 0; off < bytes.length; off += IO_CHUNK_BYTES) yield [bytes.subarray(off, Math.min(off + IO_CHUNK_BYTES, bytes.length))];
  }
  return writeChunks(file, fields, { bytes: bytes.length, batches: chunks() }, opts);
}

/**
 * writeStateFile for a payload that is already in a file (QEMU's migration stream): copied behind
 * the header with progress; same atomicity, abort and cleanup.
 */
export async function writeStateFileFrom(
  file: string,
  fields: Omit<StateHeader, 'format' | 'payloadBytes' | 'payloadSha256'>,
  payloadFile: string,
  opts: WriteStateOptions = {},
): Promise<{ bytes: number; checksum: string }> {
  const payloadBytes = (await fs.promises.stat(payloadFile)).size;
  const stream = fs.createReadStream(payloadFile, { highWaterMark: IO_CHUNK_BYTES }) as AsyncIterable<Buffer>;
  async function* chunks(): AsyncGenerator<Uint8Array[]> {
    for await (const chunk of stream) yield [chunk];
  }
  return writeChunks(file, fields, { bytes: payloadBytes, batches: chunks() }, opts);
}

/** The prefix and header of a state file holding `header` (any JSON object: tests craft hostile ones). */
export function headBytes(header: object): Buffer {
  const raw = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(STATE_FORMAT_VERSION, 8);
  prefix.writeUInt32LE(raw.length, 12);
  sha256(raw).copy(prefix, 16);
  return Buffer.concat([prefix, raw]);
}

/**
 * The payload comes in batches of pieces, each batch one writev. A batch from a stream is hashed while
 * its write is under way (one pass over it, the hash overlapping the I/O); a taken payload is written
 * with writevSync (see TakenPayload), then hashed while the kernel writes it back. The header, which
 * holds the checksum, is written last over a placeholder of the same length (a hex SHA-256 has a
 * fixed length).
 */
async function writeChunks(
  file: string,
  fields: Omit<StateHeader, 'format' | 'payloadBytes' | 'payloadSha256'>,
  payload: { bytes: number; batches: Iterable<Uint8Array[]> | AsyncIterable<Uint8Array[]> } | TakenPayload,
  opts: WriteStateOptions,
): Promise<{ bytes: number; checksum: string }> {
  let header: StateHeader | undefined;
  let total = 0;
  const hash = crypto.createHash('sha256');
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new StateWriteAborted('save aborted');
  };
  checkAbort();
  // State files hold guest memory: private like libvirt's (fillFileAtomic makes them owner-only).
  await fillFileAtomic(
    file,
    async (fh) => {
      const taken = 'take' in payload ? payload.take() : undefined;
      const { bytes, batches } = taken ?? (payload as { bytes: number; batches: Iterable<Uint8Array[]> | AsyncIterable<Uint8Array[]> });
      const head = { format: STATE_FORMAT_VERSION, ...fields, ...taken?.header, payloadBytes: bytes, payloadSha256: '0'.repeat(64) };
      header = head;
      const headLength = headBytes(head).length;
      total = headLength + bytes;
      let done = headLength;
      if (taken) {
        const all = [...taken.batches];
        for (const batch of all) {
          done += fs.writevSync(fh.fd, batch, done);
          opts.onProgress?.(done, total);
        }
        // The payload's writeback runs while the same pieces are hashed, before the event loop turns
        // (so they still hold what was written): a script saving 30 MiB of pages so took ~41 ms
        // instead of ~53 (write, then hash, then sync).
        const written = fh.datasync();
        try {
          for (const batch of all) for (const piece of batch) hash.update(piece);
        } finally {
          await written;
        }
      } else {
        for await (const batch of batches) {
          checkAbort();
          const written = fh.writev(batch, done);
          for (const piece of batch) hash.update(piece);
          done += (await written).bytesWritten;
          opts.onProgress?.(done, total);
        }
      }
      if (done !== total) throw new Error(`the payload is ${done - headLength} bytes, ${bytes} were announced`);
      head.payloadSha256 = hash.digest('hex');
      const raw = headBytes(head);
      await fh.write(raw, 0, raw.length, 0);
    },
    {
      wrap: (err) => new StateFileError(`cannot write state file '${file}': ${systemErrorText(err)}`),
      keep: (err) => err instanceof StateWriteAborted,
      beforeRename: checkAbort,
    },
  );
  return { bytes: total, checksum: header!.payloadSha256 };
}
