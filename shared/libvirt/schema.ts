// The parts of libvirt's domain XML schema that both the host and the renderer write: where a new
// child element goes, and the devices a definition boots from or attaches as disks. No Node, no DOM.

// libvirt's formatter (domain_conf.c) writes children in a fixed order; an edit that inserts a new
// child in the same order gives the XML virsh dumpxml would. Elements not listed keep their place.

/** Children of <domain>. */
export const DOMAIN_CHILDREN = [
  'name',
  'uuid',
  'genid',
  'title',
  'description',
  'metadata',
  'maxMemory',
  'memory',
  'currentMemory',
  'blkiotune',
  'memtune',
  'memoryBacking',
  'vcpu',
  'vcpus',
  'iothreads',
  'cputune',
  'resource',
  'sysinfo',
  'bootloader',
  'bootloader_args',
  'os',
  'idmap',
  'features',
  'cpu',
  'clock',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'pm',
  'perf',
  'devices',
] as const;

/** Children of <os>. */
export const OS_CHILDREN = ['type', 'firmware', 'loader', 'nvram', 'kernel', 'initrd', 'cmdline', 'dtb', 'boot', 'bootmenu', 'smbios', 'bios'] as const;

/** Children of <disk>. */
export const DISK_CHILDREN = ['driver', 'source', 'backingStore', 'target', 'iotune', 'boot', 'readonly', 'shareable', 'serial', 'address'] as const;

/** Children of <interface>. */
export const INTERFACE_CHILDREN = ['mac', 'source', 'model', 'driver', 'address'] as const;

/** <os><boot dev=…>: libvirt's virDomainBootDevice values. */
export const BOOT_DEVICES = ['hd', 'cdrom', 'fd', 'network'] as const;
export type BootDevice = (typeof BOOT_DEVICES)[number];

/** <disk device=…> values Domus handles; libvirt also has lun (SCSI passthrough), kept in the XML but not in the typed disks. */
export const DISK_DEVICES = ['disk', 'cdrom', 'floppy'] as const;
export type DiskDevice = (typeof DISK_DEVICES)[number];
