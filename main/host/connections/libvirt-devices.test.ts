// Definition and device edits on a real libvirtd (private, per run), checked with Debian's virsh:
// create (transient, paused), desc, attach-disk, change-media, detach-disk, attach/update/detach-device,
// domblkinfo, blockresize, nodedev-list --cap usb_device, domxml-to-native.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { runCli, TestHost } from '../../testing/harness.js';
import { libvirtdSkip } from '../../testing/libvirtd.js';
import { shellWords, usbDeviceOf } from './libvirt-devices.js';

const xml = (name: string): string =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>` +
  `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;

test("libvirt's qemu-argv text as words: backslash-newlines, single quotes, a quote inside quotes", () => {
  assert.deepEqual(shellWords("LC_ALL=C \\\n/usr/bin/qemu-system-x86_64 \\\n-name guest=a,debug-threads=on \\\n-append 'console=ttyS0 quiet' \\\n-x 'it'\\''s'"), [
    'LC_ALL=C',
    '/usr/bin/qemu-system-x86_64',
    '-name',
    'guest=a,debug-threads=on',
    '-append',
    'console=ttyS0 quiet',
    '-x',
    "it's",
  ]);
  assert.throws(() => shellWords("-append 'open"), /unterminated quote/);
});

test("a node device's XML as a USB device: bus, device, ids and names; other capabilities are none", () => {
  const xml = `<device><name>usb_1_2</name><parent>usb_usb1</parent><capability type='usb_device'><bus>1</bus><device>2</device>
    <product id='0xC52B'>USB Receiver</product><vendor id='0x046d'>Logitech, Inc.</vendor></capability></device>`;
  assert.deepEqual(usbDeviceOf(xml), { bus: 1, device: 2, vendorId: '046d', productId: 'c52b', vendor: 'Logitech, Inc.', product: 'USB Receiver' });
  assert.equal(usbDeviceOf(`<device><name>pci_0000_00_01_0</name><capability type='pci'/></device>`), undefined);
  assert.equal(usbDeviceOf(`<device><capability type='usb_device'><bus>x</bus><device>2</device></capability></device>`), undefined);
});

describe('definition and device edits on a libvirt connection', { skip: libvirtdSkip(), timeout: 240_000 }, () => {
  let t: TestHost;
  const virsh = (...args: string[]) => t.libvirtd!.virsh(...args);
  const blockList = async (name: string, inactive = true): Promise<string> => (await virsh('domblklist', name, ...(inactive ? ['--inactive'] : []))).stdout;

  before(async () => {
    t = await TestHost.start('libvirt');
    await t.client.call('domain.define', { xml: xml('dev-edit') });
  });
  after(async () => {
    await t?.stop();
  });

  test('attach-disk, change-media and detach-disk change the definition as virsh sees it', async () => {
    const image = `${t.libvirtd!.dir}/data.img`;
    fs.writeFileSync(image, Buffer.alloc(1 << 20));
    const iso = `${t.libvirtd!.dir}/media.iso`;
    fs.writeFileSync(iso, Buffer.alloc(1 << 20));

    const disk = await t.client.call('domain.attachDisk', { domain: 'dev-edit', source: image, config: true });
    assert.equal(disk.target, 'vda', 'the first free virtio target');
    const cdrom = await t.client.call('domain.attachDisk', { domain: 'dev-edit', device: 'cdrom', config: true });
    assert.equal(cdrom.target, 'hdc');
    assert.match(await blockList('dev-edit'), new RegExp(`^\\s*vda\\s+${image}$`, 'm'));
    assert.match(await blockList('dev-edit'), /^\s*hdc\s+-$/m);
    await assert.rejects(t.client.call('domain.attachDisk', { domain: 'dev-edit', source: image, target: 'vda', config: true }), /target 'vda' already exists/);
    await assert.rejects(t.client.call('domain.attachDisk', { domain: 'dev-edit', source: 'data.img', config: true }), /'data\.img' must be an absolute path on the host of qemu\+unix/);

    await t.client.call('domain.changeMedia', { domain: 'dev-edit', target: 'hdc', source: iso, config: true });
    assert.match(await blockList('dev-edit'), new RegExp(`^\\s*hdc\\s+${iso}$`, 'm'));
    await t.client.call('domain.changeMedia', { domain: 'dev-edit', target: 'hdc', eject: true, config: true });
    assert.match(await blockList('dev-edit'), /^\s*hdc\s+-$/m);
    await assert.rejects(t.client.call('domain.changeMedia', { domain: 'dev-edit', target: 'vda', eject: true, config: true }), /The disk device 'vda' is not removable/);

    await t.client.call('domain.detachDisk', { domain: 'dev-edit', target: image, config: true });
    assert.doesNotMatch(await blockList('dev-edit'), /vda/, 'detached by its source path, as virsh finds a disk');
    const cli = await runCli(t.home, ['-c', t.libvirtd!.uri, 'detach-disk', 'dev-edit', 'hdc', '--config']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.doesNotMatch(await blockList('dev-edit'), /hdc/);
  });

  test('attach-device, update-device, detach-device pass the XML to libvirt; domblkinfo, blockresize; USB devices', async () => {
    const image = (await t.client.call('volume.create', { pool: 'default', name: 'grow.img', capacityBytes: 1 << 20, format: 'raw' })).volume.path;
    await t.client.call('domain.attachDevice', { domain: 'dev-edit', xml: `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${image}'/><target dev='vdb' bus='virtio'/></disk>`, config: true });
    await t.client.call('domain.attachDevice', { domain: 'dev-edit', xml: `<sound model='ich9'/>`, config: true });
    let dumped = (await virsh('dumpxml', 'dev-edit', '--inactive')).stdout;
    assert.match(dumped, /<target dev='vdb' bus='virtio'\/>/);
    assert.match(dumped, /<sound model='ich9'>/);
    await t.client.call('domain.updateDevice', { domain: 'dev-edit', xml: `<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='${image}'/><target dev='vdb' bus='virtio'/></disk>`, config: true });
    assert.match((await virsh('dumpxml', 'dev-edit', '--inactive')).stdout, /<driver name='qemu' type='raw' cache='none'\/>/);
    await t.client.call('domain.detachDevice', { domain: 'dev-edit', xml: `<sound model='ich9'/>`, config: true });
    assert.doesNotMatch((await virsh('dumpxml', 'dev-edit', '--inactive')).stdout, /<sound/);
    await assert.rejects(t.client.call('domain.attachDevice', { domain: 'dev-edit', xml: `<sound model='ich9'/>`, live: true }), /domain is not running/);

    assert.deepEqual(await t.client.call('domain.blockInfo', { domain: 'dev-edit', target: 'vdb' }), { capacity: 1 << 20, allocation: (await t.client.call('domain.blockInfo', { domain: 'dev-edit', target: 'vdb' })).allocation, physical: 1 << 20 });
    const resized = await t.client.call('domain.blockResize', { domain: 'dev-edit', target: 'vdb', sizeBytes: 2 << 20 });
    assert.equal(resized.capacity, 2 << 20);
    assert.match((await virsh('vol-info', image)).stdout, /Capacity:\s+2\.00 MiB/);
    await assert.rejects(t.client.call('domain.blockResize', { domain: 'dev-edit', target: 'vdb', sizeBytes: 1 << 20 }), /cannot shrink disk 'vdb'/);
    const cli = await runCli(t.home, ['-c', t.libvirtd!.uri, 'domblkinfo', 'dev-edit', 'vdb']);
    assert.match(cli.stdout, /^Capacity:       2097152\n/);
    await t.client.call('domain.detachDevice', { domain: 'dev-edit', xml: `<disk type='file' device='disk'><source file='${image}'/><target dev='vdb' bus='virtio'/></disk>`, config: true });

    // This machine's libvirtd lists what its node device driver sees (no udev here: possibly none).
    const { devices } = await t.client.call('host.usbDevices', {});
    const listed = (await virsh('nodedev-list', '--cap', 'usb_device')).stdout.split('\n').filter(Boolean);
    assert.equal(devices.length, listed.length);
  });

  test('desc: title and description in the definition; a stale editor is refused', async () => {
    const { generation } = await t.client.call('domain.xml', { domain: 'dev-edit', inactive: true });
    const set = await t.client.call('domain.setMetadata', { domain: 'dev-edit', title: 'A title', description: 'What it is for', config: true, expectGeneration: generation });
    assert.notEqual(set.generation, generation);
    assert.equal((await virsh('desc', 'dev-edit', '--title', '--config')).stdout.trim(), 'A title');
    assert.equal((await virsh('desc', 'dev-edit', '--config')).stdout.trim(), 'What it is for');
    await assert.rejects(t.client.call('domain.setMetadata', { domain: 'dev-edit', title: 'Another', config: true, expectGeneration: generation }), /was changed on .* since you loaded it/);
    await t.client.call('domain.setMetadata', { domain: 'dev-edit', title: '', config: true });
    assert.match((await virsh('desc', 'dev-edit', '--title', '--config')).stdout, /^No title for domain/);
  });

  test('domxml-to-native: the QEMU command line libvirt would run', async () => {
    const { argv } = await t.client.call('domain.toNative', { domain: 'dev-edit' });
    assert.match(argv[0], /qemu-system-x86_64$/, `argv starts with the emulator, not the environment: ${argv.slice(0, 3).join(' ')}`);
    assert.ok(argv.includes('-name'));
    assert.match(argv[argv.indexOf('-name') + 1], /^guest=dev-edit/);
  });

  test('create (transient): it runs, paused when asked, and is gone once destroyed', async () => {
    const created = await t.client.call('domain.createTransient', { xml: xml('dev-transient'), paused: true });
    assert.equal(created.domain.state, 'paused');
    assert.equal(created.domain.persistent, false);
    assert.match((await virsh('domstate', 'dev-transient')).stdout, /paused/);
    const destroyed = await t.client.call('domain.destroy', { domain: 'dev-transient' });
    assert.equal(destroyed.domain.state, 'shutoff');
    assert.doesNotMatch((await virsh('list', '--all', '--name')).stdout, /dev-transient/);
  });
});
