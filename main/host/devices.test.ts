// attach-device, detach-device and update-device from libvirt XML on shut-off v86 and QEMU domains
// (the definition checked), what each engine refuses and why, live edits refused where no engine
// makes them, domblkinfo and blockresize on raw and qcow2 images, and the host's USB devices from
// a fake sysfs tree; through the API and the CLI.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENGINES, TestHost, guest, guestsBuilt, sampleGuestXml } from '../testing/harness.js';
import { listUsbDevices } from './usb.js';

const MiB = 1024 * 1024;
const skip = !guestsBuilt() && 'sample guests not built';

/** The <devices> children of `name` in the inactive definition, as XML lines. */
async function devicesXml(t: TestHost, domain: string): Promise<string> {
  const { xml } = await t.client.call('domain.xml', { domain, inactive: true });
  return xml.slice(xml.indexOf('<devices>'), xml.indexOf('</devices>'));
}

for (const engine of ENGINES) {
  describe(`device XML on a shut-off ${engine} domain`, { skip, timeout: 300_000 }, () => {
    let t: TestHost;
    let dir: string;
    const name = `dev-${engine}`;
    const attach = (xml: string, extra: { live?: boolean; config?: boolean } = {}) => t.client.call('domain.attachDevice', { domain: name, xml, ...extra });
    const detach = (xml: string) => t.client.call('domain.detachDevice', { domain: name, xml });
    const update = (xml: string, extra: { live?: boolean } = {}) => t.client.call('domain.updateDevice', { domain: name, xml, ...extra });

    before(async () => {
      t = await TestHost.start();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-devices-'));
      fs.writeFileSync(path.join(dir, 'a.img'), '');
      fs.truncateSync(path.join(dir, 'a.img'), 8 * MiB);
      await t.client.call('domain.define', { xml: sampleGuestXml(name, engine) });
    });
    after(async () => {
      await t?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('assigns what libvirt assigns: disk targets per bus, a 52:54:00 MAC, port numbers', async () => {
      await attach(`<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${path.join(dir, 'a.img')}'/><target bus='ide'/></disk>`);
      await attach(`<disk type='file' device='cdrom'><source file='${guest('tiny.iso')}'/><target bus='ide'/><readonly/></disk>`);
      await attach(`<interface type='network'><source network='default'/><model type='virtio'/></interface>`);
      await attach(`<graphics type='vnc' autoport='yes'/>`);
      await attach(`<input type='mouse' bus='ps2'/>`);
      await attach(`<input type='keyboard' bus='ps2'/>`);
      await attach(`<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`);
      const xml = await devicesXml(t, name);
      assert.match(xml, /<disk type='file' device='disk'>\s*<driver name='qemu' type='raw'\/>\s*<source file='[^']*a\.img'\/>\s*<target dev='hda' bus='ide'\/>/);
      assert.match(xml, /<disk type='file' device='cdrom'>\s*<driver type='raw'\/>\s*<source file='[^']*tiny\.iso'\/>\s*<target dev='hdc' bus='ide'\/>/, 'the probed format filled in');
      assert.match(xml, /<interface type='network'>\s*<mac address='52:54:00(:[0-9a-f]{2}){3}'\/>\s*<source network='default'\/>/);
      assert.match(xml, /<controller type='virtio-serial' index='0'\/>/, 'a virtio-serial controller for the channel');
      // libvirt's order: disks, controllers, interfaces, inputs, graphics, serials, channels.
      const order = ['<disk', '<controller', '<interface', '<input', '<graphics', '<serial', '<channel'].map((tag) => xml.indexOf(tag));
      assert.deepEqual(order, [...order].sort((a, b) => a - b), xml);
      const info = await t.client.call('domain.info', { domain: name });
      assert.deepEqual(info.config.disks.map((d) => d.target), ['hda', 'hdc']);
    });

    it('refuses what the engine cannot provide, with its reason', async () => {
      const refusals: [string, RegExp][] =
        engine === 'v86'
          ? [
              [`<sound model='ich9'/>`, /v86 engine cannot provide this <sound>: sound model 'ich9': v86 has a Sound Blaster 16 only/],
              [`<input type='tablet' bus='usb'/>`, /v86 has no USB/],
              [`<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>`, /USB host device: v86 has no USB/],
              [`<interface type='network'><source network='default'/></interface>`, /at most 1 <interface>/],
              [`<serial type='pty'/>`, /at most 1 <serial>/],
              [`<disk type='file' device='disk'><source file='${path.join(dir, 'a.img')}'/><target bus='virtio'/></disk>`, /disk bus 'virtio': v86 has IDE only/],
            ]
          : [
              [`<disk type='file' device='disk'><source file='${path.join(dir, 'a.img')}'/><target bus='sata'/></disk>`, /disk bus 'sata': SATA \(AHCI\) needs machine q35/],
              [`<graphics type='spice'/>`, /graphics type 'spice': .*SPICE is not provided/],
              [`<serial type='tcp'><source mode='bind' host='127.0.0.1' service='4555'/></serial>`, /serial port type 'tcp'/],
              [`<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0' slot='1' function='0'/></source></hostdev>`, /only USB devices/],
            ];
      const before = await devicesXml(t, name);
      for (const [xml, reason] of refusals) {
        await assert.rejects(attach(xml), (err: Error & { code?: string }) => {
          assert.match(err.message, reason, xml);
          return true;
        });
      }
      assert.equal(await devicesXml(t, name), before, 'nothing was added');
      await assert.rejects(attach(`<domain type='kvm'/>`), /<domain> is not a device Domus attaches/);
      await assert.rejects(attach(`<disk type='file' device='disk'><source file='${path.join(dir, 'absent.img')}'/><target bus='ide'/></disk>`), /no such file/);
    });

    it('attaches the kinds the engine has, then detaches them matched as libvirt matches', async () => {
      const kinds =
        engine === 'v86'
          ? [`<sound model='sb16'/>`, `<video><model type='vga'/></video>`]
          : [
              `<sound model='ich9'/>`,
              `<video><model type='vga'/></video>`,
              `<input type='tablet' bus='usb'/>`,
              `<serial type='pty'/>`,
              `<console type='pty'><target type='serial'/></console>`,
              `<controller type='usb' model='qemu-xhci'/>`,
              `<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>`,
              `<disk type='file' device='disk'><driver name='qemu' type='raw' cache='writeback'/><source file='${path.join(dir, 'a.img')}'/><target bus='virtio'/></disk>`,
            ];
      for (const xml of kinds) await attach(xml);
      let xml = await devicesXml(t, name);
      if (engine === 'qemu') {
        assert.match(xml, /<serial type='pty'>\s*<target port='1'\/>/, 'the second serial port is port 1');
        assert.match(xml, /<controller type='usb' model='qemu-xhci' index='0'\/>/);
        assert.match(xml, /<target dev='vda' bus='virtio'\/>/);
        // Two serials: which one is meant must be said.
        await assert.rejects(detach(`<serial type='pty'/>`), /matches 2 <serial> devices; say which one/);
        await detach(`<serial type='pty'><target port='1'/></serial>`);
        await detach(`<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>`);
        await detach(`<disk type='file' device='disk'><target dev='vda'/></disk>`);
        // Identical devices are interchangeable: detach removes one of them (the GUI's Remove).
        await attach(`<sound model='ich9'/>`);
        await detach(`<sound model='ich9'/>`);
        assert.equal((await devicesXml(t, name)).match(/<sound model='ich9'\/>/g)?.length, 1);
      }
      const mice = async () => (await devicesXml(t, name)).match(/<input type='mouse' bus='ps2'\/>/g)?.length ?? 0;
      await t.client.call('domain.attachDevice', { domain: name, xml: `<input type='mouse' bus='ps2'/>` });
      const count = await mice();
      assert.ok(count >= 2);
      await detach(`<input type='mouse' bus='ps2'/>`);
      assert.equal(await mice(), count - 1, 'one of the identical mice is removed');
      await assert.rejects(detach(`<sound model='es1370'/>`), /no <sound> in the definition matches/);
      const mac = /<mac address='([^']+)'/.exec(xml)![1]!;
      await detach(`<interface type='network'><mac address='${mac.toUpperCase()}'/></interface>`);
      await detach(`<sound model='${engine === 'v86' ? 'sb16' : 'ich9'}'/>`);
      await detach(`<disk type='file' device='cdrom'><target dev='hdc'/></disk>`);
      xml = await devicesXml(t, name);
      assert.doesNotMatch(xml, /<interface|<sound|dev='hdc'/);
      assert.match(xml, /dev='hda'/);
    });

    it('updates settings in place; fixed settings and refused choices are named', async () => {
      await update(`<graphics type='vnc' autoport='yes' passwd='sekrit'><listen type='address' address='127.0.0.1'/></graphics>`);
      const { xml } = await t.client.call('domain.xml', { domain: name, inactive: true, secure: true });
      assert.match(xml, /<graphics type='vnc' autoport='yes' passwd='sekrit'>\s*<listen type='address' address='127.0.0.1'\/>/);
      await update(`<disk type='file' device='cdrom'><source file='${guest('tiny.iso')}'/><target dev='hdd' bus='ide'/><readonly/></disk>`).then(
        () => assert.fail('hdd does not exist'),
        (err: Error) => assert.match(err.message, /no <disk> in the definition matches/),
      );
      await assert.rejects(update(`<disk type='file' device='disk'><source file='${guest('tiny.iso')}'/><target dev='hda'/></disk>`), /cannot change the source of hard disk 'hda'/);
      await assert.rejects(update(`<sound model='sb16'/>`), /update-device changes disks, interfaces, graphics and video/);
      if (engine === 'v86') {
        await assert.rejects(update(`<video><model type='cirrus'/></video>`), /video model 'cirrus': v86 has the standard VGA/);
        await assert.rejects(
          update(`<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='${path.join(dir, 'a.img')}'/><target dev='hda'/></disk>`),
          /disk cache mode 'none': v86 has no host cache modes/,
        );
      } else {
        await update(`<video><model type='cirrus'/></video>`);
        await update(`<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='${path.join(dir, 'a.img')}'/><target dev='hda'/><readonly/></disk>`);
        const after = await devicesXml(t, name);
        assert.match(after, /<model type='cirrus'\/>/);
        assert.match(after, /<driver name='qemu' type='raw' cache='none'\/>\s*<source file='[^']*a\.img'\/>\s*<target dev='hda' bus='ide'\/>\s*<readonly\/>/);
      }
    });

    it('domblkinfo and blockresize on raw and qcow2 images: grow, shrink refused', async () => {
      await t.client.call('volume.create', { pool: 'default', name: `r-${engine}.img`, capacityBytes: 4 * MiB, format: 'raw' });
      await t.client.call('volume.create', { pool: 'default', name: `q-${engine}.qcow2`, capacityBytes: 64 * MiB, format: 'qcow2' });
      const raw = path.join(t.home, 'images', `r-${engine}.img`);
      const qcow2 = path.join(t.home, 'images', `q-${engine}.qcow2`);
      await attach(`<disk type='file' device='disk'><source file='${raw}'/><target dev='hdc' bus='ide'/></disk>`);
      // A qcow2 image is attached as qcow2, never as raw (the guest would see and could rewrite its header).
      await assert.rejects(attach(`<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${qcow2}'/><target dev='hdd' bus='ide'/></disk>`), /is a qcow2 image, but the disk's <driver type='raw'> says raw/);
      await assert.rejects(update(`<disk type='file' device='disk'><driver type='raw'/><source file='${qcow2}'/><target dev='hdc'/></disk>`), /is a qcow2 image, but the disk's <driver type='raw'> says raw/);
      if (engine === 'v86') await assert.rejects(attach(`<disk type='file' device='disk'><source file='${qcow2}'/><target dev='hdd' bus='ide'/></disk>`), /disk format 'qcow2': v86 reads raw images only/);
      if (engine === 'qemu') {
        await attach(`<disk type='file' device='disk'><source file='${qcow2}'/><target dev='vdb' bus='virtio'/></disk>`);
        assert.match(await devicesXml(t, name), /<driver type='qcow2'\/>\s*<source file='[^']*q-qemu\.qcow2'\/>/, 'the probed format filled in');
      }
      let info = await t.client.call('domain.blockInfo', { domain: name, target: 'hdc' });
      assert.deepEqual(info, { capacity: 4 * MiB, allocation: info.allocation, physical: 4 * MiB });
      assert.ok(info.allocation < 4 * MiB, 'sparse');
      const grown = await t.client.call('domain.blockResize', { domain: name, target: 'hdc', sizeBytes: 6 * MiB });
      assert.equal(grown.capacity, 6 * MiB);
      assert.equal(fs.statSync(raw).size, 6 * MiB);
      await assert.rejects(t.client.call('domain.blockResize', { domain: name, target: 'hdc', sizeBytes: 2 * MiB }), /cannot shrink disk 'hdc' from 6291456 to 2097152 bytes/);
      assert.equal(fs.statSync(raw).size, 6 * MiB);
      if (engine === 'qemu') {
        info = await t.client.call('domain.blockInfo', { domain: name, target: 'vdb' });
        assert.equal(info.capacity, 64 * MiB);
        assert.ok(info.physical < MiB && info.physical === fs.statSync(qcow2).size, 'a qcow2 file is smaller than its disk');
        await t.client.call('domain.blockResize', { domain: name, target: 'vdb', sizeBytes: 128 * MiB });
        assert.equal((await t.client.call('domain.blockInfo', { domain: name, target: 'vdb' })).capacity, 128 * MiB);
      }
      await assert.rejects(t.client.call('domain.blockInfo', { domain: name, target: 'sdz' }), /No disk found whose source path or target is sdz/);

      // The CLI: virsh's shapes and its KiB default.
      let r = await t.cli(['domblkinfo', name, 'hdc']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Capacity:       6291456\nAllocation:     \d+\nPhysical:       6291456\n\n$/);
      r = await t.cli(['domblkinfo', name, 'hdc', '--human']);
      assert.match(r.stdout, /^Capacity:       6\.000 MiB\n/);
      r = await t.cli(['blockresize', name, 'hdc', '8192']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "Block device 'hdc' is resized\n\n");
      assert.equal(fs.statSync(raw).size, 8 * MiB);
      r = await t.cli(['blockresize', name, 'hdc', '1M']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: Failed to resize block device 'hdc'\nerror: .*cannot shrink disk 'hdc'/);
    });

    it('attach-device, update-device and detach-device from the CLI, with virsh errors', async () => {
      const file = path.join(dir, 'video.xml');
      fs.writeFileSync(file, engine === 'v86' ? `<video><model type='qxl'/></video>` : `<input type='keyboard' bus='virtio'/>`);
      let r = await t.cli(['attach-device', name, file, '--config']);
      if (engine === 'v86') {
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`^error: Failed to attach device from ${file}\\nerror: .*video model 'qxl': v86 has the standard VGA`));
        fs.writeFileSync(file, `<input type='keyboard' bus='ps2'/>`);
        r = await t.cli(['attach-device', name, file, '--persistent']);
      }
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'Device attached successfully\n\n');
      r = await t.cli(['detach-device', name, file, '--current']);
      assert.equal(r.code, 0, r.stderr);
      r = await t.cli(['update-device', name, file, '--live']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: Failed to update device from .*\nerror: .*domain is not running/);
      r = await t.cli(['attach-device', name, path.join(dir, 'absent.xml')]);
      assert.match(r.stderr, /Failed to open file '.*absent\.xml': No such file or directory/);
    });
  });
}

for (const engine of ENGINES) {
  describe(`device edits on a running ${engine} guest`, { skip, timeout: 300_000 }, () => {
    let t: TestHost;
    before(async () => {
      t = await TestHost.start();
    });
    after(async () => {
      await t?.stop();
    });

    it(engine === 'v86' ? 'refuses live what v86 does not do live, saying to use --config, blockresize too' : 'grows a disk live (block_resize) and plugs a NIC from XML; refuses the rest live', async () => {
      await t.client.call('volume.create', { pool: 'default', name: 'run.img', capacityBytes: 4 * MiB, format: 'raw' });
      const disk = path.join(t.home, 'images', 'run.img');
      await t.client.call('domain.define', { xml: sampleGuestXml('run', engine, `<disk type='file' device='disk'><source file='${disk}'/><target dev='hda' bus='ide'/></disk><graphics type='vnc'/>`) });
      await t.client.call('domain.start', { domain: 'run' });
      try {
        await assert.rejects(t.client.call('domain.attachDevice', { domain: 'run', xml: `<sound model='sb16'/>`, live: true }), new RegExp(`${engine} engine cannot attach a <sound> in a running guest; use --config`));
        await assert.rejects(t.client.call('domain.updateDevice', { domain: 'run', xml: `<graphics type='vnc' passwd='x'/>` }), /changes only a CD-ROM's medium and an interface's link state in a running guest; use --config/);
        if (engine === 'v86') {
          // A dumped <interface> (with <alias>, <address>, <target>) is matched by its MAC: what stops it here is v86's one fixed card.
          const dumped = `<interface type='network'><mac address='52:54:00:40:00:08'/><source network='default'/><target dev='vnet0'/><model type='virtio'/><alias name='net0'/><address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></interface>`;
          await assert.rejects(t.client.call('domain.detachDevice', { domain: 'run', xml: dumped, live: true }), /cannot detach an interface on a running v86 guest: v86 has one network card/);
          await assert.rejects(t.client.call('domain.blockResize', { domain: 'run', target: 'hda', sizeBytes: 8 * MiB }), /v86 engine cannot grow a disk under a running guest/);
          assert.equal(fs.statSync(disk).size, 4 * MiB);
        } else {
          const grown = await t.client.call('domain.blockResize', { domain: 'run', target: 'hda', sizeBytes: 8 * MiB });
          assert.equal(grown.capacity, 8 * MiB);
          assert.equal(fs.statSync(disk).size, 8 * MiB, 'QEMU grew the file');
          await assert.rejects(t.client.call('domain.blockResize', { domain: 'run', target: 'hda', sizeBytes: 4 * MiB }), /cannot shrink/);
          const mac = '52:54:00:40:00:07';
          await t.client.call('domain.attachDevice', { domain: 'run', xml: `<interface type='network'><mac address='${mac}'/><source network='default'/><model type='virtio'/></interface>`, live: true });
          assert.match((await t.client.call('domain.xml', { domain: 'run' })).xml, new RegExp(`<mac address='${mac}'/>\\n\\s*<source network='default'/>`));
          assert.doesNotMatch((await t.client.call('domain.xml', { domain: 'run', inactive: true })).xml, /<interface/, '--live alone leaves the definition');
          await assert.rejects(
            t.client.call('domain.attachDevice', { domain: 'run', xml: `<interface type='network'><source network='default'/><bandwidth><inbound average='100'/></bandwidth></interface>`, live: true }),
            /cannot plug an interface with <bandwidth> into a running guest; use --config/,
          );
        }
        // A shut-off domain's image that a running guest uses is not resized under it.
        await t.client.call('domain.define', { xml: sampleGuestXml('other', engine, `<disk type='file' device='disk'><source file='${disk}'/><target dev='hda' bus='ide'/></disk>`) });
        await assert.rejects(t.client.call('domain.blockResize', { domain: 'other', target: 'hda', sizeBytes: 16 * MiB }), /the image of disk 'hda' is in use by running domain 'run'/);
        // --config alone changes the definition of the running domain, not the guest.
        await t.client.call('domain.attachDevice', { domain: 'run', xml: `<sound model='sb16'/>`, config: true });
        assert.match((await t.client.call('domain.xml', { domain: 'run', inactive: true })).xml, /<sound model='sb16'\/>/);
        assert.doesNotMatch((await t.client.call('domain.xml', { domain: 'run' })).xml, /<sound/);
      } finally {
        await t.client.call('domain.destroy', { domain: 'run' });
      }
    });
  });
}

describe('host USB devices', () => {
  it('reads busnum, devnum, ids and strings from sysfs; interfaces, hubs and malformed entries are skipped', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-sysfs-'));
    try {
      const add = (name: string, attrs: Record<string, string>) => {
        const dir = path.join(root, 'bus/usb/devices', name);
        fs.mkdirSync(dir, { recursive: true });
        for (const [k, v] of Object.entries(attrs)) fs.writeFileSync(path.join(dir, k), `${v}\n`);
      };
      add('usb1', { busnum: '1', devnum: '1', idVendor: '1d6b', idProduct: '0002', bDeviceClass: '09', manufacturer: 'Linux Foundation', product: '2.0 root hub' });
      add('1-2', { busnum: '1', devnum: '2', idVendor: '05e3', idProduct: '0610', bDeviceClass: '09', product: 'USB2.0 Hub' });
      add('1-1', { busnum: '1', devnum: '3', idVendor: '046D', idProduct: 'c52b', bDeviceClass: '00', product: 'USB Receiver' });
      add('1-1:1.0', { bInterfaceClass: '03' });
      add('2-1', { busnum: '2', devnum: 'x', idVendor: '046d', idProduct: 'c52b' });
      add('2-2', { busnum: '2', devnum: '2', idVendor: '046d', idProduct: 'c52b', product: 'y'.repeat(10_000) });
      const devices = listUsbDevices(root);
      assert.deepEqual(devices[0], { bus: 1, device: 3, vendorId: '046d', productId: 'c52b', product: 'USB Receiver' }, 'hubs (class 09) are left out: usb-host cannot take them');
      assert.equal(devices.length, 2);
      assert.equal(devices[1]!.product!.length, 256, 'a long attribute is cut at its bound');
      assert.deepEqual(listUsbDevices(path.join(root, 'absent')), []);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('host.usbDevices and nodedev-list --cap usb_device read the tree DOMUS_TEST_SYSFS names (test mode only)', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-sysfs-'));
    const dir = path.join(root, 'bus/usb/devices/3-2');
    fs.mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries({ busnum: '3', devnum: '7', idVendor: '0781', idProduct: '5567', product: 'Cruzer Blade' })) fs.writeFileSync(path.join(dir, k), v);
    process.env.DOMUS_TEST_SYSFS = root;
    const t = await TestHost.start();
    try {
      assert.deepEqual((await t.client.call('host.usbDevices', {})).devices, [{ bus: 3, device: 7, vendorId: '0781', productId: '5567', product: 'Cruzer Blade' }]);
      let r = await t.cli(['nodedev-list', '--cap', 'usb_device']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'usb_003_007\n\n');
      r = await t.cli(['nodedev-list', '--cap', 'pci']);
      assert.match(r.stderr, /only --cap usb_device is listed here, not 'pci'/);
    } finally {
      delete process.env.DOMUS_TEST_SYSFS;
      await t.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
