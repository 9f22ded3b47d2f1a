// pygrub PV boot end to end: the sample disk.img boots through <bootloader>pygrub</bootloader> from
// its extlinux.conf; without extlinux.conf from the newest /boot/vmlinuz-*; and a kernel and initrd
// written into the image afterwards are the ones the next start boots. Also host.inspectImage.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, engineSkip, guest, guestsBuilt } from '../../testing/harness.js';
import { runFsimageJob } from './reader-client.js';

const BOOT_TIMEOUT = 300_000;
/** The ext2 partition of disk.img starts at sector 2048 (build-guests.sh). */
const PART = '?offset=1048576';

function debugfs(image: string, commands: string[]): string {
  return execFileSync('debugfs', ['-w', '-f', '-', image + PART], { input: commands.join('\n') + '\n', stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

function domainXml(name: string, disk: string, extra = '', cmdline = '', type = 'v86'): string {
  return `<domain type='${type}'>
  <name>${name}</name>
  <memory unit='MiB'>160</memory>
  <bootloader>pygrub</bootloader>${extra}
  <os><type arch='i686'>linux</type><cmdline>${cmdline}domus.marker=${name}</cmdline></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${disk}'/><target dev='xvda' bus='xen'/></disk>
    <console type='pty'><target type='xen' port='0'/></console>
  </devices>
</domain>`;
}

describe('pygrub PV boot', { skip: !guestsBuilt() && 'sample guests not built (npm run guests)', timeout: 900_000 }, () => {
  let t: TestHost;
  let dir: string;
  before(async () => {
    t = await TestHost.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-pygrub-'));
  });
  after(async () => {
    await t?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function bootAndRead(name: string, commands: string): Promise<{ ready: string; out: string; seconds: number }> {
    const t0 = Date.now();
    await t.client.call('domain.start', { domain: name });
    const serial = await SerialWatch.open(t.client, name);
    // Up to the line's end: a serial chunk can end inside the banner.
    const m = await serial.wait(/DOMUS-GUEST-READY[^\r\n]*(?=\r?\n)/, BOOT_TIMEOUT);
    const seconds = (Date.now() - t0) / 1000;
    const out = await serial.sh(commands);
    await t.client.call('domain.destroy', { domain: name });
    return { ready: m[0], out, seconds };
  }

  it('host.inspectImage reads the sample disk; a missing file is a clear error', async () => {
    const seen = await t.client.call('host.inspectImage', { path: guest('disk.img') });
    assert.equal(seen.partitionTable, 'mbr');
    assert.equal(seen.bootConfig?.entries[0].kernel, '/boot/vmlinuz');
    assert.equal(seen.arch, 'i686');
    await assert.rejects(t.client.call('host.inspectImage', { path: path.join(dir, 'nope.img') }), /cannot inspect '.*nope.img': No such file or directory/);
  });

  it('the reader worker is ended at its deadline', async () => {
    await assert.rejects(runFsimageJob({ op: 'inspect', path: guest('disk.img') }, 1), /reading the image took longer than 0.001 s/);
    const ok = await runFsimageJob<{ arch: string }>({ op: 'inspect', path: guest('disk.img') });
    assert.equal(ok.arch, 'i686');
  });

  it('boots disk.img through pygrub on the QEMU engine too', { skip: engineSkip('qemu') }, async () => {
    const disk = path.join(dir, 'extlinux-qemu.img');
    fs.copyFileSync(guest('disk.img'), disk);
    await t.client.call('domain.define', { xml: domainXml('pygrub-qemu', disk, '', '', 'qemu') });
    const info = await t.client.call('domain.info', { domain: 'pygrub-qemu' });
    assert.equal(info.engine, 'qemu');
    assert.ok(!info.warnings.some((w) => w.element === 'bootloader'), JSON.stringify(info.warnings));
    const r = await bootAndRead('pygrub-qemu', 'cat /proc/cmdline');
    console.log(`# pygrub boot on QEMU to DOMUS-GUEST-READY: ${r.seconds.toFixed(1)} s`);
    assert.match(r.out, /console=ttyS0,115200 cryptomgr.notests noisapnp tsc=reliable mitigations=off domus.marker=pygrub-qemu/);
  });

  it('boots disk.img through its extlinux.conf', async () => {
    const disk = path.join(dir, 'extlinux.img');
    fs.copyFileSync(guest('disk.img'), disk);
    const { warnings } = await t.client.call('domain.define', { xml: domainXml('pygrub-extlinux', disk) });
    assert.ok(!warnings.some((w) => w.element === 'bootloader'), JSON.stringify(warnings));
    const r = await bootAndRead('pygrub-extlinux', 'cat /proc/cmdline');
    console.log(`# pygrub boot (extlinux.conf) to DOMUS-GUEST-READY: ${r.seconds.toFixed(1)} s`);
    // The entry's APPEND (console=ttyS0... from build-guests.sh), then the domain's <cmdline>.
    assert.match(r.out, /console=ttyS0,115200 cryptomgr.notests noisapnp tsc=reliable mitigations=off domus.marker=pygrub-extlinux/);
  });

  it('without extlinux.conf boots the newest /boot/vmlinuz-*; an upgraded kernel boots next time', async () => {
    const disk = path.join(dir, 'noconf.img');
    fs.copyFileSync(guest('disk.img'), disk);
    debugfs(disk, ['rm /boot/extlinux.conf']);
    const seen = await t.client.call('host.inspectImage', { path: disk });
    assert.equal(seen.bootConfig, undefined);
    const kver = seen.kernels[0]?.version;
    assert.ok(kver, 'disk.img has /boot/vmlinuz-<version>');
    // Without a configuration the arguments are the domain's: the sample's fast-boot ones.
    await t.client.call('domain.define', { xml: domainXml('pygrub-newest', disk, '', `${SAMPLE_CMDLINE} `) });
    const first = await bootAndRead('pygrub-newest', 'cat /proc/cmdline; cat /etc/domus-marker 2>&1');
    console.log(`# pygrub boot (no configuration, newest kernel) to DOMUS-GUEST-READY: ${first.seconds.toFixed(1)} s`);
    assert.match(first.ready, new RegExp(`kernel=${kver.replace(/\./g, '\\.')}`));
    // No configuration: root= names the filesystem the kernel came from, then <cmdline>.
    assert.match(first.out, new RegExp(`root=UUID=d0a05000-6e57-4c1e-8000-000000000001 ${SAMPLE_CMDLINE} domus.marker=pygrub-newest`));
    assert.match(first.out, /No such file/);

    // "Upgrade" inside the image: a newer version with its own initrd. The kernel differs from the
    // old one in its setup header's kernel_version pointer, which the guest sees in boot_params;
    // the initrd carries one more cpio archive with a marker file.
    const vmlinuz = fs.readFileSync(guest('vmlinuz'));
    const newer = Buffer.from(vmlinuz);
    const versionPtr = newer.readUInt16LE(0x20e);
    newer.writeUInt16LE(versionPtr + 1, 0x20e);
    const stage = path.join(dir, 'stage');
    fs.mkdirSync(path.join(stage, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(stage, 'etc/domus-marker'), 'upgraded-initrd\n');
    const cpio = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: stage, input: 'etc\netc/domus-marker\n' });
    const newerInitrd = Buffer.concat([fs.readFileSync(guest('initrd.gz')), zlib.gzipSync(cpio)]);
    const nver = kver.replace(/^(\d+\.\d+\.\d+-)\d+/, '$199');
    fs.writeFileSync(path.join(dir, 'vmlinuz-new'), newer);
    fs.writeFileSync(path.join(dir, 'initrd-new'), newerInitrd);
    debugfs(disk, [`write ${path.join(dir, 'vmlinuz-new')} /boot/vmlinuz-${nver}`, `write ${path.join(dir, 'initrd-new')} /boot/initrd.img-${nver}`]);
    const after = await t.client.call('host.inspectImage', { path: disk });
    assert.deepEqual(after.kernels.map((k) => k.path), [`/boot/vmlinuz-${nver}`, `/boot/vmlinuz-${kver}`]);

    const second = await bootAndRead('pygrub-newest', 'cat /etc/domus-marker; od -An -tx1 -j526 -N2 /sys/kernel/boot_params/data');
    console.log(`# pygrub boot after the in-image upgrade: ${second.seconds.toFixed(1)} s`);
    assert.match(second.out, /upgraded-initrd/);
    const seenPtr = second.out.trim().split('\n').pop()?.trim().split(/\s+/).map((h) => parseInt(h, 16));
    assert.deepEqual(seenPtr, [(versionPtr + 1) & 0xff, (versionPtr + 1) >> 8], `boot_params kernel_version in the guest: ${second.out}`);
  });

  it('start fails with a clear error: bad --entry, a disk without a kernel, unknown arguments', async () => {
    const disk = path.join(dir, 'entry.img');
    fs.copyFileSync(guest('disk.img'), disk);
    await t.client.call('domain.define', { xml: domainXml('pygrub-bad-entry', disk, '\n  <bootloader_args>--entry=5</bootloader_args>') });
    await assert.rejects(t.client.call('domain.start', { domain: 'pygrub-bad-entry' }), /pygrub: .*entry.img: --entry=5: \/boot\/extlinux.conf has 1 entries \(0 to 0\)/);
    const state = await t.client.call('domain.info', { domain: 'pygrub-bad-entry' });
    assert.equal(state.state, 'shutoff');

    const blank = path.join(dir, 'blank.img');
    fs.writeFileSync(blank, Buffer.alloc(4 << 20));
    await t.client.call('domain.define', { xml: domainXml('pygrub-blank', blank) });
    await assert.rejects(t.client.call('domain.start', { domain: 'pygrub-blank' }), /pygrub: .*blank.img: no readable filesystem on the disk/);

    await t.client.call('domain.define', { xml: domainXml('pygrub-args', disk, '\n  <bootloader_args>--isconfig</bootloader_args>') });
    await assert.rejects(t.client.call('domain.start', { domain: 'pygrub-args' }), /unknown bootloader argument '--isconfig'/);
  });
});
