// The payload of a v86 state file (statefile.ts holds the container: header, checksum, atomic
// write). v86's own save_state packs guest RAM into one new buffer and restore_state unpacks it after
// zeroing all of RAM (~90 ms each way for the 128 MiB sample); here the device state is v86's
// without RAM and VRAM (as a migration sends it), and the non-zero pages go from guest memory to the
// file and back without a copy of their own.
//
// Layout (integers little-endian):
//   0   4  magic "D86S"
//   4   4  layout version (LAYOUT_VERSION)
//   8   4  page size (4096)
//   12  4  RAM bytes
//   16  4  VRAM bytes
//   20  4  device state length D
//   24  4  number of non-zero pages N
//   28  D  device state (v86 save_state without RAM and VRAM)
//   ..  B  bitmap of the non-zero pages, bit i of byte i>>3 for page i (RAM pages, then VRAM pages)
//   ..     the N pages, in index order
import { clearFreshMemory, PAGE, pageCount, pageView, type GuestMemory } from './guest-pages.js';

const MAGIC = 0x53363844; // "D86S"
const LAYOUT_VERSION = 1;
/** The first word of v86's save_state output. */
const V86_STATE_MAGIC = 0x86768676;
const HEAD_BYTES = 28;
/** Device state without RAM and VRAM is ~0.3-1 MiB; the bound leaves room for bigger VGA modes. */
const MAX_DEVICE_STATE_BYTES = 16 << 20;
/** Bytes per write batch: the writer reports progress and checks for an abort between batches. */
const BATCH_BYTES = 8 << 20;

/** A payload's bytes and the pieces to write, in order (views on guest memory: the guest must stay paused until written). */
export interface EncodedPayload {
  bytes: number;
  batches: Iterable<Uint8Array[]>;
  nonZeroPages: number;
}

/** Lays out `deviceState` and the non-zero `pages` (ascending indexes) of `memory`. */
export function encodePayload(deviceState: Uint8Array, memory: GuestMemory, pages: number[]): EncodedPayload {
  // A restore would refuse it (applyPayload).
  if (deviceState.length > MAX_DEVICE_STATE_BYTES) throw new Error(`v86's device state is ${deviceState.length} bytes, more than a state file takes (${MAX_DEVICE_STATE_BYTES})`);
  const total = pageCount(memory);
  const head = Buffer.alloc(HEAD_BYTES);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(LAYOUT_VERSION, 4);
  head.writeUInt32LE(PAGE, 8);
  head.writeUInt32LE(memory.ram.length, 12);
  head.writeUInt32LE(memory.vram.length, 16);
  head.writeUInt32LE(deviceState.length, 20);
  head.writeUInt32LE(pages.length, 24);
  const bitmap = new Uint8Array(Math.ceil(total / 8));
  for (const p of pages) bitmap[p >> 3]! |= 1 << (p & 7);
  function* batches(): Generator<Uint8Array[]> {
    let batch: Uint8Array[] = [head, deviceState, bitmap];
    let bytes = 0;
    // Runs of consecutive pages within RAM or within VRAM go out as one view each, of at most a batch.
    const runPages = BATCH_BYTES / PAGE;
    for (let i = 0; i < pages.length; ) {
      let j = i + 1;
      while (j < pages.length && j - i < runPages && pages[j] === pages[j - 1]! + 1 && sameArea(memory, pages[i]!, pages[j]!)) j++;
      const first = pageView(memory, pages[i]!);
      const run = new Uint8Array(first.buffer, first.byteOffset, (j - i) * PAGE);
      batch.push(run);
      bytes += run.length;
      i = j;
      if (bytes >= BATCH_BYTES) {
        yield batch;
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length) yield batch;
  }
  return { bytes: HEAD_BYTES + deviceState.length + bitmap.length + pages.length * PAGE, batches: batches(), nonZeroPages: pages.length };
}

/** The largest payload a machine of these sizes can have. */
export function maxPayloadBytes(ramBytes: number, vramBytes: number): number {
  const pages = Math.ceil(ramBytes / PAGE) + Math.ceil(vramBytes / PAGE);
  return HEAD_BYTES + MAX_DEVICE_STATE_BYTES + Math.ceil(pages / 8) + pages * PAGE;
}

function sameArea(memory: GuestMemory, a: number, b: number): boolean {
  const ramPages = memory.ram.length / PAGE;
  return a < ramPages === b < ramPages;
}

/** A payload that does not fit the machine or is not laid out as above. */
export class PayloadError extends Error {
  override name = 'PayloadError';
}

/**
 * Checks every length and count of `payload` against `memory` (a fresh machine's), then puts its
 * pages into that memory, all of whose other pages end up zero. Returns the device state (a view on
 * `payload`), for Emulator.adoptState. The payload passed its checksum, but a checksum is no proof
 * of who wrote it: nothing here trusts a length it has not checked.
 */
export function applyPayload(payload: Uint8Array, memory: GuestMemory): Uint8Array {
  const fail = (why: string) => new PayloadError(`the saved guest ${why}`);
  if (payload.length < HEAD_BYTES) throw fail('is truncated');
  const head = Buffer.from(payload.buffer, payload.byteOffset, HEAD_BYTES);
  if (head.readUInt32LE(0) !== MAGIC) throw fail('is not in Domus\'s v86 page layout');
  const version = head.readUInt32LE(4);
  if (version !== LAYOUT_VERSION) throw fail(`has page layout ${version}; this Domus reads ${LAYOUT_VERSION}`);
  if (head.readUInt32LE(8) !== PAGE) throw fail(`has pages of ${head.readUInt32LE(8)} bytes`);
  const ramBytes = head.readUInt32LE(12);
  const vramBytes = head.readUInt32LE(16);
  if (ramBytes !== memory.ram.length) throw fail(`has ${ramBytes} bytes of RAM, this machine ${memory.ram.length}`);
  if (vramBytes !== memory.vram.length) throw fail(`has ${vramBytes} bytes of VRAM, this machine ${memory.vram.length}`);
  const stateBytes = head.readUInt32LE(20);
  const count = head.readUInt32LE(24);
  const total = pageCount(memory);
  if (stateBytes > MAX_DEVICE_STATE_BYTES) throw fail(`has a device state of ${stateBytes} bytes`);
  // v86's own state header: restore_state would take anything else for a compressed state.
  if (stateBytes < 4 || Buffer.from(payload.buffer, payload.byteOffset + HEAD_BYTES, 4).readUInt32LE(0) !== V86_STATE_MAGIC) throw fail('has no v86 device state');
  if (count > total) throw fail(`has ${count} pages, the machine ${total}`);
  const bitmapAt = HEAD_BYTES + stateBytes;
  const pagesAt = bitmapAt + Math.ceil(total / 8);
  if (payload.length !== pagesAt + count * PAGE) throw fail(`is ${payload.length} bytes where its counts make ${pagesAt + count * PAGE}`);
  const bitmap = payload.subarray(bitmapAt, pagesAt);
  let set = 0;
  for (let byte = 0; byte < bitmap.length; byte++) {
    for (let bits = bitmap[byte]!; bits; bits &= bits - 1) set++;
  }
  if (set !== count) throw fail(`lists ${set} pages in its bitmap but holds ${count}`);
  if (total % 8 && bitmap[bitmap.length - 1]! >> total % 8) throw fail('lists pages beyond the end of its memory');
  clearFreshMemory(memory);
  const ramPages = memory.ram.length / PAGE;
  const listed = (p: number) => (bitmap[p >> 3]! & (1 << (p & 7))) !== 0;
  let at = pagesAt;
  // A run of listed pages within RAM or within VRAM is one copy.
  for (let p = 0; p < total; p++) {
    if (!listed(p)) continue;
    const area = p < ramPages ? memory.ram : memory.vram;
    const end = p < ramPages ? ramPages : total;
    let q = p + 1;
    while (q < end && listed(q)) q++;
    const bytes = (q - p) * PAGE;
    area.set(payload.subarray(at, at + bytes), (p < ramPages ? p : p - ramPages) * PAGE);
    at += bytes;
    p = q - 1;
  }
  return payload.subarray(HEAD_BYTES, bitmapAt);
}
