// One host per DOMUS_HOME: domusd processes started at the same instant (one serves, the others
// exit 3 naming it); a host killed by SIGKILL leaves no stale lock; a client that finds the lock
// held by a host going away starts a new one; a second host started while the first is still
// re-attaching neither removes its socket nor attaches to its runners.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { processAlive } from '../common/fsutil.js';
import { isLocked, readPid } from '../common/locks.js';
import { connectHost, ensureDaemon } from '../cli/connect.js';
import { killLeftovers, until } from '../testing/harness.js';
import { hostAnswers } from '../common/paths.js';
import { APP_ROOT, hostPaths, type HostPaths } from '../common/paths.js';

interface Daemon {
  child: ChildProcess;
  pid: number;
  /** Exit code once it exited. */
  exited: Promise<number | null>;
  output(): string;
}

function startDaemon(paths: HostPaths): Daemon {
  const child = spawn(process.execPath, [path.join(APP_ROOT, 'dist', 'host', 'domusd.mjs')], {
    env: { ...process.env, DOMUS_HOME: paths.home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, pid: child.pid!, exited, output: () => out };
}

function freshHome(): HostPaths {
  return hostPaths(fs.mkdtempSync(path.join(os.tmpdir(), 'domus-lock-')));
}

describe('one host per DOMUS_HOME', { timeout: 120_000 }, () => {
  it('of three domusd started at once exactly one serves; the others exit 3 naming it; SIGKILL frees the lock', async () => {
    const paths = freshHome();
    try {
      const daemons = [startDaemon(paths), startDaemon(paths), startDaemon(paths)];
      await until(() => daemons.some((d) => d.output().includes('DOMUSD_READY')), 30_000, 'one host ready');
      const winner = daemons.find((d) => d.output().includes('DOMUSD_READY'))!;
      const losers = daemons.filter((d) => d !== winner);
      for (const d of losers) {
        assert.equal(await d.exited, 3, d.output());
        assert.equal(d.output().trim(), `error: another Domus host (pid ${winner.pid}) is running for ${paths.home}`);
      }
      assert.ok(processAlive(winner.pid));
      const api = await connectHost(paths, false);
      assert.equal((await api.call('host.status', {})).pid, winner.pid, 'the socket is the winner’s');
      api.close();
      assert.equal(readPid(paths.lock), winner.pid);

      // No clean-up by the killed host: the kernel drops its lock, and the next host needs nothing else.
      winner.child.kill('SIGKILL');
      await winner.exited;
      assert.ok(!isLocked(paths.lock), 'the lock died with its holder');
      const next = startDaemon(paths);
      await until(() => next.output().includes('DOMUSD_READY'), 30_000, 'a new host after SIGKILL');
      assert.ok(await hostAnswers(paths.socket));
      next.child.kill('SIGTERM');
      assert.equal(await next.exited, 0);
      assert.ok(!fs.existsSync(paths.socket) && !fs.existsSync(paths.daemonPid), 'a stopping host removes its socket and pid file');
    } finally {
      killLeftovers(paths);
    }
  });

  it('a client that finds the home locked by a host going away (no socket) starts a new host once the lock is free', async () => {
    const paths = freshHome();
    // flock(1) in command mode holds the lock for 3 s, as a host that is stopping would.
    const stopping = spawn('flock', [paths.lock, 'sleep', '3'], { stdio: 'ignore' });
    const gone = new Promise((resolve) => stopping.on('exit', resolve));
    try {
      await until(() => isLocked(paths.lock), 10_000, 'the lock taken');
      await ensureDaemon(paths);
      await gone;
      const api = await connectHost(paths, false);
      const { pid } = await api.call('host.status', {});
      api.close();
      assert.equal(readPid(paths.lock), pid, 'the new host holds the lock');
      process.kill(pid, 'SIGTERM');
      await until(() => !processAlive(pid), 30_000, 'the host to stop');
    } finally {
      stopping.kill('SIGKILL');
      killLeftovers(paths);
    }
  });

  it('a second host started while the first re-attaches exits; the first keeps its socket and is the only one to attach', async () => {
    const paths = freshHome();
    const stateDir = path.join(paths.run, 'a0b1c2d3-0000-4000-8000-00000000abcd');
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    // The v86 driver re-attaches to state dirs with a runner.json.
    fs.writeFileSync(path.join(stateDir, 'runner.json'), '{}');
    // Outside the state dir, which the host removes when it destroys this runner of no known domain.
    const helloLog = path.join(paths.home, 'hellos.txt');
    const runner = spawn(process.execPath, ['--import', 'tsx', path.join(APP_ROOT, 'main', 'testing', 'slow-runner.ts'), stateDir, '4000', helloLog], {
      cwd: APP_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let runnerOut = '';
    runner.stdout!.on('data', (d: Buffer) => (runnerOut += d.toString()));
    const hellos = () => (fs.existsSync(helloLog) ? fs.readFileSync(helloLog, 'utf8').trim().split('\n').length : 0);
    try {
      await until(() => runnerOut.includes('SLOW_RUNNER_READY'), 30_000, 'the stand-in runner');
      const first = startDaemon(paths);
      // The first host holds the lock and waits for the runner's hello; it has no socket yet.
      await until(() => hellos() === 1, 30_000, 'the first host to re-attach');
      assert.ok(!fs.existsSync(paths.socket), 'no socket while re-attaching');

      const second = startDaemon(paths);
      assert.equal(await second.exited, 3, second.output());
      assert.match(second.output(), new RegExp(`another Domus host \\(pid ${first.pid}\\) is running for ${paths.home}`));

      await until(() => first.output().includes('DOMUSD_READY'), 30_000, 'the first host ready');
      const api = await connectHost(paths, false);
      assert.equal((await api.call('host.status', {})).pid, first.pid, 'the socket is still the first host’s');
      api.close();
      assert.equal(hellos(), 1, 'only the first host attached to the runner');
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
    } finally {
      runner.kill('SIGKILL');
      killLeftovers(paths);
    }
  });
});
