// The memory balloon and statistics sampling against real guests: setmem inflates and deflates the
// sample guest's balloon and the guest's own `free -m` agrees with what Domus reports; bounds and
// errors; BALLOON_CHANGE events; a guest without the driver; sampling only while someone watches
// (counted at the runner); the CLI's setmem/setmaxmem/dommemstat/domstats. On every engine and on a
// libvirt connection (a private libvirtd's QEMU).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { controlRequest } from '../testing/connect-unix.js';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DomainStatsSample, Events, MemoryStats, TraceRecord } from '../../shared/api.js';
import type { ApiCallError } from '../../shared/client.js';
import { connectHost } from '../cli/connect.js';
import { APP_ROOT } from '../common/paths.js';
import { CONNECTION_ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, sleep, until, type TestEngine } from '../testing/harness.js';

const BOOT = 600_000; // the machine is shared; boots can be several times slower than alone
const MiB = 1024;

/** `free -m`'s total and free, in MiB. */
async function freeMiB(serial: SerialWatch): Promise<{ total: number; free: number }> {
  const out = await serial.sh('free -m | grep Mem:');
  const m = /Mem:\s+(\d+)\s+(\d+)\s+(\d+)/.exec(out);
  assert.ok(m, `free -m printed: ${out}`);
  return { total: Number(m[1]), free: Number(m[3]) };
}

/**
 * The domain's memory statistics once they agree with the guest's `free -m` (within 2 MiB): a
 * statistics request the guest does not answer in time gets the last ones it sent, which on a loaded
 * machine can be from before the balloon moved.
 */
async function statsMatchingFree(t: TestHost, serial: SerialWatch): Promise<{ m: MemoryStats; free: { total: number; free: number } }> {
  const free = await freeMiB(serial);
  let m: MemoryStats | undefined;
  const agree = async (): Promise<boolean> => {
    m = await t.client.call('domain.memoryStats', { domain: 'bal' });
    return m.availableKiB !== undefined && Math.abs(free.total - m.availableKiB / 1024) <= 2;
  };
  await until(agree, 15_000, 'the statistics to agree with free -m').catch((err: Error) => {
    throw new Error(`${err.message}: free -m total ${free.total} MiB vs available ${m?.availableKiB} KiB`);
  });
  return { m: m!, free };
}

/** The connections the host has accepted on its API socket and not yet closed (its ends, in /proc/net/unix). */
function hostApiConnections(t: TestHost): number {
  // Num RefCount Protocol Flags Type St Inode Path; St 03: connected.
  return fs
    .readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[5] === '03' && f[7] === t.paths.socket).length;
}

/** Asks the runner directly how many `stats` requests it has answered (its own request included). */
async function runnerStatsRequests(t: TestHost, uuid: string): Promise<number> {
  const res = await controlRequest<{ result: { requests: number } }>(path.join(t.paths.run, uuid, 'control.sock'), { id: 1, op: 'stats' });
  return res.result.requests;
}

/**
 * Where the engines differ, in one place. The balloons leave deflate-on-oom off (libvirt's default),
 * so on all of them the guest's MemTotal follows the target. QEMU, Domus's or libvirt's, hands the
 * pages back to the host; v86 does not. Counting stats requests needs the v86 runner's control
 * socket; QEMU's QMP socket takes one client (the host, or libvirtd), so nothing outside can count
 * what is asked of it. libvirt keeps no balloon target: its current memory is what the guest holds,
 * and it takes any <memory> for the next boot (a guest too small fails at start).
 */
const FACTS: Record<TestEngine, { hostReclaims: boolean; statsRequests?: typeof runnerStatsRequests; noStatsCount?: string; currentIsTarget: boolean; tooSmallRefused?: boolean }> = {
  v86: { hostReclaims: false, statsRequests: runnerStatsRequests, currentIsTarget: true, tooSmallRefused: true },
  qemu: { hostReclaims: true, noStatsCount: "QEMU's QMP socket serves only the host: no outside count of the stats requests", currentIsTarget: true, tooSmallRefused: true },
  libvirt: { hostReclaims: true, noStatsCount: "libvirtd's QEMU monitor serves only libvirtd: no outside count of the stats requests", currentIsTarget: false },
};


async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: ApiCallError) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

for (const engine of CONNECTION_ENGINES) describe(`memory balloon and statistics (${engine})`, { skip: engineSkip(engine), timeout: 2_400_000 }, () => {
  const facts = FACTS[engine];
  let t: TestHost;
  let serial: SerialWatch;
  let uuid: string;
  /** The CLI on the engine's connection. */
  const cliArgs = (args: string[]): string[] => (t.libvirtd ? ['-c', t.libvirtd.uri, ...args] : args);
  const balloonEvents: Events['domain.balloon'][] = [];

  before(async () => {
    t = await TestHost.start(engine);
    t.client.on('domain.balloon', (e) => balloonEvents.push(e));
    // Booted from disk.img through SeaBIOS and extlinux, so the disk counters see the kernel being read.
    const disk = path.join(t.home, 'bal.img');
    fs.copyFileSync(guest('disk.img'), disk);
    await createOn(t.client, { name: 'bal', memoryMiB: 128, vcpus: 1, boot: { kind: 'disk', disk } }, engine);
    uuid = (await t.client.call('domain.info', { domain: 'bal' })).uuid;
    // Started with <currentMemory> below <memory>: the balloon is inflated from boot on.
    await t.client.call('domain.setMemory', { domain: 'bal', sizeKiB: 112 * MiB, config: true });
    await t.client.call('domain.start', { domain: 'bal' });
    serial = await SerialWatch.open(t.client, 'bal');
    await serial.wait(/DOMUS-GUEST-READY/, BOOT);
  });
  after(async () => {
    await t?.stop();
  });

  it('starts inflated to <currentMemory>, then setmem inflates and deflates; free -m agrees', async () => {
    await until(
      async () => {
        const m = await t.client.call('domain.memoryStats', { domain: 'bal' });
        return m.balloon === 'ok' && m.actualKiB === 112 * MiB;
      },
      30_000,
      'the boot target to be reached',
    );
    const { m: boot, free: free0 } = await statsMatchingFree(t, serial);
    assert.equal(boot.maxKiB, 128 * MiB);
    assert.equal(boot.targetKiB, 112 * MiB);
    assert.equal(boot.actualKiB, 112 * MiB);
    assert.equal(boot.hostReclaims, facts.hostReclaims);
    assert.ok(boot.availableKiB && boot.unusedKiB && boot.usableKiB && boot.rssKiB && boot.lastUpdate, JSON.stringify(boot));

    for (const targetMiB of [72, 128, 96]) {
      const seen = balloonEvents.length;
      const t0 = Date.now();
      const r = await t.client.call('domain.setMemory', { domain: 'bal', sizeKiB: targetMiB * MiB });
      if (facts.currentIsTarget) assert.equal(r.domain.currentMemoryKiB, targetMiB * MiB, 'current memory follows at once (it is the target)');
      else assert.equal((await t.client.call('domain.memoryStats', { domain: 'bal' })).targetKiB, targetMiB * MiB, 'the target is what was asked at once');
      await until(() => balloonEvents.slice(seen).some((e) => e.uuid === uuid && e.actualKiB === targetMiB * MiB), 60_000, `a balloon event at ${targetMiB} MiB`);
      const reachedMs = Date.now() - t0;
      const { m, free } = await statsMatchingFree(t, serial);
      assert.equal(m.balloon, 'ok');
      assert.equal(m.actualKiB, targetMiB * MiB);
      assert.equal((await t.client.call('domain.info', { domain: 'bal' })).currentMemoryKiB, targetMiB * MiB, 'dominfo shows the new size');
      console.log(`# ${engine}: balloon to ${targetMiB} MiB reached in ${reachedMs} ms (${balloonEvents.length - seen} events); free -m total ${free.total} MiB`);
      // What the guest lost or gained is what the balloon took or gave back.
      const changeMiB = free.total - free0.total;
      assert.ok(Math.abs(changeMiB - (targetMiB - 112)) <= 2, `free -m total moved by ${changeMiB} MiB for a target move of ${targetMiB - 112} MiB`);
    }
    const live = await t.client.call('domain.xml', { domain: 'bal' });
    assert.match(live.xml, /<currentMemory unit='KiB'>98304<\/currentMemory>/);
    const inactive = await t.client.call('domain.xml', { domain: 'bal', inactive: true });
    assert.match(inactive.xml, /<currentMemory unit='KiB'>114688<\/currentMemory>/, 'setmem on a running domain (--current) leaves the next boot alone');
  });

  it('bounds and errors', async () => {
    await rejects(t.client.call('domain.setMemory', { domain: 'bal', sizeKiB: 129 * MiB }), 'INVALID_ARG', /cannot set memory higher than max memory/);
    await rejects(t.client.call('domain.setMemory', { domain: 'bal', sizeKiB: 32 * MiB }), 'INVALID_ARG', /below 65536 KiB/);
    await rejects(t.client.call('domain.setMaxMemory', { domain: 'bal', sizeKiB: 256 * MiB, live: true }), 'OPERATION_INVALID', /cannot resize the maximum memory on an active domain/);
    // --config on a running domain: the definition only.
    const before = (await t.client.call('domain.memoryStats', { domain: 'bal' })).targetKiB;
    await t.client.call('domain.setMemory', { domain: 'bal', sizeKiB: 100 * MiB, config: true });
    assert.match((await t.client.call('domain.xml', { domain: 'bal', inactive: true })).xml, /<currentMemory unit='KiB'>102400<\/currentMemory>/);
    assert.equal((await t.client.call('domain.memoryStats', { domain: 'bal' })).targetKiB, before, 'the running guest is untouched');
    await createOn(t.client, { name: 'off', memoryMiB: 128, vcpus: 1, boot: { kind: 'disk', disk: guest('disk.img') } }, engine);
    await rejects(t.client.call('domain.setMemory', { domain: 'off', sizeKiB: 100 * MiB, live: true }), 'OPERATION_INVALID', /domain is not running/);
    await rejects(t.client.call('domain.memoryStats', { domain: 'off' }), 'OPERATION_INVALID', /is not running/);
    await rejects(t.client.call('domain.setMemory', { domain: 'off', sizeKiB: 32 * MiB }), 'INVALID_ARG', /below 65536 KiB/);
    const off = await t.client.call('domain.stats', { domain: 'off' });
    assert.deepEqual([off.memory.maxKiB, off.memory.targetKiB, off.memory.actualKiB, off.memory.guestUsedKiB], [128 * MiB, 128 * MiB, 0, undefined]);
    assert.equal(off.state, 'shutoff');
  });

  it('a watcher gets samples (CPU, RSS, balloon, guest memory, disk and NIC counters); other clients get none', async () => {
    const samples: DomainStatsSample[] = [];
    t.client.on('domain.stats', (e) => e.sample && samples.push(e.sample));
    const other = await connectHost(t.paths, false);
    let otherGot = 0;
    other.on('domain.stats', () => otherGot++);
    await t.client.call('stats.watch', { domains: ['bal'], intervalMs: 250 });
    await until(() => samples.length >= 6, 30_000, 'six samples');
    await t.client.call('stats.unwatch', {});
    const s = samples[samples.length - 1];
    assert.equal(s.uuid, uuid);
    assert.equal(s.state, 'running');
    assert.ok(s.cpuTimeMs > 0 && s.rssBytes > 50 * 1024 * 1024, JSON.stringify(s));
    assert.ok(samples.some((x) => x.cpuPercent > 0), 'CPU use is reported');
    assert.equal(s.memory.maxKiB, 128 * MiB);
    assert.equal(s.memory.actualKiB, 96 * MiB);
    assert.ok(s.memory.guestUsedKiB && s.memory.guestUsedKiB > 1024 && s.memory.guestUsedKiB < 96 * MiB, `guest used ${s.memory.guestUsedKiB}`);
    assert.ok(s.disk.rdBytes > 4 * 1024 * 1024, `the kernel and initrd were read from disk (${s.disk.rdBytes} bytes)`);
    assert.equal(s.disk.devices?.[0]?.name, 'hda');
    assert.deepEqual([s.net.rxBytes, s.net.txBytes, s.net.devices], [0, 0, []], 'the guest has no NIC');
    assert.equal(otherGot, 0, 'a client that does not watch gets no samples');
    const count = samples.length;
    // What is under test is that nothing happens: 3 s (twelve intervals) without a sample.
    await sleep(3000);
    assert.equal(samples.length, count, 'unwatched: no more samples');
    other.close();
  });

  it('sampling runs only while someone watches, and stops when the watcher leaves or disconnects (counted at the runner)', { skip: facts.noStatsCount }, async () => {
    const statsRequests = facts.statsRequests!;
    const idle0 = await statsRequests(t, uuid);
    // What is under test, here and below, is that nothing happens: 3 s without a poll of the runner.
    await sleep(3000);
    assert.equal(await statsRequests(t, uuid), idle0 + 1, 'nobody watches: the host does not poll the runner');

    let samples = 0;
    t.client.on('domain.stats', (e) => e.sample && samples++);
    await t.client.call('stats.watch', { domains: ['bal'], intervalMs: 250 });
    await until(() => samples >= 3, 30_000, 'three samples');
    await t.client.call('stats.unwatch', {});
    const afterUnwatch = await statsRequests(t, uuid);
    await sleep(3000);
    assert.equal(await statsRequests(t, uuid), afterUnwatch + 1, 'unwatched: polling stopped');

    // A watcher that disconnects without unwatching stops the sampling too.
    const other = await connectHost(t.paths, false);
    let otherGot = 0;
    other.on('domain.stats', () => otherGot++);
    await other.call('stats.watch', { intervalMs: 250 });
    await until(() => otherGot >= 3, 30_000, 'samples for the second client');
    const connections = hostApiConnections(t);
    other.close();
    // The host unwatches in the same turn as it closes its end of the connection.
    await until(() => hostApiConnections(t) < connections, 10_000, 'the host to close the connection of the watcher that left');
    const afterClose = await statsRequests(t, uuid);
    await sleep(3000);
    assert.equal(await statsRequests(t, uuid), afterClose + 1, 'disconnected: polling stopped');
  });

  it('CLI: setmem, event --event balloon-change, setmaxmem --config then dumpxml --inactive, dommemstat, domstats', async () => {
    const events = spawn(process.execPath, [path.join(APP_ROOT, 'bin', 'domus.mjs'), ...cliArgs(['event', '--event', 'balloon-change', '--domain', 'bal', '--loop', '--timeout', '300'])], {
      env: { ...process.env, DOMUS_HOME: t.home },
    });
    let eventOut = '';
    events.stdout.on('data', (d: Buffer) => (eventOut += d.toString()));
    try {
      // The listener is ready once its session.hello shows in the host's trace: it listens from then on.
      const isListener = (r: TraceRecord): boolean => r.op === 'session.hello' && r.client?.pid === events.pid;
      let listening = false;
      const offTrace = t.client.on('trace.record', ({ record }) => (listening ||= isListener(record)));
      const { backlog } = await t.client.call('trace.subscribe', { op: 'session.hello', backlog: true });
      listening ||= backlog.some(isListener);
      await until(() => listening, 30_000, "the event listener's session.hello in the trace");
      await t.client.call('trace.unsubscribe', {});
      offTrace();
      await t.client.call('domain.setMemory', { domain: 'bal', sizeKiB: 84 * MiB });
      await until(async () => (await t.client.call('domain.memoryStats', { domain: 'bal' })).actualKiB === 84 * MiB, 60_000, 'the guest at 84 MiB');
      const setmem = await t.cli(cliArgs(['setmem', 'bal', '80M']));
      assert.deepEqual([setmem.code, setmem.stdout, setmem.stderr], [0, '', '']);
      await until(async () => (await t.client.call('domain.memoryStats', { domain: 'bal' })).actualKiB === 80 * MiB, 60_000, 'the guest at 80 MiB');
      await until(() => eventOut.includes("event 'balloon-change' for domain 'bal': 81920KiB\n"), 30_000, 'the listener to print the change to 80 MiB');
      assert.match(eventOut, /^(event 'balloon-change' for domain 'bal': \d+KiB\n)+/);
      assert.ok(eventOut.includes("event 'balloon-change' for domain 'bal': 81920KiB\n"), eventOut);
    } finally {
      events.kill();
    }
    const stat = await t.cli(cliArgs(['dommemstat', 'bal']));
    assert.equal(stat.code, 0, stat.stderr);
    assert.match(stat.stdout, /^actual 81920\nunused \d+\navailable \d+\nusable \d+\nlast_update \d+\ndisk_caches \d+\nrss \d+\n\n$/);

    const live = await t.cli(cliArgs(['setmaxmem', 'bal', '256M']));
    assert.equal(live.code, 1);
    assert.match(live.stderr, /^error: Requested operation is not valid: cannot resize the maximum memory on an active domain/);
    const config = await t.cli(cliArgs(['setmaxmem', 'bal', '262144', '--config']));
    assert.deepEqual([config.code, config.stderr], [0, '']);
    const xml = await t.cli(cliArgs(['dumpxml', 'bal', '--inactive']));
    assert.match(xml.stdout, /<memory unit='KiB'>262144<\/memory>/);
    if (facts.tooSmallRefused) {
      const tooSmall = await t.cli(cliArgs(['setmaxmem', 'bal', '8M', '--config']));
      assert.equal(tooSmall.code, 1);
      assert.match(tooSmall.stderr, /^error: invalid argument: memory 8 MiB is too small/);
    }

    const bad = await t.cli(cliArgs(['setmem', 'bal', '12XB']));
    assert.equal(bad.stderr, "error: Scaled numeric value '12XB' for <size> option is malformed or out of range\n");
    const high = await t.cli(cliArgs(['setmem', 'bal', '1G', '--live']));
    assert.match(high.stderr, /^error: invalid argument: cannot set memory higher than max memory/);
    const notRunning = await t.cli(cliArgs(['setmem', 'off', '100M', '--live']));
    assert.equal(notRunning.stderr, 'error: Requested operation is not valid: domain is not running\n');

    const stats = await t.cli(cliArgs(['domstats', 'bal']));
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /^Domain: 'bal'\n {2}state\.state=1\n/);
    assert.match(stats.stdout, /\n {2}cpu\.time=[1-9]\d*\n/);
    assert.match(stats.stdout, /\n {2}balloon\.current=81920\n {2}balloon\.maximum=131072\n/);
    assert.match(stats.stdout, /\n {2}net\.count=0\n {2}block\.count=1\n {2}block\.0\.name=hda\n {2}block\.0\.path=.*bal\.img\n {2}block\.0\.rd\.reqs=\d+\n {2}block\.0\.rd\.bytes=[1-9]\d+\n/);
  });

  it('a guest without the balloon driver is reported as no-driver', async () => {
    await createOn(
      t.client,
      {
        name: 'nodrv',
        memoryMiB: 128,
        vcpus: 1,
        // The sample init skips a module blacklisted on the kernel command line, as modprobe does.
        boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: `${SAMPLE_CMDLINE} module_blacklist=virtio_balloon` },
      },
      engine,
    );
    await t.client.call('domain.start', { domain: 'nodrv' });
    const s = await SerialWatch.open(t.client, 'nodrv');
    await s.wait(/DOMUS-GUEST-READY/, BOOT);
    assert.match(await s.sh('grep -c ^virtio_balloon /proc/modules'), /^0$/m, 'the driver is not loaded');
    await t.client.call('domain.setMemory', { domain: 'nodrv', sizeKiB: 96 * MiB, live: true });
    assert.equal((await t.client.call('domain.memoryStats', { domain: 'nodrv' })).balloon, 'pending');
    await until(async () => (await t.client.call('domain.memoryStats', { domain: 'nodrv' })).balloon === 'no-driver', 30_000, 'the no-driver verdict');
    const m = await t.client.call('domain.memoryStats', { domain: 'nodrv' });
    assert.equal(m.actualKiB, 128 * MiB, 'the guest kept all its memory');
    assert.equal(m.availableKiB, undefined, 'no guest statistics without a driver');
    const free = await freeMiB(s);
    assert.ok(free.total > 90, `the guest still has ${free.total} MiB`);
  });

  it('a guest that has not loaded its balloon driver yet is pending, not no-driver', { skip: engine !== 'v86' && 'v86 sees the guest take up the virtio device; QEMU (and libvirt) does not say' }, async () => {
    await createOn(
      t.client,
      {
        name: 'early',
        memoryMiB: 128,
        vcpus: 1,
        // Without virtio_pci the guest never enumerates its virtio devices: like a guest still booting.
        boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: `${SAMPLE_CMDLINE} module_blacklist=virtio_pci` },
      },
      engine,
    );
    await t.client.call('domain.start', { domain: 'early' });
    await t.client.call('domain.setMemory', { domain: 'early', sizeKiB: 96 * MiB, live: true });
    const s = await SerialWatch.open(t.client, 'early');
    // Past the point where the guest would have taken up its virtio devices.
    await s.wait(/domus-init: virtio_pci is blacklisted/, BOOT);
    // What is under test is that nothing happens: the host's 5 s no-driver timeout passes.
    await sleep(6000);
    const m = await t.client.call('domain.memoryStats', { domain: 'early' });
    assert.equal(m.balloon, 'pending', 'past the 5 s no-driver timeout, but the guest never looked at the device');
    assert.equal(m.actualKiB, 128 * MiB);
    await t.client.call('domain.destroy', { domain: 'early' });
  });
});
