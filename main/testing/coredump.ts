// Test support: checks of a guest's ELF core with binutils' readelf and Debian's gdb, against the
// sample guests' kernel itself (build/guests/vmlinuz, unpacked as the v86 runner unpacks it; the
// guest must run with nokaslr for its link addresses to hold).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { elfLoads, kernelElf, type LoadSegment } from '../runner/kernel-unpack.js';
import { guest } from './harness.js';

const MiB = 1024 * 1024;
/** i386 Linux's PAGE_OFFSET: its linear map puts physical address p at p + 0xc0000000. */
const PAGE_OFFSET = 0xc0000000;

let unpacked: Promise<{ elf: Buffer; loads: LoadSegment[] }> | undefined;

/** The sample kernel's vmlinux and its loaded segments. */
function sampleVmlinux(): Promise<{ elf: Buffer; loads: LoadSegment[] }> {
  unpacked ??= (async () => {
    const bz = fs.readFileSync(guest('vmlinuz'));
    const got = await kernelElf(bz.buffer.slice(bz.byteOffset, bz.byteOffset + bz.byteLength));
    if ('skipped' in got) assert.fail(`cannot unpack ${guest('vmlinuz')}: ${got.skipped}`);
    const loads = elfLoads(got.elf);
    if (typeof loads === 'string') assert.fail(`${guest('vmlinuz')}: ${loads}`);
    return { elf: got.elf, loads };
  })();
  return unpacked;
}

/**
 * Where the sample kernel links linux_banner, in hex: the one string in its image that is what the
 * guest's /proc/version printed (the image also holds a weak copy without the build number).
 * Debian's linux-image ships only a stub System.map; the real one is in the 765 MB -dbg package.
 */
export async function bannerAddress(procVersion: string): Promise<string> {
  const { elf, loads } = await sampleVmlinux();
  const needle = Buffer.from(`${procVersion.trim()}\n\0`, 'latin1');
  const hits: number[] = [];
  for (let at = elf.indexOf(needle); at >= 0; at = elf.indexOf(needle, at + 1)) hits.push(at);
  assert.equal(hits.length, 1, `the kernel image holds ${hits.length} copies of ${JSON.stringify(procVersion)}`);
  const segment = loads.find((l) => l.offset <= hits[0] && hits[0] < l.offset + l.filesz);
  assert.ok(segment, 'linux_banner is in no loaded segment of the kernel image');
  return (segment.vaddr + hits[0] - segment.offset).toString(16);
}

/** The sample kernel's link address (_text, its first loaded segment), in hex: where /proc/kallsyms puts _text without KASLR. */
export async function kernelText(): Promise<string> {
  const { loads } = await sampleVmlinux();
  return Math.min(...loads.map((l) => l.vaddr)).toString(16);
}

export interface Load {
  vaddr: number;
  paddr: number;
  size: number;
}

export function loads(file: string): Load[] {
  return execFileSync('readelf', ['-lW', file], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /^\s*LOAD\s/.test(l))
    .map((l) => {
      const [, , vaddr, paddr, , memsz] = l.trim().split(/\s+/);
      return { vaddr: Number(vaddr), paddr: Number(paddr), size: Number(memsz) };
    });
}

/** Bytes of physical memory the PT_LOADs cover (overlaps counted once). */
function physicalCoverage(segments: Load[]): number {
  const sorted = [...segments].sort((a, b) => a.paddr - b.paddr);
  let covered = 0;
  let end = 0;
  for (const s of sorted) {
    const from = Math.max(s.paddr, end);
    const to = s.paddr + s.size;
    if (to > from) covered += to - from;
    end = Math.max(end, to);
  }
  return covered;
}

/**
 * Checks a dump with readelf and gdb: registers, and linux_banner at its link address; returns
 * gdb's output. A core of physical memory only (every p_vaddr = p_paddr: libvirt has QEMU dump
 * without paging, as `crash` reads cores) has the banner read at its physical address.
 */
export function checkDump(file: string, banner: string, procVersion: string, memoryMiB: number): string {
  assert.equal(fs.statSync(file).mode & 0o077, 0, 'a dump holds guest memory: owner-only');
  assert.match(execFileSync('readelf', ['-h', file], { encoding: 'utf8' }), /Type:\s+CORE/);
  const segments = loads(file);
  assert.ok(segments.length > 0, 'no PT_LOAD segments');
  const coverage = physicalCoverage(segments);
  assert.ok(coverage >= (memoryMiB - 8) * MiB, `the PT_LOADs cover ${coverage / MiB} MiB of the guest's ${memoryMiB} MiB`);
  const physical = segments.every((s) => s.vaddr === s.paddr);
  const at = Number.parseInt(banner, 16) - (physical ? PAGE_OFFSET : 0);
  const address = at.toString(16);
  assert.ok(
    segments.some((s) => s.vaddr <= at && at < s.vaddr + s.size),
    `no PT_LOAD maps linux_banner's address 0x${address}`,
  );
  assert.match(execFileSync('readelf', ['-n', file], { encoding: 'utf8' }), /CORE\s+0x[0-9a-f]+\s+NT_PRSTATUS/);
  const out = execFileSync('gdb', ['-nx', '-batch', '-c', file, '-ex', 'info registers eip esp', '-ex', `x/s 0x${address}`], { encoding: 'utf8' });
  const reg = (name: string) => Number(new RegExp(`^${name}\\s+(0x[0-9a-f]+)`, 'm').exec(out)?.[1]);
  assert.ok(reg('eip') > 0 && reg('esp') > 0, `gdb shows eip/esp as zero or not at all:\n${out}`);
  const read = new RegExp(`0x0*${address}[^:]*:\\s+"(.*)"`).exec(out)?.[1];
  assert.ok(read, `gdb printed no string at 0x${address}:\n${out}`);
  assert.match(read, /^Linux version 6\.1/);
  // linux_banner is what /proc/version prints.
  assert.equal(read.replace(/\\n$/, ''), procVersion.trim());
  return out;
}
