// A run directory left behind (say, by a reboot) whose runner.pid now names an unrelated live
// process: a new host does not take it for a running guest, `start` is not blocked, and the stale
// directory is cleaned; the unrelated process is left alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { processAlive } from '../common/fsutil.js';
import { isLocked, readPid } from '../common/locks.js';
import { ENGINES, SAMPLE_CMDLINE, TestHost, createOn, engineSkip, guest } from '../testing/harness.js';

for (const engine of ENGINES) describe(`stale run directories (${engine})`, { timeout: 300_000, skip: engineSkip(engine) }, () => {
  let t: TestHost;
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  /** What a runner of this engine leaves in its state dir, pointing at the unrelated `sleep`. */
  const leaveStaleDir = (uuid: string): string => {
    const dir = path.join(t.paths.run, uuid);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'runner.pid'), `${sleeper.pid}\n`);
    fs.writeFileSync(path.join(dir, engine === 'v86' ? 'runner.json' : 'qemu.json'), JSON.stringify({ name: 'stale' }));
    fs.writeFileSync(path.join(dir, 'leftover'), '');
    return dir;
  };

  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    sleeper.kill('SIGKILL');
    await t?.stop();
  });

  it('a new host does not re-attach to it and removes it', async () => {
    await t.killHost();
    const dir = leaveStaleDir('0c0ffee0-0000-4000-8000-000000000001');
    await t.reconnect();
    assert.ok(!fs.existsSync(dir), 'the stale directory is gone');
    assert.ok(processAlive(sleeper.pid!), 'the process that has the pid now is not touched');
  });

  it('start is not blocked; the stale directory is replaced by the new runner’s, which a new host re-attaches to', async () => {
    await createOn(t.client, { name: 'stale', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } }, engine);
    const { uuid } = await t.client.call('domain.info', { domain: 'stale' });
    const dir = leaveStaleDir(uuid);
    await t.client.call('domain.start', { domain: 'stale' });
    assert.ok(!fs.existsSync(path.join(dir, 'leftover')), 'the stale directory was cleaned');
    const pidFile = path.join(dir, 'runner.pid');
    assert.ok(isLocked(pidFile), 'the new runner holds its pid file');
    assert.notEqual(readPid(pidFile), sleeper.pid);
    assert.ok(processAlive(sleeper.pid!));
    // The live runner (its pid file locked) is the one a new host re-attaches to.
    const runnerPid = readPid(pidFile);
    await t.killHost();
    await t.reconnect();
    assert.equal((await t.client.call('domain.info', { domain: 'stale' })).state, 'running');
    assert.equal(readPid(pidFile), runnerPid);
    await t.client.call('domain.destroy', { domain: 'stale' });
  });
});
