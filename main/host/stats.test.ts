// The statistics sampler without guests: one timer at the shortest interval watched, none when
// nobody watches; samples and their rates from engine readings; virsh's scaled sizes for setmem.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { parseScaledKiB } from '../cli/commands/memory.js';
import type { RunnerStats } from './drivers/driver.js';
import { buildSample, guestCpuPercent, StatsWatchers } from './stats.js';

/** Advances the mocked interval clock in 50 ms steps, letting each sample settle in between. */
async function advance(t: TestContext, ms: number): Promise<void> {
  for (let at = 0; at < ms; at += 50) {
    t.mock.timers.tick(50);
    await new Promise((r) => setImmediate(r));
  }
}

describe('StatsWatchers', () => {
  it('samples at the shortest interval while watched, and never once the last watcher is gone', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const calls: (string[] | 'all')[] = [];
    const w = new StatsWatchers(async (uuids) => void calls.push(uuids ? [...uuids].sort() : 'all'));
    const a = {};
    const b = {};
    w.watch(a, new Set(['u1']), 1000);
    w.watch(b, new Set(['u2']), 250);
    assert.ok(w.wants(a, 'u1') && !w.wants(a, 'u2') && w.wants(b, 'u2'));
    await advance(t, 1100);
    // The first watch's immediate sample (the second watch finds it still running), then four at 250 ms.
    assert.equal(calls.length, 5, `${calls.length} samples`);
    assert.deepEqual(calls[calls.length - 1], ['u1', 'u2']);
    w.unwatch(b);
    w.unwatch(a);
    assert.equal(w.watched, false);
    const n = calls.length;
    await advance(t, 600);
    assert.equal(calls.length, n, 'no sampling without watchers');
    w.watch(a, undefined, 250);
    assert.equal(calls.length, n + 1, 'a new watcher is sampled at once');
    assert.equal(calls[calls.length - 1], 'all');
    w.unwatch(a);
  });

  it('clear() ends every watch at once (the connection sampled went away)', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let calls = 0;
    const w = new StatsWatchers(async () => void calls++);
    const a = {};
    w.watch(a, undefined, 250);
    w.watch({}, new Set(['u1']), 500);
    await advance(t, 300);
    const n = calls;
    assert.ok(n >= 2, `${n} samples while watched`);
    w.clear();
    assert.equal(w.watched, false);
    assert.equal(w.wants(a, 'u1'), false);
    await advance(t, 1000);
    assert.equal(calls, n, 'no sampling after clear()');
  });

  it('does not start a sample while the previous one still runs', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let started = 0;
    let running = 0;
    let overlap = false;
    let finish = (): void => undefined;
    const w = new StatsWatchers(async () => {
      started++;
      running++;
      overlap ||= running > 1;
      await new Promise<void>((r) => (finish = r));
      running--;
    });
    const owner = {};
    w.watch(owner, undefined, 250);
    await advance(t, 1000);
    assert.equal(started, 1, 'four intervals passed while the first sample ran: none started');
    finish();
    await advance(t, 250);
    assert.equal(started, 2, 'the first interval after it ended samples again');
    finish();
    w.unwatch(owner);
    assert.equal(overlap, false);
  });
});

describe('buildSample', () => {
  const reading = (at: number, cpuTimeMs: number, rd: number, wr: number): RunnerStats => ({
    at,
    cpuTimeMs,
    rssBytes: 200 << 20,
    disks: [{ name: 'hda', path: '/d.img', rdBytes: rd, wrBytes: wr, rdReqs: 1, wrReqs: 1 }],
    nics: [],
  });
  const base = { uuid: 'u', name: 'n', state: 'running' as const };
  const balloon = { maxKiB: 131072, targetKiB: 98304, actualKiB: 98304, status: 'ok' as const, hostReclaims: false, guest: { at: 1, totalKiB: 65000, freeKiB: 40000, cachesKiB: 5000 } };

  it('rates per second and CPU percent against the previous sample', () => {
    const first = buildSample(base, reading(10_000, 1000, 4096, 0), balloon, { maxKiB: 131072, targetKiB: 98304 }, 1, undefined);
    assert.equal(first.sample.cpuPercent, 0, 'no rate without a previous sample');
    const second = buildSample(base, reading(12_000, 1500, 4096 + 2 * 8192, 1024), balloon, { maxKiB: 131072, targetKiB: 98304 }, 1, first.counters);
    assert.equal(second.sample.cpuPercent, 25);
    assert.equal(second.sample.disk.rdBytesPerSec, 8192);
    assert.equal(second.sample.disk.wrBytesPerSec, 512);
    assert.deepEqual(second.sample.memory, { maxKiB: 131072, targetKiB: 98304, actualKiB: 98304, guestUsedKiB: 20000 });
    assert.deepEqual(second.sample.net, { rxBytes: 0, txBytes: 0, rxBytesPerSec: 0, txBytesPerSec: 0, devices: [] });
  });

  it("guest CPU is the vCPUs' time, at most 100 % whatever the engine's own threads add; their work is shown apart", () => {
    const m = { maxKiB: 131072, targetKiB: 98304 };
    // A busy 1-vCPU v86 guest as measured: the process burns 1.8 cores, its emulation thread one.
    const first = buildSample(base, { ...reading(10_000, 5000, 0, 0), vcpuTimeMs: 3000 }, balloon, m, 1, undefined);
    const busy = buildSample(base, { ...reading(12_000, 8600, 0, 0), vcpuTimeMs: 5000 }, balloon, m, 1, first.counters);
    assert.equal(busy.sample.cpuPercent, 100);
    assert.equal(busy.sample.overheadPercent, 80);
    // Two vCPUs, one busy: half of the guest's CPU.
    const two = buildSample(base, { ...reading(12_000, 6000, 0, 0), vcpuTimeMs: 5000 }, balloon, m, 2, first.counters);
    assert.equal(two.sample.cpuPercent, 50);
    // An engine that cannot separate its vCPU threads: the whole process, capped, and no overhead figure.
    const whole = buildSample(base, reading(12_000, 8600, 0, 0), balloon, m, 1, buildSample(base, reading(10_000, 5000, 0, 0), balloon, m, 1, undefined).counters);
    assert.equal(whole.sample.cpuPercent, 100);
    assert.equal(whole.sample.overheadPercent, undefined);
  });

  it("guestCpuPercent: virt-manager's formula, within 0–100", () => {
    assert.equal(guestCpuPercent(1900, 1000, 1), 100);
    assert.equal(guestCpuPercent(500, 1000, 1), 50);
    assert.equal(guestCpuPercent(3000, 1000, 4), 75);
    assert.equal(guestCpuPercent(-10, 1000, 1), 0, 'a counter going back is no negative use');
    assert.equal(guestCpuPercent(10, 0, 1), 0, 'no elapsed time, no rate');
  });

  it('a shut-off domain: the definition, no counters', () => {
    const off = buildSample({ ...base, state: 'shutoff' }, undefined, undefined, { maxKiB: 131072, targetKiB: 65536 }, 1, undefined);
    assert.deepEqual(off.sample.memory, { maxKiB: 131072, targetKiB: 65536, actualKiB: 0, guestUsedKiB: undefined });
    assert.equal(off.counters, undefined);
    assert.equal(off.sample.disk.devices, undefined);
  });
});

describe("setmem's sizes (virsh scaled integers)", () => {
  it('KiB by default, 1024-based units, 1000-based KB/MB, bytes rounded up', () => {
    assert.equal(parseScaledKiB('1024'), 1024);
    assert.equal(parseScaledKiB('512M'), 524288);
    assert.equal(parseScaledKiB('1GiB'), 1048576);
    assert.equal(parseScaledKiB('1MB'), 977);
    assert.equal(parseScaledKiB('1500b'), 2);
    for (const bad of ['', '12XB', '-5', '1.5G', '0']) {
      assert.throws(() => parseScaledKiB(bad), /Scaled numeric value '.*' for <size> option is malformed or out of range/);
    }
  });
});
