// Live migration between two Domus hosts on one machine (two DOMUS_HOMEs), with real guests: one
// guest per engine runs a dirtying workload (a 32 MiB file in /dev/shm rewritten in place each round
// with 32 copies of a 1 MiB random reference, turned by a page every other round so that every page
// changes every round, and its md5 checked, with a counter on the serial console)
// and is migrated back and forth with `domus migrate --live`; after each move the workload's next
// check must pass on the new host. Then what must leave the guest running here and nothing there:
// domjobabort during pre-copy, the destination host SIGKILLed mid-migration, a destination without
// the guest's engine. Counts of migrations and broken arrivals are printed for the report.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Events } from '../../../shared/api.js';
import { processAlive } from '../../common/fsutil.js';
import { ENGINES, sampleGuestXml, SerialWatch, TestHost, until } from '../../testing/harness.js';
import { migrationSkip } from '../../testing/migration.js';

const ROUNDS = Number(process.env.DOMUS_MIGRATION_ROUNDS ?? 20);
const NAME = 'mig';


/**
 * The workload, started in the background on the guest's serial shell. One `cat` rewrites the file
 * in place (`1<>`, no truncation): a round costs a copy of 32 MiB and an md5 of it, not 32 process
 * starts and the freeing and zeroing of 32 MiB of tmpfs pages (most of a round on v86).
 */
const WORKLOAD = [
  'grep -q " /dev/shm " /proc/mounts || { mkdir -p /dev/shm; mount -t tmpfs -o size=48m tmpfs /dev/shm; }',
  'dd if=/dev/urandom of=/dev/shm/r1 bs=1024 count=1024 2>/dev/null',
  // The second reference is the first turned by a page: different in every page, without a second
  // slow read of urandom.
  '{ dd if=/dev/shm/r1 bs=4096 skip=1 2>/dev/null; dd if=/dev/shm/r1 bs=4096 count=1 2>/dev/null; } > /dev/shm/r0',
  // The copy lists are built in the guest: the workload goes as one shell line, and a line of 1.3 KB
  // lost characters on the serial port.
  'R1=; R0=; j=0; while [ $j -lt 32 ]; do R1="$R1 /dev/shm/r1"; R0="$R0 /dev/shm/r0"; j=$((j+1)); done',
  'W1=$(cat $R1 | md5sum); W0=$(cat $R0 | md5sum)',
  '(n=0; while true; do n=$((n+1)); if [ $((n%2)) = 1 ]; then cat $R1 1<>/dev/shm/w; W=$W1; else cat $R0 1<>/dev/shm/w; W=$W0; fi; s=$(md5sum < /dev/shm/w); if [ "$s" = "$W" ]; then echo "tick $n ok"; else echo "tick $n BAD"; fi; done) & true',
].join('; ');

/** The last tick the serial output shows. */
function lastTick(text: string): number {
  const all = [...text.matchAll(/tick (\d+) (ok|BAD)/g)];
  return all.length ? Number(all.at(-1)![1]) : 0;
}

/** Nothing of a guest on a host: no domain, no engine process, no run directory. */
async function assertClean(h: TestHost): Promise<void> {
  const { domains } = await h.client.call('domain.list', { all: true });
  assert.deepEqual(domains.map((d) => d.name), []);
  assert.deepEqual(h.guestRunDirs(), []);
  assert.deepEqual(fs.readdirSync(h.paths.domains), []);
}

for (const engine of ENGINES) {
  describe(`live migration between Domus hosts (${engine})`, { skip: migrationSkip(engine) }, () => {
    let a: TestHost;
    let b: TestHost;
    const uri = new Map<TestHost, string>();
    let serial: SerialWatch;

    before(async () => {
      [a, b] = await Promise.all([TestHost.start(), TestHost.start()]);
      for (const h of [a, b]) uri.set(h, (await h.client.call('host.uri', {})).uri);
      await a.client.call('domain.define', { xml: sampleGuestXml(NAME, engine) });
      // The migration is what is tested: the guest may come from a post-boot state.
      serial = await a.bootOrRestore(NAME, 180_000);
      await serial.sh(WORKLOAD, 120_000);
      await serial.wait(/tick 1 ok/, 120_000);
    });

    after(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
    });

    /** Waits for the workload's next check on `h` after tick `after`; true when it passed. */
    async function nextCheck(h: TestHost, after: number): Promise<boolean> {
      serial = await SerialWatch.open(h.client, NAME);
      const next = (): RegExpMatchArray | undefined => [...serial.text.matchAll(/tick (\d+) (ok|BAD)/g)].find((m) => Number(m[1]) > after);
      await until(() => next() !== undefined, 120_000, `workload tick ${after + 1} on the serial console`);
      return next()![2] === 'ok';
    }

    test(`${ROUNDS} live migrations back and forth: the workload's checksum holds and the serial console continues`, async () => {
      let broken = 0;
      const downtimes: number[] = [];
      const events: string[] = [];
      const onA = (e: Events['domain.lifecycle']): void => void (e.domain.name === NAME && e.event !== 'step' && events.push(`a:${e.event}/${e.domain.reason}`));
      const onB = (e: Events['domain.lifecycle']): void => void (e.domain.name === NAME && e.event !== 'step' && events.push(`b:${e.event}/${e.domain.reason}`));
      const offA = a.client.on('domain.lifecycle', onA);
      const offB = b.client.on('domain.lifecycle', onB);
      for (let i = 0; i < ROUNDS; i++) {
        const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
        const before = lastTick(serial.text);
        const t0 = Date.now();
        const r = await from.cli(['migrate', '--live', NAME, uri.get(to)!]);
        const migrated = Date.now() - t0;
        assert.equal(r.code, 0, `migration ${i + 1}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        const { job } = await from.client.call('domain.jobInfo', { domain: NAME, completed: true }).catch(() => ({ job: null }));
        if (job?.migration?.downtimeMs !== undefined) downtimes.push(job.migration.downtimeMs);
        const info = await to.client.call('domain.info', { domain: NAME });
        assert.equal(info.state, 'running');
        if (!(await nextCheck(to, before))) broken++;
        process.stderr.write(`# migration ${i + 1}: ${migrated} ms (domus migrate), ${Date.now() - t0} ms to the next check, workload tick ${lastTick(serial.text)}\n`);
      }
      offA();
      offB();
      process.stderr.write(`# ${engine}: ${ROUNDS} migrations, ${broken} arrived broken; downtime ms: ${downtimes.join(' ')}\n`);
      assert.equal(broken, 0);
      // libvirt's events of the first move: suspended/migrating and stopped/migrated here, started and resumed/migrated there.
      assert.ok(events.includes('a:suspended/migrating'), events.join(' '));
      assert.ok(events.includes('a:stopped/migrated'), events.join(' '));
      assert.ok(events.includes('b:started/migrated'), events.join(' '));
      assert.ok(events.includes('b:resumed/migrated'), events.join(' '));
      // The persistent definition stayed on a (shut off, migrated); b had a transient guest, gone with it.
      const home = ROUNDS % 2 === 0 ? a : b;
      const dj = await home.cli(['domjobinfo', NAME, '--completed']);
      assert.match(dj.stdout, /Operation:\s+Outgoing migration/);
      assert.match(dj.stdout, /Memory processed:/);
      assert.match(dj.stdout, /Total downtime:\s+\d+\s+ms/);
    });

    test('domjobabort during the copy and a destination killed mid-migration leave the guest running here and nothing there', async () => {
      const [src, dst] = ROUNDS % 2 === 0 ? [a, b] : [b, a];
      // A live QEMU migration on TCG switches to post-copy at once, which cannot be cancelled (the
      // guest already runs there); QEMU's copy that can be is stop-and-copy.
      const live = engine !== 'qemu';
      const copying = live ? 'precopy' : 'stopcopy';
      const inPrecopy = (): Promise<void> =>
        new Promise((resolve) => {
          const off = src.client.on('job.progress', ({ job }) => {
            if (job.domain === NAME && job.migration?.phase === copying && job.processedBytes > 0) {
              off();
              resolve();
            }
          });
        });
      // Slowed to 1 MiB/s so that the abort lands in pre-copy.
      let started = inPrecopy();
      let migration = src.client.call('domain.migrate', { domain: NAME, destination: uri.get(dst)!, live, bandwidthMiBs: 1 });
      await started;
      const abort = await src.cli(['domjobabort', NAME]);
      assert.equal(abort.code, 0, abort.stderr);
      await assert.rejects(migration, /aborted by the user; it runs on here/);
      assert.equal((await src.client.call('domain.info', { domain: NAME })).state, 'running');
      const { job } = await src.client.call('domain.jobInfo', { domain: NAME, completed: true });
      assert.equal(job?.status, 'aborted');
      await until(() => dst.guestRunDirs().length === 0, 15_000, 'the destination to drop the incoming guest');
      await assertClean(dst);
      assert.ok(await nextCheck(src, lastTick(serial.text)), 'the workload after the abort');

      started = inPrecopy();
      migration = src.client.call('domain.migrate', { domain: NAME, destination: uri.get(dst)!, live, bandwidthMiBs: 1 });
      await started;
      const incoming = dst.guestRunDirs();
      assert.equal(incoming.length, 1, 'an engine waits on the destination');
      await dst.killHost();
      await assert.rejects(migration, /migration of 'mig' to .* failed/);
      assert.equal((await src.client.call('domain.info', { domain: NAME })).state, 'running');
      // The waiting engine goes with its stream; a new host there finds nothing.
      const pid = dst.runnerPid(incoming[0]);
      if (pid) await until(() => !processAlive(pid), 30_000, 'the destination engine to exit');
      await dst.reconnect();
      await assertClean(dst);
      assert.ok(await nextCheck(src, lastTick(serial.text)), 'the workload after the destination died');
    });

    test('a destination without the guest\'s engine refuses it before anything is sent', { skip: engine === 'v86' && 'every Domus host has v86' }, async () => {
      const [src] = ROUNDS % 2 === 0 ? [a, b] : [b, a];
      const path = process.env.PATH;
      process.env.PATH = '/nonexistent';
      let bare: TestHost;
      try {
        bare = await TestHost.start();
      } finally {
        process.env.PATH = path;
      }
      try {
        const { uri: bareUri } = await bare.client.call('host.uri', {});
        const r = await src.cli(['migrate', '--live', NAME, bareUri]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^error: operation failed: migration of 'mig' to .* failed: .*runs on qemu .* on the source; this host would run it on v86, which cannot take its state/);
        assert.equal((await src.client.call('domain.info', { domain: NAME })).state, 'running');
        await assertClean(bare);
      } finally {
        await bare.stop();
      }
    });
  });
}
