// The Details pages' edits of domain XML, on libvirt's own output (the host's fixtures) and on a
// hand-written definition with what those lack (a declaration, foreign namespaces, <bootmenu>). The
// module runs on the browser's DOMParser and XMLSerializer, which node does not have, so it is
// bundled and loaded into Chromium (the engine Electron renders with) and each test runs its steps
// there.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { moduleInChromium, type ModuleInChromium } from '../testing/inChromium';
import type * as DomainXml from './domainXml';

type Fixture = 'virt-install-debian12' | 'dumpxml-running' | 'xen-pv-pygrub' | 'v86-direct-kernel';

function fixture(name: Fixture): string {
  return readFileSync(new URL(`../../../main/host/domain/fixtures/${name}.xml`, import.meta.url), 'utf8');
}

/** Written by hand, as people do: a declaration, a comment, other tools' namespaces. */
const HAND_WRITTEN = `<?xml version="1.0"?>
<!-- written by hand -->
<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>vm1</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <metadata>
    <app:data xmlns:app="urn:example:app" level="3"><app:item>kept</app:item></app:data>
  </metadata>
  <memory unit='GiB'>1</memory>
  <vcpu placement='static' current='2'>4</vcpu>
  <bootloader>/usr/bin/pygrub</bootloader>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/boot/vmlinuz</kernel>
    <boot dev='cdrom'/>
    <boot dev='hd'/>
    <bootmenu enable='yes'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/images/vm1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <graphics type='vnc' port='5901' autoport='no' listen='0.0.0.0' passwd='secret'>
      <listen type='address' address='0.0.0.0'/>
    </graphics>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-no-hpet'/>
  </qemu:commandline>
</domain>`;

let loaded: ModuleInChromium<typeof DomainXml>;

before(async () => {
  loaded = await moduleInChromium(fileURLToPath(new URL('./domainXml.ts', import.meta.url)));
});
after(async () => {
  await loaded?.close();
});

const inPage = <A, R>(steps: (lib: typeof DomainXml, arg: A) => R, arg: A): Promise<R> => loaded.run(steps, arg);

/** Applies `edit` (in the page, like the steps of inPage) to `xml` and returns the new XML. */
async function editedText<A>(xml: string, edit: (lib: typeof DomainXml, doc: XMLDocument, arg: A) => void, arg: A): Promise<string> {
  return inPage((lib, [text, source, a]) => lib.editXml(text, (doc) => (0, eval)(`(${source})`)(lib, doc, a)), [xml, edit.toString(), arg] as const);
}

/** The same, as lines, for a fixture. */
async function edited<A>(name: Fixture, edit: (lib: typeof DomainXml, doc: XMLDocument, arg: A) => void, arg: A): Promise<string[]> {
  return (await editedText(fixture(name), edit, arg)).split('\n');
}

/** The lines from the one matching `first` up to and including the one matching `last`. */
function span(lines: string[], first: RegExp, last: RegExp): string[] {
  const from = lines.findIndex((l) => first.test(l));
  const to = lines.findIndex((l, i) => i >= from && last.test(l));
  assert.ok(from >= 0 && to >= from, `no lines from ${first} to ${last} in:\n${lines.join('\n')}`);
  return lines.slice(from, to + 1);
}

describe('parsing', () => {
  test('reads the identity of a virsh dumpxml', async () => {
    assert.deepEqual(await inPage((lib, xml) => lib.readIdentity(lib.parseDomainXml(xml)), fixture('dumpxml-running')), {
      name: 'fedora-web',
      uuid: 'c2a8e1f4-6d3b-4a7e-9b5c-0f1d2e3a4b5c',
      type: 'kvm',
    });
  });

  const problem = (lib: typeof DomainXml, xml: string) => {
    try {
      lib.parseDomainXml(xml);
      return null;
    } catch (err) {
      const p = err as DomainXml.XmlProblem;
      return { name: p.name, message: p.message, line: p.line, column: p.column };
    }
  };

  test('XML that is not well-formed is refused with the line and column', async () => {
    const p = await inPage(problem, `<domain type='kvm'>\n  <name>x</name>\n  <memory>1</memroy>\n</domain>`);
    assert.equal(p?.name, 'XmlProblem');
    assert.match(p?.message ?? '', /^not well-formed XML: .*line 3/);
    assert.equal(p?.line, 3);
    assert.equal(typeof p?.column, 'number');
  });

  test('a document that is not a <domain> is refused', async () => {
    assert.deepEqual(await inPage(problem, `<network><name>default</name></network>`), {
      name: 'XmlProblem',
      message: 'the root element is <network>, expected <domain>',
      line: undefined,
      column: undefined,
    });
  });

  test('an edit that changes nothing gives the same nodes, attributes, comments and whitespace', async () => {
    const out = await editedText(HAND_WRITTEN, () => {}, null);
    assert.equal(await inPage((lib, [a, b]) => lib.parseDomainXml(a).isEqualNode(lib.parseDomainXml(b)), [out, HAND_WRITTEN] as const), true);
    assert.match(out, /<!-- written by hand -->/);
    assert.match(out, /<app:data xmlns:app="urn:example:app" level="3"><app:item>kept<\/app:item><\/app:data>/);
    assert.match(out, /<qemu:commandline>\n    <qemu:arg value="-no-hpet"\/>\n  <\/qemu:commandline>/);
  });

  test('an edit leaves what it does not know alone: comments, other tools’ metadata, unknown elements', async () => {
    const xen = (await edited('xen-pv-pygrub', () => {}, null)).join('\n');
    assert.match(xen, /^<!-- Converted from \/etc\/xen\/debian-pv.cfg with virsh domxml-from-native xen-xl -->/);
    const debian = (await edited('virt-install-debian12', () => {}, null)).join('\n');
    assert.match(debian, /<libosinfo:os id="http:\/\/debian.org\/debian\/12"\/>/);
    assert.match(debian, /<watchdog model="itco" action="reset"\/>/);
    assert.match(debian, /<backend model="random">\/dev\/urandom<\/backend>/);
  });
});

describe('overview', () => {
  test('reads title and description, entities decoded', async () => {
    assert.deepEqual(await inPage((lib, xml) => lib.readOverview(lib.parseDomainXml(xml)), fixture('dumpxml-running')), {
      title: 'Fedora web server',
      description: 'nginx front end & certbot; owner: ops <ops@example.org>',
    });
  });

  test("a new title and description go after <uuid>, before <metadata>, indented like their siblings; a title stays one line", async () => {
    const lines = await edited('virt-install-debian12', (lib, doc, f) => lib.writeOverview(doc, f), { title: 'Debian\n12', description: 'a & b' });
    assert.deepEqual(span(lines, /<uuid>/, /<metadata>/), [
      '  <uuid>7c1e5f0a-3b9d-4e62-8f14-2a6d0c9b5e31</uuid>',
      '  <title>Debian 12</title>',
      '  <description>a &amp; b</description>',
      '  <metadata>',
    ]);
  });

  test('a title added and removed again leaves the document as it was; text is escaped', async () => {
    const withTitle = await editedText(HAND_WRITTEN, (lib, doc) => lib.writeOverview(doc, { title: 'A title', description: 'a & <b>' }), null);
    assert.match(withTitle, /<uuid>[^<]+<\/uuid>\n  <title>A title<\/title>\n  <description>a &amp; &lt;b&gt;<\/description>\n  <metadata>/);
    const without = await editedText(withTitle, (lib, doc) => lib.writeOverview(doc, { title: '', description: '' }), null);
    assert.equal(without, await editedText(HAND_WRITTEN, () => {}, null));
  });

  test('empty fields remove the elements with their lines', async () => {
    const lines = await edited('dumpxml-running', (lib, doc, f) => lib.writeOverview(doc, f), { title: '', description: '' });
    assert.deepEqual(span(lines, /<uuid>/, /<memory /), ['  <uuid>c2a8e1f4-6d3b-4a7e-9b5c-0f1d2e3a4b5c</uuid>', '  <memory unit="KiB">4194304</memory>']);
  });
});

describe('CPUs and memory', () => {
  test('reads the vCPU count', async () => {
    assert.deepEqual(await inPage((lib, xml) => lib.readCpus(lib.parseDomainXml(xml)), fixture('dumpxml-running')), { vcpus: 4 });
  });

  test('a current count above the new maximum is dropped; one below it is kept', async () => {
    const one = await edited('dumpxml-running', (lib, doc) => lib.writeCpus(doc, { vcpus: 1 }), null);
    assert.ok(one.includes('  <vcpu placement="static">1</vcpu>'), one.join('\n'));
    const eight = await edited('dumpxml-running', (lib, doc) => lib.writeCpus(doc, { vcpus: 8 }), null);
    assert.ok(eight.includes('  <vcpu placement="static" current="2">8</vcpu>'), eight.join('\n'));
  });

  test('reads sizes in any unit as KiB; without <currentMemory> the current size is the maximum', async () => {
    const read = (name: Fixture) => inPage((lib, xml) => lib.readMemory(lib.parseDomainXml(xml)), fixture(name));
    assert.deepEqual(await read('xen-pv-pygrub'), { maxKiB: 524288, currentKiB: 393216 });
    assert.deepEqual(await read('dumpxml-running'), { maxKiB: 4194304, currentKiB: 3145728 });
    assert.deepEqual(await read('v86-direct-kernel'), { maxKiB: 131072, currentKiB: 131072 });
    assert.deepEqual(await inPage((lib, xml) => lib.readMemory(lib.parseDomainXml(xml)), HAND_WRITTEN), { maxKiB: 1048576, currentKiB: 1048576 });
  });

  test('writes KiB, adds <currentMemory> after <memory>, and never above the maximum', async () => {
    const lines = await edited('v86-direct-kernel', (lib, doc) => lib.writeMemory(doc, { maxKiB: 262144, currentKiB: 524288 }), null);
    assert.deepEqual(span(lines, /<description>/, /<vcpu>/), [
      '  <description>Tiny Linux booted straight from a bzImage and an initramfs.</description>',
      '  <memory unit="KiB">262144</memory>',
      '  <currentMemory unit="KiB">262144</currentMemory>',
      '  <vcpu>1</vcpu>',
    ]);
  });
});

describe('boot options', () => {
  test('reads the boot order, direct kernel boot and the PV bootloader', async () => {
    const read = (name: Fixture) => inPage((lib, xml) => lib.readBoot(lib.parseDomainXml(xml)), fixture(name));
    assert.deepEqual(await read('dumpxml-running'), { bootOrder: ['cdrom', 'hd'], kernel: '', initrd: '', cmdline: '', bootloader: null, bootloaderArgs: '' });
    assert.deepEqual(await read('v86-direct-kernel'), {
      bootOrder: [],
      kernel: '/var/lib/domus/images/buildroot/bzImage',
      initrd: '/var/lib/domus/images/buildroot/rootfs.cpio.gz',
      cmdline: 'console=ttyS0 tsc=reliable mitigations=off random.trust_cpu=on',
      bootloader: null,
      bootloaderArgs: '',
    });
    assert.deepEqual(await read('xen-pv-pygrub'), {
      bootOrder: [],
      kernel: '',
      initrd: '',
      cmdline: '',
      bootloader: 'pygrub',
      bootloaderArgs: '--kernel=/vmlinuz --ramdisk=/initrd.img',
    });
  });

  test('a new boot order goes after the kernel lines in <os>; an emptied kernel line goes', async () => {
    const lines = await edited(
      'v86-direct-kernel',
      (lib, doc) => {
        const f = lib.readBoot(doc);
        lib.writeBoot(doc, { ...f, cmdline: '', bootOrder: ['hd', 'cdrom'] });
      },
      null,
    );
    assert.deepEqual(span(lines, /<os>/, /<\/os>/), [
      '  <os>',
      '    <type arch="i686">hvm</type>',
      '    <kernel>/var/lib/domus/images/buildroot/bzImage</kernel>',
      '    <initrd>/var/lib/domus/images/buildroot/rootfs.cpio.gz</initrd>',
      '    <boot dev="hd"/>',
      '    <boot dev="cdrom"/>',
      '  </os>',
    ]);
  });

  test('a kernel and its arguments added to a BIOS boot go before the <boot> lines', async () => {
    const lines = await edited('dumpxml-running', (lib, doc) => lib.writeBoot(doc, { ...lib.readBoot(doc), kernel: ' /boot/vmlinuz ', cmdline: 'quiet' }), null);
    assert.deepEqual(span(lines, /<os>/, /<\/os>/), [
      '  <os>',
      '    <type arch="x86_64" machine="pc-i440fx-8.2">hvm</type>',
      '    <kernel>/boot/vmlinuz</kernel>',
      '    <cmdline>quiet</cmdline>',
      '    <boot dev="cdrom"/>',
      '    <boot dev="hd"/>',
      '  </os>',
    ]);
  });

  test('a whole new set of boot options keeps <bootmenu> after the <boot> lines and the bootloader before <os>', async () => {
    const out = await editedText(
      HAND_WRITTEN,
      (lib, doc) =>
        lib.writeBoot(doc, { bootOrder: ['hd', 'network'], kernel: '', initrd: '/boot/initrd.gz', cmdline: 'console=ttyS0', bootloader: '/usr/bin/pygrub', bootloaderArgs: '--entry=1' }),
      null,
    );
    assert.match(
      out,
      /<os>\n    <type arch="x86_64" machine="pc">hvm<\/type>\n    <initrd>\/boot\/initrd.gz<\/initrd>\n    <cmdline>console=ttyS0<\/cmdline>\n    <boot dev="hd"\/>\n    <boot dev="network"\/>\n    <bootmenu enable="yes"\/>\n  <\/os>/,
    );
    assert.match(out, /<bootloader>\/usr\/bin\/pygrub<\/bootloader>\n  <bootloader_args>--entry=1<\/bootloader_args>\n  <os>/);
  });

  test('boot options written back unchanged leave the document as it was', async () => {
    assert.equal(await editedText(HAND_WRITTEN, (lib, doc) => lib.writeBoot(doc, lib.readBoot(doc)), null), await editedText(HAND_WRITTEN, () => {}, null));
  });

  test('a Xen PV definition without <os> gets none for bootloader edits, and <os><type>xen</type> for a kernel', async () => {
    const pv = fixture('xen-pv-pygrub').replace(/ *<os>[\s\S]*?<\/os>\n/, '');
    const bootloaderOnly = await editedText(pv, (lib, doc) => lib.writeBoot(doc, { ...lib.readBoot(doc), bootloaderArgs: '--entry=1' }), null);
    assert.doesNotMatch(bootloaderOnly, /<os>/);
    assert.match(bootloaderOnly, /<bootloader_args>--entry=1<\/bootloader_args>/);
    const withKernel = await editedText(pv, (lib, doc) => lib.writeBoot(doc, { ...lib.readBoot(doc), kernel: '/boot/vmlinuz' }), null);
    assert.match(withKernel, /<bootloader_args>[^<]*<\/bootloader_args>\n  <os>\n    <type>xen<\/type>\n    <kernel>\/boot\/vmlinuz<\/kernel>\n  <\/os>/);
  });

  test('taking the bootloader away removes it and its arguments', async () => {
    const lines = await edited('xen-pv-pygrub', (lib, doc) => lib.writeBoot(doc, { ...lib.readBoot(doc), bootloader: null }), null);
    assert.deepEqual(span(lines, /<vcpu /, /<os>/), ['  <vcpu placement="static">1</vcpu>', '  <os>']);
  });
});

describe('disks', () => {
  test('reads file, block and empty drives', async () => {
    assert.deepEqual(await inPage((lib, xml) => lib.readDisks(lib.parseDomainXml(xml)), fixture('dumpxml-running')), [
      { device: 'disk', source: '/var/lib/libvirt/images/fedora-web.img', target: 'hda', bus: 'ide', format: 'raw', cache: 'none', readonly: false },
      { device: 'disk', source: '/dev/vg0/fedora-web-data', target: 'hdb', bus: 'ide', format: 'raw', cache: 'none', readonly: false },
      { device: 'cdrom', source: '', target: 'hdc', bus: 'ide', format: '', cache: '', readonly: true },
    ]);
  });

  test('a medium inserted into an empty drive goes between <driver> and <target>, with a format', async () => {
    const lines = await edited(
      'dumpxml-running',
      (lib, doc) => {
        const el = lib.findDisk(doc, 'hdc')!;
        lib.writeDisk(el, { ...lib.readDisk(el), source: '/isos/debian.iso', format: 'raw' });
      },
      null,
    );
    assert.deepEqual(span(lines, /<disk type="file" device="cdrom">/, /<\/disk>/), [
      '    <disk type="file" device="cdrom">',
      '      <driver name="qemu" type="raw"/>',
      '      <source file="/isos/debian.iso"/>',
      '      <target dev="hdc" bus="ide"/>',
      '      <readonly/>',
      '      <alias name="ide0-1-0"/>',
      '      <address type="drive" controller="0" bus="1" target="0" unit="0"/>',
      '    </disk>',
    ]);
  });

  test('a block device keeps dev=; ejecting removes the medium', async () => {
    const block = await edited(
      'dumpxml-running',
      (lib, doc) => {
        const el = lib.findDisk(doc, 'hdb')!;
        lib.writeDisk(el, { ...lib.readDisk(el), source: '/dev/vg0/other' });
      },
      null,
    );
    assert.ok(block.includes(`      <source dev="/dev/vg0/other" index="1"/>`), block.join('\n'));
    const ejected = await edited(
      'virt-install-debian12',
      (lib, doc) => {
        const el = lib.findDisk(doc, 'sda')!;
        lib.writeDisk(el, { ...lib.readDisk(el), source: '' });
      },
      null,
    );
    assert.deepEqual(span(ejected, /device="cdrom"/, /<\/disk>/).slice(0, 3), [
      '    <disk type="file" device="cdrom">',
      '      <driver name="qemu" type="raw"/>',
      '      <target dev="sda" bus="sata"/>',
    ]);
  });

  test('a disk keeps the driver attributes it does not know; a drive without <driver> gets its medium before <target>', async () => {
    const out = await editedText(
      HAND_WRITTEN,
      (lib, doc) => {
        const el = lib.findDisk(doc, 'vda')!;
        lib.writeDisk(el, { ...lib.readDisk(el), readonly: true, format: 'raw', source: '/srv/vm1.img' });
      },
      null,
    );
    assert.match(
      out,
      /<driver name="qemu" type="raw" cache="none"\/>\n      <source file="\/srv\/vm1.img"\/>\n      <target dev="vda" bus="virtio"\/>\n      <readonly\/>\n      <address type="pci"/,
    );
    const cd = await editedText(
      HAND_WRITTEN,
      (lib, doc) => {
        const el = lib.findDisk(doc, 'hdc')!;
        lib.writeDisk(el, { ...lib.readDisk(el), source: '/srv/x.iso', readonly: false });
      },
      null,
    );
    assert.match(cd, /<disk type="file" device="cdrom">\n      <source file="\/srv\/x.iso"\/>\n      <target dev="hdc" bus="ide"\/>\n    <\/disk>/);
  });

  test("a pool volume's source stays through other edits; a path given makes it a file disk", async () => {
    const VOLUME_DISK = `<domain type='qemu'>
  <name>vol</name>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='default' volume='vol.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>`;
    const kept = await editedText(
      VOLUME_DISK,
      (lib, doc) => {
        const el = lib.findDisk(doc, 'vda')!;
        lib.writeDisk(el, { ...lib.readDisk(el), bus: 'sata' });
      },
      null,
    );
    assert.match(kept, /<disk type="volume" device="disk">\n      <driver name="qemu" type="qcow2"\/>\n      <source pool="default" volume="vol.qcow2"\/>\n      <target dev="vda" bus="sata"\/>/);
    const file = await editedText(
      VOLUME_DISK,
      (lib, doc) => {
        const el = lib.findDisk(doc, 'vda')!;
        lib.writeDisk(el, { ...lib.readDisk(el), source: '/var/lib/libvirt/images/other.qcow2' });
      },
      null,
    );
    assert.match(file, /<disk type="file" device="disk">\n      <driver name="qemu" type="qcow2"\/>\n      <source file="\/var\/lib\/libvirt\/images\/other.qcow2"\/>/);
  });

  test('read-only goes in after <target> and before <address>; cleared, it goes', async () => {
    const lines = await edited(
      'xen-pv-pygrub',
      (lib, doc) => {
        const el = lib.findDisk(doc, 'xvdb')!;
        lib.writeDisk(el, { ...lib.readDisk(el), readonly: true, bus: 'xen', format: 'qcow2' });
      },
      null,
    );
    assert.deepEqual(span(lines, /swap.img/, /<\/disk>/), [
      `      <source file="/srv/xen/debian-pv/swap.img"/>`,
      '      <target dev="xvdb" bus="xen"/>',
      '      <readonly/>',
      '    </disk>',
    ]);
    assert.ok(lines.includes('      <driver name="qemu" type="qcow2"/>'));
    const cleared = await edited(
      'virt-install-debian12',
      (lib, doc) => {
        const el = lib.findDisk(doc, 'sda')!;
        lib.writeDisk(el, { ...lib.readDisk(el), readonly: false });
      },
      null,
    );
    assert.equal(cleared.filter((l) => l.includes('<readonly/>')).length, 0);
  });
});

describe('network interfaces', () => {
  test('reads type, MAC, source and model', async () => {
    const read = (name: Fixture) => inPage((lib, xml) => lib.interfaceElements(lib.parseDomainXml(xml)).map(lib.readNic), fixture(name));
    assert.deepEqual(await read('virt-install-debian12'), [{ type: 'network', mac: '52:54:00:3a:6c:1f', source: 'default', model: 'virtio' }]);
    assert.deepEqual(await read('xen-pv-pygrub'), [{ type: 'bridge', mac: '00:16:3e:5a:1b:2c', source: 'xenbr0', model: '' }]);
  });

  test("link state: libvirt's default is up, <link state='down'/> is down", async () => {
    const xml = `<domain type='v86'><name>l</name><devices><interface type='network'><source network='default'/></interface><interface type='network'><link state='down'/></interface></devices></domain>`;
    assert.deepEqual(await inPage((lib, text) => lib.interfaceElements(lib.parseDomainXml(text)).map(lib.readNicLink), xml), ['up', 'down']);
  });

  test('switching to a bridge replaces the source; the MAC is written in lower case; no model removes <model>', async () => {
    const lines = await edited(
      'virt-install-debian12',
      (lib, doc) => lib.writeNic(lib.interfaceElements(doc)[0], { type: 'bridge', mac: '52:54:00:AA:BB:CC', source: 'br0', model: '' }),
      null,
    );
    assert.deepEqual(span(lines, /<interface /, /<\/interface>/), [
      '    <interface type="bridge">',
      '      <mac address="52:54:00:aa:bb:cc"/>',
      '      <source bridge="br0"/>',
      '      <address type="pci" domain="0x0000" bus="0x01" slot="0x00" function="0x0"/>',
      '    </interface>',
    ]);
  });

  test('user networking has no source; a model is added before <address>', async () => {
    const lines = await edited(
      'dumpxml-running',
      (lib, doc) => lib.writeNic(lib.interfaceElements(doc)[0], { type: 'user', mac: '', source: '', model: 'virtio' }),
      null,
    );
    assert.deepEqual(span(lines, /<interface /, /<\/interface>/), [
      '    <interface type="user">',
      '      <target dev="vnet0"/>',
      '      <model type="virtio"/>',
      '      <alias name="net0"/>',
      '      <address type="pci" domain="0x0000" bus="0x00" slot="0x03" function="0x0"/>',
      '    </interface>',
    ]);
  });
});

describe('display and serial ports', () => {
  test('reads autoport, listen address and password', async () => {
    const read = (name: Fixture) => inPage((lib, xml) => lib.graphicsElements(lib.parseDomainXml(xml)).map(lib.readDisplay), fixture(name));
    assert.deepEqual(await read('dumpxml-running'), [{ type: 'vnc', port: 'auto', listen: '127.0.0.1', passwd: 's3cret' }]);
    assert.deepEqual(await read('xen-pv-pygrub'), [{ type: 'vnc', port: 'auto', listen: '0.0.0.0', passwd: '' }]);
    assert.deepEqual(await read('virt-install-debian12'), [{ type: 'spice', port: 'auto', listen: '', passwd: '' }]);
    assert.deepEqual(await inPage((lib, xml) => lib.graphicsElements(lib.parseDomainXml(xml)).map(lib.readDisplay), HAND_WRITTEN), [
      { type: 'vnc', port: '5901', listen: '0.0.0.0', passwd: 'secret' },
    ]);
  });

  test('a fixed port turns autoport off; the <listen> element follows the listen address', async () => {
    const lines = await edited(
      'dumpxml-running',
      (lib, doc) => lib.writeDisplay(lib.graphicsElements(doc)[0], { type: 'vnc', port: '5905', listen: '0.0.0.0', passwd: '' }),
      null,
    );
    assert.deepEqual(span(lines, /<graphics /, /<\/graphics>/), [
      '    <graphics type="vnc" port="5905" autoport="no" listen="0.0.0.0">',
      '      <listen type="address" address="0.0.0.0"/>',
      '    </graphics>',
    ]);
    const local = await edited(
      'xen-pv-pygrub',
      (lib, doc) => lib.writeDisplay(lib.graphicsElements(doc)[0], { type: 'vnc', port: 'auto', listen: '', passwd: 'pw' }),
      null,
    );
    assert.ok(local.includes('    <graphics type="vnc" autoport="yes" passwd="pw">'), local.join('\n'));
    const auto = await editedText(
      HAND_WRITTEN,
      (lib, doc) => lib.writeDisplay(lib.graphicsElements(doc)[0], { type: 'vnc', port: 'auto', listen: '127.0.0.1', passwd: '' }),
      null,
    );
    assert.match(auto, /<graphics type="vnc" autoport="yes" listen="127.0.0.1">\n      <listen type="address" address="127.0.0.1"\/>\n    <\/graphics>/);
    assert.equal(local.filter((l) => l.includes('<listen ')).length, 0);
  });
});

describe('line diff', () => {
  test('marks kept, removed and added lines in order', async () => {
    const diff = await inPage((lib, [a, b]) => lib.lineDiff(a, b), ['<a>\n  <b/>\n  <c/>\n</a>', '<a>\n  <c/>\n  <d/>\n</a>'] as const);
    assert.deepEqual(diff, [
      { kind: 'same', line: '<a>' },
      { kind: 'del', line: '  <b/>' },
      { kind: 'same', line: '  <c/>' },
      { kind: 'add', line: '  <d/>' },
      { kind: 'same', line: '</a>' },
    ]);
  });

  test('an edit shows as the lines it changed', async () => {
    const xml = fixture('v86-direct-kernel');
    const diff = await inPage((lib, text) => lib.lineDiff(text, lib.editXml(text, (doc) => lib.writeCpus(doc, { vcpus: 2 }))), xml);
    const changed = diff.filter((d) => d.kind !== 'same');
    assert.deepEqual(
      changed.filter((d) => d.line.includes('vcpu')),
      [
        { kind: 'del', line: '  <vcpu>1</vcpu>' },
        { kind: 'add', line: '  <vcpu>2</vcpu>' },
      ],
    );
  });
});
