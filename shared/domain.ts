// Domain model shared by every side: the typed view of a domain definition, and the steps an
// operation in flight shows. libvirt's own vocabulary (states, element order, units) is in libvirt/.
// No Node, no DOM.
import type { BootDevice, DiskDevice } from './libvirt/schema.js';

/** Transitional steps shown while an operation is in flight (not libvirt states). */
export type DomainStep = 'starting' | 'shutting-down' | 'saving' | 'restoring' | 'dumping' | 'snapshotting' | 'migrating' | null;

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
  /** <mac address>; Domus adds one (52:54:00:xx:xx:xx, as libvirt does) when a definition has none. */
  mac?: string;
  /** <model type>: virtio, e1000, ne2k_pci, rtl8139… */
  model?: string;
  /** <source network|bridge|dev>. */
  source?: string;
  /** <link state>: absent = up. */
  link?: 'up' | 'down';
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
    /**
     * <type>: hvm, or xen/linux/xenpvh for Xen PV definitions (also 'xen' when a <bootloader>
     * definition has no <os>, as libvirt reads it).
     */
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
    /** 'efi' for <os firmware='efi'> or flash firmware with a variable store (OVMF); 'bios' for a ROM <loader>; absent: the engine's BIOS. */
    firmware?: 'bios' | 'efi';
    /** <loader>: the firmware image the definition names, its type (rom, pflash) and secure='yes' (Secure Boot). */
    loader?: { path?: string; type?: string; secure?: boolean };
    /** <nvram>: the domain's UEFI variable store and the template it starts from. */
    nvram?: { path?: string; template?: string };
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
