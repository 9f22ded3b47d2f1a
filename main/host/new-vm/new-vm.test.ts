// The wizard's spec → libvirt XML, both definitions of an install from media, and what the host
// refuses before defining anything (missing files, a 64-bit kernel on the 32-bit engine).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { describeZodError, NewDomainSpec, type NewDomainSpecInput } from '../../../shared/api.js';
import { guest, guestsBuilt } from '../../testing/harness.js';
import { completeInstall, installTimeDocument, pendingInstall } from '../domain/install-boot.js';
import { parseDomainXml, serializeDomainXml } from '../domain/xml.js';
import { checkSpec, kernelArch } from './checks.js';
import { specToXml } from './spec-to-xml.js';

const spec = (s: NewDomainSpecInput): NewDomainSpec => NewDomainSpec.parse(s);
const doc = (s: NewDomainSpecInput) => parseDomainXml(specToXml(spec(s)));

describe('NewDomainSpec', () => {
  it('applies engine limits with messages for the field', () => {
    const bad = NewDomainSpec.safeParse({ name: 'a', memoryMiB: 4096, vcpus: 2, boot: { kind: 'disk', disk: '/x.img' } });
    assert.equal(bad.success, false);
    assert.equal(describeZodError(bad.error!), 'memoryMiB: memory above 2047 MiB is not supported by v86; vcpus: the v86 engine emulates one CPU');
    assert.equal(NewDomainSpec.safeParse({ name: 'a', engine: 'qemu', memoryMiB: 4096, vcpus: 2, boot: { kind: 'disk', disk: '/x.img' } }).success, true);
    const noIso = NewDomainSpec.safeParse({ name: 'a', memoryMiB: 128, boot: { kind: 'install', iso: '', disk: '/d.img' } });
    assert.equal(describeZodError(noIso.error!), 'boot.iso: ISO path is required');
  });
});

describe('spec to XML', () => {
  it('direct kernel boot', () => {
    const { config } = doc({ name: 'pv', memoryMiB: 128, boot: { kind: 'pv', kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0' } });
    assert.deepEqual([config.type, config.os.arch, config.os.kernel, config.os.initrd, config.os.cmdline], ['v86', 'i686', '/k', '/i', 'console=ttyS0']);
    assert.equal(config.disks.length, 0);
  });

  it('imported disk, on QEMU with a NIC', () => {
    const { config } = doc({ name: 'imp', engine: 'qemu', memoryMiB: 1024, vcpus: 2, network: 'user', boot: { kind: 'disk', disk: '/d.qcow2' } });
    assert.deepEqual([config.type, config.os.arch, config.vcpus, config.memoryKiB], ['qemu', 'x86_64', 2, 1024 * 1024]);
    assert.deepEqual(config.disks.map((d) => [d.device, d.source, d.format, d.target]), [['disk', '/d.qcow2', 'qcow2', 'hda']]);
    assert.deepEqual(config.interfaces.map((i) => [i.type, i.model]), [['user', 'e1000']]);
    assert.deepEqual(config.os.bootOrder, ['hd']);
  });

  it('a NIC on a virtual network, virtio on both engines; a bad network name is refused', () => {
    for (const engine of ['v86', 'qemu'] as const) {
      const { config } = doc({ name: 'n', engine, memoryMiB: 128, network: { network: 'lab' }, boot: { kind: 'disk', disk: '/d.img' } });
      assert.deepEqual(config.interfaces.map((i) => [i.type, i.source, i.model]), [['network', 'lab', 'virtio']]);
    }
    assert.equal(doc({ name: 'n', memoryMiB: 128, network: 'none', boot: { kind: 'disk', disk: '/d.img' } }).config.interfaces.length, 0);
    const bad = NewDomainSpec.safeParse({ name: 'n', memoryMiB: 128, network: { network: '../x' }, boot: { kind: 'disk', disk: '/d.img' } });
    assert.match(describeZodError(bad.error!), /network name may hold letters/);
  });

  it('pygrub: the bootloader and the chosen entry', () => {
    const { config } = doc({ name: 'pg', memoryMiB: 128, boot: { kind: 'pygrub', disk: '/d.img', entry: 1 } });
    assert.equal(config.os.bootloader, 'pygrub');
    assert.equal(config.os.bootloaderArgs, '--entry=1');
    const auto = doc({ name: 'pg', memoryMiB: 128, boot: { kind: 'pygrub', disk: '/d.img' } });
    assert.equal(auto.config.os.bootloaderArgs, undefined);
  });

  it('install from media: the final definition, the install-time one, and the switch', () => {
    const final = doc({ name: 'inst', memoryMiB: 256, os: 'debian12', boot: { kind: 'install', iso: '/media/inst.iso', disk: '/pool/inst.img' } });
    assert.deepEqual(final.config.os.bootOrder, ['hd']);
    assert.deepEqual(final.config.disks.map((d) => [d.device, d.source ?? null]), [['disk', '/pool/inst.img'], ['cdrom', null]]);
    assert.deepEqual(pendingInstall(final), { media: '/media/inst.iso' });
    assert.match(serializeDomainXml(final), /<libosinfo:os id='domus:debian12'\/>/);

    const install = installTimeDocument(final);
    assert.deepEqual(install.config.os.bootOrder, ['cdrom', 'hd']);
    assert.deepEqual(install.config.disks.map((d) => [d.device, d.source ?? null]), [['disk', '/pool/inst.img'], ['cdrom', '/media/inst.iso']]);
    assert.ok(pendingInstall(install), 'the live definition says it is an install boot');
    assert.deepEqual(pendingInstall(final), { media: '/media/inst.iso' }, 'the persistent one is untouched');

    const done = completeInstall(final);
    assert.equal(pendingInstall(done), undefined);
    assert.deepEqual(done.config.os.bootOrder, ['hd']);
    assert.match(serializeDomainXml(done), /<libosinfo:os/, 'the rest of <metadata> stays');
    assert.throws(() => installTimeDocument(done), /has no pending install/);
  });
});

describe('checks before create', { skip: !guestsBuilt() && 'sample guests not built' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-spec-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const kernel64 = path.join(dir, 'vmlinuz64');
  // A bzImage setup header (protocol 2.15) with XLF_KERNEL_64 set, as an x86_64 kernel has.
  const header = Buffer.alloc(0x400);
  header.write('HdrS', 0x202, 'latin1');
  header.writeUInt16LE(0x020f, 0x206);
  header.writeUInt16LE(0x0001 | 0x0002, 0x236);
  fs.writeFileSync(kernel64, header);

  it('reads a kernel architecture from its boot header', () => {
    assert.equal(kernelArch(guest('vmlinuz')), 'i686');
    assert.equal(kernelArch(kernel64), 'x86_64');
    assert.equal(kernelArch(guest('initrd.gz')), 'unknown');
  });

  it('refuses missing files and 64-bit kernels on v86, accepts them on QEMU', async () => {
    assert.deepEqual(await checkSpec(spec({ name: 'a', memoryMiB: 128, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz') } })), []);
    assert.deepEqual(await checkSpec(spec({ name: 'a', memoryMiB: 128, boot: { kind: 'install', iso: '/nonexistent.iso', disk: dir } })), [
      'ISO image /nonexistent.iso does not exist',
      `disk image '${dir}' is a directory, not a regular file`,
    ]);
    const [problem] = await checkSpec(spec({ name: 'a', memoryMiB: 128, boot: { kind: 'pv', kernel: kernel64 } }));
    assert.match(problem!, /is a x86_64 guest \(its boot header says it is a 64-bit kernel\), and the v86 engine emulates a 32-bit \(i686\) CPU; choose a 32-bit \(i686\) image or the QEMU engine/);
    assert.deepEqual(await checkSpec(spec({ name: 'a', engine: 'qemu', memoryMiB: 128, boot: { kind: 'pv', kernel: kernel64 } })), []);
  });

  it('asks the image inspector about ISOs and disks', async () => {
    const inspect = async () => ({ arch: 'x86_64' as const, archReason: 'the kernel on the ISO is 64-bit', kernels: [] });
    const [problem] = await checkSpec(spec({ name: 'a', memoryMiB: 128, boot: { kind: 'cdrom', iso: guest('tiny.iso') } }), inspect);
    assert.match(problem!, /tiny\.iso is a x86_64 guest \(the kernel on the ISO is 64-bit\)/);
    const empty = async () => ({ arch: 'unknown' as const, kernels: [], bootConfig: { file: 'extlinux.conf', entries: [{ index: 0, label: 'l', kernel: '/k' }] } });
    assert.deepEqual(await checkSpec(spec({ name: 'a', memoryMiB: 128, boot: { kind: 'pygrub', disk: guest('disk.img'), entry: 3 } }), empty), [
      `bootloader entry 3 does not exist on ${guest('disk.img')} (entries: 0)`,
    ]);
  });
});
