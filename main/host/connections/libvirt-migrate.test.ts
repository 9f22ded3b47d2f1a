// Migration between two libvirt connections through libvirt's own API (peer to peer): two private
// libvirtds (each its own host UUID) opened in one Domus host, one QEMU TCG guest. A destination
// lacking the guest's disk refuses with libvirt's reason and the guest runs on; given the disk, the
// guest moves live with migration progress and both connections' events; domjobabort of the way back
// leaves it where it was. virsh on both daemons checks each step.
import assert from 'node:assert/strict';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DomainSummary, JobInfo } from '../../../shared/api.js';
import { connectHost } from '../../cli/connect.js';
import { SerialWatch, TestHost, engineSkip, sampleGuestXml, until } from '../../testing/harness.js';
import { startLibvirtd, type Libvirtd } from '../../testing/libvirtd.js';

const NAME = `mig-${process.pid}`;
/** A read-only disk in the daemon's own /var/lib/libvirt (a private tree per daemon: see libvirtd.ts). */
const DISK = '/var/lib/libvirt/images/only-here.img';
const diskOf = (d: Libvirtd): string => path.join(d.dir, 'tree1', 'images', 'only-here.img');

/** libvirt sends the migration to this machine's hostname: it must be loopback (the network rule). */
async function hostnameSkip(): Promise<string | false> {
  const { address } = await dns.lookup(os.hostname(), { family: 4 }).catch(() => ({ address: '' }));
  return address.startsWith('127.') ? false : `libvirt migrates to the hostname ${os.hostname()}, which is not loopback here (${address || 'unresolved'})`;
}

describe('migration between libvirt connections (peer to peer)', { skip: engineSkip('libvirt') || (await hostnameSkip()), timeout: 600_000 }, () => {
  let t: TestHost;
  let src: Libvirtd;
  let dst: Libvirtd;
  const jobs: { name: string; job: JobInfo; connection?: string }[] = [];
  const lifecycle: { domain: DomainSummary; event: string; connection?: string }[] = [];
  const undefinedOn: { name: string; connection?: string }[] = [];

  /** The guest runs on `d`: its shell answers on the serial console there. */
  const aliveOn = async (d: Libvirtd): Promise<void> => {
    const client = await connectHost(t.paths, false, d.uri);
    try {
      const serial = await SerialWatch.open(client, NAME);
      assert.match(await serial.sh('echo alive-$((6*7))', 60_000), /alive-42/);
      await client.call('domain.serialClose', { domain: NAME });
    } finally {
      client.close();
    }
  };
  const domstate = async (d: Libvirtd) => (await d.virsh('domstate', NAME, '--reason')).stdout.trim();

  before(async () => {
    t = await TestHost.start('libvirt');
    src = t.libvirtd!;
    dst = await startLibvirtd();
    await t.client.call('connection.open', { uri: dst.uri });
    for (const name of ['job.progress', 'job.completed'] as const) t.client.on(name, ({ job }, connection) => jobs.push({ name, job, connection }));
    t.client.on('domain.lifecycle', ({ domain, event }, connection) => lifecycle.push({ domain, event, connection }));
    t.client.on('domain.undefined', ({ name }, connection) => undefinedOn.push({ name, connection }));
    fs.mkdirSync(path.dirname(diskOf(src)), { recursive: true });
    fs.writeFileSync(diskOf(src), Buffer.alloc(1 << 20));
    const disk = `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${DISK}'/><target dev='vdb' bus='virtio'/><readonly/></disk>`;
    await t.client.call('domain.define', { xml: sampleGuestXml(NAME, 'qemu', disk) });
    await t.client.call('domain.start', { domain: NAME });
    const serial = await SerialWatch.open(t.client, NAME);
    await serial.wait(/DOMUS-GUEST-READY/, 180_000);
    await t.client.call('domain.serialClose', { domain: NAME });
  });
  after(async () => {
    await dst?.stop();
    await t?.stop();
  });

  test('bad destinations are refused before libvirt is asked', async () => {
    await assert.rejects(t.client.call('domain.migrate', { domain: NAME, destination: src.uri, live: true }), /is the connection the domain is on/);
    await assert.rejects(t.client.call('domain.migrate', { domain: NAME, destination: 'v86:///session', live: true }), /this computer's own engines/);
  });

  test("a destination lacking the guest's disk refuses with libvirt's reason; the guest runs on at the source", async () => {
    await assert.rejects(t.client.call('domain.migrate', { domain: NAME, destination: dst.uri, live: true }), (err: Error) => {
      assert.match(err.message, new RegExp(`${DISK.replace(/\//g, '\\/')}.*No such file or directory`));
      return true;
    });
    assert.equal(await domstate(src), 'running (booted)');
    assert.match((await dst.virsh('list', '--all', '--name')).stdout.trim(), /^$/);
    const failed = jobs.filter((e) => e.job.operation === 'migrate').at(-1);
    assert.equal(failed?.name, 'job.completed');
    assert.equal(failed?.job.status, 'failed');
    assert.equal(failed?.connection, src.uri);
    await aliveOn(src);
  });

  test('migrate --live: progress while it copies, then the guest runs on the destination only', async () => {
    fs.mkdirSync(path.dirname(diskOf(dst)), { recursive: true });
    fs.copyFileSync(diskOf(src), diskOf(dst));
    jobs.length = 0;
    lifecycle.length = 0;
    // 4 MiB/s: the guest's ~15 MiB of used RAM take a few seconds, so progress is sampled.
    const r = await t.client.call('domain.migrate', { domain: NAME, destination: dst.uri, live: true, bandwidthMiBs: 4 });
    assert.equal(r.destination, dst.uri);
    assert.equal(r.job.status, 'completed');
    assert.equal(r.job.operation, 'migrate');
    assert.ok(r.result.transferredBytes > 1 << 20, `megabytes were sent (${r.result.transferredBytes})`);
    assert.ok(r.result.iterations >= 1);
    assert.ok(r.result.downtimeMs > 0 && r.result.downtimeMs < r.result.totalMs, `downtime ${r.result.downtimeMs} ms of ${r.result.totalMs} ms`);
    assert.equal(r.result.postcopy, false);
    assert.equal(r.job.migration?.downtimeMs, r.result.downtimeMs);

    const progress = jobs.filter((e) => e.name === 'job.progress' && e.job.id === r.job.id && e.job.migration?.phase === 'precopy');
    assert.ok(progress.length >= 2, `progress was sampled while it copied (${progress.length})`);
    assert.ok(progress.some((e) => e.job.migration!.remainingBytes > 0 && e.job.processedBytes > 0));
    assert.ok(progress.every((e) => e.connection === src.uri));

    assert.equal(await domstate(src), 'shut off (migrated)');
    assert.equal(await domstate(dst), 'running (migrated)');
    await aliveOn(dst);
    await until(() => lifecycle.some((e) => e.connection === dst.uri && e.domain.name === NAME && e.domain.state === 'running'), 10_000, 'the destination connection to show the guest running');
    await until(() => lifecycle.some((e) => e.connection === src.uri && e.event === 'stopped' && e.domain.reason === 'migrated'), 10_000, 'the source connection to show it stopped (migrated)');
    const onSrc = await t.client.call('domain.info', { domain: NAME });
    assert.deepEqual([onSrc.state, onSrc.reason], ['shutoff', 'migrated']);
    const onDst = await t.client.call('domain.info', { domain: NAME }, { connection: dst.uri });
    assert.equal(onDst.state, 'running');
    assert.equal((await t.client.call('domain.jobInfo', { domain: NAME, completed: true })).job?.status, 'completed');
  });

  test('domjobabort of the way back leaves the guest running on the destination, nothing running at the source', async () => {
    jobs.length = 0;
    const back = t.client.call('domain.migrate', { domain: NAME, destination: src.uri, live: true, bandwidthMiBs: 1 }, { connection: dst.uri });
    let early: unknown;
    back.catch((err: unknown) => (early = err));
    await until(() => {
      if (early) throw early;
      return jobs.some((e) => e.name === 'job.progress' && e.job.migration?.phase === 'precopy');
    }, 30_000, 'the migration back to copy');
    const { job } = await t.client.call('domain.jobAbort', { domain: NAME }, { connection: dst.uri });
    assert.equal(job.operation, 'migrate');
    await assert.rejects(back, /operation aborted/);
    assert.equal(jobs.at(-1)?.job.status, 'aborted');
    assert.match(await domstate(dst), /^running/);
    // libvirt stops the incoming QEMU it had started at the source (the definition says so: 'crashed').
    assert.match(await domstate(src), /^shut off/);
    await aliveOn(dst);
  });
});
