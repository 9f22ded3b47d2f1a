// pygrub's choice of what to boot from a disk image: an explicit --kernel/--ramdisk, else the
// entry of the first boot loader configuration found (--entry, or the configuration's default),
// else ("you can leave out all configuration altogether") the newest /boot/vmlinuz-* and its initrd.
import { FsImageError } from './errors.js';
import { findBootConfig, type BootConfig } from './bootconf.js';
import type { DiskImage, Volume } from './image.js';
import { kernelFacts, KERNEL_HEAD_BYTES, type KernelFacts } from './kernel.js';
import type { Filesystem } from './vfs.js';

export interface BootOptions {
  /** --entry: an index (0-based, as pygrub counts) or a title. */
  entry?: string;
  kernel?: string;
  ramdisk?: string;
  /** --args: appended to the entry's arguments. */
  args?: string;
}

export interface FoundKernel {
  path: string;
  version?: string;
  initrd?: string;
}

export interface BootChoice {
  how: 'explicit' | 'config' | 'newest';
  /** Where the kernel was read: "partition 1", "whole image". */
  where: string;
  configFile?: string;
  label?: string;
  kernelPath: string;
  initrdPath?: string;
  cmdline: string;
  kernel: Buffer;
  initrd?: Buffer;
  facts: KernelFacts;
}

export class BootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootError';
  }
}

const KERNEL_NAME = /^(?:vmlinuz|vmlinux|kernel|bzImage)-(.+)$/;
const MAX_KERNEL_BYTES = 256 * 1024 * 1024;

/** pygrub's command-line arguments, as libvirt's <bootloader_args> carries them. */
export function parseBootloaderArgs(text: string | undefined): BootOptions {
  const opts: BootOptions = {};
  const words = shellWords(text ?? '');
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '-q' || w === '--quiet' || w === '-n' || w === '--not-really') continue;
    const m = /^--(entry|kernel|ramdisk|args|extra_args|extra-args)(?:=(.*))?$/s.exec(w);
    if (!m) throw new BootError(`unknown bootloader argument '${w}' (pygrub takes --entry, --kernel, --ramdisk, --args)`);
    const value = m[2] ?? words[++i];
    if (value === undefined) throw new BootError(`bootloader argument ${w} needs a value`);
    const key = m[1] === 'extra_args' || m[1] === 'extra-args' ? 'args' : (m[1] as keyof BootOptions);
    opts[key] = key === 'args' && opts.args ? `${opts.args} ${value}` : value;
  }
  return opts;
}

function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = undefined;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      cur ??= '';
    } else if (/\s/.test(c)) {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else {
      cur = (cur ?? '') + c;
    }
  }
  if (quote) throw new BootError(`unbalanced quote in bootloader arguments: ${text}`);
  if (cur !== undefined) words.push(cur);
  return words;
}

/** /boot/vmlinuz-* (or /vmlinuz-* on a separate /boot partition), newest first, with initrds. */
export function findKernels(fs: Filesystem): FoundKernel[] {
  for (const dir of ['/boot', '/']) {
    let names: string[];
    try {
      names = fs.readdir(dir).filter((e) => e.kind !== 'dir').map((e) => e.name);
    } catch (err) {
      if (err instanceof FsImageError && (err.code === 'not-found' || err.code === 'not-dir')) continue;
      throw err;
    }
    const prefix = dir === '/' ? '' : dir;
    const found: FoundKernel[] = [];
    for (const name of names) {
      const m = KERNEL_NAME.exec(name);
      if (!m || /\.(old|bak|sig|asc)$/.test(name)) continue;
      const version = m[1];
      const initrd = [`initrd.img-${version}`, `initrd-${version}.img`, `initrd-${version}`, `initramfs-${version}.img`].find((n) =>
        names.includes(n),
      );
      found.push({ path: `${prefix}/${name}`, version, initrd: initrd && `${prefix}/${initrd}` });
    }
    if (found.length) return found.sort((a, b) => versionCompare(b.version ?? '', a.version ?? ''));
  }
  return [];
}

/** `sort -V` order: runs of digits compare as numbers, the rest as text. */
export function versionCompare(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d/.test(x);
    const ny = /^\d/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/** Picks the kernel, initrd and command line to boot from `img`, reading both files. */
export function chooseBoot(img: DiskImage, opts: BootOptions, extraArgs?: string): BootChoice {
  const fss = img.filesystems();
  if (fss.length === 0) {
    const why = img.volumes.map((v) => `${v.where}: ${v.problem ?? 'unreadable'}`).join('; ');
    throw new BootError(`no readable filesystem on the disk${why ? ` (${why})` : ''}`);
  }
  const tail = [opts.args, extraArgs].filter((a): a is string => !!a && a.trim() !== '');

  if (opts.kernel) {
    const k = locate(fss, opts.kernel, undefined);
    if (!k) throw new BootError(`kernel ${opts.kernel} not found on any partition of the disk`);
    const initrd = opts.ramdisk ? locate([k.found], opts.ramdisk, k.found) ?? locate(fss, opts.ramdisk, undefined) : undefined;
    if (opts.ramdisk && !initrd) throw new BootError(`ramdisk ${opts.ramdisk} not found on the disk`);
    return finish('explicit', k, initrd, tail.join(' '), {});
  }

  let config: { cfg: BootConfig; at: { volume: Volume; fs: Filesystem } } | undefined;
  for (const at of fss) {
    const cfg = findBootConfig(at.fs);
    if (cfg && cfg.entries.length) {
      config = { cfg, at };
      break;
    }
  }
  if (config) {
    const { cfg, at } = config;
    const index = pickEntry(cfg, opts.entry);
    const entry = cfg.entries[index];
    const k = locate([at, ...fss.filter((f) => f !== at)], entry.kernel, at);
    if (!k) throw new BootError(`entry ${index} ('${entry.label}') of ${cfg.file}: kernel ${entry.kernel} not found`);
    const initrd = entry.initrd ? locate([k.found, ...fss.filter((f) => f !== k.found)], entry.initrd, k.found) : undefined;
    if (entry.initrd && !initrd) throw new BootError(`entry ${index} ('${entry.label}') of ${cfg.file}: initrd ${entry.initrd} not found`);
    const cmdline = [entry.args, ...tail].filter((a) => a.trim() !== '').join(' ');
    return finish('config', k, initrd, cmdline, { configFile: cfg.file, label: entry.label });
  }
  if (opts.entry !== undefined) throw new BootError(`--entry=${opts.entry} given, but the disk has no boot loader configuration`);

  for (const at of fss) {
    const kernels = findKernels(at.fs);
    if (!kernels.length) continue;
    const newest = kernels[0];
    const k = { found: at, path: newest.path };
    const initrd = newest.initrd ? { found: at, path: newest.initrd } : undefined;
    const args = [...tail];
    // On the root filesystem (kernels in /boot), say which one it is unless the arguments do.
    if (newest.path.startsWith('/boot/') && at.fs.uuid && !args.some((a) => /(^|\s)root=/.test(a))) args.unshift(`root=UUID=${at.fs.uuid}`);
    return finish('newest', k, initrd, args.join(' '), { label: newest.version });
  }
  throw new BootError('no boot loader configuration (grub.cfg, extlinux.conf, syslinux.cfg, isolinux.cfg) and no /boot/vmlinuz-* kernel on the disk');
}

function pickEntry(cfg: BootConfig, entry: string | undefined): number {
  if (entry === undefined) return cfg.defaultIndex ?? 0;
  if (/^\d+$/.test(entry)) {
    const n = Number(entry);
    if (n >= cfg.entries.length) throw new BootError(`--entry=${entry}: ${cfg.file} has ${cfg.entries.length} entries (0 to ${cfg.entries.length - 1})`);
    return n;
  }
  const i = cfg.entries.findIndex((e) => e.label === entry || e.label.split('>').pop() === entry);
  if (i < 0) throw new BootError(`--entry=${entry}: no entry with that title in ${cfg.file} (${cfg.entries.map((e) => `'${e.label}'`).join(', ')})`);
  return i;
}

type At = { volume: Volume; fs: Filesystem };

/**
 * Finds `path` on the filesystems, preferring `home`; "/boot/x" is also tried as "/x" (a config on
 * the root filesystem naming a kernel on a separate /boot partition, or the reverse).
 */
function locate(fss: At[], path: string, home: At | undefined): { found: At; path: string } | undefined {
  const ordered = home ? [home, ...fss.filter((f) => f !== home)] : fss;
  const variants = [path, path.startsWith('/boot/') ? path.slice(5) : `/boot${path.startsWith('/') ? '' : '/'}${path}`];
  for (const variant of variants) {
    for (const at of ordered) {
      try {
        if (at.fs.stat(variant).kind === 'file') return { found: at, path: variant };
      } catch (err) {
        if (err instanceof FsImageError && (err.code === 'not-found' || err.code === 'not-dir' || err.code === 'loop')) continue;
        throw err;
      }
    }
  }
  return undefined;
}

function finish(
  how: BootChoice['how'],
  k: { found: At; path: string },
  initrd: { found: At; path: string } | undefined,
  cmdline: string,
  extra: { configFile?: string; label?: string },
): BootChoice {
  const kernel = k.found.fs.readFile(k.path, MAX_KERNEL_BYTES);
  const facts = kernelFacts(kernel.subarray(0, KERNEL_HEAD_BYTES));
  if (facts.format === 'unknown') throw new BootError(`${k.path} is not a Linux kernel (${facts.reason})`);
  return {
    how,
    where: k.found.volume.where,
    ...extra,
    kernelPath: k.path,
    initrdPath: initrd?.path,
    cmdline,
    kernel,
    initrd: initrd ? initrd.found.fs.readFile(initrd.path, MAX_KERNEL_BYTES) : undefined,
    facts,
  };
}
