// Domain model shared by every side: libvirt's states and reasons, and the typed view of a
// domain definition. No Node, no DOM.

/** libvirt's virDomainState, plus the transitional steps a person sees. */
export const DOMAIN_STATES = [
  'nostate',
  'running',
  'blocked',
  'paused',
  'shutdown',
  'shutoff',
  'crashed',
  'pmsuspended',
] as const;
export type DomainState = (typeof DOMAIN_STATES)[number];

/** Transitional steps shown while an operation is in flight (not libvirt states). */
export type DomainStep = 'starting' | 'shutting-down' | 'saving' | 'restoring' | null;

/** Reasons, named as virsh prints them (virDomainRunningReason etc.). */
export type RunningReason = 'unknown' | 'booted' | 'migrated' | 'restored' | 'from snapshot' | 'unpaused';
export type PausedReason = 'unknown' | 'user' | 'migrating' | 'saving' | 'dumping' | 'ioerror' | 'starting-up';
export type ShutoffReason =
  | 'unknown'
  | 'shutdown'
  | 'destroyed'
  | 'crashed'
  | 'migrated'
  | 'saved'
  | 'failed'
  | 'from snapshot';
export type StateReason = RunningReason | PausedReason | ShutoffReason;

/** virsh's spelling of each state ("shut off", not "shutoff"). */
export function stateLabel(state: DomainState): string {
  switch (state) {
    case 'shutoff':
      return 'shut off';
    case 'nostate':
      return 'no state';
    case 'pmsuspended':
      return 'pmsuspended';
    case 'shutdown':
      return 'in shutdown';
    default:
      return state;
  }
}

export type DiskDevice = 'disk' | 'cdrom' | 'floppy';
export type BootDevice = 'hd' | 'cdrom' | 'fd' | 'network';

export interface DiskConfig {
  device: DiskDevice;
  /** Host path of the image (<source file=...>); undefined for an empty CD-ROM drive. */
  source?: string;
  /** <driver type=...>: raw, qcow2, ... */
  format: string;
  /** <target dev=...>: hda, hdc, vda, sda ... */
  target: string;
  /** <target bus=...>: ide, sata, virtio, scsi, usb, fdc */
  bus: string;
  readonly: boolean;
  /** Per-device <boot order=N/> when present. */
  bootIndex?: number;
}

export interface GraphicsConfig {
  type: string;
  port?: number;
  autoport: boolean;
  listen?: string;
  /** Never sent to clients in clear; the host redacts it. */
  passwd?: string;
}

export interface InterfaceConfig {
  type: string;
  mac?: string;
  model?: string;
  source?: string;
}

export interface DomainConfig {
  name: string;
  uuid: string;
  title?: string;
  description?: string;
  /** <domain type=...>: v86, kvm, qemu ... */
  type: string;
  /** Maximum memory (<memory>), KiB. */
  memoryKiB: number;
  /** Current allocation (<currentMemory>), KiB. */
  currentMemoryKiB: number;
  vcpus: number;
  os: {
    /** <type>: hvm (or xen/linux for PV definitions written by Xen tools). */
    type: string;
    arch: string;
    machine?: string;
    kernel?: string;
    initrd?: string;
    cmdline?: string;
    /** <boot dev=.../> in document order. */
    bootOrder: BootDevice[];
    /** Xen-style <bootloader> (pygrub) and its arguments. */
    bootloader?: string;
    bootloaderArgs?: string;
  };
  disks: DiskConfig[];
  graphics: GraphicsConfig[];
  interfaces: InterfaceConfig[];
  /** Number of serial ports (<serial>/<console>). */
  serials: number;
  /** <memballoon model='virtio'> (libvirt adds one by default; model='none' disables it). */
  balloon: boolean;
  /** <memballoon autodeflate='on|off'>: the guest takes ballooned pages back under OOM (QEMU deflate-on-oom); absent = the engine's default (off). */
  balloonAutodeflate?: boolean;
  /** <memballoon freePageReporting='on|off'>: the guest reports free pages for the host to reclaim (QEMU free-page-reporting); absent = off. */
  balloonFreePageReporting?: boolean;
  onPoweroff: string;
  onReboot: string;
  onCrash: string;
}

/** A warning about something the engine keeps in the definition but cannot provide. */
export interface DefinitionWarning {
  /** XPath-like location, e.g. "devices/controller[@type='usb']". */
  element: string;
  message: string;
}
