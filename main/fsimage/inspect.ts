// What an image holds, for the New VM wizard and `host.inspectImage`: partitions and their
// filesystems, the boot loader configuration, the kernels in /boot, and the architecture the
// kernel was built for (which tells a 64-bit-only image from one v86 can run).
import type { ImageInspection } from '../../shared/api.js';
import { findKernels } from './boot.js';
import { findBootConfig, type BootConfig } from './bootconf.js';
import { FsImageError } from './errors.js';
import { DiskImage } from './image.js';
import { kernelFacts, KERNEL_HEAD_BYTES } from './kernel.js';
import type { Filesystem } from './vfs.js';

const MAX_KERNEL_BYTES = 256 * 1024 * 1024;

export function inspectImage(path: string): ImageInspection {
  const img = DiskImage.open(path);
  try {
    return inspectOpen(img, path);
  } finally {
    img.close();
  }
}

function inspectOpen(img: DiskImage, path: string): ImageInspection {
  const problems = [...img.problems];
  const partitions = img.partitions.map((p) => {
    const vol = img.volumes.find((v) => v.partition === p) ?? (img.format === 'iso' && p.startBytes === 0 ? img.volumes[0] : undefined);
    return { index: p.index, type: p.type, startBytes: p.startBytes, sizeBytes: p.sizeBytes, filesystem: vol?.fs?.type, bootable: p.bootable };
  });
  for (const v of img.volumes) if (v.problem && v.problem !== 'no known filesystem') problems.push(`${v.where}: ${v.problem}`);

  const result: ImageInspection = {
    path,
    format: img.format === 'iso' ? 'iso' : img.filesystems().length || img.partitions.length ? 'disk' : 'unknown',
    sizeBytes: img.file.size,
    partitionTable: img.partitionTable,
    partitions,
    kernels: [],
    arch: 'unknown',
    problems,
  };
  if (img.partitionTable === 'none' && img.volumes[0]?.fs && img.format !== 'iso') {
    result.partitions.push({ index: 0, type: 'whole disk', startBytes: 0, sizeBytes: img.file.size, filesystem: img.volumes[0].fs.type });
  }

  let config: { cfg: BootConfig; fs: Filesystem; where: string } | undefined;
  for (const { volume, fs } of img.filesystems()) {
    try {
      if (!config) {
        const cfg = findBootConfig(fs);
        if (cfg && cfg.entries.length) config = { cfg, fs, where: volume.where };
      }
      for (const k of findKernels(fs)) result.kernels.push(k);
    } catch (err) {
      if (!(err instanceof FsImageError)) throw err;
      problems.push(`${volume.where}: ${err.message}`);
    }
  }
  if (config) {
    const { cfg } = config;
    result.bootConfig = {
      file: img.volumes.length > 1 ? `${config.where}:${cfg.file}` : cfg.file,
      entries: cfg.entries.map((e, index) => ({ index, label: e.label, kernel: e.kernel, initrd: e.initrd, args: e.args || undefined })),
      defaultIndex: cfg.defaultIndex,
    };
  }

  // The architecture comes from the kernel that would boot: the default entry's, else the newest.
  const candidates: { fs: Filesystem; path: string }[] = [];
  if (config) {
    const e = config.cfg.entries[config.cfg.defaultIndex ?? 0];
    candidates.push({ fs: config.fs, path: e.kernel });
    if (e.kernel.startsWith('/boot/')) candidates.push({ fs: config.fs, path: e.kernel.slice(5) });
  }
  for (const { fs } of img.filesystems()) for (const k of findKernelsQuiet(fs)) candidates.push({ fs, path: k.path });
  for (const c of candidates) {
    try {
      const facts = kernelFacts(c.fs.readFile(c.path, MAX_KERNEL_BYTES).subarray(0, KERNEL_HEAD_BYTES));
      if (facts.format === 'unknown') continue;
      result.arch = facts.arch;
      result.archReason = `${c.path}: ${facts.reason}`;
      break;
    } catch (err) {
      if (!(err instanceof FsImageError)) throw err;
      if (err.code !== 'not-found') problems.push(`${c.path}: ${err.message}`);
    }
  }
  if (result.arch === 'unknown' && !result.archReason) result.archReason = 'no kernel found on the image';
  return result;
}

function findKernelsQuiet(fs: Filesystem): { path: string }[] {
  try {
    return findKernels(fs);
  } catch (err) {
    if (err instanceof FsImageError) return [];
    throw err;
  }
}
