// A libvirt connection to a hostile host (a scripted peer, main/testing/hostile-libvirt.ts): what
// the host sends must not crash, stall or flood the Domus host, nor reach a command line as options.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { DomainStatsSample, Events, JobInfo, NetworkInfo } from '../../../shared/api.js';
import { until } from '../../testing/harness.js';
import { HostilePeer, type PeerHandler } from '../../testing/hostile-libvirt.js';
import { LibvirtError, VIR_ERR } from '../libvirt/errors.js';
import type { remote_typed_param } from '../libvirt/protocol/remote.js';
import type { LibvirtConnection } from './libvirt.js';
import { libvirtConnection } from './open.js';

const DOM = { name: 'evil', uuid: Buffer.from('00112233445566778899aabbccddeeff', 'hex'), id: 7 };

async function connect(t: { after: (f: () => Promise<void>) => void }, handlers: Record<string, PeerHandler>, uri = 'qemu:///system'): Promise<{ conn: LibvirtConnection; peer: HostilePeer }> {
  const peer = await HostilePeer.start({ REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME: () => ({ dom: DOM }), ...handlers });
  const conn = libvirtConnection(uri, peer.opener(uri));
  await conn.open();
  t.after(async () => {
    await conn.close().catch(() => undefined);
    await peer.stop();
  });
  return { conn, peer };
}

const ul = (field: string, v: bigint): remote_typed_param => ({ field, value: { type: 4, ul: v } });
const d = (field: string, v: number): remote_typed_param => ({ field, value: { type: 5, d: v } });

test('device counts and numbers in a stats record are not trusted: a huge block.count, NaN and Infinity', async (t) => {
  const params = [
    { field: 'state.state', value: { type: 1, i: 1 } },
    ul('block.count', 0xffff_ffff_ffffn),
    d('net.count', 5e8),
    ul('block.0.rd.bytes', 10n),
    d('cpu.time', Number.NaN),
    d('balloon.maximum', Number.POSITIVE_INFINITY),
    d('balloon.current', -1e300),
  ] as remote_typed_param[];
  const { conn } = await connect(t, { REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS: () => ({ retStats: [{ dom: DOM, params }] }) });
  const t0 = Date.now();
  const sample = (await conn.call('domain.stats', { domain: 'evil' })) as DomainStatsSample;
  assert.ok(Date.now() - t0 < 2000, `a sample took ${Date.now() - t0} ms`);
  assert.ok((sample.disk.devices?.length ?? 0) <= params.length, `${sample.disk.devices?.length} disks from ${params.length} fields`);
  assert.ok((sample.net.devices?.length ?? 0) <= params.length, `${sample.net.devices?.length} NICs from ${params.length} fields`);
  for (const [k, v] of Object.entries({ cpu: sample.cpuTimeMs, max: sample.memory.maxKiB, actual: sample.memory.actualKiB, target: sample.memory.targetKiB })) {
    assert.ok(Number.isFinite(v) && v >= 0, `${k} is ${v}`);
  }
  // The sampler's tick runs outside any request: what it throws would end the host process.
  const sampled = new Promise<DomainStatsSample>((resolve) => conn.on('event', (name: string, e: { sample: DomainStatsSample }) => name === 'domain.stats' && resolve(e.sample)));
  const owner = {};
  await conn.stats!.watch(owner, ['evil'], 50);
  t.after(() => conn.stats!.unwatch(owner));
  assert.ok(((await sampled).disk.devices?.length ?? 0) <= params.length);
});

test('job statistics that are NaN, negative or infinite do not reach a job', async (t) => {
  const params = [{ field: 'operation', value: { type: 1, i: 2 } }, d('time_elapsed', -1e300), d('data_processed', Number.NaN), d('data_total', Number.POSITIVE_INFINITY)] as remote_typed_param[];
  const { conn } = await connect(t, { REMOTE_PROC_DOMAIN_GET_JOB_STATS: () => ({ type: 2, params }) });
  const { job } = (await conn.call('domain.jobInfo', { domain: 'evil' })) as { job: JobInfo };
  for (const [k, v] of Object.entries({ elapsedMs: job.elapsedMs, startedAt: job.startedAt, processedBytes: job.processedBytes, totalBytes: job.totalBytes })) {
    assert.ok(Number.isFinite(v) && v >= 0, `${k} is ${v}`);
  }
  assert.ok(job.startedAt <= Date.now());
});

test("a VNC listen address or socket from the host's XML cannot become an option of nc on the far side", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-fake-ssh-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ssh = path.join(dir, 'ssh');
  const ran = path.join(dir, 'ran');
  fs.writeFileSync(ssh, `#!/bin/sh\nprintf '%s\\n' "$@" > ${ran}\n`, { mode: 0o755 });
  let graphics = '';
  const uri = `qemu+ssh://far/system?command=${ssh}`;
  const { conn } = await connect(t, { REMOTE_PROC_DOMAIN_GET_XML_DESC: () => ({ xml: `<domain><name>evil</name><devices>${graphics}</devices></domain>` }) }, uri);
  for (const g of [`<graphics type='vnc' port='5900' listen='-e/bin/sh'/>`, `<graphics type='vnc' port='5900'><listen type='address' address='1.2.3.4 -e/bin/sh'/></graphics>`, `<graphics type='vnc' socket='-e/bin/sh'/>`]) {
    graphics = g;
    await assert.rejects(conn.openVnc!('evil'), /is not an IP address or host name|is not an absolute path/, g);
    assert.ok(!fs.existsSync(ran), `ssh ran for ${g}: ${fs.existsSync(ran) && fs.readFileSync(ran, 'utf8')}`);
  }
  graphics = `<graphics type='vnc' port='5901' listen='::1'/>`;
  const { stream } = await conn.openVnc!('evil');
  await new Promise((r) => stream.once('end', r).once('error', r).resume());
  assert.match(fs.readFileSync(ran, 'utf8'), /^far\nsh -c 'exec nc ::1 5901'$/m);
});

test('a host without network events still opens; network events with an unknown type, or whose network reads as garbage, are dropped and later ones still arrive', async (t) => {
  const bare = await HostilePeer.start({
    REMOTE_PROC_CONNECT_NETWORK_EVENT_REGISTER_ANY: () => new LibvirtError('this function is not supported by the connection driver: virConnectNetworkEventRegisterAny', VIR_ERR.NO_SUPPORT),
  });
  const plain = libvirtConnection('qemu:///session', bare.opener('qemu:///session'));
  await plain.open();
  await plain.close();
  await bare.stop();

  const NET = { name: 'evilnet', uuid: Buffer.from('ffeeddccbbaa99887766554433221100', 'hex') };
  let xml = '<pool/>';
  const { conn, peer } = await connect(t, {
    REMOTE_PROC_NETWORK_GET_XML_DESC: () => ({ xml }),
    REMOTE_PROC_NETWORK_IS_ACTIVE: () => ({ active: 1 }),
    REMOTE_PROC_NETWORK_IS_PERSISTENT: () => ({ persistent: 1 }),
    REMOTE_PROC_NETWORK_GET_AUTOSTART: () => ({ autostart: 0 }),
  });
  const events: Events['network.lifecycle'][] = [];
  conn.on('event', (name: string, e: Events['network.lifecycle']) => name === 'network.lifecycle' && events.push(e));
  peer.message('REMOTE_PROC_NETWORK_EVENT_LIFECYCLE', { callbackID: 2, net: NET, event: 99, detail: 0 });
  peer.message('REMOTE_PROC_NETWORK_EVENT_LIFECYCLE', { callbackID: 2, net: NET, event: 2, detail: 0 });
  await until(() => peer.calls.includes('REMOTE_PROC_NETWORK_GET_XML_DESC'), 2000, 'the garbage XML to be read');
  xml = "<network><name>evilnet</name><forward mode='nat'/></network>";
  peer.message('REMOTE_PROC_NETWORK_EVENT_LIFECYCLE', { callbackID: 2, net: NET, event: 3, detail: 0 });
  await until(() => events.length > 0, 2000, 'the stopped event');
  assert.deepEqual(events.map((e) => [e.network.name, e.event, e.network.forward]), [['evilnet', 'stopped', 'nat']]);
});

test('a transient domain read as shut off after its stopped event (libvirt drops it just after) is stopped, then gone: no shut-off row', async (t) => {
  const { conn, peer } = await connect(t, {
    REMOTE_PROC_DOMAIN_GET_STATE: () => ({ state: 5, reason: 3 }),
    REMOTE_PROC_DOMAIN_GET_INFO: () => ({ state: 5, maxMem: 131072n, memory: 131072n, nrVirtCpu: 1, cpuTime: 0n }),
    REMOTE_PROC_DOMAIN_IS_PERSISTENT: () => ({ persistent: 0 }),
    REMOTE_PROC_DOMAIN_GET_AUTOSTART: () => ({ autostart: 0 }),
    REMOTE_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE: () => ({ result: 0 }),
  });
  const events: [string, unknown][] = [];
  conn.on('event', (name: string, e: unknown) => events.push([name, e]));
  // Stopped, migrated.
  peer.message('REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE', { callbackID: 1, msg: { dom: DOM, event: 5, detail: 3 } });
  await until(() => events.length > 1, 2000, 'the events for the stopped domain');
  assert.deepEqual(
    events.map(([name, e]) => [name, (e as Events['domain.lifecycle']).event, (e as Events['domain.lifecycle']).domain?.state]),
    [
      ['domain.lifecycle', 'stopped', 'shutoff'],
      ['domain.undefined', undefined, undefined],
    ],
  );
  assert.deepEqual(events[1]![1], { uuid: '00112233-4455-6677-8899-aabbccddeeff', name: 'evil' });
});

test('net-list takes N + 4 calls for N networks, and a prefix or range the host makes up is not shown as one', async (t) => {
  const nets = ['a', 'b', 'c'].map((name, i) => ({ name, uuid: Buffer.alloc(16, i + 1) }));
  const { conn, peer } = await connect(t, {
    REMOTE_PROC_CONNECT_LIST_ALL_NETWORKS: ({ flags }: { flags: number }) => ({ nets: flags === 0 ? nets : nets.slice(0, 1), ret: flags === 0 ? 3 : 1 }),
    REMOTE_PROC_NETWORK_GET_XML_DESC: ({ net }: { net: { name: string } }) => ({
      xml: `<network><name>${net.name}</name><ip address='10.0.0.1' prefix='999'><dhcp><range start='10.0.0.2'/></dhcp></ip></network>`,
    }),
  });
  const before = peer.calls.length;
  const { networks } = (await conn.call('network.list', {})) as { networks: NetworkInfo[] };
  assert.equal(peer.calls.length - before, nets.length + 4, peer.calls.slice(before).join(' '));
  assert.deepEqual(networks.map((n) => [n.name, n.active, n.persistent, n.autostart, n.prefix, n.dhcpRange]), [
    ['a', true, true, true, undefined, undefined],
    ['b', false, false, false, undefined, undefined],
    ['c', false, false, false, undefined, undefined],
  ]);
});
