// Guests outlive the host: SIGKILL of the host with two guests running, re-attach without losing
// serial output; autostart; each on-host-stop policy (shutdown, save, keep); the live trace of a
// scripted sequence of CLI calls.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TraceRecord } from '../../shared/api.js';
import { processAlive } from '../common/fsutil.js';
import { APP_ROOT } from '../common/paths.js';
import { findQemu } from './drivers/qemu/binary.js';
import { ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, sleep, until } from '../testing/harness.js';

const BOOT = 150_000;
const pvSpec = (name: string) => ({
  name,
  memoryMiB: 128,
  vcpus: 1,
  boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE },
});

/** The TICK numbers in serial text, in order. */
const ticks = (text: string, tag: string): number[] => [...text.matchAll(new RegExp(`${tag}(\\d+)E`, 'g'))].map((m) => Number(m[1]));

for (const engine of ENGINES) describe(`guests outlive the host (${engine})`, { timeout: 900_000, skip: engineSkip(engine) }, () => {
  let t: TestHost;

  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  it('SIGKILL of the host leaves both guests running; a new host re-attaches with no lost serial output', async () => {
    for (const name of ['one', 'two']) await createOn(t.client, pvSpec(name), engine);
    // What is under test is the host's absence, not the boot: both guests from one post-boot state.
    const watches = [await t.bootOrRestore('one', BOOT), await t.bootOrRestore('two', BOOT)];
    const uuids = await Promise.all(['one', 'two'].map(async (name) => (await t.client.call('domain.info', { domain: name })).uuid));
    const pids = uuids.map((u) => t.runnerPid(u)!);
    // Each guest counts on its serial line, before, during and after the host's absence.
    for (const [i, name] of ['one', 'two'].entries()) {
      const tag = `T${name}`;
      await t.client.call('domain.serialWrite', {
        domain: name,
        data: Buffer.from(`i=0; while true; do echo ${tag}$i""E; i=$((i+1)); sleep 0.2; done &\n`).toString('base64'),
      });
      await watches[i].wait(new RegExp(`${tag}3E`), 30_000);
    }

    const lastSeen = ['one', 'two'].map((name, i) => ticks(watches[i].text, `T${name}`).at(-1) ?? 0);
    await t.killHost();
    // What is under test is the host's absence: for 2.5 s each guest prints ticks only its runner keeps.
    await sleep(2500);
    for (const pid of pids) assert.ok(processAlive(pid), `runner ${pid} survived the host`);

    const t0 = Date.now();
    await t.reconnect();
    const { domains } = await t.client.call('domain.list', { all: true });
    console.log(`# re-attach of 2 guests: ${Date.now() - t0} ms (host start included)`);
    assert.deepEqual(domains.map((d) => `${d.name}:${d.state}`).sort(), ['one:running', 'two:running']);

    for (const [i, name] of ['one', 'two'].entries()) {
      const tag = `T${name}`;
      const w = await SerialWatch.open(t.client, name);
      const before = ticks(w.text, tag);
      // The backlog spans the host's absence: from a tick seen before the kill to one printed after it.
      assert.ok(before.length > 0 && before[0] <= lastSeen[i] + 1 && before.at(-1)! > lastSeen[i], `the backlog holds the ticks printed while the host was gone (last seen before: ${lastSeen[i]}): ${before.join(',')}`);
      await w.wait(new RegExp(`${tag}${(before.at(-1) ?? 0) + 5}E`), 30_000);
      const all = ticks(w.text, tag);
      // Serial produced while the host was gone came back as the runner's backlog: no gap from then on.
      const firstAfterKill = all.findIndex((n, i) => i > 0 && n !== all[i - 1] + 1);
      assert.equal(firstAfterKill, -1, `serial numbers have a gap: ${all.join(',')}`);
    }
    // The lock in the domain's state directory: a second runner (say, from another host) is refused.
    const stateDir = path.join(t.paths.run, uuids[0]);
    if (engine === 'v86') {
      const second = spawnSync(process.execPath, [path.join(APP_ROOT, 'dist', 'runner', 'main.mjs'), stateDir], { encoding: 'utf8' });
      assert.equal(second.status, 2);
      assert.match(second.stderr, new RegExp(`error: another runner \\(pid ${pids[0]}\\) is using ${stateDir}`));
    } else {
      // QEMU locks its -pidfile: a second QEMU on the same directory refuses to start.
      const pidfile = path.join(stateDir, 'runner.pid');
      const second = spawnSync(findQemu().path!, ['-machine', 'none', '-display', 'none', '-nodefaults', '-pidfile', pidfile], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(second.status, 1);
      assert.match(second.stderr, /lock pid file/i);
    }
    assert.ok(processAlive(pids[0]), 'the running guest is untouched');
    const control = engine === 'v86' ? 'control.sock' : 'qmp.sock';
    assert.ok(fs.existsSync(path.join(stateDir, control)) && fs.existsSync(path.join(stateDir, 'vnc.sock')), 'its sockets too');

    for (const name of ['one', 'two']) await t.client.call('domain.destroy', { domain: name });
  });

  it('autostart domains start with the host; each on-stop policy is followed when the host stops', async () => {
    await createOn(t.client, pvSpec('auto'), engine);
    await t.client.call('domain.setAutostart', { domain: 'auto', enabled: true });
    const one = await t.bootOrRestore('one', BOOT);
    await t.bootOrRestore('two', BOOT);
    // Set on the running guests (live and definition): a restore runs the definition its state was saved with.
    await t.client.call('domain.setOnHostStop', { domain: 'one', policy: 'save' });
    await t.client.call('domain.setOnHostStop', { domain: 'two', policy: 'keep' });
    assert.equal((await t.client.call('domain.info', { domain: 'two' })).onHostStop, 'keep');
    await one.sh('echo saved-with-the-host > /tmp/marker');
    const twoUuid = (await t.client.call('domain.info', { domain: 'two' })).uuid;
    const twoPid = t.runnerPid(twoUuid)!;

    // 'auto' (policy shutdown, the default) is started by the next host, so stop it first.
    const progress: string[] = [];
    t.client.on('host.stopping', ({ domains }) => progress.push(domains.map((d) => `${d.name}:${d.policy}:${d.step}`).join(' ')));
    const daemon = t.daemonPid();
    await t.client.call('host.stop', {});
    await until(() => !processAlive(daemon), 120_000, 'the host to stop').catch((err: Error) => {
      throw new Error(`${err.message}; progress: ${progress.join(' | ')}; log: ${fs.readFileSync(t.paths.log, 'utf8').slice(-1500)}`);
    });
    assert.ok(progress.some((p) => p.includes('one:save:saving')), progress.join('\n'));
    assert.ok(progress.some((p) => p.includes('one:save:done') && p.includes('two:keep:done')), progress.join('\n'));
    assert.ok(processAlive(twoPid), 'the keep domain runs on without a host');

    await t.reconnect();
    await until(async () => (await t.client.call('domain.info', { domain: 'auto' })).state === 'running', 30_000, 'autostart');
    const infoOne = await t.client.call('domain.info', { domain: 'one' });
    assert.deepEqual([infoOne.state, infoOne.reason, infoOne.managedSave], ['shutoff', 'saved', true]);
    const infoTwo = await t.client.call('domain.info', { domain: 'two' });
    assert.equal(infoTwo.state, 'running');
    assert.equal(t.runnerPid(twoUuid), twoPid, 'the same runner, re-attached');

    // The saved domain comes back where it was, never cold-booted.
    await t.client.call('domain.start', { domain: 'one' });
    const back = await t.client.call('domain.info', { domain: 'one' });
    assert.deepEqual([back.state, back.reason, back.managedSave], ['running', 'restored', false]);
    const again = await SerialWatch.open(t.client, 'one');
    assert.match(await again.sh('cat /tmp/marker'), /saved-with-the-host/);

    // Policy 'shutdown' (the default): a clean shutdown when the host stops.
    const autoSerial = await SerialWatch.open(t.client, 'auto');
    await autoSerial.wait(/DOMUS-GUEST-READY/, BOOT);
    await t.client.call('domain.setAutostart', { domain: 'auto', enabled: false });
    await t.client.call('domain.setOnHostStop', { domain: 'one', policy: 'keep' });
    await t.client.call('domain.destroy', { domain: 'two' });
    const stops: string[] = [];
    t.client.on('domain.lifecycle', (e) => {
      if (e.domain.name === 'auto' && e.event === 'stopped') stops.push(e.domain.reason);
    });
    const progress2: string[] = [];
    t.client.on('host.stopping', ({ domains }) => progress2.push(domains.map((d) => `${d.name}:${d.policy}:${d.step}`).join(' ')));
    const daemon2 = t.daemonPid();
    await t.client.call('host.stop', {});
    await until(() => !processAlive(daemon2), 120_000, 'the host to stop');
    assert.deepEqual(stops, ['shutdown'], 'the guest was shut down cleanly, not forced');
    assert.ok(progress2.some((p) => p.includes('auto:shutdown:shutting-down')), progress2.join('\n'));
    assert.ok(progress2.some((p) => p.includes('auto:shutdown:done') && p.includes('one:keep:done')), progress2.join('\n'));
    await t.reconnect();
    assert.equal((await t.client.call('domain.info', { domain: 'auto' })).state, 'shutoff');
    assert.equal((await t.client.call('domain.info', { domain: 'one' })).state, 'running');
    await t.client.call('domain.destroy', { domain: 'one' });
  });

  // Engine-independent: run once.
  it('the trace records a scripted sequence of CLI calls: client, pid, domain, operation, result', { skip: engine !== ENGINES[0] }, async () => {
    const records: TraceRecord[] = [];
    t.client.on('trace.record', ({ record }) => records.push(record));
    await t.client.call('trace.subscribe', { domain: 'traced', backlog: false });
    const xml = `<domain type='v86'><name>traced</name><memory unit='MiB'>128</memory><os><type>hvm</type><kernel>${guest('vmlinuz')}</kernel><initrd>${guest('initrd.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline></os><devices><graphics type='vnc' passwd='hunter2'/></devices></domain>`;
    const file = `${t.home}/traced.xml`;
    fs.writeFileSync(file, xml);
    for (const args of [['define', file], ['start', 'traced'], ['suspend', 'traced'], ['resume', 'traced'], ['destroy', 'traced'], ['start', 'nonexistent'], ['undefine', 'traced']]) {
      const r = await t.cli(args);
      assert.equal(r.code, args[1] === 'nonexistent' ? 1 : 0, r.stderr);
    }
    await until(() => records.some((r) => r.op === 'domain.undefine'), 5000, 'the last trace record');
    const requests = records.filter((r) => r.kind === 'request' && r.op !== 'session.hello');
    assert.deepEqual(
      requests.map((r) => `${r.op}:${r.ok}`),
      ['domain.define:true', 'domain.start:true', 'domain.suspend:true', 'domain.resume:true', 'domain.destroy:true', 'domain.undefine:true'],
    );
    for (const r of requests) {
      assert.equal(r.client?.kind, 'cli');
      assert.ok(r.client?.pid && r.client.pid !== process.pid);
      assert.match(r.client?.label ?? '', /^domus /);
      assert.equal(r.domain, 'traced');
      assert.ok(typeof r.durationMs === 'number');
    }
    assert.match(requests[1].result ?? '', /traced: running \(booted\)/);
    const define = JSON.stringify(requests[0].args);
    assert.doesNotMatch(define, /hunter2/, 'secrets are redacted');
    assert.match(define, /passwd='\*\*\*'/);
    const events = records.filter((r) => r.kind === 'event').map((r) => r.op);
    assert.ok(events.includes('domain.lifecycle'));
    await t.client.call('trace.unsubscribe', {});
  });
});
