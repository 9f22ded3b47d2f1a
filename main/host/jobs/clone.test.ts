// Clone (domain.clone and `domus clone`): a shut-off and a running original, the copies' content,
// new UUID and MACs, shared CD-ROMs, name clashes, the plan's names, abort, and virt-clone's CLI;
// then delete with storage (domain.undefine's storage, `domus undefine --remove-all-storage`) on the clones.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Events } from '../../../shared/api.js';
import { TestHost, guest, sampleGuestXml } from '../../testing/harness.js';

const NIC = "<interface type='network'><source network='default'/><model type='ne2k_pci'/></interface>";

function disks(file: string): string {
  return `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${file}'/><target dev='hda' bus='ide'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${guest('tiny.iso')}'/><target dev='hdc' bus='ide'/><readonly/></disk>
    ${NIC}${NIC}`;
}

/** A raw image with data in some blocks and holes elsewhere. */
function writeImage(file: string, mib: number, seed: number): void {
  const fd = fs.openSync(file, 'wx');
  try {
    fs.ftruncateSync(fd, mib << 20);
    const block = Buffer.alloc(4096, seed);
    for (let i = 0; i < mib * 256; i += 3) fs.writeSync(fd, block, 0, block.length, i * 4096);
  } finally {
    fs.closeSync(fd);
  }
}

describe('clone, and delete with storage', { timeout: 600_000 }, () => {
  let t: TestHost;
  let pool: string;
  const macs = async (domain: string): Promise<string[]> => (await t.client.call('domain.info', { domain })).config.interfaces.map((i) => i.mac!);

  before(async () => {
    t = await TestHost.start();
    pool = (await t.client.call('pool.list', {})).pools[0].path;
    writeImage(path.join(pool, 'orig.img'), 8, 0x5a);
    await t.client.call('domain.define', { xml: sampleGuestXml('orig', 'v86', disks(path.join(pool, 'orig.img'))) });
  });
  after(() => t.stop());

  it('clones a shut-off domain: new name, UUID and MACs, the disk copied byte for byte, the CD-ROM shared', async () => {
    const plan = await t.client.call('domain.clone', { domain: 'orig', dryRun: true });
    assert.equal(plan.name, 'orig-clone', "virt-clone's name");
    assert.equal(plan.domain, undefined);
    assert.deepEqual(
      plan.disks.map((d) => [d.target, d.action, d.file]),
      [
        ['hda', 'copy', path.join(pool, 'orig-clone.img')],
        ['hdc', 'share', guest('tiny.iso')],
      ],
    );
    assert.equal(fs.existsSync(path.join(pool, 'orig-clone.img')), false, 'a dry run copies nothing');

    const progress: Events['job.progress'][] = [];
    const off = t.client.on('job.progress', (e) => void progress.push(e));
    const r = await t.client.call('domain.clone', { domain: 'orig', name: 'twin' });
    off();
    assert.equal(r.domain?.name, 'twin');
    assert.equal(r.domain?.state, 'shutoff');
    assert.equal(r.job?.status, 'completed');
    assert.ok(progress.some((e) => e.job.operation === 'clone' && e.job.domain === 'orig' && e.job.totalBytes === 8 << 20), 'progress of the copy, as a job on the original');
    const copy = path.join(pool, 'twin.img');
    assert.ok(fs.readFileSync(copy).equals(fs.readFileSync(path.join(pool, 'orig.img'))), 'same bytes');
    assert.ok(fs.statSync(copy).blocks * 512 < 8 << 20, 'holes stay holes');

    const [a, b] = await Promise.all([t.client.call('domain.info', { domain: 'orig' }), t.client.call('domain.info', { domain: 'twin' })]);
    assert.notEqual(a.uuid, b.uuid);
    assert.deepEqual(b.config.disks.map((d) => d.source), [copy, guest('tiny.iso')]);
    const [mo, mt] = [await macs('orig'), await macs('twin')];
    assert.equal(mt.length, 2);
    assert.ok(mt.every((m) => !mo.includes(m)) && mt[0] !== mt[1], `new MACs: ${mo} vs ${mt}`);
    const vol = (await t.client.call('volume.list', { pool: 'default' })).volumes.find((v) => v.name === 'twin.img');
    assert.deepEqual(vol?.usedBy, ['twin'], 'the copy is a volume of the pool, used by the clone only');
  });

  it('refuses a name or a file that is taken, and copies nothing then', async () => {
    await assert.rejects(t.client.call('domain.clone', { domain: 'orig', name: 'twin' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'INVALID_ARG');
      assert.match(err.message, /cannot name the clone 'twin': a domain of that name already exists/);
      return true;
    });
    await assert.rejects(t.client.call('domain.clone', { domain: 'orig', name: 'other', files: [path.join(pool, 'orig.img')] }), /the file already exists/);
    await assert.rejects(t.client.call('domain.clone', { domain: 'orig', name: 'other', files: ['/a', '/b'] }), /2 disk paths given, but the domain has 1 disk to copy/);
    assert.equal((await t.client.call('domain.list', { all: true })).domains.some((d) => d.name === 'other'), false);
  });

  it('clones a running domain only paused (virt-clone wants it paused or shut off); --pause pauses it for the copy', async () => {
    await t.client.call('domain.start', { domain: 'orig' });
    await assert.rejects(t.client.call('domain.clone', { domain: 'orig', name: 'live-twin' }), /domain 'orig' is running: .*--pause/);
    // The job ends after the clone is defined and the original resumed, so a client going by the
    // events sees them in that order.
    const order: string[] = [];
    const offs = [
      t.client.on('domain.lifecycle', ({ domain, event }) => void order.push(`${event} ${domain.name}`)),
      t.client.on('job.completed', ({ job }) => void order.push(`job ${job.operation} ${job.status}`)),
    ];
    const r = await t.client.call('domain.clone', { domain: 'orig', name: 'live-twin', pause: true });
    for (const off of offs) off();
    assert.deepEqual(order, ['suspended orig', 'defined live-twin', 'resumed orig', 'job clone completed']);
    assert.equal(r.resumed, true);
    assert.equal((await t.client.call('domain.info', { domain: 'orig' })).state, 'running', 'running again after the copy');
    assert.ok(fs.readFileSync(path.join(pool, 'live-twin.img')).equals(fs.readFileSync(path.join(pool, 'orig.img'))));
    const original = await macs('orig');
    assert.ok((await macs('live-twin')).every((m) => !original.includes(m)));
    await t.client.call('domain.suspend', { domain: 'orig' });
    const paused = await t.client.call('domain.clone', { domain: 'orig', name: 'paused-twin' });
    assert.equal(paused.resumed, undefined);
    assert.equal((await t.client.call('domain.info', { domain: 'orig' })).state, 'paused', 'a paused original stays paused');
    await t.client.call('domain.destroy', { domain: 'orig' });
  });

  it('aborts a copy: no file and no domain are left', async () => {
    writeImage(path.join(pool, 'big.img'), 256, 0x33);
    await t.client.call('domain.define', { xml: sampleGuestXml('big', 'v86', disks(path.join(pool, 'big.img'))) });
    let asked = false;
    let startDuringCopy: Promise<string> | undefined;
    const off = t.client.on('job.progress', (e) => {
      if (asked || e.job.operation !== 'clone' || e.job.processedBytes === 0) return;
      asked = true;
      // A guest started now would write the disk being copied.
      startDuringCopy = t.client.call('domain.start', { domain: 'big' }).then(
        () => 'started',
        (err: Error) => err.message,
      );
      void t.client.call('domain.jobAbort', { domain: 'big' });
    });
    const r = await t.client.call('domain.clone', { domain: 'big', name: 'big-copy' });
    off();
    assert.match(await startDuringCopy!, /domain 'big' is being cloned \(job \d+\): wait for the copy to end, or abort it/);
    // (On a filesystem that can reflink, the copy is one step and cannot be aborted: this test's is ext4 or tmpfs.)
    assert.equal(r.job?.status, 'aborted');
    assert.deepEqual(fs.readdirSync(pool).filter((f) => f.startsWith('big-copy') || f.includes('.tmp')), []);
    assert.equal((await t.client.call('domain.list', { all: true })).domains.some((d) => d.name === 'big-copy'), false);
  });

  it('refuses a clone name that is a path and a disk that is not a regular file; copies a read-only disk on v86', async () => {
    await assert.rejects(t.client.call('domain.clone', { domain: 'orig', name: '..' }), /cannot name the clone '\.\.': a domain name cannot contain '\/', be '\.' or '\.\.'/);
    await assert.rejects(t.client.call('domain.clone', { domain: 'orig', name: 'a/b' }), /cannot name the clone 'a\/b'/);
    const fifo = path.join(pool, 'fifo.img');
    writeImage(fifo, 1, 0x11);
    await t.client.call('domain.define', { xml: sampleGuestXml('piped', 'v86', disks(fifo)) });
    // Swapped for a FIFO after define: opening it to copy would block the host for good.
    fs.rmSync(fifo);
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    await assert.rejects(t.client.call('domain.clone', { domain: 'piped', name: 'piped-copy' }), new RegExp(`cannot clone disk '${fifo}': not a regular file`));
    await t.client.call('domain.undefine', { domain: 'piped' });
    fs.rmSync(fifo);

    // v86 opens a <readonly/> hard disk read-write: sharing it would let the clone write the original's.
    await t.client.call('domain.define', {
      xml: sampleGuestXml('ro', 'v86', `<disk type='file' device='disk'><source file='${path.join(pool, 'orig.img')}'/><target dev='hda' bus='ide'/><readonly/></disk>`),
    });
    const plan = await t.client.call('domain.clone', { domain: 'ro', dryRun: true });
    assert.deepEqual(plan.disks.map((d) => [d.target, d.action]), [['hda', 'copy']]);
    await t.client.call('domain.undefine', { domain: 'ro' });
  });

  it('gives the clone its own UEFI variable store and an automatic display port, as virt-clone does', async () => {
    const uefiXml = (name: string, nvram: string) => `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>128</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    ${nvram}
    <kernel>${guest('vmlinuz')}</kernel>
  </os>
  <devices><graphics type='vnc' port='5931' autoport='no' websocket='5731'/></devices>
</domain>`;
    const store = path.join(pool, 'named_VARS.fd');
    fs.writeFileSync(store, Buffer.alloc(64 * 1024, 0x5a));
    await t.client.call('domain.define', { xml: uefiXml('named', `<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>${store}</nvram>`) });
    const named = await t.client.call('domain.clone', { domain: 'named', name: 'named2' });
    const copy = path.join(pool, 'named2_VARS.fd');
    assert.ok(fs.readFileSync(copy).equals(fs.readFileSync(store)), 'the store copied beside the original, as NAME_VARS.fd');
    const { xml } = await t.client.call('domain.xml', { domain: named.uuid, inactive: true });
    assert.match(xml, new RegExp(`<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>${copy}</nvram>`));
    assert.match(xml, /<graphics type='vnc' autoport='yes'\/>/, 'no fixed port or websocket: they would clash with the original');
    await assert.rejects(t.client.call('domain.clone', { domain: 'named', name: 'named2', dryRun: true }), /a domain of that name already exists/);

    // A store named by no <nvram> path lives under the domain's UUID: the clone's is under its own.
    await t.client.call('domain.define', { xml: uefiXml('implicit', `<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'/>`) });
    const { uuid } = await t.client.call('domain.info', { domain: 'implicit' });
    fs.writeFileSync(path.join(t.paths.nvram, `${uuid}_VARS.fd`), Buffer.alloc(64 * 1024, 0xa5));
    const implicit = await t.client.call('domain.clone', { domain: 'implicit', name: 'implicit2' });
    assert.ok(fs.readFileSync(path.join(t.paths.nvram, `${implicit.uuid}_VARS.fd`)).equals(fs.readFileSync(path.join(t.paths.nvram, `${uuid}_VARS.fd`))));
    for (const d of ['named', 'named2', 'implicit', 'implicit2']) await t.client.call('domain.undefine', { domain: d });
  });

  it('domus clone takes virt-clone\'s options', async () => {
    const noFile = await t.cli(['clone', '--original', 'orig', '--name', 'c1']);
    assert.equal(noFile.code, 1);
    assert.equal(noFile.stderr, `error: A disk path must be specified to clone '${path.join(pool, 'orig.img')}' (--file PATH, or --auto-clone)\n`);
    const target = path.join(t.home, 'c1-disk.img');
    const ok = await t.cli(['clone', '-o', 'orig', '-n', 'c1', '--file', target, '--mac', '52:54:00:aa:bb:01']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`Copied hda '${path.join(pool, 'orig.img')}' to '${target}'\nShared hdc '${guest('tiny.iso')}'\n\nClone 'c1' created successfully.\n$`));
    assert.ok(fs.readFileSync(target).equals(fs.readFileSync(path.join(pool, 'orig.img'))));
    assert.equal((await macs('c1'))[0], '52:54:00:aa:bb:01');
    const auto = await t.cli(['clone', '--original', 'orig', '--auto-clone']);
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stdout, /Clone 'orig-clone' created successfully/);
    const clash = await t.cli(['clone', '--original', 'orig', '--name', 'c1', '--auto-clone']);
    assert.equal(clash.stderr, "error: Failed to clone domain 'orig'\nerror: invalid argument: cannot name the clone 'c1': a domain of that name already exists\n");
  });

  it('deletes a domain with its disk volumes, never one another domain uses nor a file outside the pools', async () => {
    await assert.rejects(t.client.call('domain.undefine', { domain: 'twin', storage: ['hdz'] }), /no disk 'hdz' in the domain to delete/);
    const r = await t.client.call('domain.undefine', { domain: 'twin', removeAllStorage: true });
    assert.deepEqual(r.removed, [{ target: 'hda', file: path.join(pool, 'twin.img') }]);
    assert.equal(r.kept?.length, 1);
    assert.match(r.kept![0].reason!, /^also used by 'orig'/, 'the shared CD-ROM stays');
    assert.equal(fs.existsSync(path.join(pool, 'twin.img')), false);
    assert.ok(fs.existsSync(guest('tiny.iso')));

    await t.client.call('domain.define', { xml: sampleGuestXml('sharer', 'v86', disks(path.join(pool, 'orig.img'))) });
    const shared = await t.client.call('domain.undefine', { domain: 'sharer', storage: ['hda'] });
    assert.deepEqual(shared.removed, []);
    assert.deepEqual(shared.kept?.map((k) => k.reason), ["also used by 'orig'"]);
    assert.ok(fs.existsSync(path.join(pool, 'orig.img')), "the original's disk stays");

    const cli = await t.cli(['undefine', 'c1', '--remove-all-storage']);
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.split('\n');
    assert.equal(lines[0], "Domain 'c1' has been undefined");
    assert.equal(lines[1], `Volume 'hda'(${path.join(t.home, 'c1-disk.img')}) kept: not a volume of a storage pool: remove it yourself.`);
    assert.match(lines[2], new RegExp(`^Volume 'hdc'\\(${guest('tiny.iso')}\\) kept: also used by 'orig', `));
    assert.ok(fs.existsSync(path.join(t.home, 'c1-disk.img')));
    // 'pool/lnk/victim.img' is under the pool's path, but the link takes it to a file outside every
    // pool: that file stays.
    const outside = path.join(t.home, 'outside');
    fs.mkdirSync(outside);
    writeImage(path.join(outside, 'victim.img'), 1, 0x22);
    fs.symlinkSync(outside, path.join(pool, 'lnk'));
    await t.client.call('domain.define', { xml: sampleGuestXml('sneaky', 'v86', `<disk type='file' device='disk'><source file='${pool}/lnk/victim.img'/><target dev='hda' bus='ide'/></disk>`) });
    const sneaky = await t.client.call('domain.undefine', { domain: 'sneaky', removeAllStorage: true });
    assert.deepEqual(sneaky.removed, []);
    assert.deepEqual(sneaky.kept, [{ target: 'hda', file: path.join(outside, 'victim.img'), reason: 'not a volume of a storage pool: remove it yourself' }]);
    assert.ok(fs.existsSync(path.join(outside, 'victim.img')));
    fs.rmSync(path.join(pool, 'lnk'));

    const vol = await t.cli(['undefine', 'orig-clone', '--storage', 'hda']);
    assert.equal(vol.stdout, `Domain 'orig-clone' has been undefined\nVolume 'hda'(${path.join(pool, 'orig-clone.img')}) removed.\n\n`);
  });
});
