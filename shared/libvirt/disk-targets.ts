// Disk target names (<target dev>) as libvirt and virsh attach-disk pick them: a prefix per bus and
// the first free letter. One rule for the host's attach-disk and attach-device and the renderer's
// Add Hardware, so a form shows the target the host will use. No Node, no DOM.

/** The name prefix of each bus's targets. */
export const DISK_TARGET_PREFIX: Readonly<Record<string, string>> = { ide: 'hd', sata: 'sd', scsi: 'sd', usb: 'sd', virtio: 'vd', fdc: 'fd', xen: 'xvd' };

/** A CD-ROM on IDE goes where PCs put it (and v86 has its drive): the secondary master first. */
const IDE_CDROM_TARGETS = ['hdc', 'hdd', 'hdb', 'hda'];

/** The first free target for a `device` (disk, cdrom, floppy) on `bus`; undefined when the bus is full or unknown. */
export function freeDiskTarget(taken: ReadonlySet<string>, bus: string, device = 'disk'): string | undefined {
  const prefix = DISK_TARGET_PREFIX[bus];
  if (!prefix) return undefined;
  // IDE has two channels of two drives; a floppy controller two drives.
  const limit = bus === 'ide' ? 4 : bus === 'fdc' ? 2 : 26;
  const names = device === 'cdrom' && bus === 'ide' ? IDE_CDROM_TARGETS : [...'abcdefghijklmnopqrstuvwxyz'].slice(0, limit).map((l) => prefix + l);
  return names.find((t) => !taken.has(t));
}
