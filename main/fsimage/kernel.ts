// What a kernel image says about itself: the x86 boot protocol setup header of a bzImage (version
// string, xloadflags) or the ELF header of a vmlinux. Only the first bytes are needed.

export interface KernelFacts {
  format: 'bzimage' | 'elf' | 'unknown';
  arch: 'i686' | 'x86_64' | 'unknown';
  reason: string;
  version?: string;
}

/** How many bytes of a kernel file `kernelFacts` looks at. */
export const KERNEL_HEAD_BYTES = 64 * 1024;

const XLF_KERNEL_64 = 1 << 0;
const XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1;
const XLF_EFI_HANDOVER_64 = 1 << 3;

export function kernelFacts(head: Buffer): KernelFacts {
  if (head.length >= 0x240 && head.toString('latin1', 0x202, 0x206) === 'HdrS') {
    const protocol = head.readUInt16LE(0x206);
    const p = `${protocol >> 8}.${String(protocol & 0xff).padStart(2, '0')}`;
    const version = bzVersion(head);
    if (protocol < 0x20c) {
      return { format: 'bzimage', arch: 'unknown', version, reason: `bzImage boot protocol ${p} predates xloadflags (2.12)` };
    }
    const xlf = head.readUInt16LE(0x236);
    if (xlf & (XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G | XLF_EFI_HANDOVER_64)) {
      return { format: 'bzimage', arch: 'x86_64', version, reason: `bzImage setup header: xloadflags 0x${xlf.toString(16)} has XLF_KERNEL_64 (a 64-bit kernel)` };
    }
    return { format: 'bzimage', arch: 'i686', version, reason: `bzImage setup header: protocol ${p}, xloadflags 0x${xlf.toString(16)} without XLF_KERNEL_64 (a 32-bit kernel)` };
  }
  if (head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46) {
    const cls = head[4];
    const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
    if (cls === 2 && machine === 62) return { format: 'elf', arch: 'x86_64', reason: 'ELF64 x86-64 kernel' };
    if (cls === 1 && (machine === 3 || machine === 6)) return { format: 'elf', arch: 'i686', reason: 'ELF32 i386 kernel' };
    return { format: 'elf', arch: 'unknown', reason: `ELF class ${cls}, machine ${machine}: not an x86 kernel` };
  }
  return { format: 'unknown', arch: 'unknown', reason: 'neither a bzImage nor an ELF kernel' };
}

/** The kernel_version string the setup header points at (its first word is the release). */
function bzVersion(head: Buffer): string | undefined {
  const ptr = head.readUInt16LE(0x20e);
  if (ptr === 0) return undefined;
  const at = ptr + 0x200;
  if (at >= head.length) return undefined;
  const end = head.indexOf(0, at);
  const text = head.toString('latin1', at, end < 0 ? Math.min(head.length, at + 256) : Math.min(end, at + 256));
  const release = text.split(' ')[0];
  return /^[\w.+~-]+$/.test(release) ? release : undefined;
}
