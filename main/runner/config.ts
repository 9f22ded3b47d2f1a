// Reads and checks runner.json and everything it points to, before any socket exists, so that a
// bad configuration ends the runner with exit code 2 and one clear line in runner.log.
import fs from 'node:fs';
import { InputFileError } from '../common/input-file.js';
import { conflictingImageLocks, imageInUseMessage } from '../common/locks.js';
import { FileDisk } from './disk.js';
import { runnerConfigSchema, type RunnerConfig } from './protocol.js';

export class ConfigError extends Error {}

const KiB = 1024;
const MiB = 1024 * KiB;
/** v86 always places the initrd at this guest-physical address. */
export const INITRD_ADDRESS = 64 * MiB;

/** The guest-physical address an unpacked kernel must end below: the initrd's place, or the end of RAM. */
export function kernelAddressLimit(config: RunnerConfig, images: BootImages): number {
  return images.initrd ? INITRD_ADDRESS : config.memoryBytes;
}

export interface BootImages {
  bios: ArrayBuffer;
  vgaBios?: ArrayBuffer;
  /** The bzImage as read at start; each boot makes its own image of it (bootKernelImage). */
  kernel?: ArrayBuffer;
  initrd?: ArrayBuffer;
  cdrom?: FileDisk;
  hda?: FileDisk;
  hdb?: FileDisk;
  /** Effective setup-header vid_mode for a kernel boot (config.vidMode, else cmdline `vga=`). */
  vidMode?: number;
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

export function readRunnerConfig(file: string): RunnerConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read runner config '${file}': ${errnoText(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`runner config '${file}' is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = runnerConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid runner config '${file}': ${issues.join('; ')}`);
  }
  return parsed.data;
}

function readImage(what: string, file: string): ArrayBuffer {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`cannot read ${what} '${file}': ${errnoText(err)}`);
  }
  if (data.length === 0) throw new ConfigError(`${what} '${file}' is empty`);
  // v86 wants an ArrayBuffer of exactly the file (not Node's pooled slab); it also patches the kernel in place.
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer;
}

/** Opens an image as v86's buffer; a ConfigError names what is wrong with it. */
export function openDisk(what: string, file: string, writable: boolean): FileDisk {
  let disk: FileDisk;
  try {
    disk = new FileDisk(file, writable);
  } catch (err) {
    if (err instanceof InputFileError && err.kind) throw new ConfigError(`${what} ${err.message}`);
    throw new ConfigError(`cannot open ${what} '${file}'${writable ? ' read-write' : ''}: ${errnoText(err)}`);
  }
  if (disk.byteLength === 0) {
    disk.close();
    throw new ConfigError(`${what} '${file}' is empty`);
  }
  // One writer or any number of readers, across Domus domains, runners and homes (flock), and
  // against QEMU, which takes byte-range locks of its own on the same image.
  let conflict: boolean;
  try {
    conflict = !disk.lock() || conflictingImageLocks(file, writable, 'range').length > 0;
  } catch (err) {
    disk.close();
    throw new ConfigError(`cannot lock ${what} '${file}': ${(err as Error).message}`);
  }
  if (conflict) {
    disk.close();
    throw new ConfigError(imageInUseMessage(what, file, writable));
  }
  return disk;
}

function checkBios(file: string, data: ArrayBuffer): void {
  const size = data.byteLength;
  // v86 maps the BIOS just below 1 MiB; SeaBIOS builds are 128 or 256 KiB, Bochs' BIOS 64 KiB.
  if (size % (64 * KiB) !== 0 || size > 256 * KiB) {
    throw new ConfigError(`bios '${file}' is ${size} bytes; expected 64, 128, 192 or 256 KiB`);
  }
  // The reset vector (16 bytes from the end) of a PC BIOS is a jump.
  const resetOpcode = new Uint8Array(data)[size - 16];
  if (resetOpcode !== 0xea && resetOpcode !== 0xe9) {
    throw new ConfigError(`bios '${file}' does not look like a PC BIOS (no jump at the reset vector)`);
  }
}

function checkVgaBios(file: string, data: ArrayBuffer): void {
  const bytes = new Uint8Array(data);
  if (bytes[0] !== 0x55 || bytes[1] !== 0xaa) {
    throw new ConfigError(`vgaBios '${file}' is not an option ROM (no 55 AA signature)`);
  }
  if (data.byteLength > 128 * KiB) {
    throw new ConfigError(`vgaBios '${file}' is ${data.byteLength} bytes; the VGA ROM area holds 128 KiB`);
  }
}

function checkKernel(file: string, data: ArrayBuffer): void {
  // Linux boot protocol: "HdrS" at 0x202 in the real-mode setup header.
  const magic = data.byteLength > 0x206 ? Buffer.from(data, 0x202, 4).toString('latin1') : '';
  if (magic !== 'HdrS') throw new ConfigError(`kernel '${file}' is not a bzImage (no HdrS setup header)`);
}

/** `vga=` as a bootloader reads it (Documentation/admin-guide/svga.rst): a number, or normal/ext/ask. */
export function vidModeFromCmdline(cmdline: string): number | undefined {
  let mode: number | undefined;
  for (const word of cmdline.split(/\s+/)) {
    const m = /^vga=(.+)$/.exec(word);
    if (!m) continue;
    const v = m[1].toLowerCase();
    const named: Record<string, number> = { normal: 0xffff, ext: 0xfffe, ask: 0xfffd };
    const n = v in named ? named[v] : /^(0x[0-9a-f]+|\d+)$/.test(v) ? Number(v) : NaN;
    // The last valid vga= wins, as in the kernel's own parser.
    if (Number.isInteger(n) && n >= 0 && n <= 0xffff) mode = n;
  }
  return mode;
}

const mib = (n: number) => `${(n / MiB).toFixed(1).replace(/\.0$/, '')} MiB`;

/** Reads every image named by the config; throws ConfigError with a one-line reason. */
export function loadBootImages(config: RunnerConfig): BootImages {
  const images: BootImages = { bios: readImage('bios', config.bios) };
  checkBios(config.bios, images.bios);
  if (config.vgaBios) {
    images.vgaBios = readImage('vgaBios', config.vgaBios);
    checkVgaBios(config.vgaBios, images.vgaBios);
  }
  if (config.initrd && !config.kernel) throw new ConfigError('initrd is set but kernel is not');
  if (config.kernel) {
    images.kernel = readImage('kernel', config.kernel);
    checkKernel(config.kernel, images.kernel);
    images.vidMode = config.vidMode ?? vidModeFromCmdline(config.cmdline ?? '');
  }
  if (config.initrd) {
    images.initrd = readImage('initrd', config.initrd);
    const need = INITRD_ADDRESS + images.initrd.byteLength;
    if (config.memoryBytes < need) {
      throw new ConfigError(
        `memoryBytes ${mib(config.memoryBytes)} is too small for initrd '${config.initrd}' (${mib(images.initrd.byteLength)}): ` +
          `v86 loads the initrd at 64 MiB, so at least ${Math.ceil(need / MiB)} MiB is needed`,
      );
    }
  }
  try {
    if (config.cdrom) images.cdrom = openDisk('cdrom', config.cdrom, false);
    if (config.hda) images.hda = openDisk('hda', config.hda, true);
    if (config.hdb) images.hdb = openDisk('hdb', config.hdb, true);
    for (const slot of ['hda', 'hdb'] as const) {
      const stores = config.snapshotStores?.[slot];
      try {
        if (stores?.length) images[slot]?.setStores(stores);
      } catch (err) {
        throw new ConfigError(`${slot}: cannot open its snapshot stores: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    for (const disk of [images.cdrom, images.hda, images.hdb]) disk?.close();
    throw err;
  }
  return images;
}
