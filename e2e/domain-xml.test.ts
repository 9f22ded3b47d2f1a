// The renderer's XML edit helpers (renderer/src/lib/domainXml.ts) run on the browser's DOMParser
// and XMLSerializer, so they are tested in Chromium: bundled with esbuild into a blank page.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { APP_ROOT } from '../main/host/paths.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
const J = JSON.stringify;

const XML = `<?xml version="1.0"?>
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
    <serial type='pty'>
      <target type='isa-serial' port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-no-hpet'/>
  </qemu:commandline>
</domain>`;

describe('renderer XML edit helpers (in Chromium)', { timeout: 120_000 }, () => {
  let browser: Browser;
  let page: Page;
  const run = <T>(expr: string): Promise<T> => page.evaluate(expr) as Promise<T>;
  /** The edited XML; Chromium's serializer writes attributes in double quotes. */
  const edit = (xml: string, body: string): Promise<string> => run(`dx.editXml(${J(xml)}, (d) => { ${body} })`);
  const read = <T>(xml: string, expr: string): Promise<T> => run(`((d) => ${expr})(dx.parseDomainXml(${J(xml)}))`);

  before(async () => {
    const bundle = await build({
      entryPoints: [path.join(APP_ROOT, 'renderer/src/lib/domainXml.ts')],
      bundle: true,
      format: 'iife',
      globalName: 'dx',
      write: false,
      target: 'es2022',
    });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage();
    await page.setContent('<!doctype html><title>t</title>');
    await page.addScriptTag({ content: bundle.outputFiles[0].text });
  });
  after(async () => {
    await browser?.close();
  });

  it('round-trips a definition it does not change: same nodes, attributes, comments and whitespace', async () => {
    const out = await edit(XML, '');
    assert.equal(await run(`dx.parseDomainXml(${J(out)}).isEqualNode(dx.parseDomainXml(${J(XML)}))`), true);
    assert.match(out, /<!-- written by hand -->/);
    assert.match(out, /<qemu:commandline>\n    <qemu:arg value="-no-hpet"\/>\n  <\/qemu:commandline>/);
  });

  it('adds a title in libvirt order with the siblings’ indentation, and removes it with its line', async () => {
    const withTitle = await edit(XML, `dx.writeOverview(d, { title: 'A title', description: '' })`);
    assert.match(withTitle, /<uuid>[^<]+<\/uuid>\n  <title>A title<\/title>\n  <metadata>/);
    assert.match(withTitle, /<app:data xmlns:app="urn:example:app" level="3"><app:item>kept<\/app:item><\/app:data>/);
    const without = await edit(withTitle, `dx.writeOverview(d, { title: '', description: '' })`);
    assert.equal(without, await edit(XML, ''));
    const multi = await edit(XML, `dx.writeOverview(d, { title: 'one\\ntwo', description: 'a & <b>' })`);
    assert.match(multi, /<title>one two<\/title>\n  <description>a &amp; &lt;b&gt;<\/description>/);
  });

  it('reads memory in any libvirt unit and writes KiB, keeping current ≤ maximum', async () => {
    assert.deepEqual(await read(XML, 'dx.readMemory(d)'), { maxKiB: 1048576, currentKiB: 1048576 });
    const sized = (unit: string, value: string): string => XML.replace("<memory unit='GiB'>1</memory>", `<memory unit='${unit}'>${value}</memory>`);
    assert.deepEqual(await read(sized('bytes', '134217728'), 'dx.readMemory(d)'), { maxKiB: 131072, currentKiB: 131072 });
    assert.deepEqual(await read(sized('GB', '1'), 'dx.readMemory(d)'), { maxKiB: 976563, currentKiB: 976563 });
    assert.deepEqual(await read(sized('M', '512'), 'dx.readMemory(d)'), { maxKiB: 524288, currentKiB: 524288 });
    const out = await edit(XML, `dx.writeMemory(d, { maxKiB: 524288, currentKiB: 1048576 })`);
    assert.match(out, /<memory unit="KiB">524288<\/memory>\n  <currentMemory unit="KiB">524288<\/currentMemory>\n  <vcpu/);
  });

  it('drops a vCPU current above the new count', async () => {
    const out = await edit(XML, `dx.writeCpus(d, { vcpus: 1 })`);
    assert.match(out, /<vcpu placement="static">1<\/vcpu>/);
    assert.match(await edit(XML, `dx.writeCpus(d, { vcpus: 8 })`), /<vcpu placement="static" current="2">8<\/vcpu>/);
  });

  it('edits boot order, direct kernel boot and the PV bootloader', async () => {
    const boot = await read<Record<string, unknown>>(XML, 'dx.readBoot(d)');
    assert.deepEqual(boot, { bootOrder: ['cdrom', 'hd'], kernel: '/boot/vmlinuz', initrd: '', cmdline: '', bootloader: '/usr/bin/pygrub', bootloaderArgs: '' });
    const out = await edit(
      XML,
      `dx.writeBoot(d, { bootOrder: ['hd', 'network'], kernel: '', initrd: '/boot/initrd.gz', cmdline: 'console=ttyS0', bootloader: '/usr/bin/pygrub', bootloaderArgs: '--entry=1' })`,
    );
    assert.match(out, /<os>\n    <type arch="x86_64" machine="pc">hvm<\/type>\n    <initrd>\/boot\/initrd.gz<\/initrd>\n    <cmdline>console=ttyS0<\/cmdline>\n    <boot dev="hd"\/>\n    <boot dev="network"\/>\n    <bootmenu enable="yes"\/>\n  <\/os>/);
    assert.match(out, /<bootloader>\/usr\/bin\/pygrub<\/bootloader>\n  <bootloader_args>--entry=1<\/bootloader_args>\n  <os>/);
    const noLoader = await edit(XML, `dx.writeBoot(d, { ...dx.readBoot(d), bootloader: null })`);
    assert.doesNotMatch(noLoader, /bootloader/);
    // Unchanged fields leave the element text exactly as written.
    assert.equal(await edit(XML, 'dx.writeBoot(d, dx.readBoot(d))'), await edit(XML, ''));
  });

  it('edits disks by target, keeping the attributes it does not know', async () => {
    assert.deepEqual(await read(XML, 'dx.readDisks(d)'), [
      { device: 'disk', source: '/var/lib/images/vm1.qcow2', target: 'vda', bus: 'virtio', format: 'qcow2', readonly: false },
      { device: 'cdrom', source: '', target: 'hdc', bus: 'ide', format: '', readonly: true },
    ]);
    const out = await edit(XML, `dx.writeDisk(dx.findDisk(d, 'vda'), { ...dx.readDisk(dx.findDisk(d, 'vda')), readonly: true, format: 'raw', source: '/srv/vm1.img' })`);
    assert.match(out, /<driver name="qemu" type="raw" cache="none"\/>\n      <source file="\/srv\/vm1.img"\/>\n      <target dev="vda" bus="virtio"\/>\n      <readonly\/>\n      <address type="pci"/);
    const cd = await edit(XML, `dx.writeDisk(dx.findDisk(d, 'hdc'), { ...dx.readDisk(dx.findDisk(d, 'hdc')), source: '/srv/x.iso', readonly: false })`);
    assert.match(cd, /<disk type="file" device="cdrom">\n      <source file="\/srv\/x.iso"\/>\n      <target dev="hdc" bus="ide"\/>\n    <\/disk>/);
  });

  it('edits NICs and displays; the listen element follows the listen address', async () => {
    assert.deepEqual(await read(XML, 'dx.readNic(dx.interfaceElements(d)[0])'), { type: 'network', mac: '52:54:00:aa:bb:cc', source: 'default', model: 'virtio' });
    const nic = await edit(XML, `dx.writeNic(dx.interfaceElements(d)[0], { type: 'bridge', mac: '52:54:00:AA:BB:CD', source: 'br0', model: 'e1000' })`);
    assert.match(nic, /<interface type="bridge">\n      <mac address="52:54:00:aa:bb:cd"\/>\n      <source bridge="br0"\/>\n      <model type="e1000"\/>/);
    assert.deepEqual(await read(XML, 'dx.readDisplay(dx.graphicsElements(d)[0])'), { type: 'vnc', port: '5901', listen: '0.0.0.0', passwd: 'secret' });
    const vnc = await edit(XML, `dx.writeDisplay(dx.graphicsElements(d)[0], { type: 'vnc', port: 'auto', listen: '127.0.0.1', passwd: '' })`);
    assert.match(vnc, /<graphics type="vnc" autoport="yes" listen="127.0.0.1">\n      <listen type="address" address="127.0.0.1"\/>\n    <\/graphics>/);
    assert.deepEqual(await read(XML, 'dx.readSerials(d)'), [
      { kind: 'serial', type: 'pty', port: '0', targetType: 'isa-serial' },
      { kind: 'console', type: 'pty', port: '0', targetType: 'serial' },
    ]);
  });

  it('refuses malformed XML with its line, and a root that is not <domain>', async () => {
    const err = await run<{ name: string; message: string; line?: number }>(
      `(() => { try { dx.parseDomainXml(${J('<domain>\n  <name>x</name>\n  <os>\n</domain>')}); return null; } catch (e) { return { name: e.name, message: e.message, line: e.line }; } })()`,
    );
    assert.equal(err.name, 'XmlProblem');
    assert.equal(err.line, 4);
    assert.match(err.message, /not well-formed XML/);
    const root = await run<string>(`(() => { try { dx.parseDomainXml('<network/>'); return ''; } catch (e) { return e.message; } })()`);
    assert.match(root, /root element is <network>, expected <domain>/);
  });

  it('diffs two definitions line by line', async () => {
    const diff = await run<{ kind: string; line: string }[]>(`dx.lineDiff('a\\nb\\nc', 'a\\nc\\nd')`);
    assert.deepEqual(diff, [
      { kind: 'same', line: 'a' },
      { kind: 'del', line: 'b' },
      { kind: 'same', line: 'c' },
      { kind: 'add', line: 'd' },
    ]);
  });
});
