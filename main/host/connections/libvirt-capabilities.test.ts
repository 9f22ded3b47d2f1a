// domcapabilities on a libvirt connection: the mapping of libvirt's XML, and a real libvirtd's answer
// (private, per run) for a domain's machine and for the connection, through the API and the CLI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CapabilityChoice } from '../../../shared/capabilities.js';
import { SAMPLE_CMDLINE, TestHost, engineSkip, guest } from '../../testing/harness.js';
import { mapLibvirtCapabilities } from './libvirt-capabilities.js';

const reason = (list: CapabilityChoice[], value: string) => {
  const found = list.find((c) => c.value === value);
  assert.ok(found, `${value} is listed`);
  return found.unavailable;
};

describe("libvirt's domcapabilities mapped", () => {
  it('greys what the enums lack and devices libvirt does not support', () => {
    const caps = mapLibvirtCapabilities(
      `<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path><domain>kvm</domain><machine>pc-i440fx-7.2</machine><arch>x86_64</arch>
        <devices>
          <disk supported='yes'><enum name='diskDevice'><value>disk</value><value>cdrom</value></enum><enum name='bus'><value>ide</value><value>virtio</value><value>scsi</value></enum></disk>
          <graphics supported='yes'><enum name='type'><value>vnc</value></enum></graphics>
          <video supported='yes'><enum name='modelType'><value>vga</value><value>virtio</value><value>none</value></enum></video>
          <hostdev supported='no'/>
        </devices></domainCapabilities>`,
      'qemu:///system',
    );
    assert.deepEqual([caps.engine, caps.machine], ['kvm', 'pc']);
    assert.equal(reason(caps.disk.bus, 'virtio'), undefined);
    assert.equal(reason(caps.disk.bus, 'sata'), "libvirt on qemu:///system does not offer disk bus 'sata' for this machine");
    assert.match(reason(caps.disk.device, 'floppy') ?? '', /does not offer disk device 'floppy'/);
    assert.match(reason(caps.graphics.type, 'spice') ?? '', /does not offer graphics type 'spice'/);
    assert.match(reason(caps.video.model, 'qxl') ?? '', /does not offer video model 'qxl'/);
    assert.equal(reason(caps.video.model, 'none'), undefined);
    assert.equal(caps.hostdev.usb.unavailable, 'libvirt on qemu:///system does not support host devices');
    assert.equal(reason(caps.sound.model, 'ich9'), undefined, "not in libvirt's answer: left to libvirt's own check at define");
    assert.ok(caps.hotplug.video && !caps.hotplug.disk);
    assert.throws(() => mapLibvirtCapabilities('<capabilities/>', 'x'), /without a <domainCapabilities> element/);
  });
});

describe('domcapabilities on a real libvirtd', { skip: engineSkip('libvirt'), timeout: 300_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start('libvirt');
    await t.client.call('domain.define', {
      xml: `<domain type='qemu'><name>lvcaps</name><memory unit='MiB'>128</memory><os><type arch='x86_64' machine='q35'>hvm</type><kernel>${guest('vmlinuz')}</kernel><initrd>${guest('initrd.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline></os><devices/></domain>`,
    });
  });
  after(async () => {
    await t?.stop();
  });

  it("for a domain's machine and for the connection, through the API and domus domcapabilities", async () => {
    const caps = (await t.client.call('domain.capabilities', { domain: 'lvcaps' })).capabilities;
    assert.deepEqual([caps.engine, caps.machine], ['qemu', 'q35']);
    assert.equal(reason(caps.disk.bus, 'sata'), undefined, 'q35 has AHCI');
    assert.equal(reason(caps.video.model, 'virtio'), undefined);
    assert.equal(reason(caps.disk.device, 'cdrom'), undefined);
    assert.equal(caps.hostdev.usb.unavailable, undefined);
    const any = (await t.client.call('domain.capabilities', {})).capabilities;
    assert.ok(['qemu', 'kvm'].includes(any.engine));
    const cli = await t.cli(['-c', t.libvirtd!.uri, 'domcapabilities', 'lvcaps']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^engine: qemu\nmachine: q35\n/);
    assert.match(cli.stdout, /\n disk\s+bus\s+sata\s+yes\n/);
    await assert.rejects(t.client.call('domain.capabilities', { engine: 'v86' }), /runs QEMU guests, not v86/);
  });
});
