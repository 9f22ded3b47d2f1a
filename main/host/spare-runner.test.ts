// The spare v86 runner (drivers/v86/spare.ts, runner/spare.ts): a define of a v86 domain makes one; the
// next start or restore takes it (the same process becomes the domain's runner, without Node's start in
// its phases) and another follows; a spare that died is replaced by a runner started as before; a
// spare refuses a bad handover; it ends with its host, and the next host removes what it left and,
// having v86 domains, makes one before any start.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { processAlive } from '../common/fsutil.js';
import { describeProcess } from '../common/locks.js';
import { SPARE } from '../runner/protocol.js';
import { SerialWatch, TestHost, engineSkip, sampleGuestXml, until } from '../testing/harness.js';

interface SpareSeen {
  dir: string;
  pid: number;
}

/** The host's spare runner once it is ready (its socket is up), or undefined. */
function readySpare(t: TestHost): SpareSeen | undefined {
  const found = t.spareRunners().find((s) => s.ready && s.pid);
  return found && { dir: found.dir, pid: found.pid! };
}

async function spare(t: TestHost): Promise<SpareSeen> {
  let seen: SpareSeen | undefined;
  await until(() => (seen = readySpare(t)) !== undefined, 20_000, 'a spare runner');
  return seen!;
}

/** One line to a spare's socket and its answer. */
function handover(socketPath: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (got += c));
    socket.on('end', () => resolve(got.trim()));
    socket.on('error', reject);
    socket.write(`${line}\n`);
  });
}

describe('spare v86 runner', { timeout: 300_000, skip: engineSkip('v86') }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
    for (const name of ['s1', 's2', 's3']) await t.client.call('domain.define', { xml: sampleGuestXml(name, 'v86') });
  });
  after(async () => {
    await t?.stop();
  });

  const runnerPid = async (name: string) => t.runnerPid((await t.client.call('domain.info', { domain: name })).uuid);
  const runnerLog = async (name: string) => fs.readFileSync(path.join(t.paths.run, (await t.client.call('domain.info', { domain: name })).uuid, 'runner.log'), 'utf8');

  it('a define makes a spare; a start takes it, a restore the next, and another follows', async () => {
    const first = await spare(t);
    // A bad handover is refused, and the spare still waits.
    assert.equal(await handover(path.join(first.dir, SPARE.socket), 'not json'), 'error: not a JSON line');
    assert.equal(await handover(path.join(first.dir, SPARE.socket), '{"stateDir":"relative"}'), 'error: stateDir must be an absolute path');
    assert.match(await handover(path.join(first.dir, SPARE.socket), JSON.stringify({ stateDir: t.paths.run })), /^error: .* has no runner\.json$/);
    await t.client.call('domain.start', { domain: 's2' });
    assert.equal(await runnerPid('s2'), first.pid, 'the spare became the runner of the start');
    assert.ok(!fs.existsSync(first.dir), 'the spare left nothing behind');
    assert.match(await runnerLog('s2'), /spare runner taken for /);
    await t.client.call('domain.destroy', { domain: 's2' });

    await t.bootOrRestore('s1');
    const second = await spare(t);
    assert.notEqual(second.pid, first.pid);
    const file = path.join(t.home, 's1.state');
    await t.client.call('domain.save', { domain: 's1', file });
    await t.client.call('domain.restore', { file });
    assert.equal(await runnerPid('s1'), second.pid, 'the spare became the restored runner');
    // What lock conflicts say of it: its argv names the spare's dir, long gone.
    assert.match(describeProcess(second.pid), new RegExp(`^domain 's1' \\(.+\\) in v86 runner pid ${second.pid}$`));
    const log = await runnerLog('s1');
    assert.match(log, /spare runner taken for /);
    assert.match(log, /restore phases: configuration and images \d+ ms/, 'no Node start in the restore');
    const serial = await SerialWatch.open(t.client, 's1');
    assert.match(await serial.sh('echo from-the-spare'), /from-the-spare/);

    const next = await spare(t);
    assert.notEqual(next.pid, second.pid);
  });

  it('a spare that died is replaced by a runner started as before', async () => {
    const dead = await spare(t);
    process.kill(dead.pid, 'SIGKILL');
    await until(() => !processAlive(dead.pid), 5000, 'the spare to die');
    await t.client.call('domain.start', { domain: 's2' });
    const pid = await runnerPid('s2');
    assert.ok(pid && pid !== dead.pid && processAlive(pid));
    assert.match(await runnerLog('s2'), /^info: runner pid \d+ starting/m);
    assert.doesNotMatch(await runnerLog('s2'), /spare runner/);
    await t.client.call('domain.destroy', { domain: 's2' });
  });

  it('ends with its host; the next host removes what it left', async () => {
    const waiting = await spare(t);
    await t.killHost();
    await until(() => !processAlive(waiting.pid), 5000, 'the spare to end with its host');
    assert.ok(fs.existsSync(waiting.dir), 'a killed host leaves its spare directory');
    await t.reconnect();
    await until(() => !fs.existsSync(waiting.dir), 5000, 'the new host to remove it');
    // It has v86 domains defined: it makes a spare before any start.
    await spare(t);
    // The guest restored by the first host's spare outlived that host, as any guest does.
    const s1 = await t.client.call('domain.info', { domain: 's1' });
    assert.equal(s1.state, 'running');
  });

  it('host stop ends the spare', async () => {
    await t.client.call('domain.start', { domain: 's3' });
    const waiting = await spare(t);
    await t.client.call('domain.destroy', { domain: 's3' });
    await t.client.call('domain.destroy', { domain: 's1' });
    await t.client.call('host.stop', {});
    await until(() => !processAlive(waiting.pid), 5000, 'the spare to end at host stop');
    await t.reconnect();
  });
});
