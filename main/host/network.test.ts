// Virtual networks' data path with real guests on Domus's own switch: four sample guests (two v86,
// two QEMU, each NIC model once) on the `default` network get DHCP leases from its range (one a static
// lease), ping each other and the gateway, and move 1 MiB over TCP with its sha256 checked, v86+v86,
// QEMU+QEMU and v86+QEMU; a transfer survives a SIGKILL of the host; link down on the switch's
// control socket cuts a guest off and up brings it back. Traffic goes only between guests on the
// switch. The guests are booted once for the whole file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { controlRequest } from '../testing/connect-unix.js';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENGINES, SerialWatch, TestHost, engineSkip, networkGuestXml, sleep, until, type LocalEngine } from '../testing/harness.js';
import type { Lease, SwitchStatus } from '../netswitch/protocol.js';

const BOOT = 600_000; // the machine is shared; boots can be several times slower than alone
const KiB = 1024;

interface Guest {
  name: string;
  engine: LocalEngine;
  model: string;
  mac: string;
  serial: SerialWatch;
  ip: string;
  /** From `domain.start` to the DOMUS-NET-UP line (boot and DHCP). */
  leaseMs: number;
}

const GUESTS: { name: string; engine: LocalEngine; model: string; mac: string }[] = [
  { name: 'va', engine: 'v86', model: 'ne2k_pci', mac: '52:54:00:10:00:01' },
  { name: 'vb', engine: 'v86', model: 'virtio', mac: '52:54:00:10:00:02' },
  { name: 'qa', engine: 'qemu', model: 'virtio', mac: '52:54:00:10:00:03' },
  { name: 'qb', engine: 'qemu', model: 'e1000', mac: '52:54:00:10:00:04' },
];
/** qb's static lease, outside the order the range would hand out. */
const STATIC_IP = '192.168.122.77';

const NETWORK_XML = `<network>
  <name>default</name>
  <mac address='52:54:00:d0:4d:01'/>
  <ip address='192.168.122.1' prefix='24'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:10:00:04' name='qb' ip='${STATIC_IP}'/>
    </dhcp>
  </ip>
</network>
`;

/** One request on the switch's control socket. */
async function switchControl<T>(t: TestHost, req: Record<string, unknown>): Promise<T> {
  const res = await controlRequest<{ ok: boolean; result: T; error?: string }>(path.join(t.paths.networkRun, 'default', 'control.sock'), { id: 7, ...req });
  assert.ok(res.ok, res.error);
  return res.result;
}

/** `ping -c N` from one guest to an address: packets received and the average RTT in ms. */
async function ping(from: Guest, ip: string, count = 3): Promise<{ received: number; avgMs?: number }> {
  const out = await from.serial.sh(`ping -c ${count} -W 2 ${ip}`, 60_000);
  const got = /(\d+) packets received/.exec(out);
  assert.ok(got, `ping printed: ${out}`);
  const rtt = /min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(out);
  return { received: Number(got[1]), avgMs: rtt ? Number(rtt[1]) : undefined };
}

/** The receiver's file size, read over its serial console. */
async function fileSize(g: Guest, file: string): Promise<number> {
  const out = await g.serial.sh(`wc -c < ${file} 2>/dev/null || echo 0`);
  return Number(/(\d+)/.exec(out)?.[1] ?? 0);
}

/**
 * Starts a TCP transfer of `kib` KiB of random data from `src` to `dst` with nc; returns the
 * sender's sha256 and a function that waits for the receiver to have it all and returns its sha256
 * and the transfer's wall time. `paceMs`: the sender pauses that long after each 64 KiB, so a test
 * that needs the transfer in flight does not depend on the engines' speed.
 */
async function startTransfer(
  src: Guest,
  dst: Guest,
  kib: number,
  port: number,
  paceMs?: number,
): Promise<{ sha: string; finish: (timeoutMs: number) => Promise<{ sha: string; ms: number }> }> {
  // The listener's stdin is kept open (a background job's is /dev/null): busybox nc closes the
  // connection when its stdin ends, which would cut the transfer short.
  await dst.serial.sh(`rm -f /tmp/rx; (sleep 3600 | nc -l -p ${port} > /tmp/rx 2>/dev/null &)`);
  const made = await src.serial.sh(`dd if=/dev/urandom of=/tmp/tx bs=1024 count=${kib} 2>/dev/null; sha256sum /tmp/tx`, 120_000);
  const sha = /([0-9a-f]{64})/.exec(made)?.[1];
  assert.ok(sha, `sha256sum printed: ${made}`);
  // The listener must be up before the sender connects.
  await until(async () => (await dst.serial.sh(`netstat -ltn | grep -c ':${port} '`)).trim() !== '0', 30_000, 'the listener');
  const t0 = Date.now();
  const send =
    paceMs === undefined
      ? `nc ${dst.ip} ${port} < /tmp/tx`
      : `for i in $(seq 0 ${kib / 64 - 1}); do dd if=/tmp/tx bs=65536 skip=$i count=1 2>/dev/null; sleep ${paceMs / 1000}; done | nc ${dst.ip} ${port}`;
  await src.serial.sh(`(${send} > /dev/null 2>&1 &)`);
  return {
    sha,
    finish: async (timeoutMs) => {
      await until(async () => (await fileSize(dst, '/tmp/rx')) >= kib * KiB, timeoutMs, `${kib} KiB to reach ${dst.name}`);
      const ms = Date.now() - t0;
      const out = await dst.serial.sh('sha256sum /tmp/rx', 60_000);
      await src.serial.sh('killall nc 2>/dev/null; true');
      await dst.serial.sh('killall nc sleep 2>/dev/null; true');
      return { sha: /([0-9a-f]{64})/.exec(out)?.[1] ?? out, ms };
    },
  };
}

const skip = ENGINES.length < 2 ? 'needs both engines (v86 and QEMU)' : engineSkip('v86') || engineSkip('qemu');

describe('virtual network data path (v86 and QEMU guests on one switch)', { skip, timeout: 2_400_000 }, () => {
  let t: TestHost;
  const guests = new Map<string, Guest>();
  const g = (name: string): Guest => guests.get(name)!;

  before(async () => {
    t = await TestHost.start();
    // The first run's default network, redefined with a static lease and restarted.
    await t.client.call('network.destroy', { network: 'default' });
    await t.client.call('network.define', { xml: NETWORK_XML });
    await t.client.call('network.start', { network: 'default' });
    for (const spec of GUESTS) await t.client.call('domain.define', { xml: networkGuestXml({ ...spec, network: 'default' }) });
    // One boot at a time: the machine is shared.
    for (const spec of GUESTS) {
      const t0 = Date.now();
      await t.client.call('domain.start', { domain: spec.name });
      const serial = await SerialWatch.open(t.client, spec.name);
      const up = await serial.wait(/DOMUS-NET-UP eth0 ([\d.]+)\/(\d+) router=([\d.]+) lease=(\d+)\r?\n/, BOOT);
      const leaseMs = Date.now() - t0;
      guests.set(spec.name, { ...spec, serial, ip: up[1]!, leaseMs });
      console.log(`# ${spec.name} (${spec.engine}, ${spec.model}): ${up[0]} ${leaseMs} ms after start`);
      assert.equal(up[2], '24');
      assert.equal(up[3], '192.168.122.1');
      assert.equal(up[4], '3600');
    }
  });
  after(async () => {
    await t?.stop();
  });

  it('every guest has a lease from the range, the static host its own address; the switch persists them', async () => {
    const ips = GUESTS.map((s) => g(s.name).ip);
    assert.equal(new Set(ips).size, ips.length, `distinct addresses: ${ips.join(' ')}`);
    for (const ip of ips) {
      const last = Number(ip.split('.')[3]);
      assert.ok(ip.startsWith('192.168.122.') && last >= 2 && last <= 254, ip);
    }
    assert.equal(g('qb').ip, STATIC_IP);
    const file = JSON.parse(fs.readFileSync(path.join(t.paths.networkRun, 'default', 'leases.json'), 'utf8')) as Lease[];
    assert.deepEqual(
      file.map((l) => [l['mac-address'], l['ip-address']]).sort(),
      GUESTS.map((s) => [s.mac, g(s.name).ip]).sort(),
    );
    for (const l of file) assert.ok(l['expiry-time'] > Date.now() / 1000 + 3000, `expiry ${l['expiry-time']}`);
    assert.deepEqual(await switchControl<Lease[]>(t, { op: 'leases' }), file);
    // The guest's own view: the address on eth0 and the gateway as its default route.
    const addr = await g('va').serial.sh('ip -4 addr show eth0; ip route');
    assert.match(addr, new RegExp(`inet ${g('va').ip.replace(/\./g, '\\.')}/24`));
    assert.match(addr, /default via 192\.168\.122\.1/);
  });

  for (const [a, b] of [['va', 'vb'], ['qa', 'qb'], ['va', 'qa']] as const) {
    it(`${a} and ${b} ping each other and the gateway`, async () => {
      const there = await ping(g(a), g(b).ip);
      const back = await ping(g(b), g(a).ip);
      const gw = await ping(g(a), '192.168.122.1');
      console.log(`# ping ${a}->${b} avg ${there.avgMs} ms, ${b}->${a} avg ${back.avgMs} ms, ${a}->gateway avg ${gw.avgMs} ms`);
      assert.equal(there.received, 3);
      assert.equal(back.received, 3);
      assert.equal(gw.received, 3);
    });

    it(`1 MiB over TCP from ${a} to ${b} arrives whole (sha256)`, async () => {
      const transfer = await startTransfer(g(a), g(b), 1024, 5001);
      const got = await transfer.finish(300_000);
      console.log(`# TCP ${a}->${b}: 1 MiB in ${got.ms} ms (${((1024 * KiB) / (got.ms / 1000) / 1e6).toFixed(2)} MB/s, serial polling included)`);
      assert.equal(got.sha, transfer.sha);
    });
  }

  it('the switch counts each port and knows its MAC', async () => {
    const status = await switchControl<SwitchStatus>(t, { op: 'status' });
    assert.equal(status.ports.length, GUESTS.length);
    for (const spec of GUESTS) {
      const port = status.ports.find((p) => p.mac === spec.mac);
      assert.ok(port, `a port for ${spec.name} (${spec.mac})`);
      assert.equal(port.link, 'up');
      assert.ok(port.txBytes > 0 && port.rxBytes > 0 && port.txPackets > 0 && port.rxPackets > 0, JSON.stringify(port));
    }
    const va = status.ports.find((p) => p.mac === g('va').mac)!;
    assert.ok(va.txBytes > 1024 * KiB, `va sent its 1 MiB: ${va.txBytes}`);
  });

  it('a host SIGKILL during a guest-to-guest transfer does not break it', async () => {
    // 64 chunks 60 ms apart: at least 3.8 s, so it runs on through the kill and the 2 s without a host.
    const transfer = await startTransfer(g('qa'), g('va'), 4096, 5002, 60);
    await until(async () => (await fileSize(g('va'), '/tmp/rx')) > 0, 60_000, 'the transfer to be under way');
    const atKill = await fileSize(g('va'), '/tmp/rx');
    assert.ok(atKill < 4096 * KiB, `the transfer was still under way when the host was killed (${atKill} bytes in)`);
    const switchPid = (await switchControl<SwitchStatus>(t, { op: 'status' })).pid;
    await t.killHost();
    // The guests' serial consoles go through the host: take the reading after it is back.
    await sleep(2000);
    await t.reconnect();
    for (const spec of GUESTS) g(spec.name).serial = await SerialWatch.open(t.client, spec.name);
    const got = await transfer.finish(600_000);
    console.log(`# TCP qa->va across a host SIGKILL: 4 MiB in ${got.ms} ms (${atKill} bytes in at the kill)`);
    assert.equal(got.sha, transfer.sha);
    assert.equal((await switchControl<SwitchStatus>(t, { op: 'status' })).pid, switchPid, 'the same switch carried on');
  });

  it('link down on the switch cuts a guest off; up restores it', async () => {
    await switchControl(t, { op: 'link', mac: g('vb').mac, state: 'down' });
    const status = await switchControl<SwitchStatus>(t, { op: 'status' });
    assert.equal(status.ports.find((p) => p.mac === g('vb').mac)?.link, 'down');
    assert.equal((await ping(g('va'), g('vb').ip, 2)).received, 0);
    assert.equal((await ping(g('qa'), g('vb').ip, 2)).received, 0);
    await switchControl(t, { op: 'link', mac: g('vb').mac, state: 'up' });
    assert.equal((await ping(g('va'), g('vb').ip, 3)).received, 3);
  });
});
