import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { ConnectionState, DomainStatsSample, MemoryStats } from '@shared/api';
import { connectFakeHost, settle, summary, type FakeHostTransport } from '../testing/fakeHost';
import { useStatsStore } from './stats';

const MEMORY: MemoryStats = { maxKiB: 262_144, targetKiB: 262_144, actualKiB: 262_144, balloon: 'ok', hostReclaims: true };

describe('stats store', () => {
  let host: FakeHostTransport;

  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost();
    host.answer('stats.watch', () => ({}));
    host.answer('stats.unwatch', () => ({}));
  });
  afterEach(() => mock.timers.reset());

  /** Runs the store's batching of one tick, then lets its request go out. */
  async function flush(): Promise<void> {
    await settle();
    mock.timers.runAll();
    await settle();
  }

  it('watches the union of what is on screen, and nothing once it is gone', async () => {
    const stats = useStatsStore();
    const stopList = stats.watch(['b', 'a']);
    const stopPage = stats.watch(['a', 'c']);
    await flush();
    assert.deepEqual(host.sent('stats.watch'), [{ domains: ['a', 'b', 'c'], intervalMs: 1000 }]);
    stopList();
    stopPage();
    await flush();
    assert.equal(host.sent('stats.unwatch').length, 1);
  });

  it('keeps samples in time order and forgets them when the guest stops', async () => {
    const stats = useStatsStore();
    const sample = (at: number, actualKiB: number) => ({ at, memory: { actualKiB } }) as DomainStatsSample;
    host.emit('domain.stats', { uuid: 'g1', cpuPercent: 5, rssBytes: 0, sample: sample(2000, 200_000) });
    host.emit('domain.stats', { uuid: 'g1', cpuPercent: 5, rssBytes: 0, sample: sample(1000, 100_000) });
    await settle();
    assert.deepEqual(
      stats.history.g1.map((s) => s.at),
      [2000],
    );
    assert.equal(stats.actualKiB.g1, 200_000);
    host.emit('domain.lifecycle', { domain: summary({ uuid: 'g1', name: 'guest' }), event: 'stopped' });
    await settle();
    assert.equal(stats.history.g1, undefined);
    assert.equal(stats.actualKiB.g1, undefined);
  });

  it("gives a guest's IP addresses from its latest sample's NICs, once each", async () => {
    const stats = useStatsStore();
    const net = (devices: NonNullable<DomainStatsSample['net']['devices']>) => ({ rxBytes: 0, txBytes: 0, rxBytesPerSec: 0, txBytesPerSec: 0, devices });
    const sample = (at: number, devices: NonNullable<DomainStatsSample['net']['devices']>) => ({ at, memory: { actualKiB: 1 }, net: net(devices) }) as DomainStatsSample;
    assert.deepEqual(stats.addresses('g1'), []);
    host.emit('domain.stats', { uuid: 'g1', cpuPercent: 0, rssBytes: 0, sample: sample(1000, [{ name: 'vnet0', rxBytes: 0, txBytes: 0 }]) });
    await settle();
    assert.deepEqual(stats.addresses('g1'), []);
    const leased = [
      { name: 'vnet0', mac: '52:54:00:00:00:01', network: 'default', rxBytes: 10, txBytes: 20, addresses: ['192.168.122.10'] },
      { name: 'vnet1', mac: '52:54:00:00:00:02', network: 'lab', rxBytes: 0, txBytes: 0, addresses: ['192.168.100.130', '192.168.122.10'] },
    ];
    host.emit('domain.stats', { uuid: 'g1', cpuPercent: 0, rssBytes: 0, sample: sample(2000, leased) });
    await settle();
    assert.deepEqual(stats.addresses('g1'), ['192.168.122.10', '192.168.100.130']);
  });

  it('shows a balloon event until the next memoryStats answer', async () => {
    const stats = useStatsStore();
    host.answer('domain.memoryStats', () => MEMORY);
    host.emit('domain.balloon', { uuid: 'g1', name: 'guest', actualKiB: 131_072 });
    await settle();
    assert.equal(stats.balloonKiB.g1, 131_072);
    assert.deepEqual(await stats.memoryStats('g1'), MEMORY);
    assert.equal(stats.balloonKiB.g1, undefined);
  });

  it("watches a libvirt connection's domains on that connection, keeps their samples by domain key, and watches again when it reopens", async () => {
    const uri = 'qemu+ssh://admin@far/system';
    const open: ConnectionState = { uri, kind: 'libvirt', state: 'connected', autoconnect: true };
    host = await connectFakeHost([], { connections: [open] });
    host.answer('stats.watch', () => ({}));
    host.answer('stats.unwatch', () => ({}));
    const stats = useStatsStore();
    await flush();
    const stop = stats.watch(['l1', `${uri} r1`, `${uri} r2`]);
    await flush();
    assert.deepEqual(host.sent('stats.watch'), [
      { domains: ['l1'], intervalMs: 1000 },
      { domains: ['r1', 'r2'], intervalMs: 1000 },
    ]);
    assert.deepEqual(host.sentTo('stats.watch'), [undefined, uri]);

    host.emit('domain.stats', { uuid: 'r1', cpuPercent: 7, rssBytes: 0, sample: { at: 1000, memory: { actualKiB: 65_536 } } as DomainStatsSample }, uri);
    host.emit('domain.balloon', { uuid: 'r2', name: 'far-guest', actualKiB: 98_304 }, uri);
    await settle();
    assert.deepEqual(stats.history[`${uri} r1`].map((s) => s.at), [1000]);
    assert.equal(stats.history.r1, undefined, "a libvirt host's sample is not this computer's domain of the same UUID");
    assert.equal(stats.balloonKiB[`${uri} r2`], 98_304);

    // The connection drops and comes back: a new connection on the host, which samples nothing yet.
    host.emit('connection.state', { connection: { ...open, state: 'failed', error: 'gone' } });
    await flush();
    host.emit('connection.state', { connection: open });
    await flush();
    assert.deepEqual(host.sentTo('stats.watch'), [undefined, uri, uri]);
    assert.deepEqual(host.sent('stats.watch')[2], { domains: ['r1', 'r2'], intervalMs: 1000 });

    stop();
    await flush();
    assert.deepEqual(host.sentTo('stats.unwatch').sort(), [undefined, uri].sort());
  });
});
