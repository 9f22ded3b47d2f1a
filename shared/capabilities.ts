// What an engine can give a guest, device by device: libvirt's domain capabilities (virsh
// domcapabilities) in the shape Domus's forms use. Every choice an engine cannot provide stays in
// the list with the reason, so a form greys it rather than accepting it and warning later.
// No Node, no DOM.

/** One value of a device setting (a bus, a model, a type). */
export interface CapabilityChoice {
  /** The value as libvirt XML writes it ('virtio', 'qcow2', 'tablet:usb' for an input's type:bus). */
  value: string;
  label: string;
  /** Why the engine cannot provide it; absent: it can. */
  unavailable?: string;
}

/** Device kinds Add Hardware offers, named after their libvirt elements. */
export const DEVICE_KINDS = ['disk', 'interface', 'graphics', 'video', 'input', 'sound', 'serial', 'channel', 'hostdev'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

export interface DomainCapabilities {
  /** The engine the answer is for: 'v86', 'qemu', or a libvirt host's virt type ('kvm', 'qemu'). */
  engine: string;
  /** The machine type the answer assumes (pc, q35), where it matters. */
  machine?: string;
  disk: {
    /** disk, cdrom, floppy. */
    device: CapabilityChoice[];
    /** <target bus>: ide, sata, scsi, virtio, usb, fdc. */
    bus: CapabilityChoice[];
    /** <driver type>: raw, qcow2. */
    format: CapabilityChoice[];
    /** <driver cache>: default, none, writeback, writethrough, directsync, unsafe. */
    cache: CapabilityChoice[];
    /** Growing a disk's image (virsh blockresize while running, vol-resize otherwise). */
    resize: { unavailable?: string; liveUnavailable?: string };
  };
  interface: {
    /** <interface type>: network, user, bridge, direct. */
    type: CapabilityChoice[];
    /** <model type>: virtio, e1000, e1000e, rtl8139, ne2k_pci. */
    model: CapabilityChoice[];
  };
  graphics: { type: CapabilityChoice[] };
  /** <video><model type>: vga, cirrus, virtio, bochs, qxl, none. */
  video: { model: CapabilityChoice[] };
  /** <input type bus> as 'type:bus': 'mouse:ps2', 'keyboard:ps2', 'tablet:usb', 'keyboard:virtio'… */
  input: { device: CapabilityChoice[] };
  /** <sound model>: ich6, ich9, ac97, es1370, sb16. */
  sound: { model: CapabilityChoice[] };
  /** <serial type>: pty, unix, file, tcp, null. */
  serial: { type: CapabilityChoice[] };
  channel: {
    /** <channel type>: unix, pty, spicevmc. */
    type: CapabilityChoice[];
    /** <target type='virtio' name>: org.qemu.guest_agent.0, com.redhat.spice.0. */
    target: CapabilityChoice[];
  };
  /** <hostdev mode='subsystem' type='usb'>: passing a host's USB device through. */
  hostdev: { usb: { unavailable?: string } };
  /** Per kind: why it cannot be added to or removed from a running guest; absent: it can. */
  hotplug: Partial<Record<DeviceKind, string>>;
  /** Per kind: how many the engine connects (v86: one NIC, one video card); absent: no limit that matters. */
  max: Partial<Record<DeviceKind, number>>;
}

/** A USB device on a host (virsh nodedev-list --cap usb_device). */
export interface HostUsbDevice {
  /** Bus and device numbers as lsusb shows them. */
  bus: number;
  device: number;
  /** Four hex digits, as <vendor id='0x046d'/> takes them without the 0x. */
  vendorId: string;
  productId: string;
  vendor?: string;
  product?: string;
}
