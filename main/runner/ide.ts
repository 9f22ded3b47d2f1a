// Makes the guest's disk cache flushes reach the host's disk. v86's IDE disk answers FLUSH CACHE
// (0xE7) and FLUSH CACHE EXT (0xEA) without doing anything, and its IDENTIFY data says the drive
// has no write cache, so Linux never even sends a flush. Guest writes go straight to the image
// file (FileDisk), i.e. into the host's page cache: they survive the runner being killed, but not
// a host crash until the kernel writes them back. So, as QEMU does with its default
// cache=writeback: the drive reports a write cache that is enabled, and a flush fsyncs the file.
// Checked against v86 0.5.462 (src/ide.js); IDEInterface instances are sealed, so the patch goes
// on the shared prototype and acts only on drives whose buffer can flush.

/** v86's IDEInterface (src/ide.js), the fields used here. */
interface IdeInterface {
  is_atapi: boolean;
  buffer: { flush?: () => void } | null;
  /** IDENTIFY response being built (512 bytes, little-endian words). */
  data: Uint8Array;
  ata_command(cmd: number): void;
  create_identify_packet(): void;
}

export interface IdeDevices {
  ide?: { primary?: { master: IdeInterface; slave: IdeInterface } };
}

const ATA_FLUSH_CACHE = 0xe7;
const ATA_FLUSH_CACHE_EXT = 0xea;
/** IDENTIFY word 82 bit 5: write cache supported; word 85 bit 5: write cache enabled. */
const WORD_82 = 82 * 2;
const WORD_85 = 85 * 2;
const WRITE_CACHE = 1 << 5;

const patched = new WeakSet<object>();

export function installFlush(devices: IdeDevices): void {
  const drive = devices.ide?.primary?.master;
  if (!drive) return;
  const proto = Object.getPrototypeOf(drive) as IdeInterface;
  if (patched.has(proto)) return;
  patched.add(proto);
  const ataCommand = proto.ata_command;
  const identify = proto.create_identify_packet;
  proto.ata_command = function (this: IdeInterface, cmd: number): void {
    // v86 completes the command at once (status ready, IRQ); the fsync happens before that, so
    // the guest's flush returns only once the data is on the host's disk.
    if ((cmd === ATA_FLUSH_CACHE || cmd === ATA_FLUSH_CACHE_EXT) && !this.is_atapi) this.buffer?.flush?.();
    ataCommand.call(this, cmd);
  };
  proto.create_identify_packet = function (this: IdeInterface): void {
    identify.call(this);
    if (this.is_atapi || !this.buffer?.flush) return;
    this.data[WORD_82] |= WRITE_CACHE;
    this.data[WORD_85] |= WRITE_CACHE;
  };
}
