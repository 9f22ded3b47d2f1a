// Storage of a libvirt host through a Domus connection, checked against virsh's view of the same
// private libvirtd: the default pool made on first use, volumes made, cloned, resized, deleted,
// uploads (bytes compared on the far side, progress, cancel, refusals), the CLI's vol-upload, and
// the New VM spec defined and booted there.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Events, JobInfo } from '../../../shared/api.js';
import { ApiCallError } from '../../../shared/client.js';
import { SAMPLE_CMDLINE, GUEST_DIR } from '../new-vm/samples.js';
import { runCli, TestHost, until } from '../../testing/harness.js';
import { libvirtdSkip } from '../../testing/libvirtd.js';

const skip = libvirtdSkip();
const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('storage and New VM on a libvirt connection', { skip }, () => {
  let t: TestHost;
  /** The daemon's /var/lib/libvirt/images, as this process sees it (the daemon's tree is a bind mount of the run dir). */
  let images: string;
  const jobs: { name: keyof Events; job: JobInfo; connection?: string }[] = [];

  before(async () => {
    t = await TestHost.start('libvirt');
    images = path.join(t.libvirtd!.dir, 'tree1', 'images');
    for (const name of ['job.progress', 'job.completed'] as const) t.client.on(name, ({ job }, connection) => jobs.push({ name, job, connection }));
  });
  after(async () => {
    await t?.stop();
  });

  const virsh = (...args: string[]) => t.libvirtd!.virsh(...args);
  const code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof ApiCallError, String(err));
      return `${err.code}: ${err.message}`;
    }
    assert.fail('the call succeeded');
  };

  test('a fresh libvirtd has no pool; the first volume makes the default pool at /var/lib/libvirt/images, and says so', async () => {
    assert.deepEqual((await t.client.call('pool.list', {})).pools, []);
    const made = await t.client.call('volume.create', { pool: 'default', name: 'a.img', capacityBytes: 4 << 20, format: 'raw' });
    assert.match(made.warnings?.join('\n') ?? '', /created the 'default' pool at \/var\/lib\/libvirt\/images/);
    assert.match((await virsh('pool-list', '--all')).stdout, /^\s*default\s+active\s+yes\s*$/m);
    assert.match((await virsh('pool-dumpxml', 'default')).stdout, /<path>\/var\/lib\/libvirt\/images<\/path>/);
    const [pool] = (await t.client.call('pool.list', {})).pools;
    assert.equal(pool.name, 'default');
    assert.equal(pool.type, 'dir');
    assert.equal(pool.path, '/var/lib/libvirt/images');
    assert.equal(pool.state, 'running');
    assert.equal(pool.autostart, true);
    assert.ok(pool.capacityBytes > 0 && pool.availableBytes > 0);
    // The second use finds it: no note.
    const second = await t.client.call('volume.create', { pool: 'default', name: 'b.qcow2', capacityBytes: 8 << 20, format: 'qcow2' });
    assert.equal(second.warnings, undefined);
  });

  test('volumes: list, info, clone, resize and delete agree with virsh', async () => {
    const { volumes } = await t.client.call('volume.list', { pool: 'default' });
    assert.deepEqual(
      volumes.map((v) => [v.name, v.path, v.format, v.capacityBytes]),
      [
        ['a.img', '/var/lib/libvirt/images/a.img', 'raw', 4 << 20],
        ['b.qcow2', '/var/lib/libvirt/images/b.qcow2', 'qcow2', 8 << 20],
      ],
    );
    const listed = (await virsh('vol-list', 'default')).stdout;
    for (const v of volumes) assert.match(listed, new RegExp(`^\\s*${v.name.replace('.', '\\.')}\\s+${v.path}\\s*$`, 'm'));
    assert.match((await virsh('vol-info', '--pool', 'default', 'b.qcow2')).stdout, /Capacity:\s+8\.00 MiB/);
    // By path, as virsh finds one.
    assert.equal((await t.client.call('volume.info', { volume: '/var/lib/libvirt/images/a.img' })).volume.name, 'a.img');

    const clone = (await t.client.call('volume.clone', { pool: 'default', source: 'b.qcow2', name: 'c.qcow2' })).volume;
    assert.equal(clone.format, 'qcow2');
    assert.equal(clone.capacityBytes, 8 << 20);
    assert.match((await virsh('vol-dumpxml', '--pool', 'default', 'c.qcow2')).stdout, /<format type='qcow2'\/>/);

    const grown = (await t.client.call('volume.resize', { pool: 'default', name: 'a.img', capacityBytes: 16 << 20 })).volume;
    assert.equal(grown.capacityBytes, 16 << 20);
    assert.equal(fs.statSync(path.join(images, 'a.img')).size, 16 << 20);

    for (const name of ['c.qcow2', 'b.qcow2']) await t.client.call('volume.delete', { pool: 'default', name });
    assert.doesNotMatch((await virsh('vol-list', 'default')).stdout, /qcow2/);
    assert.match(await code(t.client.call('volume.info', { pool: 'default', volume: 'b.qcow2' })), /^NO_STORAGE_VOL: .*b\.qcow2/);
    assert.match(await code(t.client.call('volume.list', { pool: 'nosuch' })), /^NO_STORAGE_POOL: .*nosuch/);
  });

  test('upload: the file arrives byte for byte, with progress events on the connection', async () => {
    const iso = path.join(GUEST_DIR, 'tiny.iso');
    jobs.length = 0;
    const { volume, job } = await t.client.call('volume.upload', { pool: 'default', name: 'tiny.iso', file: iso });
    assert.equal(volume.path, '/var/lib/libvirt/images/tiny.iso');
    assert.equal(volume.capacityBytes, fs.statSync(iso).size);
    assert.equal(sha256(path.join(images, 'tiny.iso')), sha256(iso));
    assert.equal(job.status, 'completed');
    assert.equal(job.processedBytes, fs.statSync(iso).size);
    const progress = jobs.filter((j) => j.name === 'job.progress' && j.job.id === job.id);
    assert.ok(progress.some((j) => j.job.processedBytes > 0 && j.job.processedBytes <= j.job.totalBytes), JSON.stringify(progress));
    assert.ok(progress.every((j) => j.connection === t.libvirtd!.uri && j.job.operation === 'upload' && j.job.volume?.name === 'tiny.iso'));
    await until(() => jobs.some((j) => j.name === 'job.completed' && j.job.id === job.id && j.job.status === 'completed'), 2000, 'the upload job to complete');
    assert.match((await virsh('vol-list', 'default')).stdout, /tiny\.iso/);
  });

  test('upload refuses a missing file and an existing volume name, naming the problem', async () => {
    assert.match(await code(t.client.call('volume.upload', { pool: 'default', name: 'x.iso', file: '/nonexistent/x.iso' })), /^INVALID_ARG: .*'\/nonexistent\/x\.iso' does not exist/);
    const before = sha256(path.join(images, 'tiny.iso'));
    assert.match(await code(t.client.call('volume.upload', { pool: 'default', name: 'tiny.iso', file: path.join(GUEST_DIR, 'initrd.gz') })), /tiny\.iso/);
    assert.equal(sha256(path.join(images, 'tiny.iso')), before);
    assert.doesNotMatch((await virsh('vol-list', 'default')).stdout, /x\.iso/);
  });

  test('a cancelled upload leaves no volume', async () => {
    const big = path.join(t.home, 'big.img');
    fs.writeFileSync(big, Buffer.alloc(0));
    fs.truncateSync(big, 2 * 1024 ** 3);
    jobs.length = 0;
    const upload = code(t.client.call('volume.upload', { pool: 'default', name: 'big.img', file: big }));
    await until(() => jobs.some((j) => j.name === 'job.progress' && j.job.volume?.name === 'big.img' && j.job.processedBytes > 0), 20_000, 'the upload to make progress');
    const id = jobs.find((j) => j.job.volume?.name === 'big.img')!.job.id;
    const { job } = await t.client.call('volume.uploadAbort', { job: id });
    assert.equal(job.status, 'aborted');
    assert.ok(job.processedBytes < job.totalBytes);
    assert.match(await upload, /^OPERATION_ABORTED: .*cancelled; the volume was deleted/);
    assert.doesNotMatch((await virsh('vol-list', 'default')).stdout, /big\.img/);
    assert.equal(fs.existsSync(path.join(images, 'big.img')), false);
    assert.match(await code(t.client.call('volume.uploadAbort', { job: id })), new RegExp(`^OPERATION_INVALID: .*no upload job ${id} is running`));
  });

  test('domus -c URI vol-upload VOLNAME FILE --pool POOL', async () => {
    const file = path.join(GUEST_DIR, 'initrd.gz');
    const r = await runCli(t.home, ['-c', t.libvirtd!.uri, 'vol-upload', 'initrd.gz', file, '--pool', 'default']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Vol initrd\.gz uploaded \(.*\) to \/var\/lib\/libvirt\/images\/initrd\.gz$/m);
    assert.equal(sha256(path.join(images, 'initrd.gz')), sha256(file));
    const missing = await runCli(t.home, ['-c', t.libvirtd!.uri, 'vol-upload', 'nope.img', '/nonexistent/file']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /error: cannot upload to volume nope\.img\nerror: .*does not exist/);
  });

  test('domain.create: the PV sample, its kernel and initrd uploaded into the pool, is defined and boots on libvirtd', async () => {
    await t.client.call('volume.upload', { pool: 'default', name: 'vmlinuz', file: path.join(GUEST_DIR, 'vmlinuz') });
    const spec = { name: 'lv-new-pv', engine: 'qemu', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: '/var/lib/libvirt/images/vmlinuz', initrd: 'initrd.gz', cmdline: SAMPLE_CMDLINE } } as const;
    // A file that is no volume of the host is refused, naming it.
    assert.match(await code(t.client.call('domain.create', { spec: { ...spec, boot: { ...spec.boot, kernel: '/boot/nope' } } })), /^INVALID_ARG: .*'\/boot\/nope' is not a volume/);
    const { domain } = await t.client.call('domain.create', { spec });
    assert.equal(domain.name, 'lv-new-pv');
    const xml = (await virsh('dumpxml', 'lv-new-pv')).stdout;
    assert.match(xml, /<kernel>\/var\/lib\/libvirt\/images\/vmlinuz<\/kernel>/);
    assert.match(xml, /<initrd>\/var\/lib\/libvirt\/images\/initrd\.gz<\/initrd>/);
    assert.match(xml, /<graphics type='vnc' port='-1' autoport='yes' listen='127\.0\.0\.1'>/);
    assert.match(xml, /<serial type='pty'>/);
    assert.deepEqual((await t.client.call('volume.info', { pool: 'default', volume: 'vmlinuz' })).volume.usedBy, ['lv-new-pv']);
    // The same name again is libvirt's refusal.
    assert.match(await code(t.client.call('domain.create', { spec })), /already exists/);

    await t.client.call('domain.start', { domain: 'lv-new-pv' });
    assert.match((await virsh('dominfo', 'lv-new-pv')).stdout, /^State:\s+running$/m);
    assert.equal((await t.client.call('domain.info', { domain: 'lv-new-pv' })).state, 'running');
    // A running guest's kernel is not deleted from under it.
    assert.match(await code(t.client.call('volume.delete', { pool: 'default', name: 'vmlinuz' })), /^OPERATION_INVALID: .*in use by running domain 'lv-new-pv'/);
    await t.client.call('domain.destroy', { domain: 'lv-new-pv' });
  });
});
