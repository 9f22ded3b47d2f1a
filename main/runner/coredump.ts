// Guest core dumps of a v86 machine ("domus dump"): an ELF32 core file (ET_CORE, EM_386) that gdb and
// readelf read, laid out as QEMU's dump-guest-memory lays out its ELF dumps:
//
//   ELF header | program headers | PT_NOTE data (NT_PRSTATUS) | guest RAM, whole, from physical 0
//
// The RAM image is in the file once; program headers map it. One PT_LOAD per run of virtual pages the
// guest's current page tables map to RAM (what QEMU writes with paging=true): gdb reads memory by
// p_vaddr, so these let it read kernel symbols at their System.map addresses (an i386 Linux maps its
// lowmem at 0xC0000000 + physical). Last, one PT_LOAD covering all of RAM with p_vaddr = p_paddr = 0
// (what QEMU writes with paging=false), so that no RAM is out of reach of tools that go by p_paddr;
// gdb takes the first segment that holds an address, so it does not shadow the mapped ones.
import { fillFileAtomic, systemErrorText } from '../common/fsutil.js';

/** The i386 CPU state a core's NT_PRSTATUS holds (32-bit values; selectors in the low 16 bits). */
export interface I386Registers {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
  esi: number;
  edi: number;
  ebp: number;
  esp: number;
  eip: number;
  eflags: number;
  cs: number;
  ss: number;
  ds: number;
  es: number;
  fs: number;
  gs: number;
}

/** What a dump is made from: the registers and control registers at the moment, and the RAM. */
export interface CoreSource {
  registers: I386Registers;
  /** CR0 (PG = bit 31), CR3 (page directory), CR4 (PSE = bit 4, PAE = bit 5). */
  cr0: number;
  cr3: number;
  cr4: number;
  /** Guest-physical RAM from address 0 (a live view: read it in pieces). */
  ram: () => Uint8Array;
}

export interface LoadSegment {
  vaddr: number;
  paddr: number;
  size: number;
}

const ELF_HEADER_BYTES = 52;
const PHDR_BYTES = 32;
const PT_LOAD = 1;
const PT_NOTE = 4;
const ET_CORE = 4;
const EM_386 = 3;
const NT_PRSTATUS = 1;
/** sizeof(struct elf_prstatus) on i386 Linux; pr_reg (17 words) starts at 72. */
const PRSTATUS_BYTES = 144;
const PRSTATUS_REG_OFFSET = 72;
const PAGE = 4096;
/** e_phnum is 16 bits; PN_XNUM (0xffff) would need a section header to carry the count. */
const MAX_PHDRS = 0xfffe;
const CHUNK_BYTES = 4 << 20;
const PF_RWX = 7;

const CR0_PG = 0x80000000;
const CR4_PSE = 1 << 4;
const CR4_PAE = 1 << 5;
const PRESENT = 1;
const LARGE = 0x80;

/**
 * The runs of virtual pages the page tables at CR3 map to guest RAM, merged where both the virtual
 * and the physical addresses continue. Without paging, all of RAM at its physical address.
 * Non-PAE (4 KiB and, with CR4.PSE, 4 MiB pages) and PAE (4 KiB and 2 MiB pages) tables are walked;
 * a table or page outside RAM is skipped.
 */
export function mappedSegments(src: Pick<CoreSource, 'cr0' | 'cr3' | 'cr4'>, ram: Uint8Array): LoadSegment[] {
  const size = ram.length;
  if (!(src.cr0 & CR0_PG)) return [{ vaddr: 0, paddr: 0, size }];
  const view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const segments: LoadSegment[] = [];
  const add = (vaddr: number, paddr: number, len: number): void => {
    if (paddr + len > size) return;
    const last = segments[segments.length - 1];
    if (last && last.vaddr + last.size === vaddr && last.paddr + last.size === paddr) last.size += len;
    else segments.push({ vaddr, paddr, size: len });
  };
  const inRam = (table: number, bytes: number) => table + bytes <= size;
  const cr3 = src.cr3 >>> 0;
  if (src.cr4 & CR4_PAE) {
    const pdpt = cr3 & 0xffffffe0;
    if (!inRam(pdpt, 32)) return segments;
    for (let i = 0; i < 4; i++) {
      const pdpte = view.getUint32(pdpt + i * 8, true);
      if (!(pdpte & PRESENT) || view.getUint32(pdpt + i * 8 + 4, true)) continue;
      const pd = (pdpte & 0xfffff000) >>> 0;
      if (!inRam(pd, PAGE)) continue;
      for (let j = 0; j < 512; j++) {
        const pde = view.getUint32(pd + j * 8, true);
        if (!(pde & PRESENT) || view.getUint32(pd + j * 8 + 4, true)) continue;
        const va = (i * 0x40000000 + j * 0x200000) >>> 0;
        if (pde & LARGE) {
          add(va, (pde & 0xffe00000) >>> 0, 0x200000);
          continue;
        }
        const pt = (pde & 0xfffff000) >>> 0;
        if (!inRam(pt, PAGE)) continue;
        for (let k = 0; k < 512; k++) {
          const pte = view.getUint32(pt + k * 8, true);
          if (pte & PRESENT && !view.getUint32(pt + k * 8 + 4, true)) add(va + k * PAGE, (pte & 0xfffff000) >>> 0, PAGE);
        }
      }
    }
    return segments;
  }
  const pd = cr3 & 0xfffff000;
  if (!inRam(pd, PAGE)) return segments;
  for (let i = 0; i < 1024; i++) {
    const pde = view.getUint32(pd + i * 4, true);
    if (!(pde & PRESENT)) continue;
    const va = (i * 0x400000) >>> 0;
    if (pde & LARGE && src.cr4 & CR4_PSE) {
      add(va, (pde & 0xffc00000) >>> 0, 0x400000);
      continue;
    }
    const pt = (pde & 0xfffff000) >>> 0;
    if (!inRam(pt, PAGE)) continue;
    for (let k = 0; k < 1024; k++) {
      const pte = view.getUint32(pt + k * 4, true);
      if (pte & PRESENT) add(va + k * PAGE, (pte & 0xfffff000) >>> 0, PAGE);
    }
  }
  return segments;
}

/** The NT_PRSTATUS note (name "CORE") with the registers in Linux i386 elf_gregset_t order. */
function prstatusNote(r: I386Registers): Buffer {
  const note = Buffer.alloc(12 + 8 + PRSTATUS_BYTES);
  note.writeUInt32LE(5, 0);
  note.writeUInt32LE(PRSTATUS_BYTES, 4);
  note.writeUInt32LE(NT_PRSTATUS, 8);
  note.write('CORE\0', 12, 'latin1');
  const desc = 20;
  // pr_pid: the vCPU's number from 1, as QEMU numbers them.
  note.writeUInt32LE(1, desc + 24);
  const order = [r.ebx, r.ecx, r.edx, r.esi, r.edi, r.ebp, r.eax, r.ds, r.es, r.fs, r.gs, 0xffffffff, r.eip, r.cs, r.eflags, r.esp, r.ss];
  order.forEach((v, i) => note.writeUInt32LE(v >>> 0, desc + PRSTATUS_REG_OFFSET + i * 4));
  return note;
}

/** ELF header, program headers and notes; the RAM image goes at `ramOffset`. */
export function coreHeaders(registers: I386Registers, segments: LoadSegment[], ramBytes: number): { head: Buffer; ramOffset: number } {
  const loads = [...segments, { vaddr: 0, paddr: 0, size: ramBytes }];
  const phnum = 1 + loads.length;
  if (phnum > MAX_PHDRS) throw new Error(`the guest's page tables map ${segments.length} separate ranges; an ELF32 core holds at most ${MAX_PHDRS - 2}`);
  const note = prstatusNote(registers);
  const noteOffset = ELF_HEADER_BYTES + phnum * PHDR_BYTES;
  const ramOffset = Math.ceil((noteOffset + note.length) / PAGE) * PAGE;
  const head = Buffer.alloc(ramOffset);
  head.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0);
  head.writeUInt16LE(ET_CORE, 16);
  head.writeUInt16LE(EM_386, 18);
  head.writeUInt32LE(1, 20);
  head.writeUInt32LE(ELF_HEADER_BYTES, 28);
  head.writeUInt16LE(ELF_HEADER_BYTES, 40);
  head.writeUInt16LE(PHDR_BYTES, 42);
  head.writeUInt16LE(phnum, 44);
  const phdr = (i: number, type: number, offset: number, vaddr: number, paddr: number, size: number, flags: number): void => {
    const at = ELF_HEADER_BYTES + i * PHDR_BYTES;
    head.writeUInt32LE(type, at);
    head.writeUInt32LE(offset >>> 0, at + 4);
    head.writeUInt32LE(vaddr >>> 0, at + 8);
    head.writeUInt32LE(paddr >>> 0, at + 12);
    head.writeUInt32LE(size >>> 0, at + 16);
    head.writeUInt32LE(size >>> 0, at + 20);
    head.writeUInt32LE(flags, at + 24);
  };
  phdr(0, PT_NOTE, noteOffset, 0, 0, note.length, 0);
  loads.forEach((s, i) => phdr(1 + i, PT_LOAD, ramOffset + s.paddr, s.vaddr, s.paddr, s.size, PF_RWX));
  note.copy(head, noteOffset);
  return { head, ramOffset };
}

export class CoreDumpAborted extends Error {
  override name = 'CoreDumpAborted';
}

export interface WriteCoreOptions {
  onProgress?: (processedBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

/**
 * Writes the core of `src` to `file` atomically: a temporary file beside it (owner-only: it holds
 * guest memory), RAM streamed in 4 MiB pieces, fsync, rename, directory fsync. A failure or an abort
 * removes the temporary file and leaves `file` as it was. Returns the file's size.
 */
export async function writeCoreFile(file: string, src: CoreSource, opts: WriteCoreOptions = {}): Promise<number> {
  const ramBytes = src.ram().length;
  const { head, ramOffset } = coreHeaders(src.registers, mappedSegments(src, src.ram()), ramBytes);
  const total = ramOffset + ramBytes;
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new CoreDumpAborted('dump aborted');
  };
  checkAbort();
  await fillFileAtomic(
    file,
    async (fh) => {
      await fh.write(head, 0, head.length, 0);
      opts.onProgress?.(head.length, total);
      for (let done = 0; done < ramBytes; ) {
        checkAbort();
        // A copy of each piece: the guest may run on (live dump) and wasm memory may be replaced.
        const piece = Buffer.from(src.ram().subarray(done, Math.min(done + CHUNK_BYTES, ramBytes)));
        await fh.write(piece, 0, piece.length, ramOffset + done);
        done += piece.length;
        opts.onProgress?.(ramOffset + done, total);
      }
    },
    {
      wrap: (err) => new Error(`cannot write dump file '${file}': ${systemErrorText(err)}`),
      keep: (err) => err instanceof CoreDumpAborted,
      beforeRename: checkAbort,
    },
  );
  return total;
}
