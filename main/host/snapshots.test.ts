// Domain snapshots on real guests, one boot per engine: a snapshot of the shut-off guest (disks
// only), then of the running guest (memory too): a file written and a shell variable set after the
// snapshot are gone after revert (the guest continues from the snapshot moment, its serial shell
// answering); reverting to the shut-off snapshot brings the disk back with the guest off; the
// tree, current and re-parenting on delete; delete frees the snapshot's space; virsh's output
// shapes; snapshot-dumpxml passes virt-xml-validate; undefine needs --snapshots-metadata.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { diskGuestBuilt, diskGuestInitrd, diskGuestXml, extPartition, ideDisk } from '../testing/disk-guest.js';
import { ENGINES, SerialWatch, TestHost, engineSkip, guest } from '../testing/harness.js';

const BOOT = 600_000;
const ready = diskGuestBuilt();

/** A file of the guest's ext2 partition, read on the host (debugfs on a copy of the partition). */
function fileOnDisk(image: string, format: string, file: string, scratch: string): string {
  const raw = path.join(scratch, 'read.raw');
  if (format === 'qcow2') execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', image, raw]);
  else fs.copyFileSync(image, raw);
  const part = extPartition(raw, path.join(scratch, 'part.ext2'));
  const r = spawnSync('debugfs', ['-R', `cat ${file}`, part], { encoding: 'utf8' });
  return r.stdout + r.stderr.split('\n').filter((l) => !l.startsWith('debugfs ')).join('\n');
}

/** Bytes a directory tree takes on disk (sparse files count what they hold). */
function diskUsage(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).blocks * 512;
  }
  return total;
}

for (const engine of ENGINES) describe(`snapshots (${engine})`, { timeout: 1_800_000, skip: (!ready && 'sample guests (with disk-modules.cpio.gz) not built') || engineSkip(engine) }, () => {
  let t: TestHost;
  let serial: SerialWatch;
  let disk: string;
  let scratch: string;
  let uuid: string;
  const format = engine === 'qemu' ? 'qcow2' : 'raw';
  const snapDir = (name: string) => path.join(t.home, 'snapshots', uuid, 'snaps', name);
  const cli = async (args: string[]) => {
    const r = await t.cli(args);
    assert.equal(r.code, 0, `domus ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    t = await TestHost.start();
    scratch = path.join(t.home, 'scratch');
    fs.mkdirSync(scratch);
    const initrd = diskGuestInitrd(scratch);
    const images = (await t.client.call('pool.list', {})).pools[0].path;
    disk = path.join(images, `sample.${format}`);
    if (format === 'qcow2') execFileSync('qemu-img', ['convert', '-O', 'qcow2', guest('disk.img'), disk]);
    else fs.copyFileSync(guest('disk.img'), disk);
    await t.client.call('domain.define', { xml: diskGuestXml('snap', engine, initrd, [ideDisk({ file: disk, dev: 'hda', format })]) });
    uuid = (await t.client.call('domain.info', { domain: 'snap' })).uuid;
  });
  after(async () => {
    await t?.stop();
  });

  it('a snapshot of the shut-off guest holds its disks only', async () => {
    assert.equal(await cli(['snapshot-create-as', 'snap', 'off', '--description', 'before boot']), 'Domain snapshot off created\n');
    const { snapshot } = await t.client.call('snapshot.info', { domain: 'snap', snapshot: 'off' });
    assert.deepEqual([snapshot.state, snapshot.memory, snapshot.current, snapshot.parent, snapshot.thumbnail], ['shutoff', false, true, undefined, false]);
    assert.match(fileOnDisk(disk, format, '/f', scratch), /File not found/);
  });

  it('revert of a running guest brings back its disk and memory: it continues from the snapshot moment', async () => {
    await t.client.call('domain.start', { domain: 'snap' });
    serial = await SerialWatch.open(t.client, 'snap');
    await serial.wait(/DOMUS-GUEST-READY/, BOOT);
    assert.match(await serial.sh('domus-disks && mkdir -p /mnt && mount -t ext4 /dev/sda1 /mnt && echo mounted', 400_000), /mounted/);
    await serial.sh('echo before > /mnt/f; sync; MARK=before');

    let t0 = Date.now();
    assert.equal(await cli(['snapshot-create-as', 'snap', 's1', '--description', 'running']), 'Domain snapshot s1 created\n');
    const createMs = Date.now() - t0;
    assert.match(await serial.sh('echo alive-$((6*7))'), /alive-42/, 'the guest runs on after the snapshot');
    assert.equal((await t.client.call('domain.info', { domain: 'snap' })).state, 'running');

    // fsync (sync FILE), not sync(2): without a journal, ext4's sync(2) can flush the disk before it
    // writes the inode table block, which then sits in QEMU's qcow2 cache, unseen by qemu-img.
    await serial.sh('echo after > /mnt/f; sync /mnt/f; MARK=after');
    assert.match(fileOnDisk(disk, format, '/f', scratch), /^after$/m);
    t0 = Date.now();
    assert.equal(await cli(['snapshot-revert', 'snap', 's1']), 'Domain snapshot s1 reverted\n\n');
    const revertMs = Date.now() - t0;
    const info = await t.client.call('domain.info', { domain: 'snap' });
    assert.deepEqual([info.state, info.reason], ['running', 'from snapshot']);
    // The shell's variable is the snapshot's; with the page cache dropped, the file is read from the reverted disk.
    const out = await serial.sh('echo mark=$MARK; echo 3 > /proc/sys/vm/drop_caches; cat /mnt/f');
    assert.match(out, /mark=before/);
    assert.match(out, /^before$/m);
    assert.doesNotMatch(out, /^after$/m);
    const { snapshot } = await t.client.call('snapshot.info', { domain: 'snap', snapshot: 's1' });
    assert.deepEqual([snapshot.state, snapshot.memory, snapshot.current, snapshot.parent, snapshot.thumbnail], ['running', true, true, 'off', true]);
    assert.ok((await t.client.call('snapshot.thumbnail', { domain: 'snap', snapshot: 's1' })).png);
    console.log(`${engine}: snapshot of a running 128 MiB guest: create ${createMs} ms, revert ${revertMs} ms (CLI round trips)`);
  });

  it('the tree, current, list shapes and dumpxml', async () => {
    await serial.sh('echo two > /mnt/f; sync');
    await cli(['snapshot-create-as', 'snap', 's2']);
    assert.equal(await cli(['snapshot-list', 'snap', '--tree']), 'off\n  |\n  +- s1\n      |\n      +- s2\n        \n\n');
    const list = await cli(['snapshot-list', 'snap', '--parent']);
    assert.match(list, /^ Name   Creation Time {15}State {5}Parent\n-+\n off    \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}   shutoff\n s1 {5}.* running {3}off\n s2 .* running {3}s1\n\n$/);
    assert.equal(await cli(['snapshot-current', 'snap', '--name']), 's2\n');
    assert.match(await cli(['snapshot-info', 'snap', '--current']), /^Name: {11}s2\nDomain: {9}snap\nCurrent: {8}yes\nState: {10}running\nLocation: {7}internal\nParent: {9}s1\nChildren: {7}0\nDescendants: {4}0\nMetadata: {7}yes\n\n$/);
    const xml = await cli(['snapshot-dumpxml', 'snap', 's1']);
    assert.match(xml, /^<domainsnapshot>\n  <name>s1<\/name>\n  <description>running<\/description>\n  <state>running<\/state>\n  <parent>\n    <name>off<\/name>\n  <\/parent>\n  <creationTime>\d+<\/creationTime>\n  <memory snapshot='internal'\/>/);
    const file = path.join(scratch, 's1.xml');
    // libvirt's schema has no <domain type='v86'>: that one attribute is given a type it knows.
    fs.writeFileSync(file, xml.replace("<domain type='v86'>", "<domain type='qemu'>"));
    const v = spawnSync('virt-xml-validate', [file, 'domainsnapshot'], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const missing = await t.cli(['snapshot-info', 'snap', 'nope']);
    assert.equal(missing.stderr, "error: Domain snapshot not found: no domain snapshot with matching name 'nope'\n");
    const again = await t.cli(['snapshot-create-as', 'snap', 's1']);
    assert.equal(again.stderr, 'error: operation failed: domain moment s1 already exists\n');
  });

  it('revert to the shut-off snapshot stops the guest and brings its disk back', async () => {
    await cli(['snapshot-revert', 'snap', 'off']);
    const info = await t.client.call('domain.info', { domain: 'snap' });
    assert.deepEqual([info.state, info.reason], ['shutoff', 'from snapshot']);
    assert.match(fileOnDisk(disk, format, '/f', scratch), /File not found/);
    assert.equal(await cli(['snapshot-current', 'snap', '--name']), 'off\n');
  });

  it('delete re-parents the children and frees the space; --children takes them along', async () => {
    const used = diskUsage(snapDir('s1'));
    await cli(['snapshot-delete', 'snap', 's1']);
    assert.equal(fs.existsSync(snapDir('s1')), false);
    if (engine === 'qemu') assert.doesNotMatch(execFileSync('qemu-img', ['snapshot', '-l', '-U', disk], { encoding: 'utf8' }), /\bs1\b/);
    else assert.ok(used > 0, 'the running snapshot held its state file');
    assert.equal((await t.client.call('snapshot.info', { domain: 'snap', snapshot: 's2' })).snapshot.parent, 'off');
    // Reverting to s2 (a running snapshot) from the shut-off guest restores it running.
    await cli(['snapshot-revert', 'snap', 's2']);
    assert.match(await serial.sh('echo 3 > /proc/sys/vm/drop_caches; cat /mnt/f'), /^two$/m);
    const undefine = await t.cli(['undefine', 'snap', '--force']);
    assert.equal(undefine.stderr, "error: Failed to undefine domain 'snap'\nerror: Requested operation is not valid: cannot delete inactive domain with 2 snapshots\n");
    assert.equal(await cli(['snapshot-delete', 'snap', 'off', '--children']), 'Domain snapshot off deleted\n\n');
    assert.equal(await cli(['snapshot-list', 'snap', '--name']), '\n');
    assert.deepEqual(fs.readdirSync(path.join(t.home, 'snapshots', uuid, 'snaps')), []);
    if (engine === 'qemu') assert.equal(execFileSync('qemu-img', ['snapshot', '-l', '-U', disk], { encoding: 'utf8' }), '');
    const current = await t.cli(['snapshot-current', 'snap', '--name']);
    assert.equal(current.stderr, 'error: Domain snapshot not found: the domain does not have a current snapshot\n');
  });
});
