// One runner per state dir and one writer per disk image, with real runner (and QEMU) processes:
// two runners started at once on one dir; a second writer, a reader of a written image and a
// writer of a read image are refused with the holder named; readers share; QEMU's image locks and
// the v86 runners' flocks see each other.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isLocked, locksOn } from '../common/locks.js';
import { parseDomainXml } from '../host/domain/xml.js';
import { findQemu } from '../host/drivers/qemu/binary.js';
import { Accel } from '../host/drivers/qemu/accel.js';
import { QemuDriver } from '../host/drivers/qemu/driver.js';
import { NetworkSwitches } from '../host/network/switches.js';
import { APP_ROOT } from '../common/paths.js';
import { runnerPaths } from './protocol.js';
import { until } from '../testing/harness.js';
import { ControlClient, RUNNER_MAIN, baseConfig, spawnRunner, type SpawnedRunner } from '../testing/runner-harness.js';

const UUID_A = '6b1f7c1e-0000-4000-8000-0000000000aa';
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The runner's one `error:` line, once it exited with the configuration-error code. */
async function refused(r: SpawnedRunner): Promise<string> {
  try {
    assert.equal(await r.exited, 2, r.log());
    const errors = r.log().split('\n').filter((l) => l.startsWith('error: '));
    assert.equal(errors.length, 1, r.log());
    return errors[0]!;
  } finally {
    await r.kill();
  }
}

test('two runners started at once on one state dir: exactly one runs, the other names it', async () => {
  const first = spawnRunner(baseConfig({ name: 'twice' }));
  const second = spawn(process.execPath, ['--import', 'tsx', RUNNER_MAIN, first.dir], { cwd: APP_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let secondErr = '';
  second.stderr.on('data', (d: Buffer) => (secondErr += d.toString()));
  const secondExit = new Promise<number | null>((resolve) => second.on('exit', resolve));
  try {
    // Whichever claims runner.pid first runs; the other stops at the claim, before any socket.
    const loserCode = await Promise.race([first.exited, secondExit]);
    assert.equal(loserCode, 2);
    const [winner, loser] = first.child.exitCode === null ? [first.child.pid!, second.pid!] : [second.pid!, first.child.pid!];
    const loserLog = loser === second.pid ? secondErr : first.log();
    assert.match(loserLog, new RegExp(`error: another runner \\(pid ${winner}\\) is using ${escape(first.dir)}`));
    const ctl = await ControlClient.connect(first.paths.control);
    assert.equal(((await ctl.request('hello')) as { result: { pid: number } }).result.pid, winner);
    ctl.close();
    assert.ok(isLocked(first.paths.pid));
  } finally {
    second.kill('SIGKILL');
    await first.kill();
  }
});

describe('disk image locks', { timeout: 180_000 }, () => {
  let dir: string;
  let img: string;
  let iso: string;
  let holder: SpawnedRunner;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-disklock-'));
    img = path.join(dir, 'disk.img');
    iso = path.join(dir, 'media.iso');
    fs.writeFileSync(img, Buffer.alloc(1 << 20));
    fs.writeFileSync(iso, Buffer.alloc(1 << 20));
    holder = spawnRunner(baseConfig({ name: 'disk-a', uuid: UUID_A, hda: img, cdrom: iso }));
    (await ControlClient.connect(holder.paths.control)).close();
  });
  after(async () => {
    await holder?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a second writer is refused, naming the domain that writes the image', async () => {
    const line = await refused(spawnRunner(baseConfig({ name: 'disk-b', hda: img })));
    assert.equal(
      line,
      `error: hda '${img}' is in use by domain 'disk-a' (${UUID_A}) in v86 runner pid ${holder.child.pid}, which writes to it; a disk image can be written by one guest at a time, and not while others read it`,
    );
  });

  test('reading a written image and writing a read one are refused too', async () => {
    assert.match(await refused(spawnRunner(baseConfig({ name: 'disk-c', cdrom: img }))), /^error: cdrom '.*' is in use by domain 'disk-a' .*, which writes to it; it is being written, so it cannot be shared read-only$/);
    assert.match(await refused(spawnRunner(baseConfig({ name: 'disk-d', hda: iso }))), /^error: hda '.*media\.iso' is in use by domain 'disk-a' .*, which reads it; a disk image can be written/);
  });

  test('two read-only users share an image', async () => {
    const reader = spawnRunner(baseConfig({ name: 'disk-e', uuid: '6b1f7c1e-0000-4000-8000-0000000000ee', cdrom: iso }));
    try {
      const ctl = await ControlClient.connect(reader.paths.control);
      ctl.close();
      assert.equal(reader.child.exitCode, null, reader.log());
      assert.deepEqual(locksOn(iso).map((l) => `${l.type}:${l.write}`), ['FLOCK:false', 'FLOCK:false']);
    } finally {
      await reader.kill();
    }
  });

  const qemu = findQemu();
  test('QEMU and v86 runners see each other’s locks', { skip: qemu.path ? false : 'QEMU not installed' }, async () => {
    const qimg = path.join(dir, 'qemu.img');
    fs.writeFileSync(qimg, Buffer.alloc(1 << 20));
    const uuidQ = '6b1f7c1e-0000-4000-8000-0000000000cc';
    const q = spawn(qemu.path!, ['-name', 'guest=q,,dom,debug-threads=on', '-uuid', uuidQ, '-machine', 'pc', '-S', '-display', 'none', '-nodefaults', '-drive', `file=${qimg},format=raw,if=ide`], { stdio: 'ignore' });
    try {
      await until(() => locksOn(qimg).length > 0, 20_000, 'QEMU to lock its disk image');
      // v86 runners refuse an image QEMU writes, for writing and for reading.
      const pattern = new RegExp(`is in use by domain 'q,dom' \\(${uuidQ}\\) in QEMU pid ${q.pid}, which writes to it`);
      assert.match(await refused(spawnRunner(baseConfig({ name: 'disk-f', hda: qimg }))), pattern);
      assert.match(await refused(spawnRunner(baseConfig({ name: 'disk-g', cdrom: qimg }))), pattern);
    } finally {
      q.kill('SIGKILL');
    }

    // The QEMU driver refuses, before spawning QEMU, an image a v86 runner writes.
    const home = fs.mkdtempSync(path.join(dir, 'home-'));
    const driver = new QemuDriver(path.join(home, 'run'), path.join(home, 'logs'), new Accel(home), path.join(home, 'nvram'), new NetworkSwitches(path.join(home, 'run', 'networks')));
    const doc = parseDomainXml(
      `<domain type='qemu'><name>qa</name><uuid>6b1f7c1e-0000-4000-8000-0000000000dd</uuid><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>` +
        `<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${img}'/><target dev='hda' bus='ide'/></disk></devices></domain>`,
    );
    await assert.rejects(driver.start(doc, {}), {
      name: 'QemuError',
      message: `hda '${img}' is in use by domain 'disk-a' (${UUID_A}) in v86 runner pid ${holder.child.pid}, which writes to it; a disk image can be written by one guest at a time, and not while others read it`,
    });
    assert.ok(!fs.existsSync(runnerPaths(path.join(home, 'run', '6b1f7c1e-0000-4000-8000-0000000000dd')).pid), 'no QEMU was started');

    // A QEMU CD-ROM shares the medium a v86 runner reads, but cannot change to an image one writes.
    const withCd = parseDomainXml(
      `<domain type='qemu'><name>qb</name><uuid>6b1f7c1e-0000-4000-8000-0000000000de</uuid><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>` +
        `<devices><disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${iso}'/><target dev='hdc' bus='ide'/><readonly/></disk></devices></domain>`,
    );
    const { live } = await driver.start(withCd, { paused: true });
    try {
      await assert.rejects(live.changeMedia!(img), { message: new RegExp(`^hdc '${escape(img)}' is in use by domain 'disk-a' .*, which writes to it; it is being written, so it cannot be shared read-only$`) });
    } finally {
      await live.destroy();
    }
  });
});
