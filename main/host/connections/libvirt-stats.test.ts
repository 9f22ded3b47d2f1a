// Listing and statistics on a real libvirtd (private, per run): a list of 50 domains costs a fixed
// number of RPC calls and says what one summary per domain says; a shut-off domain's sample; CPU
// use from CPU time between readings, capped per vCPU.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DomainStatsSample, DomainSummary } from '../../../shared/api.js';
import { libvirtdSkip, startLibvirtd, type Libvirtd } from '../../testing/libvirtd.js';
import { RpcClient } from '../libvirt/rpc-client.js';
import type { LibvirtConnection } from './libvirt.js';
import { CpuMeter } from './libvirt-domstats.js';
import { libvirtConnection } from './open.js';

const xml = (name: string, memMiB: number, vcpus: number): string =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>${memMiB}</memory><currentMemory unit='MiB'>${memMiB / 2}</currentMemory><vcpu>${vcpus}</vcpu>` +
  `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;

describe('CpuMeter', () => {
  test('percent of CPU time over wall time times the vCPUs since the previous reading of the same run, within 0–100', () => {
    const m = new CpuMeter();
    assert.equal(m.percent('u', 3, 1000, 2, 10_000), 0, 'no rate from a first reading');
    assert.equal(m.percent('u', 3, 1500, 2, 11_000), 25);
    assert.equal(m.percent('u', 3, 4500, 2, 12_000), 100, 'two busy vCPUs and more (emulator threads) are capped at 100 %');
    assert.equal(m.percent('u', 4, 10, 2, 13_000), 0, 'a new run (another id) starts over');
    assert.equal(m.percent('u', 4, 5, 2, 14_000), 0, 'CPU time going back is not negative use');
  });
});

describe('listing and statistics on a libvirt connection', { skip: libvirtdSkip() }, () => {
  let daemon: Libvirtd;
  let conn: LibvirtConnection;
  const calls: string[] = [];

  before(async () => {
    daemon = await startLibvirtd();
    // Every call the connection makes, counted at its RPC client.
    conn = libvirtConnection(daemon.uri, async (uri) => {
      const rpc = await RpcClient.connect(uri);
      const call = rpc.call.bind(rpc) as (proc: string, ...args: unknown[]) => Promise<unknown>;
      (rpc as unknown as { call: typeof call }).call = (proc, ...args) => {
        calls.push(proc);
        return call(proc, ...args);
      };
      return rpc;
    });
    await conn.open();
    for (let i = 0; i < 50; i++) await conn.call('domain.define', { xml: xml(`d${String(i).padStart(2, '0')}`, 64 + i * 2, 1 + (i % 3)) });
    for (const name of ['d03', 'd17']) await conn.call('domain.setAutostart', { domain: name, enabled: true });
  });
  after(async () => {
    await conn?.close();
    await daemon?.stop();
  });

  test('50 domains are listed in 4 RPC calls, with what a summary per domain says', async () => {
    calls.length = 0;
    const t0 = Date.now();
    const { domains } = (await conn.call('domain.list', {})) as { domains: DomainSummary[] };
    const ms = Date.now() - t0;
    console.log(`# listed ${domains.length} domains in ${ms} ms with ${calls.length} calls: ${[...new Set(calls)].join(', ')}`);
    assert.equal(domains.length, 50);
    assert.equal(calls.length, 4, `calls: ${calls.join(', ')}`);
    assert.deepEqual(
      domains.filter((d) => d.autostart).map((d) => d.name),
      ['d03', 'd17'],
    );
    for (const d of domains) {
      const one = await conn.summary(await conn.lookup(d.name));
      assert.deepEqual(d, one, `the list's summary of ${d.name}`);
    }
    const d10 = domains.find((d) => d.name === 'd10')!;
    assert.deepEqual([d10.memoryKiB, d10.currentMemoryKiB, d10.vcpus, d10.state, d10.persistent, d10.managedSave], [84 * 1024, 42 * 1024, 2, 'shutoff', true, false]);
  });

  test("a shut-off domain's sample: its definition's memory, no counters", async () => {
    const s = (await conn.call('domain.stats', { domain: 'd01' })) as DomainStatsSample;
    assert.equal(s.state, 'shutoff');
    assert.deepEqual(s.memory, { maxKiB: 66 * 1024, targetKiB: 33 * 1024, actualKiB: 0, guestUsedKiB: undefined });
    assert.deepEqual([s.cpuPercent, s.cpuTimeMs, s.disk.devices, s.net.devices], [0, 0, undefined, undefined]);
  });

  test('setmaxmem --config changes <memory> of the next boot', async () => {
    await conn.call('domain.setMaxMemory', { domain: 'd02', sizeKiB: 262144, live: false, config: true });
    const { xml: after } = (await conn.call('domain.xml', { domain: 'd02', inactive: true })) as { xml: string };
    assert.match(after, /<memory unit='KiB'>262144<\/memory>/);
  });
});
