import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  DomainXmlError,
  dumpDomainXml,
  ensureInterfaceMacs,
  ensureUuid,
  firstChild,
  parseDomainXml,
  serializeDomainXml,
  setMemory,
  setName,
  setVcpus,
  type DomainDocument,
} from './xml.js';

const FIXTURES = ['virt-install-debian12', 'dumpxml-running', 'xen-pv-pygrub', 'v86-direct-kernel'] as const;
type Fixture = (typeof FIXTURES)[number];

function fixture(name: Fixture): string {
  return readFileSync(new URL(`./fixtures/${name}.xml`, import.meta.url), 'utf8');
}

/** A minimal valid definition: `head` goes after <memory>, `extra` before <devices>. */
function domainXml({ head = '', extra = '', devices = '' } = {}): string {
  return `<domain type='kvm'>
  <name>t</name>
  <memory unit='MiB'>256</memory>
  ${head}
  <os><type arch='i686'>hvm</type></os>
  ${extra}
  <devices>${devices}</devices>
</domain>`;
}

function assertXmlError(xml: string, code: DomainXmlError['code'], message: string | RegExp): void {
  assert.throws(
    () => parseDomainXml(xml),
    (error: unknown) => {
      assert.ok(error instanceof DomainXmlError, `expected DomainXmlError, got ${String(error)}`);
      assert.equal(error.code, code);
      if (typeof message === 'string') assert.equal(error.message, message);
      else assert.match(error.message, message);
      return true;
    },
  );
}

function roundTrip(xml: string): { first: DomainDocument; text: string; second: DomainDocument } {
  const first = parseDomainXml(xml);
  const text = serializeDomainXml(first);
  return { first, text, second: parseDomainXml(text) };
}

describe('round trip', () => {
  for (const name of FIXTURES) {
    test(`${name}: parse → serialize → parse is a fixed point`, () => {
      const { first, text, second } = roundTrip(fixture(name));
      assert.deepEqual(second.nodes, first.nodes);
      assert.deepEqual(second.config, first.config);
      assert.equal(serializeDomainXml(second), text);
    });
  }

  test('virsh-formatted fixtures come back byte for byte', () => {
    for (const name of ['dumpxml-running', 'xen-pv-pygrub', 'v86-direct-kernel'] as const) {
      assert.equal(serializeDomainXml(parseDomainXml(fixture(name))), fixture(name), name);
    }
  });

  test('virt-install definition keeps every element Domus does not model', () => {
    const { text } = roundTrip(fixture('virt-install-debian12'));
    const kept = [
      `<libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>`,
      `<libosinfo:os id='http://debian.org/debian/12'/>`,
      `  <features>\n    <acpi/>\n    <apic/>\n    <vmport state='off'/>\n  </features>`,
      `<cpu mode='host-passthrough' check='none' migratable='on'/>`,
      `<clock offset='utc'>\n    <timer name='rtc' tickpolicy='catchup'/>`,
      `<timer name='hpet' present='no'/>`,
      `<pm>\n    <suspend-to-mem enabled='no'/>\n    <suspend-to-disk enabled='no'/>\n  </pm>`,
      `<emulator>/usr/bin/qemu-system-x86_64</emulator>`,
      `<driver name='qemu' type='qcow2' discard='unmap'/>`,
      `<controller type='usb' index='0' model='qemu-xhci' ports='15'>`,
      `<controller type='pci' index='14' model='pcie-root-port'>`,
      `<controller type='virtio-serial' index='0'>`,
      `<target type='virtio' name='org.qemu.guest_agent.0'/>`,
      `<channel type='spicevmc'>`,
      `<input type='tablet' bus='usb'>`,
      `<image compression='off'/>`,
      `<sound model='ich9'>`,
      `<audio id='1' type='spice'/>`,
      `<video>\n      <model type='virtio' heads='1' primary='yes'/>`,
      `<redirdev bus='usb' type='spicevmc'>`,
      `<watchdog model='itco' action='reset'/>`,
      `<rng model='virtio'>\n      <backend model='random'>/dev/urandom</backend>`,
    ];
    for (const snippet of kept) assert.ok(text.includes(snippet), `missing from output: ${snippet}`);
    assert.equal(text.match(/model='pcie-root-port'/g)?.length, 14);
  });

  test('running dumpxml keeps live-only elements and attributes', () => {
    const { text } = roundTrip(fixture('dumpxml-running'));
    for (const snippet of [
      `<domain type='kvm' id='3'>`,
      `<resource>\n    <partition>/machine</partition>\n  </resource>`,
      `<target dev='vnet0'/>`,
      `<alias name='ide0-0-0'/>`,
      `<backingStore/>`,
      `<console type='pty' tty='/dev/pts/3'>`,
      `<seclabel type='dynamic' model='dac' relabel='yes'>`,
    ]) {
      assert.ok(text.includes(snippet), `missing from output: ${snippet}`);
    }
  });

  test('namespaced metadata, comments, entities and mixed content survive', () => {
    const xml = domainXml({
      head: `<!-- kept comment -->
  <metadata><foo:bar xmlns:foo="https://example.org/foo" a="x&amp;y" b="tab&#9;nl&#10;q&quot;'"/></metadata>
  <description>a &amp;&#x41;&#66; &lt;b&gt; <![CDATA[<raw & cdata>]]> end</description>`,
      extra: `<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:arg value='-S'/></qemu:commandline>
  <note>mixed <b>bold</b> text</note>`,
    });
    const { first, text, second } = roundTrip(xml);
    assert.deepEqual(second.nodes, first.nodes);
    assert.equal(first.config.description, 'a &AB <b> <raw & cdata> end');
    assert.ok(text.includes(`<!-- kept comment -->`));
    assert.ok(text.includes(`<foo:bar xmlns:foo='https://example.org/foo' a='x&amp;y' b='tab&#9;nl&#10;q&quot;&apos;'/>`));
    assert.ok(text.includes(`<description>a &amp;AB &lt;b&gt; &lt;raw &amp; cdata&gt; end</description>`));
    assert.ok(text.includes(`<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n    <qemu:arg value='-S'/>`));
    assert.ok(text.includes(`<note>mixed <b>bold</b> text</note>`));
    const metadata = first.root.children.find((node) => node.type === 'element' && node.name === 'metadata');
    assert.deepEqual(metadata, {
      type: 'element',
      name: 'metadata',
      attributes: {},
      children: [
        {
          type: 'element',
          name: 'foo:bar',
          attributes: { 'xmlns:foo': 'https://example.org/foo', a: 'x&y', b: `tab\tnl\nq"'` },
          children: [],
        },
      ],
    });
  });

  test('drops the XML declaration and indentation, keeps leaf whitespace', () => {
    const doc = parseDomainXml(`<?xml version="1.0" encoding="UTF-8"?>\n${domainXml({ extra: '<cmdline-note>  two  </cmdline-note>' })}`);
    const text = serializeDomainXml(doc);
    assert.ok(text.startsWith(`<domain type='kvm'>\n  <name>t</name>\n`));
    assert.ok(text.includes(`<cmdline-note>  two  </cmdline-note>`));
    assert.ok(text.includes(`  <devices/>\n</domain>\n`));
  });
});

describe('typed config', () => {
  test('virt-install definition', () => {
    const { config } = parseDomainXml(fixture('virt-install-debian12'));
    assert.deepEqual(config, {
      name: 'debian12',
      uuid: '7c1e5f0a-3b9d-4e62-8f14-2a6d0c9b5e31',
      title: undefined,
      description: undefined,
      type: 'kvm',
      memoryKiB: 2097152,
      currentMemoryKiB: 2097152,
      vcpus: 2,
      os: {
        type: 'hvm',
        arch: 'x86_64',
        machine: 'pc-q35-8.2',
        kernel: undefined,
        initrd: undefined,
        cmdline: undefined,
        bootOrder: ['hd'],
        bootloader: undefined,
        bootloaderArgs: undefined,
      },
      disks: [
        {
          device: 'disk',
          source: '/var/lib/libvirt/images/debian12.qcow2',
          format: 'qcow2',
          target: 'vda',
          bus: 'virtio',
          readonly: false,
          bootIndex: undefined,
        },
        {
          device: 'cdrom',
          source: '/var/lib/libvirt/images/x.iso',
          format: 'raw',
          target: 'sda',
          bus: 'sata',
          readonly: true,
          bootIndex: undefined,
        },
      ],
      graphics: [{ type: 'spice', port: undefined, autoport: true, listen: undefined, passwd: undefined }],
      interfaces: [{ type: 'network', mac: '52:54:00:3a:6c:1f', model: 'virtio', source: 'default' }],
      serials: 1,
      balloon: true,
      onPoweroff: 'destroy',
      onReboot: 'restart',
      onCrash: 'destroy',
    });
  });

  test('running dumpxml', () => {
    const { config } = parseDomainXml(fixture('dumpxml-running'));
    assert.equal(config.title, 'Fedora web server');
    assert.equal(config.description, 'nginx front end & certbot; owner: ops <ops@example.org>');
    assert.equal(config.memoryKiB, 4 * 1024 * 1024);
    assert.equal(config.currentMemoryKiB, 3 * 1024 * 1024);
    assert.equal(config.vcpus, 4);
    assert.deepEqual(config.os.bootOrder, ['cdrom', 'hd']);
    assert.deepEqual(
      config.disks.map((d) => [d.device, d.source, d.format, d.target, d.bus]),
      [
        ['disk', '/var/lib/libvirt/images/fedora-web.img', 'raw', 'hda', 'ide'],
        ['disk', '/dev/vg0/fedora-web-data', 'raw', 'hdb', 'ide'],
        ['cdrom', undefined, 'raw', 'hdc', 'ide'],
      ],
    );
    assert.deepEqual(config.graphics, [
      { type: 'vnc', port: 5900, autoport: true, listen: '127.0.0.1', passwd: 's3cret' },
    ]);
    assert.deepEqual(config.interfaces, [{ type: 'network', mac: '52:54:00:8e:21:d4', model: 'e1000', source: 'default' }]);
    assert.equal(config.serials, 1);
    assert.equal(config.onCrash, 'coredump-restart');
  });

  test('Xen PV definition with pygrub', () => {
    const { config } = parseDomainXml(fixture('xen-pv-pygrub'));
    assert.equal(config.type, 'xen');
    assert.equal(config.uuid, '4f0c9a2e-1b7d-4c3a-8e6f-5d4c3b2a1908', 'hyphen-less UUID is normalised');
    assert.equal(config.memoryKiB, 512 * 1024);
    assert.equal(config.currentMemoryKiB, 384 * 1024);
    assert.deepEqual(config.os, {
      type: 'linux',
      arch: 'x86_64',
      machine: 'xenpv',
      kernel: undefined,
      initrd: undefined,
      cmdline: undefined,
      bootOrder: [],
      bootloader: 'pygrub',
      bootloaderArgs: '--kernel=/vmlinuz --ramdisk=/initrd.img',
    });
    assert.deepEqual(
      config.disks.map((d) => [d.target, d.bus]),
      [
        ['xvda', 'xen'],
        ['xvdb', 'xen'],
      ],
      'bus inferred from the xvd prefix',
    );
    assert.deepEqual(config.interfaces, [{ type: 'bridge', mac: '00:16:3e:5a:1b:2c', model: undefined, source: 'xenbr0' }]);
    assert.deepEqual(config.graphics, [{ type: 'vnc', port: undefined, autoport: true, listen: '0.0.0.0', passwd: undefined }]);
    assert.equal(config.serials, 1, 'a lone <console> counts as one serial port');
    assert.equal(config.balloon, true);
    assert.equal(config.onCrash, 'restart');
  });

  test('Xen PV definition with a <bootloader> and no <os>: os type xen, as libvirt reads it', () => {
    const doc = parseDomainXml(
      `<domain type='xen'><name>pv</name><memory>524288</memory><bootloader>/usr/bin/pygrub</bootloader>` +
        `<devices><disk type='file' device='disk'><source file='/srv/pv.img'/><target dev='xvda'/></disk></devices></domain>`,
    );
    assert.equal(doc.config.os.type, 'xen');
    assert.equal(doc.config.os.bootloader, '/usr/bin/pygrub');
    assert.deepEqual(doc.config.os.bootOrder, []);
    assert.equal(doc.config.os.kernel, undefined);
    assert.equal(firstChild(doc.root, 'os'), undefined, 'no <os> is added');
  });

  test('UEFI: <os firmware>, a pflash <loader> with <nvram>, a ROM <loader>', () => {
    const os = (inner: string, attributes = '') => parseDomainXml(domainXml().replace("<os><type arch='i686'>hvm</type></os>", `<os${attributes}><type arch='x86_64'>hvm</type>${inner}</os>`)).config.os;
    assert.equal(os('', " firmware='efi'").firmware, 'efi');
    assert.equal(os('', " firmware='bios'").firmware, 'bios');
    const flash = os(`<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.secboot.fd</loader><nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/nvram/t_VARS.fd</nvram>`);
    assert.equal(flash.firmware, 'efi');
    assert.deepEqual(flash.loader, { path: '/usr/share/OVMF/OVMF_CODE.secboot.fd', type: 'pflash', secure: true });
    assert.deepEqual(flash.nvram, { path: '/var/nvram/t_VARS.fd', template: '/usr/share/OVMF/OVMF_VARS.fd' });
    const rom = os(`<loader>/usr/lib/xen/boot/hvmloader</loader>`);
    assert.equal(rom.firmware, 'bios');
    assert.deepEqual(rom.loader, { path: '/usr/lib/xen/boot/hvmloader' });
    const plain = os('');
    assert.ok(!('firmware' in plain) && !('loader' in plain) && !('nvram' in plain), JSON.stringify(plain));
  });

  test('a SCSI LUN disk stays in the XML but not in the typed disks', () => {
    const doc = parseDomainXml(
      domainXml({ devices: `<disk type='block' device='lun'><source dev='/dev/sdc'/><target dev='sdc'/></disk><disk type='file'><source file='/a.img'/><target dev='hda'/></disk>` }),
    );
    assert.deepEqual(doc.config.disks.map((d) => d.target), ['hda']);
    assert.match(serializeDomainXml(doc), /<disk type='block' device='lun'>/);
  });

  test('v86 direct kernel boot', () => {
    const { config } = parseDomainXml(fixture('v86-direct-kernel'));
    assert.equal(config.type, 'v86');
    assert.equal(config.title, 'Buildroot (direct kernel boot)');
    assert.equal(config.memoryKiB, 128 * 1024);
    assert.equal(config.currentMemoryKiB, 128 * 1024, 'currentMemory defaults to memory');
    assert.deepEqual(config.os, {
      type: 'hvm',
      arch: 'i686',
      machine: undefined,
      kernel: '/var/lib/domus/images/buildroot/bzImage',
      initrd: '/var/lib/domus/images/buildroot/rootfs.cpio.gz',
      cmdline: 'console=ttyS0 tsc=reliable mitigations=off random.trust_cpu=on',
      bootOrder: [],
      bootloader: undefined,
      bootloaderArgs: undefined,
    });
    assert.deepEqual(config.disks, []);
    assert.equal(config.serials, 1);
    assert.deepEqual([config.onPoweroff, config.onReboot, config.onCrash], ['destroy', 'restart', 'destroy']);
  });

  test('defaults: vcpu 1, no uuid, v86 arch, balloon present', () => {
    const { config } = parseDomainXml(
      `<domain type='v86'><name>d</name><memory>65536</memory><os><type>hvm</type></os></domain>`,
    );
    assert.equal(config.vcpus, 1);
    assert.equal(config.uuid, '');
    assert.equal(config.os.arch, 'i686');
    assert.equal(config.memoryKiB, 65536, 'no unit means KiB');
    assert.equal(config.balloon, true);
    assert.equal(config.serials, 0);
  });

  test('memballoon model none disables the balloon', () => {
    assert.equal(parseDomainXml(domainXml({ devices: `<memballoon model='none'/>` })).config.balloon, false);
  });

  test("memballoon autodeflate and freePageReporting: on/off when given, absent otherwise; they survive a round trip", () => {
    const plain = parseDomainXml(domainXml({ devices: `<memballoon model='virtio'/>` })).config;
    assert.deepEqual([plain.balloonAutodeflate, plain.balloonFreePageReporting], [undefined, undefined]);
    const xml = domainXml({ devices: `<memballoon model='virtio' autodeflate='on' freePageReporting='off'><stats period='5'/></memballoon>` });
    const { first, text, second } = roundTrip(xml);
    assert.deepEqual([first.config.balloonAutodeflate, first.config.balloonFreePageReporting], [true, false]);
    assert.ok(text.includes(`<memballoon model='virtio' autodeflate='on' freePageReporting='off'>`), text);
    assert.deepEqual(second.config, first.config);
  });

  test('disk sources, driver default, readonly and per-device boot order', () => {
    const { config } = parseDomainXml(
      domainXml({
        devices: `
    <disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='sda'/><boot order='2'/></disk>
    <disk type='volume' device='disk'><source pool='default' volume='data.img'/><target dev='vdb' bus='virtio'/></disk>
    <disk device='floppy'><driver name='qemu' type='raw'/><source file='/tmp/boot.img'/><target dev='fda'/><readonly/><boot order='1'/></disk>`,
      }),
    );
    assert.deepEqual(config.disks, [
      { device: 'disk', source: '/dev/sdb', format: 'raw', target: 'sda', bus: 'scsi', readonly: false, bootIndex: 2 },
      { device: 'disk', source: 'data.img', format: 'raw', target: 'vdb', bus: 'virtio', readonly: false, bootIndex: undefined },
      { device: 'floppy', source: '/tmp/boot.img', format: 'raw', target: 'fda', bus: 'fdc', readonly: true, bootIndex: 1 },
    ]);
  });

  test('graphics listen child, explicit port and autoport', () => {
    const { config } = parseDomainXml(
      domainXml({
        devices: `
    <graphics type='vnc' port='5901' autoport='no'><listen type='address' address='0.0.0.0'/></graphics>
    <graphics type='vnc' port='-1'/>
    <graphics type='spice' autoport='yes' listen='::1'/>`,
      }),
    );
    assert.deepEqual(config.graphics, [
      { type: 'vnc', port: 5901, autoport: false, listen: '0.0.0.0', passwd: undefined },
      { type: 'vnc', port: undefined, autoport: true, listen: undefined, passwd: undefined },
      { type: 'spice', port: undefined, autoport: true, listen: '::1', passwd: undefined },
    ]);
  });
});

describe('units', () => {
  test('<memory> and <currentMemory> units are converted', () => {
    const { config } = parseDomainXml(
      domainXml({ head: `<currentMemory unit='bytes'>134217728</currentMemory>` }),
    );
    assert.equal(config.memoryKiB, 262144);
    assert.equal(config.currentMemoryKiB, 131072);
  });
});

describe('bad input', () => {
  test('malformed XML reports line and column', () => {
    assert.throws(
      () => parseDomainXml(`<domain type='kvm'>\n  <name>x</name>\n  <memory>1</memroy>\n</domain>`),
      (error: unknown) => {
        assert.ok(error instanceof DomainXmlError);
        assert.equal(error.code, 'xml-malformed');
        assert.match(error.message, /^invalid domain XML: malformed XML at line 3, column \d+: .*memory/);
        assert.equal(error.line, 3);
        return true;
      },
    );
  });

  const cases: Array<[string, string, DomainXmlError['code'], string | RegExp]> = [
    ['empty input', '', 'xml-malformed', /^invalid domain XML: malformed XML at line 1/],
    ['not XML', 'hello', 'xml-malformed', /^invalid domain XML: malformed XML at line 1, column 1/],
    ['two roots', `<domain type='kvm'/><domain type='kvm'/>`, 'xml-malformed', 'invalid domain XML: malformed XML: 2 root elements, expected one'],
    ['undefined entity', `<domain type='kvm'><name>&nbsp;</name></domain>`, 'xml-malformed', /'&nbsp;' in text in <name> is not a valid entity/],
    ['DOCTYPE', `<!DOCTYPE domain [<!ENTITY x "y">]><domain type='kvm'/>`, 'xml-unsupported', /<!DOCTYPE> declaration is not supported/],
    ['wrong root', `<foo/>`, 'xml-invalid', 'invalid domain XML: root element is <foo>, expected <domain>'],
    ['missing type', `<domain><name>x</name></domain>`, 'xml-invalid', 'invalid domain XML: <domain> has no type attribute'],
    ['missing name', `<domain type='kvm'><memory>1024</memory></domain>`, 'xml-invalid', 'invalid domain XML: <name> is missing'],
    ['empty name', `<domain type='kvm'><name> </name></domain>`, 'xml-invalid', 'invalid domain XML: <name> is empty'],
    ['slash in name', `<domain type='kvm'><name>a/b</name></domain>`, 'xml-invalid', `invalid domain XML: <name> 'a/b' must not contain '/'`],
    ['bad uuid', domainXml({ head: '<uuid>not-a-uuid</uuid>' }), 'xml-invalid', `invalid domain XML: <uuid> 'not-a-uuid' is not a valid UUID`],
    ['missing memory', `<domain type='kvm'><name>x</name><os><type>hvm</type></os></domain>`, 'xml-invalid', 'invalid domain XML: <memory> is missing'],
    [
      'memory not a number',
      `<domain type='kvm'><name>x</name><memory>abc</memory></domain>`,
      'xml-invalid',
      `invalid domain XML: <memory> value 'abc' is not a number`,
    ],
    [
      'unknown unit',
      `<domain type='kvm'><name>x</name><memory unit='XB'>1</memory></domain>`,
      'xml-invalid',
      `invalid domain XML: <memory> unit 'XB' is not a known unit`,
    ],
    [
      'currentMemory above memory',
      domainXml({ head: `<currentMemory unit='MiB'>512</currentMemory>` }),
      'xml-invalid',
      'invalid domain XML: <currentMemory> (524288 KiB) is larger than <memory> (262144 KiB)',
    ],
    [
      'memballoon autodeflate not on/off',
      domainXml({ devices: `<memballoon model='virtio' autodeflate='yes'/>` }),
      'xml-invalid',
      `invalid domain XML: <memballoon autodeflate='yes'> is not 'on' or 'off'`,
    ],
    ['zero vcpus', domainXml({ head: '<vcpu>0</vcpu>' }), 'xml-invalid', `invalid domain XML: <vcpu> value '0' must be a positive whole number`],
    ['missing os type', `<domain type='kvm'><name>x</name><memory>1024</memory><os/></domain>`, 'xml-invalid', 'invalid domain XML: <os><type> is missing'],
    [
      'bad boot device',
      `<domain type='kvm'><name>x</name><memory>1024</memory><os><type>hvm</type><boot dev='usb'/></os></domain>`,
      'xml-invalid',
      `invalid domain XML: <os><boot dev='usb'> is not one of hd, cdrom, fd, network`,
    ],
    [
      'disk without target',
      domainXml({ devices: `<disk type='file'><source file='/a.img'/></disk>` }),
      'xml-invalid',
      'invalid domain XML: devices/disk[1]: <target dev=...> is missing',
    ],
    [
      'bad per-device boot order',
      domainXml({ devices: `<disk><source file='/a.img'/><target dev='hda'/><boot order='first'/></disk>` }),
      'xml-invalid',
      `invalid domain XML: devices/disk[1]: <boot order='first'> is not a positive whole number`,
    ],
    [
      'unknown firmware',
      `<domain type='kvm'><name>x</name><memory>1024</memory><os firmware='coreboot'><type>hvm</type></os></domain>`,
      'xml-invalid',
      `invalid domain XML: <os firmware='coreboot'> is not one of bios, efi`,
    ],
    [
      'bootloader with an <os> that has no type',
      `<domain type='xen'><name>x</name><memory>1024</memory><bootloader>pygrub</bootloader><os/></domain>`,
      'xml-invalid',
      'invalid domain XML: <os><type> is missing',
    ],
    [
      'graphics port not a number',
      domainXml({ devices: `<graphics type='vnc' port='fifty'/>` }),
      'xml-invalid',
      `invalid domain XML: devices/graphics[1]: port 'fifty' is not a number`,
    ],
    [
      'unknown lifecycle action',
      domainXml({ extra: '<on_crash>explode</on_crash>' }),
      'xml-invalid',
      `invalid domain XML: <on_crash> value 'explode' is not one of destroy, restart, rename-restart, preserve, coredump-destroy, coredump-restart`,
    ],
  ];
  for (const [label, xml, code, message] of cases) {
    test(label, () => assertXmlError(xml, code, message));
  }
});

describe('hostile input', () => {
  const nested = (levels: number): string => domainXml({ extra: `<metadata>${'<a>'.repeat(levels - 2)}${'</a>'.repeat(levels - 2)}</metadata>` });
  const cases: Array<[string, string, string]> = [
    ['deep nesting', nested(65), `invalid domain XML: line 6: elements are nested more than 64 levels deep (at <a>)`],
    ['very deep nesting', nested(100_000), `invalid domain XML: line 6: elements are nested more than 64 levels deep (at <a>)`],
    ['__proto__ element', domainXml({ extra: '<__proto__><polluted>1</polluted></__proto__>' }), `invalid domain XML: line 6: '__proto__' is a reserved name and cannot name an element`],
    ['constructor element', domainXml({ devices: '<constructor/>' }), `invalid domain XML: line 7: 'constructor' is a reserved name and cannot name an element`],
    ['prototype element', domainXml({ extra: '<metadata><x:prototype xmlns:x="urn:x"/></metadata>' }), `invalid domain XML: line 6: 'x:prototype' is a reserved name and cannot name an element`],
    ['__proto__ attribute', domainXml({ devices: `<disk __proto__='x'/>` }), `invalid domain XML: line 7: '__proto__' is a reserved name and cannot name an attribute (of <disk>)`],
    ['constructor attribute', `<domain type='kvm' constructor="x"><name>t</name></domain>`, `invalid domain XML: line 1: 'constructor' is a reserved name and cannot name an attribute (of <domain>)`],
    ['prototype attribute', domainXml({ devices: `<disk\n  prototype = "x"/>` }), `invalid domain XML: line 7: 'prototype' is a reserved name and cannot name an attribute (of <disk>)`],
  ];
  for (const [label, xml, message] of cases) {
    test(label, () => assertXmlError(xml, 'xml-invalid', message));
  }

  test('64 levels are accepted, and reserved names in text, comments and CDATA are only text', () => {
    const doc = parseDomainXml(nested(64));
    assert.equal(parseDomainXml(serializeDomainXml(doc)).root.children.length, doc.root.children.length);
    const xml = domainXml({ extra: `<description>__proto__ <![CDATA[<constructor>]]></description><!-- <prototype/> -->` });
    assert.equal(parseDomainXml(xml).config.description, '__proto__ <constructor>');
  });

  test('too large a document is refused before it is parsed', () => {
    assertXmlError(domainXml({ extra: `<description>${'x'.repeat(4 * 1024 * 1024)}</description>` }), 'xml-invalid', /^invalid domain XML: the XML is \d+ characters long; at most 4194304 are accepted$/);
  });

  test("names of Object.prototype's members are kept as written and pollute nothing", () => {
    const names = ['toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', '__lookupSetter__', 'isPrototypeOf'];
    const xml = domainXml({ extra: `<metadata>${names.map((n) => `<${n} ${n}='1'/>`).join('')}</metadata>` });
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const doc = parseDomainXml(xml);
    const metadata = doc.root.children.find((c) => c.type === 'element' && c.name === 'metadata');
    assert.ok(metadata?.type === 'element');
    assert.deepEqual(
      metadata.children.map((c) => (c.type === 'element' ? [c.name, Object.keys(c.attributes)] : c.type)),
      names.map((n) => [n, [n]]),
    );
    assert.equal(parseDomainXml(serializeDomainXml(doc)).root.children.length, doc.root.children.length);
    for (const attempt of cases) assert.throws(() => parseDomainXml(attempt[1]));
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
    const fresh: Record<string, unknown> = {};
    assert.equal(fresh.polluted, undefined);
    assert.equal(typeof fresh.toString, 'function');
  });
});

describe('mutators', () => {
  const generate = () => '11111111-2222-4333-8444-555555555555';

  test('ensureUuid adds <uuid> right after <name>, once', () => {
    const doc = parseDomainXml(domainXml());
    assert.equal(ensureUuid(doc, generate), '11111111-2222-4333-8444-555555555555');
    assert.equal(doc.config.uuid, '11111111-2222-4333-8444-555555555555');
    const text = serializeDomainXml(doc);
    assert.ok(text.includes(`  <name>t</name>\n  <uuid>11111111-2222-4333-8444-555555555555</uuid>\n  <memory`));
    assert.equal(ensureUuid(doc, () => assert.fail('must not generate twice')), doc.config.uuid);
    assert.deepEqual(parseDomainXml(text).nodes, doc.nodes);
  });

  test('ensureUuid keeps an existing UUID', () => {
    const doc = parseDomainXml(fixture('virt-install-debian12'));
    assert.equal(ensureUuid(doc, generate), '7c1e5f0a-3b9d-4e62-8f14-2a6d0c9b5e31');
  });

  test('ensureUuid rejects a malformed generated UUID and leaves the document alone', () => {
    const doc = parseDomainXml(domainXml());
    const before = serializeDomainXml(doc);
    assert.throws(() => ensureUuid(doc, () => 'nope'), DomainXmlError);
    assert.equal(serializeDomainXml(doc), before);
    assert.equal(doc.config.uuid, '');
  });

  test('setName validates and updates both views', () => {
    const doc = parseDomainXml(fixture('virt-install-debian12'));
    setName(doc, 'debian12-clone');
    assert.equal(doc.config.name, 'debian12-clone');
    assert.ok(serializeDomainXml(doc).includes('<name>debian12-clone</name>'));
    assert.throws(() => setName(doc, 'a/b'), /must not contain '\/'/);
    assert.equal(doc.config.name, 'debian12-clone');
  });

  test('setMemory writes KiB and inserts <currentMemory> after <memory>', () => {
    const doc = parseDomainXml(domainXml({ head: '<vcpu>1</vcpu>' }));
    setMemory(doc, { memoryKiB: 524288, currentMemoryKiB: 393216 });
    assert.equal(doc.config.memoryKiB, 524288);
    assert.equal(doc.config.currentMemoryKiB, 393216);
    assert.ok(
      serializeDomainXml(doc).includes(
        `<memory unit='KiB'>524288</memory>\n  <currentMemory unit='KiB'>393216</currentMemory>\n  <vcpu>1</vcpu>`,
      ),
    );
  });

  test('setMemory lowering the maximum lowers the current allocation too', () => {
    const doc = parseDomainXml(fixture('dumpxml-running'));
    setMemory(doc, { memoryKiB: 1048576 });
    assert.equal(doc.config.memoryKiB, 1048576);
    assert.equal(doc.config.currentMemoryKiB, 1048576);
  });

  test('setMemory refuses current above maximum without touching the document', () => {
    const doc = parseDomainXml(fixture('v86-direct-kernel'));
    assert.throws(() => setMemory(doc, { currentMemoryKiB: 262144 }), /is larger than <memory>/);
    assert.throws(() => setMemory(doc, { memoryKiB: 0 }), /positive whole number/);
    assert.equal(serializeDomainXml(doc), fixture('v86-direct-kernel'));
  });

  test('setVcpus creates <vcpu> in schema order and drops a stale current', () => {
    const doc = parseDomainXml(domainXml({ head: `<currentMemory unit='MiB'>128</currentMemory>` }));
    setVcpus(doc, 2);
    assert.equal(doc.config.vcpus, 2);
    assert.ok(serializeDomainXml(doc).includes(`</currentMemory>\n  <vcpu>2</vcpu>\n  <os>`));

    const running = parseDomainXml(fixture('dumpxml-running'));
    setVcpus(running, 1);
    assert.ok(serializeDomainXml(running).includes(`<vcpu placement='static'>1</vcpu>`));
    assert.throws(() => setVcpus(running, 0), /positive whole number/);
  });
});

describe('dumpxml for clients', () => {
  const xml = `<domain type='v86'>
  <name>g</name>
  <memory unit='KiB'>131072</memory>
  <os>
    <type>hvm</type>
  </os>
  <devices>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='s3cret' keymap='en-us'/>
  </devices>
</domain>
`;

  test('leaves passwords out unless secure, and never changes the document', () => {
    const doc = parseDomainXml(xml);
    assert.doesNotMatch(dumpDomainXml(doc, { secure: false }), /passwd|s3cret/);
    assert.equal(dumpDomainXml(doc, { secure: true }), xml);
    assert.equal(serializeDomainXml(doc), xml);
  });

  test('a running display shows the port it got and where it listens, as libvirt live XML does', () => {
    const doc = parseDomainXml(xml);
    const live = dumpDomainXml(doc, { secure: true, vncTcp: { address: '127.0.0.1', port: 5901 } });
    assert.match(
      live,
      /<graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1' passwd='s3cret' keymap='en-us'>\n\s*<listen type='address' address='127.0.0.1'\/>\n\s*<\/graphics>/,
    );
    assert.equal(parseDomainXml(live).config.graphics[0].port, 5901);
    assert.equal(serializeDomainXml(doc), xml);
  });
});

describe('interfaces', () => {
  test('MAC, model, source and link state are read; a bad MAC or link state is refused', () => {
    const doc = parseDomainXml(
      domainXml({
        devices: `<interface type='network'><mac address='52:54:00:AB:CD:EF'/><source network='default'/><model type='virtio'/><link state='down'/></interface>`,
      }),
    );
    assert.deepEqual(doc.config.interfaces, [{ type: 'network', mac: '52:54:00:ab:cd:ef', model: 'virtio', source: 'default', link: 'down' }]);
    assertXmlError(domainXml({ devices: `<interface type='network'><mac address='52:54:00:ab:cd'/></interface>` }), 'xml-invalid', /<mac address='52:54:00:ab:cd'> is not a MAC address/);
    assertXmlError(domainXml({ devices: `<interface type='network'><mac address='01:00:5e:00:00:01'/></interface>` }), 'xml-invalid', /is a multicast address/);
    assertXmlError(domainXml({ devices: `<interface type='network'><link state='sideways'/></interface>` }), 'xml-invalid', /<link state='sideways'> is not 'up' or 'down'/);
  });

  test('interfaces without a MAC get distinct 52:54:00 ones at define, written first; given MACs stay', () => {
    const doc = parseDomainXml(
      domainXml({
        devices:
          `<interface type='network'><source network='default'/></interface>` +
          `<interface type='network'><mac address='52:54:00:00:00:07'/><source network='default'/></interface>` +
          `<interface type='user'><model type='e1000'/></interface>`,
      }),
    );
    const bytes = [Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5, 6)];
    assert.equal(ensureInterfaceMacs(doc, () => bytes.shift()!), 2);
    assert.deepEqual(doc.config.interfaces.map((i) => i.mac), ['52:54:00:01:02:03', '52:54:00:00:00:07', '52:54:00:04:05:06']);
    assert.match(serializeDomainXml(doc), /<interface type='network'>\n\s+<mac address='52:54:00:01:02:03'\/>\n\s+<source network='default'\/>/);
    assert.equal(ensureInterfaceMacs(doc, () => assert.fail('no MAC is missing')), 0);
  });
});
