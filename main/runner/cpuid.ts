// The CPU v86 shows its guests, read by running CPUID on the emulated CPU (emulator.cpuid), in the
// lower-case names Linux's /proc/cpuinfo and libvirt use. A migration destination checks them
// (MigrationCookie.cpu): a guest keeps using what it saw at boot.

import type { CpuDescription } from './protocol.js';

type Cpuid = (leaf: number, subleaf?: number) => Promise<[number, number, number, number]>;

const LEAF1_EDX = ['fpu', 'vme', 'de', 'pse', 'tsc', 'msr', 'pae', 'mce', 'cx8', 'apic', '', 'sep', 'mtrr', 'pge', 'mca', 'cmov', 'pat', 'pse36', 'pn', 'clflush', '', 'ds', 'acpi', 'mmx', 'fxsr', 'sse', 'sse2', 'ss', 'ht', 'tm', 'ia64', 'pbe'];
const LEAF1_ECX = ['pni', 'pclmulqdq', 'dtes64', 'monitor', 'ds_cpl', 'vmx', 'smx', 'est', 'tm2', 'ssse3', 'cid', 'sdbg', 'fma', 'cx16', 'xtpr', 'pdcm', '', 'pcid', 'dca', 'sse4_1', 'sse4_2', 'x2apic', 'movbe', 'popcnt', 'tsc_deadline_timer', 'aes', 'xsave', 'osxsave', 'avx', 'f16c', 'rdrand', 'hypervisor'];
const LEAF7_EBX: Record<number, string> = { 0: 'fsgsbase', 3: 'bmi1', 5: 'avx2', 7: 'smep', 8: 'bmi2', 9: 'erms', 10: 'invpcid', 18: 'rdseed', 19: 'adx', 20: 'smap', 23: 'clflushopt', 29: 'sha_ni' };
const EXT1_EDX: Record<number, string> = { 11: 'syscall', 20: 'nx', 26: 'pdpe1gb', 27: 'rdtscp', 29: 'lm' };
const EXT1_ECX: Record<number, string> = { 0: 'lahf_lm', 5: 'abm', 6: 'sse4a', 8: '3dnowprefetch' };

/** Names of the bits set in `value`; unnamed ones as `<where>_bit<n>`. */
function bits(value: number, names: string[] | Record<number, string>, where: string): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if (value & (1 << bit)) out.push((names as Record<number, string>)[bit] || `${where}_bit${bit}`);
  }
  return out;
}

export async function describeCpu(cpuid: Cpuid): Promise<CpuDescription> {
  const [maxLeaf, b0, c0, d0] = await cpuid(0);
  const vendor = Buffer.alloc(12);
  vendor.writeUInt32LE(b0, 0);
  vendor.writeUInt32LE(d0, 4);
  vendor.writeUInt32LE(c0, 8);
  const [a1, , c1, d1] = await cpuid(1);
  const family = ((a1 >> 8) & 0xf) + ((a1 >> 20) & 0xff);
  const model = ((a1 >> 4) & 0xf) | (((a1 >> 16) & 0xf) << 4);
  const features = [...bits(d1, LEAF1_EDX, 'leaf1_edx'), ...bits(c1, LEAF1_ECX, 'leaf1_ecx')];
  if (maxLeaf >= 7) features.push(...bits((await cpuid(7, 0))[1], LEAF7_EBX, 'leaf7_ebx'));
  const [maxExt] = await cpuid(0x80000000);
  if (maxExt >= 0x80000001) {
    const [, , ce, de] = await cpuid(0x80000001);
    features.push(...bits(de, EXT1_EDX, 'ext1_edx'), ...bits(ce, EXT1_ECX, 'ext1_ecx'));
  }
  return { model: `${vendor.toString('latin1').replace(/\0+$/, '')} family ${family} model ${model} stepping ${a1 & 0xf}`, features: [...new Set(features)].sort() };
}
