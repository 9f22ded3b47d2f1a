import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { CapabilityChoice } from '../../../shared/capabilities.js';
import { SAMPLE_CMDLINE, TestHost, createOn, engineSkip, guest } from '../../testing/harness.js';
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
  'qemu-xhci', 'piix3-usb-uhci', 'usb-tablet', 'usb-mouse', 'usb-kbd', 'usb-storage', 'usb-host', 'virtio-tablet-pci', 'virtio-mouse-pci', 'virtio-keyboard-pci',
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
    const noXhci = new Set([...QEMU_DEVICES].filter((d) => d !== 'qemu-xhci'));
    const noUsb = qemuCapabilities({ machine: 'pc-q35-7.2', devices: noXhci });
    assert.match(noUsb.hostdev.usb.unavailable ?? '', /no qemu-xhci/);
    assert.match(checkDevice(noUsb, element(`<input type='tablet' bus='usb'/>`)) ?? '', /no qemu-xhci/);
    assert.equal(qemuCapabilities({ devices: noXhci }).hostdev.usb.unavailable, undefined, "the pc machine's USB controller is a piix3-usb-uhci");
    const noUhci = qemuCapabilities({ devices: new Set([...QEMU_DEVICES].filter((d) => d !== 'piix3-usb-uhci')) });
    assert.match(noUhci.hostdev.usb.unavailable ?? '', /no piix3-usb-uhci/);
    assert.match(pick(noUhci.disk.bus, 'usb').unavailable ?? '', /no piix3-usb-uhci/);
    assert.match(q35.hotplug.interface ?? '', /q35 machine .* no PCIe root port/, "the driver's attachNic refuses q35");
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

describe('domain.capabilities and domus domcapabilities through the host', { timeout: 120_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  test("the named engine's, the domain's with its machine, and refusals", async () => {
    const v86 = (await t.client.call('domain.capabilities', { engine: 'v86' })).capabilities;
    assert.deepEqual(v86, v86Capabilities());
    const qemuSkip = engineSkip('qemu');
    if (!qemuSkip) {
      await createOn(t.client, { name: 'caps', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } }, 'qemu');
      const { xml } = await t.client.call('domain.xml', { domain: 'caps', inactive: true });
      await t.client.call('domain.define', { xml: xml.replace(/<type arch=(['"])(\w+)\1>/, "<type arch='$2' machine='pc-q35-7.2'>") });
      const caps = (await t.client.call('domain.capabilities', { domain: 'caps' })).capabilities;
      assert.deepEqual([caps.engine, caps.machine], ['qemu', 'q35']);
      assert.equal(pick(caps.disk.bus, 'sata').unavailable, undefined);
      await assert.rejects(t.client.call('domain.capabilities', { domain: 'caps', engine: 'v86' }), /domain 'caps' runs on qemu, not v86/);
      const cli = await t.cli(['domcapabilities', 'caps']);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /^engine: qemu\nmachine: q35\n/);
      assert.match(cli.stdout, /\n graphics\s+type\s+spice\s+no: Domus's console and viewers speak VNC; SPICE is not provided\n/);
    }
    const cli = await t.cli(['domcapabilities', '--virttype', 'v86']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /\n sound\s+model\s+sb16\s+yes\n/);
    assert.match(cli.stdout, /\n disk\s+format\s+qcow2\s+no: v86 reads raw images only\n/);
    assert.match(cli.stdout, /Limits: .*at most 1 interface/);
    const bad = await t.cli(['domcapabilities', '--virttype', 'xen']);
    assert.match(bad.stderr, /unknown virttype 'xen' \(expected v86 or qemu\)/);
  });
});
