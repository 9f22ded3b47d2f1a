// Guest memory page by page, for the two things that copy a guest out of one v86 machine and into
// another: live migration (migration.ts) and the saved-state file (state-payload.ts). Page indexes
// count RAM pages, then VRAM pages.
/** Guest memory as a migration or a state file copies it: RAM, then VRAM, both views on the live wasm memory. */
export interface GuestMemory {
  ram: Uint8Array;
  vram: Uint8Array;
}

export const PAGE = 4096;
/** Block size of a scan: a block that compares equal (the common case) costs one memcmp. */
const SCAN_BLOCK_PAGES = 16;
const ZERO_BLOCK = new Uint8Array(SCAN_BLOCK_PAGES * PAGE);
/** What v86 writes into a fresh machine's memory (BIOS, VGA BIOS, option ROMs) lies below this. */
export const FIRMWARE_AREA_END = 0x100000;

export function pageCount(memory: GuestMemory): number {
  return (memory.ram.length + memory.vram.length) / PAGE;
}

/** One page of RAM or VRAM by index. */
export function pageView(memory: GuestMemory, index: number): Uint8Array {
  const ramPages = memory.ram.length / PAGE;
  return index < ramPages ? memory.ram.subarray(index * PAGE, (index + 1) * PAGE) : memory.vram.subarray((index - ramPages) * PAGE, (index - ramPages + 1) * PAGE);
}

/**
 * Pages of `live` that differ from `shadow` (from zero without one), appended to `out` as page
 * indexes from `base`. A memcmp of 136 MiB takes ~15 ms where an FNV hash per page took 50-110 ms
 * (shared/notes/v86.md §11).
 */
export function scan(live: Uint8Array, shadow: Uint8Array | undefined, base: number, out: number[]): void {
  const pages = live.length / PAGE;
  const against = (start: number, end: number) => (shadow ? shadow.subarray(start, end) : ZERO_BLOCK.subarray(0, end - start));
  for (let b = 0; b < pages; b += SCAN_BLOCK_PAGES) {
    const start = b * PAGE;
    const end = Math.min(start + ZERO_BLOCK.length, live.length);
    if (Buffer.compare(live.subarray(start, end), against(start, end)) === 0) continue;
    for (let p = b; p < b + SCAN_BLOCK_PAGES && p < pages; p++) {
      const o = p * PAGE;
      if (Buffer.compare(live.subarray(o, o + PAGE), against(o, o + PAGE)) !== 0) out.push(base + p);
    }
  }
}

/** Indexes of the pages of RAM and VRAM that are not zero, ascending. */
export function nonZeroPages(memory: GuestMemory): number[] {
  const out: number[] = [];
  scan(memory.ram, undefined, 0, out);
  scan(memory.vram, undefined, memory.ram.length / PAGE, out);
  return out;
}

/**
 * Reads every page of `area` (of guest memory) once. A page the guest never touched is not mapped:
 * the first read of it is a page fault (which maps the kernel's shared zero page, so RSS does not
 * grow), ~25 ms for the 128 MiB sample's untouched pages, and a save's or a migration's scan then
 * pays them all while the guest is stopped. Done once, a while after the machine starts, a scan reads
 * mapped zero pages instead: ~3 ms.
 */
export function mapUntouchedPages(area: Uint8Array): void {
  scan(area, undefined, 0, []);
}

/**
 * Makes a fresh machine's memory all zero, to receive a guest's pages: v86 wrote its firmware into
 * RAM below FIRMWARE_AREA_END, a few pages of VRAM (found by a scan of its 8 MiB, ~1 ms), and nothing
 * else (a test holds it to that). Zeroing all of RAM would make the OS back every page of it.
 */
export function clearFreshMemory(memory: GuestMemory): void {
  memory.ram.fill(0, 0, Math.min(FIRMWARE_AREA_END, memory.ram.length));
  const written: number[] = [];
  scan(memory.vram, undefined, 0, written);
  for (const p of written) memory.vram.fill(0, p * PAGE, (p + 1) * PAGE);
}
