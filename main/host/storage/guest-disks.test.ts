// Guests and their disks, end to end: what a guest writes and syncs is in the image file after a
// destroy and after the runner is SIGKILLed (read on the host with debugfs, checked with e2fsck);
// the guest's cache flush reaches fsync; a writable disk is one running domain's only; a CD-ROM
// medium changes under a running guest.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { processAlive } from '../../common/fsutil.js';
import { diskGuestBuilt, diskGuestInitrd, diskGuestXml, extPartition, ideDisk } from '../../testing/disk-guest.js';
import { SerialWatch, TestHost, guest, until } from '../../testing/harness.js';

// Generous: a boot takes ~20 s alone, several minutes on a loaded machine (libata's probe too).
const BOOT = 600_000;
const ready = diskGuestBuilt();


function debugfsCat(fsImage: string, file: string): string {
  return execFileSync('debugfs', ['-R', `cat ${file}`, fsImage], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

/** e2fsck -n: 0 = clean; otherwise a repair on a copy must succeed (exit 1: errors corrected). */
function fsckVerdict(fsImage: string): { readOnly: number; repaired?: number; output: string } {
  const ro = spawnSync('e2fsck', ['-fn', fsImage], { encoding: 'utf8' });
  if (ro.status === 0) return { readOnly: 0, output: ro.stdout };
  const copy = `${fsImage}.repair`;
  fs.copyFileSync(fsImage, copy);
  const fix = spawnSync('e2fsck', ['-fy', copy], { encoding: 'utf8' });
  return { readOnly: ro.status ?? -1, repaired: fix.status ?? -1, output: ro.stdout + fix.stdout };
}

describe('guest disks', { timeout: 3_600_000, skip: !ready && 'sample guests (with disk-modules.cpio.gz) not built' }, () => {
  let t: TestHost;
  let hda: string;
  let initrd: string;
  let scratch: string;

  async function boot(name: string): Promise<SerialWatch> {
    await t.client.call('domain.start', { domain: name });
    const serial = await SerialWatch.open(t.client, name);
    await serial.wait(/DOMUS-GUEST-READY/, BOOT);
    // The IDE and filesystem drivers (disk-modules.cpio.gz); libata's probe takes a while in v86.
    const out = await serial.sh('domus-disks && echo drivers=ok; mkdir -p /mnt /media; cat /proc/partitions', 400_000);
    assert.match(out, /drivers=ok/);
    assert.match(out, /sda1/, out);
    return serial;
  }

  before(async () => {
    t = await TestHost.start();
    scratch = path.join(t.home, 'scratch');
    fs.mkdirSync(scratch);
    initrd = diskGuestInitrd(scratch);
    const images = (await t.client.call('pool.list', {})).pools[0].path;
    fs.copyFileSync(guest('disk.img'), path.join(images, 'sample.img'));
    hda = path.join(images, 'sample.img');
    await t.client.call('domain.define', { xml: diskGuestXml('writer', 'v86', initrd, [ideDisk({ file: hda, dev: 'hda' }), ideDisk({ dev: 'hdc', cdrom: true })]) });
    await t.client.call('domain.define', { xml: diskGuestXml('second', 'v86', initrd, [ideDisk({ file: hda, dev: 'hda' }), ideDisk({ dev: 'hdc', cdrom: true })]) });
  });
  after(async () => {
    await t?.stop();
  });

  it('a file the guest wrote and synced is in the image after destroy, and the filesystem is clean', async (ctx) => {
    const serial = await boot('writer');
    const out = await serial.sh('mount -t ext4 /dev/sda1 /mnt && echo first-write > /mnt/x && sync && echo synced');
    assert.match(out, /synced/, out);
    const uuid = (await t.client.call('domain.info', { domain: 'writer' })).uuid;
    // The flush reached the runner: ATA FLUSH CACHE → fsync of the image.
    assert.match(fs.readFileSync(path.join(t.home, 'run', uuid, 'runner.log'), 'utf8'), /hda: the guest flushed its write cache \(fsync of '.*sample\.img'\)/);
    await t.client.call('domain.destroy', { domain: 'writer' });

    const part = extPartition(hda, path.join(scratch, 'p1.ext2'));
    assert.equal(debugfsCat(part, '/x'), 'first-write\n');
    const fsck = fsckVerdict(part);
    ctx.diagnostic(`e2fsck -fn exit ${fsck.readOnly}${fsck.repaired === undefined ? '' : `, e2fsck -fy exit ${fsck.repaired}`}`);
    assert.ok(fsck.readOnly === 0 || fsck.repaired === 1, `e2fsck: ${JSON.stringify(fsck)}`);
  });

  it('the file is there when the domain starts again', async () => {
    const serial = await boot('writer');
    assert.match(await serial.sh('mount -t ext4 /dev/sda1 /mnt && cat /mnt/x'), /first-write/);
  });

  it('a writable disk in use by a running domain cannot start in a second domain nor be deleted', async () => {
    await assert.rejects(
      t.client.call('domain.start', { domain: 'second' }),
      /Requested operation is not valid: disk '.*sample\.img' \(hda\) is in use by running domain 'writer', which writes to it/,
    );
    assert.equal((await t.client.call('domain.info', { domain: 'second' })).state, 'shutoff');
    const r = await t.cli(['vol-delete', 'sample.img', '--pool', 'default']);
    assert.match(r.stderr, /in use by running domain 'writer'/);
    assert.ok(fs.existsSync(hda));
    const { volume } = await t.client.call('volume.info', { volume: hda });
    assert.deepEqual(volume.usedBy, ['writer', 'second']);
  });

  it('change-media --live inserts and ejects a CD under the running guest', async () => {
    const serial = SerialWatch.open(t.client, 'writer');
    const sh = async (cmd: string) => (await serial).sh(cmd, 60_000);
    assert.match(await sh('mount -t iso9660 /dev/sr0 /media 2>&1; echo rc=$?'), /rc=[1-9]/, 'empty drive');
    let r = await t.cli(['change-media', 'writer', 'hdc', guest('tiny.iso'), '--insert', '--live']);
    assert.equal(r.stdout, 'Successfully inserted media.\n\n', r.stderr);
    const listing = await sh('for i in 1 2 3 4 5; do mount -t iso9660 -o ro /dev/sr0 /media 2>/dev/null && break; sleep 1; done; ls /media/isolinux');
    assert.match(listing, /isolinux\.cfg/, listing);
    const live = (await t.client.call('domain.xml', { domain: 'writer' })).xml;
    assert.match(live, /<source file='[^']*tiny\.iso'\/>\n\s+<target dev='hdc'/);
    assert.doesNotMatch((await t.client.call('domain.xml', { domain: 'writer', inactive: true })).xml, /tiny\.iso/, '--live only');

    await sh('umount /media');
    r = await t.cli(['change-media', 'writer', 'hdc', '--eject', '--live']);
    assert.equal(r.stdout, 'Successfully ejected media.\n\n', r.stderr);
    assert.match(await sh('mount -t iso9660 -o ro /dev/sr0 /media 2>&1; echo rc=$?'), /rc=[1-9]/, 'ejected');
    r = await t.cli(['change-media', 'writer', 'hdc', path.join(scratch, 'absent.iso'), '--insert', '--live']);
    assert.match(r.stderr, /error: Failed to complete action insert on media\nerror: invalid argument: cannot use '.*absent\.iso': no such file/);
  });

  it('after SIGKILL of the runner the image holds everything the guest synced, and e2fsck passes', async (ctx) => {
    const serial = await SerialWatch.open(t.client, 'writer');
    const out = await serial.sh('echo second-write > /mnt/y && sync && echo synced');
    assert.match(out, /synced/);
    const uuid = (await t.client.call('domain.info', { domain: 'writer' })).uuid;
    const pid = t.runnerPid(uuid)!;
    process.kill(pid, 'SIGKILL');
    await until(() => !processAlive(pid), 10_000, 'the runner to die');
    await until(async () => (await t.client.call('domain.info', { domain: 'writer' })).state === 'shutoff', 10_000, 'shutoff (crashed)');

    const part = extPartition(hda, path.join(scratch, 'p2.ext2'));
    assert.equal(debugfsCat(part, '/x'), 'first-write\n');
    assert.equal(debugfsCat(part, '/y'), 'second-write\n');
    const fsck = fsckVerdict(part);
    ctx.diagnostic(`e2fsck -fn exit ${fsck.readOnly}${fsck.repaired === undefined ? '' : `, e2fsck -fy exit ${fsck.repaired}`}`);
    assert.ok(fsck.readOnly === 0 || fsck.repaired === 1, `e2fsck: ${JSON.stringify(fsck)}`);
    // The disk is free again: the second domain may start on it now.
    await t.client.call('domain.start', { domain: 'second' });
    await t.client.call('domain.destroy', { domain: 'second' });
  });
});
