// Live migration between runners on one machine, on one booted PV guest handed from runner to
// runner: idle, then with a workload that rewrites 32 MiB and checks its checksum in a loop, over
// unix sockets and TCP on 127.0.0.1; cancel mid pre-copy and a destination killed mid-stream leave
// the source running; a connection without the token is dropped.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HelloResult, MigrateResult, MigrationProgressEvent, RunnerEvent, RunnerIncoming } from './protocol.js';
import { ControlClient, READY, findGuest, pvConfig, spawnRunner, type SpawnedRunner } from '../testing/runner-harness.js';

const guest = findGuest();
const skip = 'missing' in guest ? guest.missing : false;
const BOOT_MS = 180_000;
const MIGRATE_MS = 120_000;
const sockDirs: string[] = [];
after(() => sockDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

interface Guest {
  runner: SpawnedRunner;
  ctl: ControlClient;
  hello: HelloResult;
}

async function attach(runner: SpawnedRunner): Promise<Guest> {
  const ctl = await ControlClient.connect(runner.paths.control);
  const hello = await ctl.call<HelloResult>('hello');
  ctl.serial = Buffer.from(hello.serialBacklog, 'base64').toString('latin1') + ctl.serial;
  return { runner, ctl, hello };
}

/** A runner waiting for a migration of the test guest. */
async function incoming(kind: 'unix' | 'tcp'): Promise<Guest & { token: string; uri: string }> {
  const token = crypto.randomBytes(32).toString('hex');
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-mig-'));
  sockDirs.push(sockDir);
  const listen: RunnerIncoming['listen'] = kind === 'unix' ? { kind, path: path.join(sockDir, 'migrate.sock') } : { kind, address: '127.0.0.1', port: 0 };
  const g = await attach(spawnRunner(pvConfig(guest as { kernel: string; initrd: string }, { name: 'migrant', incoming: { listen, token } })));
  assert.equal(g.hello.state, 'paused');
  assert.ok(g.hello.incoming, 'hello names the endpoint');
  if (kind === 'unix') assert.equal(fs.statSync(listen.kind === 'unix' ? listen.path : '').mode & 0o777, 0o600);
  else assert.match(g.hello.incoming, /^tcp:127\.0\.0\.1:\d+$/);
  return { ...g, token, uri: g.hello.incoming };
}

function waitEvent(ctl: ControlClient, name: RunnerEvent['event'], timeoutMs: number): Promise<RunnerEvent> {
  const seen = ctl.events.find((e) => e.event === name);
  return seen ? Promise.resolve(seen) : ctl.waitEvent(name, timeoutMs);
}

// The pattern doubles from 32 bytes to 32 MiB (cat is fast in v86, yes | head byte-slow); each round
// copies it and checks the copy's MD5 against the one recorded.
const WORKLOAD =
  'mkdir -p /dev/shm; mount -t tmpfs -o size=80m tmpfs /dev/shm; cd /dev/shm; printf DOMUS-MIGRATION-PATTERN-01234567 > p; ' +
  'for i in $(seq 20); do cat p p > t; mv t p; done; md5sum < p > sum; ' +
  '(i=0; while :; do cp p q; if [ "$(md5sum < q)" = "$(cat sum)" ]; then i=$((i+1)); echo LOOP-""OK $i; else echo LOOP-""BAD; fi; done) & :';

/** The workload's last good round on this guest's serial, failing on a bad one. */
function lastRound(g: Guest): number {
  assert.doesNotMatch(g.ctl.serial, /LOOP-BAD/);
  const all = [...g.ctl.serial.matchAll(/LOOP-OK (\d+)/g)];
  return all.length ? Number(all.at(-1)![1]) : 0;
}

describe('v86 live migration', { skip }, () => {
  let current: Guest;
  const spawned: SpawnedRunner[] = [];
  const results: (MigrateResult & { label: string })[] = [];

  before(async () => {
    if ('missing' in guest) return;
    current = await attach(spawnRunner(pvConfig(guest, { name: 'migrant' })));
    spawned.push(current.runner);
    await current.ctl.waitSerial(new RegExp(READY), BOOT_MS);
  });

  after(async () => {
    for (const r of results) process.stdout.write(`# ${r.label}: ${JSON.stringify(r)}\n`);
    for (const r of spawned) await r.kill();
  });

  /** Migrates `current` to a fresh destination; the source is destroyed once it is over. */
  async function migrate(kind: 'unix' | 'tcp', label: string, opts: { maxDowntimeMs?: number } = {}): Promise<MigrateResult> {
    const dest = await incoming(kind);
    spawned.push(dest.runner);
    const progress: MigrationProgressEvent[] = [];
    current.ctl.on('event', (e) => e.event === 'migration-progress' && progress.push(e));
    const result = await current.ctl.call<MigrateResult>('migrate', { uri: dest.uri, token: dest.token, live: true, maxDowntimeMs: opts.maxDowntimeMs ?? 50 }, MIGRATE_MS);
    results.push({ label, ...result });
    // At least one event per round (its end), more during a long round; rounds only go forward.
    const rounds = progress.map((e) => e.iteration);
    assert.deepEqual([...new Set(rounds)], Array.from({ length: result.iterations }, (_, i) => i + 1), 'progress in every round, in order');
    assert.deepEqual(rounds, [...rounds].sort((x, y) => x - y), 'rounds only go forward');
    progress.forEach((e, i) => {
      const next = progress[i + 1];
      if (next?.iteration === e.iteration) assert.ok(next.remainingBytes <= e.remainingBytes, `round ${e.iteration}: remaining went up from ${e.remainingBytes} to ${next.remainingBytes}`);
    });
    assert.equal(progress.at(-1)?.remainingBytes, 0, 'nothing remains once the last round is sent');
    assert.equal(((await waitEvent(dest.ctl, 'migrated-in', 10_000)) as { state: string }).state, 'running');
    const source = current;
    const exited = source.runner.exited;
    await source.ctl.call('destroy');
    await exited;
    current = dest;
    assert.equal((await dest.ctl.sh('echo serial-$((40+2))')).includes('serial-42'), true);
    assert.ok(result.transferredBytes <= 1.3 * result.nonZeroRamBytes + 9 * 1024 * 1024, `sent ${result.transferredBytes} for ${result.nonZeroRamBytes} non-zero`);
    return result;
  }

  test('an idle guest migrates over a unix socket; a connection without the token is dropped', async () => {
    const dest = await incoming('unix');
    spawned.push(dest.runner);
    const intruder = net.connect(dest.uri.slice('unix:'.length));
    intruder.on('error', () => undefined);
    intruder.write('0'.repeat(64));
    await new Promise((resolve) => intruder.on('close', resolve));
    // Still waiting for the real source: hand it over.
    assert.ok((await dest.ctl.call<HelloResult>('hello')).incoming);
    const result = await current.ctl.call<MigrateResult>('migrate', { uri: dest.uri, token: dest.token, live: true, maxDowntimeMs: 20 }, MIGRATE_MS);
    results.push({ label: 'idle', ...result });
    await waitEvent(dest.ctl, 'migrated-in', 10_000);
    await current.ctl.call('destroy');
    current = dest;
    assert.match(await dest.ctl.sh('echo idle-$((1+1))'), /idle-2/);
  });

  test('a guest rewriting 32 MiB migrates back and forth, its checksum holding', async () => {
    await current.ctl.sh(WORKLOAD, 180_000);
    assert.match(await current.ctl.sh('ls -l /dev/shm/p'), /33554432/);
    await current.ctl.waitSerial(/LOOP-OK 1\b/, 180_000);
    for (const [i, kind] of (['unix', 'unix', 'tcp'] as const).entries()) {
      const before = lastRound(current);
      await migrate(kind, `dirtying #${i + 1} (${kind})`, { maxDowntimeMs: 100 });
      // The workload goes on there: the round that spanned the switch-over completes and checks out.
      // Rounds the source finished while the copy went on (many, on a loaded machine) stay in its
      // serial: the destination's first round is any later one.
      const first = await current.ctl.waitSerial(/LOOP-OK (\d+)\r?\n/, 180_000);
      assert.ok(Number(first[1]) > before, `the destination's first round (${first[1]}) follows the source's last before the migration (${before})`);
      lastRound(current);
    }
  });

  test('a cancelled migration and a destination killed mid-stream leave the source running', async () => {
    for (const how of ['abort', 'kill'] as const) {
      const dest = await incoming('unix');
      spawned.push(dest.runner);
      const migration = current.ctl.request('migrate', { uri: dest.uri, token: dest.token, live: true, bandwidthMiBs: 8, maxDowntimeMs: 20 }, MIGRATE_MS);
      // Rate-limited to 8 MiB/s, the first round takes seconds: act once the stream is flowing.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      if (how === 'abort') await current.ctl.call('abortJob');
      else dest.runner.child.kill('SIGKILL');
      const reply = await migration;
      assert.equal(reply.ok, false);
      if (!reply.ok) assert.match(reply.error, how === 'abort' ? /aborted/ : /destination|connection/);
      assert.notEqual(await dest.runner.exited, 0, 'the destination runner ended');
      assert.ok(!fs.existsSync(dest.runner.paths.control) || how === 'kill');
      const before = lastRound(current);
      assert.match(await current.ctl.sh('echo alive-$((2+3))'), /alive-5/);
      await current.ctl.waitSerial(new RegExp(`LOOP-OK ${before + 1}\\b`), 180_000);
    }
  });
});
