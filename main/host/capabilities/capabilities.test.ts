import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { CapabilityChoice } from '../../../shared/capabilities.js';
import { parseXmlTree, type XmlElement } from '../domain/xml-tree.js';
import { checkDevice, engineCapabilities, probeQemuDevices, qemuCapabilities, v86Capabilities } from './index.js';

function element(xml: string): XmlElement {
  return parseXmlTree(xml).find((n): n is XmlElement => 'name' in n)!;
}

function pick(list: CapabilityChoice[], value: string): CapabilityChoice {
  const found = list.find((c) => c.value === value);
  assert.ok(found, `${value} is listed`);
  return found;
}

/** Every device name QEMU 7.2 lists that argv.ts uses, less qxl-vga: a build without QXL. */
const QEMU_DEVICES = new Set([
  'VGA', 'cirrus-vga', 'virtio-vga', 'bochs-display', 'intel-hda', 'ich9-intel-hda', 'hda-duplex', 'AC97', 'ES1370', 'sb16',
  'qemu-xhci', 'usb-tablet', 'usb-mouse', 'usb-kbd', 'usb-storage', 'usb-host', 'virtio-tablet-pci', 'virtio-mouse-pci', 'virtio-keyboard-pci',
  'virtio-serial-pci', 'virtserialport', 'virtio-scsi-pci', 'scsi-hd', 'scsi-cd', 'virtio-net-pci', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci',
]);

describe('v86 capabilities', () => {
  const caps = v86Capabilities();
  test('provides IDE, raw, VGA, PS/2 and SB16; greys the rest with the reason', () => {
    assert.equal(pick(caps.disk.bus, 'ide').unavailable, undefined);
    assert.match(pick(caps.disk.bus, 'virtio').unavailable ?? '', /IDE only/);
    assert.match(pick(caps.disk.format, 'qcow2').unavailable ?? '', /raw images only/);
    assert.equal(pick(caps.sound.model, 'sb16').unavailable, undefined);
    assert.match(pick(caps.sound.model, 'ich9').unavailable ?? '', /Sound Blaster 16 only/);
    assert.match(pick(caps.input.device, 'tablet:usb').unavailable ?? '', /no USB/);
    assert.equal(pick(caps.channel.target, 'org.qemu.guest_agent.0').unavailable, undefined);
    assert.match(caps.hostdev.usb.unavailable ?? '', /no USB/);
    assert.equal(caps.max.interface, 1);
    assert.ok(caps.hotplug.interface);
  });

  test('checkDevice names what a device asks for and why v86 cannot', () => {
    assert.equal(checkDevice(caps, element(`<disk type='file' device='disk'><driver name='qemu' type='raw'/><target dev='hdb' bus='ide'/></disk>`)), undefined);
    assert.equal(
      checkDevice(caps, element(`<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><target dev='vdb' bus='virtio'/></disk>`)),
      "disk bus 'virtio': v86 has IDE only (two hard disks, one CD-ROM) and a floppy controller; a VirtIO disk is attached as IDE; disk format 'qcow2': v86 reads raw images only; disk cache mode 'none': v86 has no host cache modes: its runner reads and writes the image itself",
    );
    assert.match(checkDevice(caps, element(`<input type='tablet'/>`)) ?? '', /^input device 'tablet:usb': v86 has no USB/);
    assert.equal(checkDevice(caps, element(`<input type='mouse' bus='ps2'/>`)), undefined);
    assert.match(checkDevice(caps, element(`<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>`)) ?? '', /no USB/);
    assert.match(checkDevice(caps, element(`<sound model='nonsense'/>`)) ?? '', /not one this engine knows \(ich6, ich9, ac97, es1370, sb16\)/);
    assert.equal(checkDevice(caps, element(`<controller type='usb' model='qemu-xhci'/>`)), undefined, 'kinds outside the capabilities are not judged here');
    assert.equal(checkDevice(caps, element(`<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`)), undefined);
    assert.equal(checkDevice(caps, element(`<channel type='unix'><target type='virtio' name='org.example.port'/></channel>`)), "channel 'org.example.port': v86 carries the guest agent channel only");
  });
});

describe('QEMU capabilities', () => {
  test('provides what argv wires; greys what the binary lacks and what the machine lacks', () => {
    const pc = qemuCapabilities({ devices: QEMU_DEVICES });
    assert.equal(pc.machine, 'pc');
    assert.equal(pick(pc.video.model, 'virtio').unavailable, undefined);
    assert.equal(pick(pc.video.model, 'qxl').unavailable, 'this QEMU has no qxl-vga device (not built in)');
    assert.match(pick(pc.disk.bus, 'sata').unavailable ?? '', /needs machine q35/);
    assert.equal(pick(pc.disk.cache, 'writeback').unavailable, undefined);
    assert.equal(pick(pc.input.device, 'tablet:usb').unavailable, undefined);
    assert.match(pick(pc.graphics.type, 'spice').unavailable ?? '', /VNC/);
    assert.equal(pc.hostdev.usb.unavailable, undefined);
    assert.equal(pc.hotplug.interface, undefined);
    const q35 = qemuCapabilities({ machine: 'pc-q35-7.2', devices: QEMU_DEVICES });
    assert.equal(pick(q35.disk.bus, 'sata').unavailable, undefined);
    const noUsb = qemuCapabilities({ devices: new Set([...QEMU_DEVICES].filter((d) => d !== 'qemu-xhci')) });
    assert.match(noUsb.hostdev.usb.unavailable ?? '', /no qemu-xhci/);
    assert.match(checkDevice(noUsb, element(`<input type='tablet' bus='usb'/>`)) ?? '', /no qemu-xhci/);
    assert.equal(checkDevice(pc, element(`<sound model='ich9'/>`)), undefined);
    assert.equal(checkDevice(pc, element(`<channel type='unix'><target type='virtio' name='org.example.port'/></channel>`)), undefined, "a guest's own port name");
    assert.match(checkDevice(pc, element(`<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>`)) ?? '', /SPICE is not provided/);
  });

  test("the QEMU binary here is probed once: its devices decide what is greyed", { skip: process.env.DOMUS_TEST_ENGINES === 'v86' }, () => {
    const devices = probeQemuDevices();
    assert.ok(devices.has('VGA') && devices.has('qemu-xhci'), 'QEMU 7.2 lists its devices');
    assert.equal(probeQemuDevices(), devices, 'cached');
    const caps = engineCapabilities('qemu');
    assert.equal(pick(caps.video.model, 'qxl').unavailable, devices.has('qxl-vga') ? undefined : 'this QEMU has no qxl-vga device (not built in)');
  });
});
