// The device XML Add Hardware sends and the device pages edit, run in Chromium (the DOM's XML
// parser and serializer are the browser's): what each builder writes, the next free disk target,
// and reading and writing serial ports, channels and inputs in place.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { moduleInChromium, type ModuleInChromium } from '../testing/inChromium';
import type * as DeviceXml from './deviceXml';

let loaded: ModuleInChromium<typeof DeviceXml>;

before(async () => {
  loaded = await moduleInChromium(fileURLToPath(new URL('./deviceXml.ts', import.meta.url)));
});
after(async () => {
  await loaded?.close();
});

const inPage = <A, R>(steps: (lib: typeof DeviceXml, arg: A) => R, arg: A): Promise<R> => loaded.run(steps, arg);

const MOUSE = { bus: 1, device: 5, vendorId: '046d', productId: 'c52b' };
const TWIN = { ...MOUSE, device: 6 };

const DOMAIN = `<domain type='qemu'><name>x</name><devices>
  <disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>
  <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
  <serial type='file'><source path='/tmp/s.log'/><target port='1'/></serial>
  <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  <input type='tablet' bus='usb'/>
  <input type='tablet'/>
  <input type='mouse'/>
  <hostdev mode='subsystem' type='usb'><source><address bus='1' device='6'/></source></hostdev>
</devices></domain>`;

describe('device XML', () => {
  test('builders write what libvirt reads, values escaped, defaults left out', async () => {
    const out = await inPage(
      (lib, [mouse, twin]) => [
        lib.diskXml({ device: 'disk', path: "/img/it's.qcow2", format: 'qcow2', bus: 'virtio', target: 'vdb', cache: 'default', readonly: false }),
        lib.diskXml({ device: 'cdrom', path: '', format: 'raw', bus: 'ide', target: 'hdd', cache: 'none', readonly: false }),
        lib.interfaceXml({ type: 'network', network: 'default', model: 'e1000', mac: '52:54:00:AB:CD:EF', link: 'down' }),
        lib.serialXml({ type: 'pty', port: 1, path: 'ignored' }),
        lib.channelXml({ type: 'unix', name: 'org.qemu.guest_agent.0' }),
        lib.inputXml('tablet:usb'),
        lib.usbHostdevXml(mouse, [mouse, { ...mouse, vendorId: '1d6b' }]),
        lib.usbHostdevXml(mouse, [mouse, twin]),
        lib.diskXml({ device: 'disk', path: '/img/old.img', format: '', bus: 'virtio', target: 'vdc', cache: '', readonly: false }),
      ],
      [MOUSE, TWIN],
    );
    assert.deepEqual(out, [
      "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/it&apos;s.qcow2'/><target dev='vdb' bus='virtio'/></disk>",
      "<disk type='file' device='cdrom'><driver name='qemu' type='raw' cache='none'/><target dev='hdd' bus='ide'/><readonly/></disk>",
      "<interface type='network'><mac address='52:54:00:ab:cd:ef'/><source network='default'/><model type='e1000'/><link state='down'/></interface>",
      "<serial type='pty'><target port='1'/></serial>",
      "<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
      "<input type='tablet' bus='usb'/>",
      "<hostdev mode='subsystem' type='usb' managed='yes'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>",
      // Two alike devices: the IDs would not say which, the bus and device number do.
      "<hostdev mode='subsystem' type='usb' managed='yes'><source><address bus='1' device='5'/></source></hostdev>",
      // An existing image: no <driver type> guessed from its name, the host probes it.
      "<disk type='file' device='disk'><driver name='qemu'/><source file='/img/old.img'/><target dev='vdc' bus='virtio'/></disk>",
    ]);
    assert.match(await inPage((lib) => lib.randomMac(), null), /^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  test('the next free target per bus, as attach-disk picks it', async () => {
    const targets = await inPage((lib, xml) => {
      const doc = new DOMParser().parseFromString(xml, 'application/xml');
      return [...['virtio', 'ide', 'sata', 'fdc'].map((bus) => lib.nextDiskTarget(doc, bus)), lib.nextDiskTarget(doc, 'ide', 'cdrom')];
    }, DOMAIN);
    assert.deepEqual(targets, ['vdb', 'hda', 'sda', 'fda', 'hdd'], 'hdc is taken: the next CD-ROM goes to hdd');
  });

  test('serial ports, channels and inputs read and written in place', async () => {
    const out = await inPage((lib, xml) => {
      const doc = new DOMParser().parseFromString(xml, 'application/xml');
      const serial = lib.deviceElements(doc, 'serial')[0];
      const channel = lib.deviceElements(doc, 'channel')[0];
      const [input, tablet, mouse] = lib.deviceElements(doc, 'input');
      const read = [
        lib.readDevice('serial', serial),
        lib.readDevice('channel', channel),
        lib.readDevice('input', input),
        lib.readDevice('input', tablet),
        lib.readDevice('input', mouse),
        lib.readDevice('hostdev', lib.deviceElements(doc, 'hostdev')[0]),
      ];
      lib.writeDevice('serial', serial, { type: 'pty', target: '2', source: '/tmp/s.log' });
      lib.writeDevice('input', input, { type: 'keyboard:virtio', target: '', source: '' });
      return { read, serial: lib.deviceXmlOf(serial), input: lib.deviceXmlOf(input) };
    }, DOMAIN);
    assert.deepEqual(out.read, [
      { type: 'file', target: '1', source: '/tmp/s.log' },
      { type: 'unix', target: 'org.qemu.guest_agent.0', source: '' },
      { type: 'tablet:usb', target: '', source: '' },
      { type: 'tablet:usb', target: '', source: '' },
      { type: 'mouse:ps2', target: '', source: '' },
      { type: 'usb', target: '1.6', source: '' },
    ], "an input without a bus is on libvirt's default one");
    assert.equal(out.serial, '<serial type="pty"><target port="2"/></serial>', 'a pty has no source path');
    assert.equal(out.input, '<input type="keyboard" bus="virtio"/>');
  });

  test('a serial port is a number from 0 to 31', async () => {
    const ports = ['0', '9', '10', '31', '32', '99', '', '-1', '1a', '007'];
    assert.deepEqual(await inPage((lib, list) => list.map(lib.validSerialPort), ports), [true, true, true, true, false, false, false, false, false, false]);
  });
});
