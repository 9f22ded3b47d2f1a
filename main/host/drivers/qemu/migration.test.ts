// Live migration on the QEMU engine, engine to engine (two Domus homes on this machine), with one
// booted guest that runs a memory-dirtying workload the whole time: it copies 32 MiB of random data
// in tmpfs over and over, compares each copy and counts. After every migration the copy must still
// match, the source data's md5 must be the one recorded at the start, the counter must go on and
// the kernel must not have complained. Needs the build (the relay QEMU runs: dist/qemu/migrate-relay.mjs).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineSkip, markedCommand, sampleGuestXml, until } from '../../../testing/harness.js';
import { parseDomainXml, type DomainDocument } from '../../domain/xml.js';
import { NetworkSwitches } from '../../network/switches.js';
import type { LiveDomain, MigrationOptions, MigrationProgress, MigrationResult } from '../driver.js';
import { Accel } from './accel.js';
import { QemuDriver } from './driver.js';

const skip = engineSkip('qemu');
const UUID = '5d1c0a7e-3b1f-4c55-9d0e-6a2b7c9e1f01';
const LIVE: MigrationOptions = { live: true, postcopy: false, maxDowntimeMs: 300 };

/** The guest's serial console at engine level: output from 'serial' events, commands by serialWrite. */
class Console {
  text = '';
  private wake: (() => void)[] = [];

  attach(live: LiveDomain): void {
    this.text = live.takeSerialBacklog().toString('latin1');
    live.on('serial', (d) => {
      this.text += d.toString('latin1');
      for (const w of this.wake.splice(0)) w();
    });
  }

  async wait(re: RegExp, timeoutMs: number, from = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.text.slice(from))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} on serial; last output:\n${this.text.slice(-600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 500);
        this.wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async sh(live: LiveDomain, cmd: string, timeoutMs = 30_000): Promise<string> {
    const { line, end, output } = markedCommand(cmd);
    const from = this.text.length;
    await live.serialWrite(Buffer.from(line));
    await this.wait(end, timeoutMs, from);
    return output(this.text.slice(from));
  }
}

describe('QEMU live migration (engine level)', { skip }, () => {
  let tmp: string;
  let drivers: QemuDriver[];
  let doc: DomainDocument;
  let live: LiveDomain;
  let at = 0;
  let md5 = '';
  const con = new Console();

  const driverIn = (home: string): QemuDriver =>
    new QemuDriver(path.join(home, 'run'), path.join(home, 'logs'), new Accel(home), path.join(home, 'nvram'), new NetworkSwitches(path.join(home, 'run', 'networks')));

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-qemumig-'));
    drivers = ['a', 'b'].map((h) => driverIn(path.join(tmp, h)));
    const xml = sampleGuestXml('mig', 'qemu').replace('<memory unit=\'MiB\'>128</memory>', `<uuid>${UUID}</uuid><memory unit='MiB'>192</memory>`);
    doc = parseDomainXml(xml);
    ({ live } = await drivers[0].start(doc, {}));
    con.attach(live);
    await con.wait(/DOMUS-GUEST-READY/, 120_000);
    await con.sh(live, 'dd if=/dev/urandom of=/dev/shm/src bs=1M count=32 2>/dev/null', 60_000);
    md5 = (await con.sh(live, 'md5sum /dev/shm/src', 60_000)).match(/[0-9a-f]{32}/)![0];
    // The workload: four copies (each rewrites 32 MiB), a check of the last against the md5, a count;
    // without end, its output going nowhere so the console stays usable. (busybox cmp takes 17 s here.)
    await con.sh(
      live,
      '(m=$(md5sum < /dev/shm/src); i=0; while :; do for k in 1 2 3 4; do cat /dev/shm/src > /dev/shm/dirty; done; ' +
        '[ "$(md5sum < /dev/shm/dirty)" = "$m" ] || echo "BAD $i" >> /dev/shm/bad; i=$((i+1)); echo $i > /dev/shm/iter; done) >/dev/null 2>&1 & true',
    );
    await until(async () => (await iterations()) >= 1, 60_000, 'the workload to run');
  });

  after(async () => {
    await live?.destroy().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function iterations(): Promise<number> {
    const out = await con.sh(live, 'echo "iter=$(cat /dev/shm/iter 2>/dev/null || echo 0)"');
    return Number(/iter=(\d+)/.exec(out)?.[1]);
  }

  /** The workload's own check, the data's md5, the counter moving and a quiet kernel log. */
  async function assertWorkloadIntact(): Promise<void> {
    const before = await iterations();
    const out = await con.sh(live, 'md5sum /dev/shm/src; cat /dev/shm/bad 2>/dev/null; echo "oops $(dmesg | grep -c -E "Oops|BUG|panic|corrupt")"', 60_000);
    assert.ok(out.includes(md5), `md5 of /dev/shm/src is still ${md5}: ${out}`);
    assert.doesNotMatch(out, /BAD/, 'every copy matched');
    assert.match(out, /oops 0/);
    await until(async () => (await iterations()) > before, 60_000, `the workload to count on from ${before}`);
  }

  async function migrate(listen: { kind: 'unix' } | { kind: 'tcp'; address: string }, opts = LIVE): Promise<{ result: MigrationResult; progress: MigrationProgress[]; wallMs: number; cancel?: string }> {
    const to = 1 - at;
    const cookie = drivers[at].migrationCookie(doc, live);
    assert.deepEqual(drivers[to].checkIncoming(cookie, doc), []);
    const t0 = Date.now();
    const incoming = await drivers[to].prepareIncoming(doc, listen);
    const progress: MigrationProgress[] = [];
    const source = live;
    let cancel: Promise<string> | undefined;
    const result = await live.migrateOut!(incoming.endpoint, opts, (p) => {
      progress.push(p);
      // Once switched to post-copy the guest cannot come back: a cancel is refused.
      if (p.phase === 'postcopy') cancel ??= source.abortJob().then(() => 'accepted', (e: Error) => e.message);
    });
    const { live: arrived } = await incoming.finished();
    const wallMs = Date.now() - t0;
    assert.equal(arrived.state, 'running');
    await live.destroy();
    live = arrived;
    at = to;
    con.attach(live);
    return { result, progress, wallMs, cancel: await cancel };
  }

  it('refuses another engine, an older QEMU, a missing machine type or CPU feature, naming each', () => {
    const cookie = drivers[0].migrationCookie(doc, live);
    assert.equal(cookie.engine, 'qemu');
    assert.match(cookie.engineVersion, /^\d+\.\d+\.\d+$/);
    assert.match(cookie.machine!, /^pc-i440fx-\d+\.\d+$/);
    assert.equal(cookie.cpu.model, 'max');
    assert.ok(cookie.cpu.features.includes('sse2') && cookie.cpu.features.includes('lm'), 'the CPU features TCG gives -cpu max');
    assert.deepEqual([cookie.vcpus, cookie.memoryKiB], [1, 192 * 1024]);
    const b = drivers[1];
    assert.deepEqual(b.checkIncoming({ ...cookie, engine: 'v86' }, doc), ['the guest runs on the v86 engine; QEMU cannot take its state']);
    assert.deepEqual(b.checkIncoming({ ...cookie, engineVersion: '99.0.0' }, doc), [`QEMU here is ${cookie.engineVersion}, older than the source's 99.0.0`]);
    assert.deepEqual(b.checkIncoming({ ...cookie, machine: 'pc-i440fx-99.0' }, doc), ["this QEMU has no machine type 'pc-i440fx-99.0'"]);
    assert.deepEqual(b.checkIncoming({ ...cookie, cpu: { model: 'max', features: [...cookie.cpu.features, 'avx512f', 'amx-tile'] } }, doc), [
      'QEMU here (TCG, -cpu max) cannot give the guest CPU features it has seen: avx512f, amx-tile',
    ]);
    assert.deepEqual(b.checkIncoming({ ...cookie, vcpus: 2 }, doc), ['the guest has 2 vCPUs, its definition here 1']);
  });

  it('drops a connection with a wrong token; abort() leaves nothing behind', async () => {
    const incoming = await drivers[1].prepareIncoming(doc, { kind: 'unix' });
    const sockPath = incoming.endpoint.uri.slice('unix:'.length);
    assert.equal(fs.statSync(sockPath).mode & 0o777, 0o600);
    const closed = await new Promise<boolean>((resolve) => {
      const s = net.connect(sockPath, () => s.write('0'.repeat(64) + 'QEVM'));
      s.on('error', () => undefined);
      s.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 5000);
    });
    assert.ok(closed, 'the relay closed the connection');
    const runDir = path.join(tmp, 'b', 'run', UUID);
    const pid = Number(fs.readFileSync(path.join(runDir, 'runner.pid'), 'utf8'));
    assert.match(fs.readFileSync(path.join(runDir, 'qemu.log'), 'utf8'), /migration relay: dropped a connection from a local peer: wrong token/);
    await incoming.abort();
    assert.ok(!fs.existsSync(runDir), 'the waiting QEMU’s files are gone');
    assert.throws(() => process.kill(pid, 0), 'the waiting QEMU is gone');
  });

  it('migrates the dirtying guest back and forth over unix sockets (post-copy on TCG), intact each time', async () => {
    for (let i = 0; i < 4; i++) {
      const { result, progress, wallMs, cancel } = await migrate({ kind: 'unix' });
      assert.equal(result.postcopy, true, 'TCG migrates in post-copy');
      assert.ok(progress.some((p) => p.phase === 'postcopy'));
      assert.match(cancel!, /switched to post-copy.*cannot be cancelled/);
      assert.ok(result.transferredBytes > 32 << 20, `the workload's data went over (${result.transferredBytes} bytes)`);
      console.log(`migration ${i + 1}: ${wallMs} ms, downtime ${result.downtimeMs} ms, ${(result.transferredBytes / 2 ** 20).toFixed(1)} MiB, ${result.iterations} dirty syncs`);
      await assertWorkloadIntact();
    }
  });

  it('migrates over TCP on 127.0.0.1', async () => {
    const { result, wallMs } = await migrate({ kind: 'tcp', address: '127.0.0.1' });
    console.log(`TCP migration: ${wallMs} ms, downtime ${result.downtimeMs} ms, ${(result.transferredBytes / 2 ** 20).toFixed(1)} MiB`);
    await assertWorkloadIntact();
  });

  it('a cancel mid-migration (stop-and-copy) leaves the guest running on the source', async () => {
    const to = 1 - at;
    const incoming = await drivers[to].prepareIncoming(doc, { kind: 'unix' });
    const progress: MigrationProgress[] = [];
    // Stop-and-copy at 4 MiB/s: seconds long, with no post-copy switch to make cancelling impossible.
    const out = live.migrateOut!(incoming.endpoint, { ...LIVE, live: false, bandwidthMiBs: 4 }, (p) => progress.push(p));
    await until(() => progress.some((p) => p.transferredBytes > 4 << 20), 30_000, 'the migration to be under way');
    await live.abortJob();
    await assert.rejects(out, /the migration was cancelled; the guest runs on here/);
    await assert.rejects(incoming.finished(), /the incoming migration of 'mig' failed/);
    await incoming.abort();
    assert.equal(live.state, 'running');
    await assertWorkloadIntact();
  });

  it('the destination QEMU killed mid-migration leaves the guest running on the source', async () => {
    const to = 1 - at;
    const incoming = await drivers[to].prepareIncoming(doc, { kind: 'tcp', address: '127.0.0.1' });
    const pid = Number(fs.readFileSync(path.join(tmp, to ? 'b' : 'a', 'run', UUID, 'runner.pid'), 'utf8'));
    const progress: MigrationProgress[] = [];
    const out = live.migrateOut!(incoming.endpoint, { ...LIVE, live: false, bandwidthMiBs: 4 }, (p) => progress.push(p));
    await until(() => progress.some((p) => p.transferredBytes > 4 << 20), 30_000, 'the migration to be under way');
    process.kill(pid, 'SIGKILL');
    await assert.rejects(out, /the migration failed: .*; the guest runs on here/);
    await assert.rejects(incoming.finished(), /the incoming migration of 'mig' failed/);
    await incoming.abort();
    assert.equal(live.state, 'running');
    await assertWorkloadIntact();
  });
});
