// What the host refuses before it writes a definition from the wizard: anything that could not
// start. Every file the guest needs must exist, and a guest that needs a 64-bit CPU cannot go on
// the 32-bit v86 engine.
import fs from 'node:fs';
import type { ImageInspection, NewDomainSpec } from '../../../shared/api.js';
import { ENGINES } from '../../../shared/api.js';
import { checkInputFile, InputFileError, openInputFile } from '../../common/input-file.js';

export type Inspector = (file: string) => Promise<Pick<ImageInspection, 'arch' | 'archReason' | 'kernels' | 'bootConfig'>>;

/**
 * Reads the architecture of a Linux bzImage from its setup header (Documentation/arch/x86/boot.rst):
 * xloadflags bit 0 (XLF_KERNEL_64, boot protocol 2.12+) is set only by x86_64 kernels.
 */
export function kernelArch(file: string): 'i686' | 'x86_64' | 'unknown' {
  const header = Buffer.alloc(0x240);
  const { fd } = openInputFile(file);
  try {
    if (fs.readSync(fd, header, 0, header.length, 0) < header.length) return 'unknown';
  } finally {
    fs.closeSync(fd);
  }
  if (header.toString('latin1', 0x202, 0x206) !== 'HdrS') return 'unknown';
  if (header.readUInt16LE(0x206) < 0x20c) return 'unknown';
  return header.readUInt16LE(0x236) & 1 ? 'x86_64' : 'i686';
}

function fileProblem(what: string, file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    checkInputFile(file);
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    return err.code === 'ENOENT' ? `${what} ${file} does not exist` : `${what} ${err.message}`;
  }
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    return `${what} ${file} is not readable`;
  }
  return undefined;
}

/** The problems that would keep this guest from starting; empty when it can be created. */
export async function checkSpec(spec: NewDomainSpec, inspect?: Inspector): Promise<string[]> {
  const { boot } = spec;
  const files: [string, string | undefined][] = [];
  switch (boot.kind) {
    case 'pv':
      files.push(['kernel', boot.kernel], ['initrd', boot.initrd || undefined]);
      break;
    case 'cdrom':
      files.push(['ISO image', boot.iso], ['disk image', boot.disk || undefined]);
      break;
    case 'install':
      files.push(['ISO image', boot.iso], ['disk image', boot.disk]);
      break;
    case 'disk':
    case 'pygrub':
      files.push(['disk image', boot.disk]);
      break;
  }
  const problems = files.map(([what, file]) => fileProblem(what, file)).filter((p): p is string => p !== undefined);
  if (problems.length) return problems;

  const arches: readonly string[] = ENGINES[spec.engine].arches;
  const refuse = (what: string, arch: string, why?: string): string =>
    `${what} is a ${arch} guest${why ? ` (${why})` : ''}, and the ${spec.engine} engine emulates a 32-bit (i686) CPU; choose a 32-bit (i686) image or the QEMU engine`;
  if (boot.kind === 'pv') {
    const arch = kernelArch(boot.kernel);
    if (arch !== 'unknown' && !arches.includes(arch)) problems.push(refuse(`kernel ${boot.kernel}`, arch, 'its boot header says it is a 64-bit kernel'));
    return problems;
  }
  if (!inspect) return problems;
  const image = boot.kind === 'cdrom' || boot.kind === 'install' ? boot.iso : boot.disk;
  const found = await inspect(image).catch(() => undefined);
  if (!found) return problems;
  if (found.arch !== 'unknown' && !arches.includes(found.arch)) problems.push(refuse(image, found.arch, found.archReason));
  if (boot.kind === 'pygrub') {
    const entries = found.bootConfig?.entries ?? [];
    if (found.kernels.length === 0 && entries.length === 0) problems.push(`no kernel found on ${image}: nothing for pygrub to boot`);
    else if (boot.entry !== undefined && entries.length > 0 && !entries.some((e) => e.index === boot.entry)) {
      problems.push(`bootloader entry ${boot.entry} does not exist on ${image} (entries: ${entries.map((e) => e.index).join(', ')})`);
    }
  }
  return problems;
}
