// Storage through a real host: the default pool, volumes by API and by the CLI (virsh's outputs),
// host.browse, and device definitions (attach-disk, detach-disk, change-media --config).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ApiCallError } from '../../../shared/client.js';
import { TestHost, guest, guestsBuilt } from '../../testing/harness.js';

const MiB = 1024 * 1024;

describe('storage pools and volumes', { timeout: 300_000 }, () => {
  let t: TestHost;
  let images: string;
  before(async () => {
    t = await TestHost.start();
    images = path.join(t.home, 'images');
  });
  after(async () => {
    await t?.stop();
  });

  it('has a default dir pool under the data dir, made on first use', async () => {
    assert.equal(fs.existsSync(images), false);
    const { pools } = await t.client.call('pool.list', {});
    assert.equal(pools.length, 1);
    const [p] = pools;
    assert.deepEqual([p.name, p.type, p.path, p.state, p.autostart], ['default', 'dir', images, 'running', true]);
    assert.ok(p.capacityBytes > 0 && p.availableBytes > 0 && p.availableBytes <= p.capacityBytes);
    assert.ok(fs.statSync(images).isDirectory());

    const list = await t.cli(['pool-list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ Name\s+State\s+Autostart\n-+\n default\s+active\s+yes\n/);
    const details = await t.cli(['pool-list', '--details']);
    assert.match(details.stdout, / default\s+running\s+yes\s+yes\s+[\d.]+ (G|T|M)iB\s+[\d.]+ \w+\s+[\d.]+ \w+/);
  });

  it('vol-create-as, vol-list, vol-info, vol-path in virsh shapes; raw volumes are sparse', async () => {
    let r = await t.cli(['vol-create-as', 'default', 'a.img', '10M']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Vol a.img created\n\n');
    r = await t.cli(['vol-create-as', 'default', 'q.qcow2', '2G', '--format', 'qcow2']);
    assert.equal(r.code, 0, r.stderr);

    r = await t.cli(['vol-list', 'default']);
    assert.match(r.stdout, /^ Name\s+Path\n-+\n a\.img\s+\S+\/images\/a\.img\n q\.qcow2\s+\S+\/images\/q\.qcow2\n\n$/);
    r = await t.cli(['vol-list', 'default', '--details']);
    assert.match(r.stdout, / a\.img\s+\S+\s+file\s+10\.00 MiB\s+0\.00 B/);
    assert.match(r.stdout, / q\.qcow2\s+\S+\s+file\s+2\.00 GiB\s+\d+\.\d+ KiB/);

    r = await t.cli(['vol-info', 'q.qcow2', '--pool', 'default']);
    assert.equal(r.stdout, 'Name:           q.qcow2\nType:           file\nCapacity:       2.00 GiB\n' + r.stdout.split('\n')[3] + '\n\n');
    r = await t.cli(['vol-path', 'a.img', '--pool', 'default']);
    assert.equal(r.stdout, `${path.join(images, 'a.img')}\n\n`);

    const { volume } = await t.client.call('volume.info', { volume: path.join(images, 'a.img') });
    assert.deepEqual([volume.pool, volume.name, volume.format, volume.capacityBytes, volume.usedBy], ['default', 'a.img', 'raw', 10 * MiB, []]);
    assert.ok(volume.allocationBytes < 64 * 1024);
  });

  it('refuses bad names, capacities, duplicates and unknown pools or volumes with clear errors', async () => {
    let r = await t.cli(['vol-create-as', 'default', 'a.img', '1M']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^error: Failed to create vol a\.img\nerror: operation failed: cannot create volume 'a\.img': '.*a\.img' already exists\n$/);
    r = await t.cli(['vol-create-as', 'default', 'x.img', '10Q']);
    assert.match(r.stderr, /unknown suffix '10Q'|unknown suffix 'Q'/);
    r = await t.cli(['vol-list', 'nope']);
    assert.match(r.stderr, /^error: failed to get pool 'nope'\nerror: Storage pool not found: no storage pool with matching name 'nope'\n$/);
    r = await t.cli(['vol-info', 'missing.img']);
    assert.match(r.stderr, /^error: failed to get vol 'missing\.img'\nerror: Storage volume not found: no storage vol with matching name 'missing\.img'\n$/);
    await assert.rejects(t.client.call('volume.create', { name: '../escape', capacityBytes: MiB }), (e: ApiCallError) => /volume name may hold/.test(e.message));
    await assert.rejects(t.client.call('volume.create', { name: 'big', capacityBytes: 0 }), (e: ApiCallError) => e.code === 'INVALID_ARG');
  });

  it('vol-clone keeps data and holes; vol-resize grows and refuses to shrink; vol-delete removes', async () => {
    const a = path.join(images, 'a.img');
    const fd = fs.openSync(a, 'r+');
    fs.writeSync(fd, Buffer.from('guest data'), 0, 10, 5 * MiB);
    fs.closeSync(fd);
    let r = await t.cli(['vol-clone', 'a.img', 'b.img', '--pool', 'default']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Vol b.img cloned from a.img\n\n');
    const b = path.join(images, 'b.img');
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)));
    const { volume } = await t.client.call('volume.info', { pool: 'default', volume: 'b.img' });
    assert.ok(volume.allocationBytes <= 64 * 1024, `clone allocation ${volume.allocationBytes}`);

    r = await t.cli(['vol-resize', 'b.img', '20M', '--pool', 'default']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "Size of volume 'b.img' successfully changed to 20M\n\n");
    assert.equal(fs.statSync(b).size, 20 * MiB);
    r = await t.cli(['vol-resize', 'b.img', '5M', '--pool', 'default']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /error: Failed to change size of volume 'b\.img' to 5M\nerror: invalid argument: cannot resize volume 'b\.img': cannot shrink 'b\.img' .*only growing/);
    assert.equal(fs.statSync(b).size, 20 * MiB);

    r = await t.cli(['vol-resize', 'q.qcow2', '3G']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await t.client.call('volume.info', { volume: 'q.qcow2' })).volume.capacityBytes, 3 * 1024 * MiB);

    r = await t.cli(['vol-delete', 'b.img', '--pool', 'default']);
    assert.equal(r.stdout, 'Vol b.img deleted\n\n');
    assert.equal(fs.existsSync(b), false);
    assert.deepEqual(
      (await t.client.call('volume.list', {})).volumes.map((v) => v.name),
      ['a.img', 'q.qcow2'],
    );
  });

  it('host.browse lists a directory for the file chooser: directories first, filters, clear errors', async () => {
    const dir = path.join(t.home, 'browse');
    fs.mkdirSync(path.join(dir, 'zdir'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'adir'));
    for (const f of ['b.iso', 'c.qcow2', 'd.img', 'notes.txt', 'vmlinuz-6.1', 'initrd.img-6.1', 'bzImage', '.hidden.iso']) fs.writeFileSync(path.join(dir, f), 'x');
    const names = async (filter: 'any' | 'iso' | 'disk' | 'kernel'): Promise<string[]> =>
      (await t.client.call('host.browse', { path: dir, filter })).entries.map((e) => `${e.kind}:${e.name}`);
    assert.deepEqual(await names('any'), ['dir:adir', 'dir:zdir', 'file:b.iso', 'file:bzImage', 'file:c.qcow2', 'file:d.img', 'file:initrd.img-6.1', 'file:notes.txt', 'file:vmlinuz-6.1']);
    assert.deepEqual(await names('iso'), ['dir:adir', 'dir:zdir', 'file:b.iso']);
    assert.deepEqual(await names('disk'), ['dir:adir', 'dir:zdir', 'file:b.iso', 'file:c.qcow2', 'file:d.img']);
    assert.deepEqual(await names('kernel'), ['dir:adir', 'dir:zdir', 'file:bzImage', 'file:initrd.img-6.1', 'file:vmlinuz-6.1']);
    const listing = await t.client.call('host.browse', { path: dir });
    assert.equal(listing.parent, t.home);
    assert.equal(listing.entries.find((e) => e.name === 'b.iso')?.sizeBytes, 1);

    const home = await t.client.call('host.browse', {});
    assert.equal(home.path, images, 'the default pool by default');
    assert.deepEqual(home.entries.map((e) => e.name), ['a.img', 'q.qcow2']);

    await assert.rejects(t.client.call('host.browse', { path: path.join(dir, 'absent') }), /cannot list '.*absent': no such directory/);
    await assert.rejects(t.client.call('host.browse', { path: path.join(dir, 'notes.txt') }), /cannot list '.*notes\.txt': not a directory/);
  });

  it('attach-disk and detach-disk --config edit the definition; --live is refused on v86', { skip: !guestsBuilt() && 'sample guests not built' }, async () => {
    await t.client.call('domain.create', { spec: { name: 'dev', memoryMiB: 64, vcpus: 1, boot: { kind: 'disk', disk: path.join(images, 'a.img') } } });
    let r = await t.cli(['attach-disk', 'dev', guest('tiny.iso'), 'hdc', '--type', 'cdrom', '--mode', 'readonly', '--config']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Disk attached successfully\n\n');
    r = await t.cli(['attach-disk', 'dev', path.join(images, 'q.qcow2'), 'hdb', '--config']);
    assert.equal(r.code, 0, r.stderr);
    let disks = (await t.client.call('domain.info', { domain: 'dev' })).config.disks;
    assert.deepEqual(
      disks.map((d) => [d.target, d.device, d.format, d.readonly, d.source && path.basename(d.source)]),
      [
        ['hda', 'disk', 'raw', false, 'a.img'],
        ['hdc', 'cdrom', 'raw', true, 'tiny.iso'],
        ['hdb', 'disk', 'qcow2', false, 'q.qcow2'],
      ],
    );
    assert.deepEqual((await t.client.call('volume.info', { volume: 'q.qcow2' })).volume.usedBy, ['dev']);
    r = await t.cli(['attach-disk', 'dev', path.join(images, 'a.img'), 'hdb', '--config']);
    assert.match(r.stderr, /error: Failed to attach disk\nerror: operation failed: target 'hdb' already exists/);

    r = await t.cli(['change-media', 'dev', 'hdc', '--eject', '--config']);
    assert.equal(r.stdout, 'Successfully ejected media.\n\n', r.stderr);
    r = await t.cli(['change-media', 'dev', 'hdc', '--eject', '--config']);
    assert.match(r.stderr, /The disk device 'hdc' doesn't have media/);
    r = await t.cli(['change-media', 'dev', 'hdc', guest('tiny.iso'), '--insert', '--config']);
    assert.equal(r.stdout, 'Successfully inserted media.\n\n', r.stderr);
    r = await t.cli(['change-media', 'dev', 'hdc', guest('tiny.iso'), '--insert', '--config']);
    assert.match(r.stderr, /already has media/);
    r = await t.cli(['change-media', 'dev', 'hda', guest('tiny.iso'), '--update', '--config']);
    assert.match(r.stderr, /The disk device 'hda' is not removable/);

    r = await t.cli(['detach-disk', 'dev', 'hdb', '--config']);
    assert.equal(r.stdout, 'Disk detached successfully\n\n', r.stderr);
    r = await t.cli(['detach-disk', 'dev', 'hdb', '--config']);
    assert.match(r.stderr, /No disk found whose source path or target is hdb/);
    disks = (await t.client.call('domain.info', { domain: 'dev' })).config.disks;
    assert.deepEqual(disks.map((d) => d.target), ['hda', 'hdc']);
    const xml = (await t.client.call('domain.xml', { domain: 'dev', inactive: true })).xml;
    assert.match(xml, /<disk type='file' device='cdrom'>\n\s+<driver type='raw'\/>\n\s+<source file='[^']*tiny\.iso'\/>\n\s+<target dev='hdc' bus='ide'\/>\n\s+<readonly\/>\n\s+<\/disk>/);
    // Persisted: a new host reads the same definition.
    const onDisk = fs.readdirSync(path.join(t.home, 'domains')).map((f) => fs.readFileSync(path.join(t.home, 'domains', f), 'utf8'));
    assert.ok(onDisk.some((x) => x.includes('tiny.iso') && !x.includes('q.qcow2')));

    await t.client.call('domain.start', { domain: 'dev' });
    r = await t.cli(['attach-disk', 'dev', path.join(images, 'q.qcow2'), 'hdb', '--live']);
    assert.match(r.stderr, /error: Failed to attach disk\nerror: Operation not supported: v86 cannot hot-plug disks, use --config/);
    r = await t.cli(['detach-disk', 'dev', 'hdc']);
    assert.match(r.stderr, /Operation not supported: v86 cannot hot-unplug disks, use --config/);
    r = await t.cli(['vol-delete', 'a.img']);
    assert.match(r.stderr, /error: Failed to delete vol a\.img\nerror: Requested operation is not valid: volume 'a\.img' is in use by running domain 'dev'/);
    assert.ok(fs.existsSync(path.join(images, 'a.img')));
    await t.client.call('domain.destroy', { domain: 'dev' });
  });
});
