// pygrub-style boot (libvirt's Xen convention <bootloader>pygrub</bootloader>): at every start the
// kernel and initrd are read afresh from the guest's disk image, in user space, and written into
// the domain's state directory, so a kernel upgraded inside the guest is the one that boots next.
// Every engine calls this one function before its direct kernel boot. The reading runs in a worker
// thread (images/reader-worker.ts), so a hostile image can neither block nor exhaust the host.
import path from 'node:path';
import type { DomainConfig } from '../../../shared/domain.js';
import { checkInputFile, InputFileError } from '../../common/input-file.js';
import type { DomainDocument } from '../domain/xml.js';
import { FsimageJobError, runFsimageJob } from './reader-client.js';
import type { BootJobResult } from './reader-worker.js';

export class BootloaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootloaderError';
  }
}

export interface ResolvedBoot {
  /** Host paths of the extracted files (inside the output directory). */
  kernel: string;
  initrd?: string;
  cmdline: string;
  /** What was chosen, for the log: "extlinux.conf entry 'domus' on partition 1". */
  description: string;
  /** The disk image the kernel came from. */
  disk: string;
  arch: 'i686' | 'x86_64' | 'unknown';
  archReason: string;
}

/** pygrub by any path (/usr/bin/pygrub, /usr/lib/xen/bin/pygrub). */
export function isPygrub(bootloader: string | undefined): boolean {
  return bootloader !== undefined && path.basename(bootloader) === 'pygrub';
}

/** True when this definition boots through pygrub (a <kernel> given outright takes precedence). */
export function usesBootloader(config: DomainConfig): boolean {
  return isPygrub(config.os.bootloader) && !config.os.kernel;
}

/** The image pygrub reads: the first hard disk with a source, else the first CD-ROM with one. */
export function bootloaderDisk(config: DomainConfig): DomainConfig['disks'][number] | undefined {
  return (
    config.disks.find((d) => d.device === 'disk' && d.source !== undefined) ??
    config.disks.find((d) => d.device === 'cdrom' && d.source !== undefined)
  );
}

/**
 * Reads the kernel, initrd and command line pygrub would choose, writes the files into `outDir`
 * (pygrub-kernel, pygrub-initrd) and returns their paths. The domain's <cmdline> is appended to the
 * entry's arguments, as libxl passes it to pygrub as --args. The image is read in a worker thread.
 */
export async function resolveBootloader(doc: DomainDocument, outDir: string): Promise<ResolvedBoot> {
  const { config } = doc;
  const disk = bootloaderDisk(config);
  if (!disk?.source) throw new BootloaderError('pygrub: the domain has no disk with a source image to boot from');
  if (disk.format !== 'raw' && disk.format !== 'iso') {
    throw new BootloaderError(`pygrub: disk ${disk.target} is ${disk.format}; only raw images can be read`);
  }
  // Checked before a worker exists: a worker blocked in open(2) on a FIFO could never be ended.
  try {
    checkInputFile(disk.source, { blockDevices: true });
  } catch (err) {
    if (err instanceof InputFileError) throw new BootloaderError(`pygrub: ${err.message}`);
    throw err;
  }
  let r: BootJobResult;
  try {
    r = await runFsimageJob<BootJobResult>({ op: 'boot', disk: disk.source, bootloaderArgs: config.os.bootloaderArgs, cmdline: config.os.cmdline, outDir });
  } catch (err) {
    if (err instanceof FsimageJobError) throw new BootloaderError(`pygrub: ${disk.source}: ${err.message}`);
    throw err;
  }
  const what =
    r.how === 'config' ? `${r.configFile} entry '${r.label}'` : r.how === 'newest' ? 'newest kernel (no boot loader configuration)' : 'kernel given by --kernel';
  return {
    kernel: r.kernel,
    initrd: r.initrd,
    cmdline: r.cmdline,
    description: `${what}: ${r.kernelPath}${r.initrdPath ? ` + ${r.initrdPath}` : ''} on ${r.where} of ${disk.source}`,
    disk: disk.source,
    arch: r.arch,
    archReason: r.archReason,
  };
}
