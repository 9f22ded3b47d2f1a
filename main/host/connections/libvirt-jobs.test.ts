// Save, restore, managed save, core dumps and jobs on a real libvirtd (private, per run) through a
// Domus connection: the same answers and job events as the host's own engines give, libvirt's errors,
// and domjobabort of a save in progress. One guest, booted once, goes through every step.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Events, JobInfo } from '../../../shared/api.js';
import { bannerAddress, checkDump } from '../../testing/coredump.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, runCli, until } from '../../testing/harness.js';

const NAME = `jobs-${process.pid}`;
const MEMORY_MIB = 128;
// nokaslr: the core dump's check finds linux_banner at its link address.
const spec = { name: NAME, memoryMiB: MEMORY_MIB, vcpus: 1, boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: `${SAMPLE_CMDLINE} nokaslr` } };

describe('save, restore, managed save and jobs on a libvirt connection', { skip: engineSkip('libvirt'), timeout: 600_000 }, () => {
  let t: TestHost;
  let uri: string;
  const jobEvents: { name: 'job.progress' | 'job.completed'; job: JobInfo; connection?: string }[] = [];
  const eventsOf = (id: number) => jobEvents.filter((e) => e.job.id === id);

  const state = async () => {
    const d = await t.client.call('domain.info', { domain: NAME });
    return { state: d.state, reason: d.reason, cpuTimeMs: d.cpuTimeMs, managedSave: d.managedSave };
  };
  /** The guest runs: its CPU time advances. */
  const assertAlive = async () => {
    const before = (await state()).cpuTimeMs;
    await until(async () => (await state()).cpuTimeMs > before + 200, 20_000, 'the guest to use CPU time');
  };
  const cli = (...args: string[]) => runCli(t.home, ['-c', uri, ...args]);

  before(async () => {
    t = await TestHost.start('libvirt');
    uri = t.libvirtd!.uri;
    for (const name of ['job.progress', 'job.completed'] as const) t.client.on(name, ({ job }, connection) => jobEvents.push({ name, job, connection }));
    await createOn(t.client, spec, 'libvirt');
  });
  after(async () => {
    await t?.stop();
  });

  test("bad input gets libvirt's error: save of a shut-off domain, restore of a missing file", async () => {
    const file = path.join(t.libvirtd!.dir, 'never.save');
    await assert.rejects(t.client.call('domain.save', { domain: NAME, file }), /Requested operation is not valid: domain is not running/);
    await assert.rejects(t.client.call('domain.managedSave', { domain: NAME }), /domain is not running/);
    await assert.rejects(t.client.call('domain.restore', { file: path.join(t.libvirtd!.dir, 'missing.save') }), /missing\.save.*No such file or directory/);
    await assert.rejects(t.client.call('domain.managedSaveRemove', { domain: NAME }), /has no managed save image/);
    assert.deepEqual(jobEvents, [], 'a job that libvirt refused at once announces nothing');
    assert.equal((await t.client.call('domain.jobInfo', { domain: NAME })).job, null);
  });

  test('domjobabort of a save in progress leaves the guest running', async () => {
    await t.client.call('domain.start', { domain: NAME });
    await assertAlive();
    // QEMU writes a save as fast as the file takes it (libvirt lifts the migration bandwidth limit
    // for saves): a FIFO read slowly is a file that takes it slowly.
    const fifo = path.join(t.libvirtd!.dir, 'slow.save');
    execFileSync('mkfifo', [fifo]);
    const reader = fs.createReadStream(fifo, { highWaterMark: 16 * 1024 });
    let read = 0;
    let slow = true;
    reader.on('data', (chunk) => {
      read += chunk.length;
      if (!slow) return;
      reader.pause();
      setTimeout(() => reader.resume(), 50);
    });
    const drained = new Promise<void>((resolve) => reader.on('close', () => resolve()));

    const saving = t.client.call('domain.save', { domain: NAME, file: fifo });
    await until(() => jobEvents.some((e) => e.name === 'job.progress' && e.job.processedBytes > 0), 30_000, 'progress of the save');
    const { job: running } = await t.client.call('domain.jobInfo', { domain: NAME });
    assert.ok(running, 'a job is active');
    assert.equal(running.status, 'running');
    assert.equal(running.operation, 'save');
    assert.equal(running.domain, NAME);
    assert.ok(running.totalBytes > 0);
    const { job: aborting } = await t.client.call('domain.jobAbort', { domain: NAME });
    assert.equal(aborting.id, running.id);
    slow = false;
    const r = await saving;
    assert.equal(r.job.status, 'aborted');
    assert.match(r.job.error ?? '', /operation aborted/);
    await drained;
    assert.ok(read > 0);
    assert.equal(eventsOf(r.job.id).at(-1)?.name, 'job.completed');
    assert.equal(eventsOf(r.job.id).at(-1)?.job.status, 'aborted');
    assert.equal((await state()).state, 'running');
    await assertAlive();
    assert.equal((await t.client.call('domain.jobInfo', { domain: NAME, completed: true })).job?.status, 'aborted');
    await assert.rejects(t.client.call('domain.jobAbort', { domain: NAME }), /no job is active/);
    fs.rmSync(fifo);
  });

  test("domus -c URI dump --memory-only: an ELF core that libvirtd writes on its host; --live keeps the guest running; libvirt's error for an unwritable path", async () => {
    const serial = await SerialWatch.open(t.client, NAME);
    await serial.wait(/DOMUS-GUEST-READY/, 120_000);
    const procVersion = (await serial.sh('cat /proc/version')).split('\n').find((l) => l.startsWith('Linux version')) ?? '';
    const banner = await bannerAddress(procVersion);
    const lifecycle: string[] = [];
    const off = t.client.on('domain.lifecycle', (e: Events['domain.lifecycle']) => {
      if (e.domain.name === NAME && e.event !== 'step') lifecycle.push(`${e.event}:${e.domain.state}/${e.domain.reason}`);
    });

    const file = path.join(t.libvirtd!.dir, 'guest.core');
    const dumped = await cli('dump', '--memory-only', NAME, file, '--verbose');
    assert.equal(dumped.code, 0, dumped.stderr);
    assert.equal(dumped.stdout, `\nDomain '${NAME}' dumped to ${file}\n\n`);
    checkDump(file, banner, procVersion, MEMORY_MIB);
    const done = await cli('domjobinfo', NAME, '--completed');
    assert.match(done.stdout, /Job type:\s+Completed\nOperation:\s+Dump\n/);
    assert.match(dumped.stderr, /dump: \[100 %\]/);
    assert.deepEqual(lifecycle, ['suspended:paused/dumping', 'resumed:running/unpaused']);

    const liveFile = path.join(t.libvirtd!.dir, 'live.core');
    const from = lifecycle.length;
    const live = await t.client.call('domain.coreDump', { domain: NAME, file: liveFile, live: true });
    assert.equal(live.job.status, 'completed');
    assert.equal(live.job.operation, 'dump');
    assert.equal(live.file, liveFile);
    assert.equal(eventsOf(live.job.id).at(-1)?.name, 'job.completed');
    // QEMU's dump-guest-memory stops the vCPUs while it writes whatever libvirt asks (the events say
    // paused/unknown); --live keeps libvirt from pausing the domain for the job (paused/dumping).
    assert.ok(!lifecycle.slice(from).some((e) => e.endsWith('/dumping')), lifecycle.join(', '));
    assert.equal((await state()).state, 'running');
    checkDump(liveFile, banner, procVersion, MEMORY_MIB);
    off();

    const missing = path.join(t.libvirtd!.dir, 'no', 'such', 'x.core');
    const bad = await cli('dump', NAME, missing);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, `error: Failed to core dump domain '${NAME}' to ${missing}\nerror: Failed to create file '${missing}': No such file or directory\n`);
    const relative = await cli('dump', NAME, 'x.core');
    assert.match(relative.stderr, /'x\.core' must be an absolute path on the host of qemu\+unix/);
    assert.equal((await state()).state, 'running');
    assert.match(await serial.sh('echo alive-$((6*7))'), /alive-42/);
  });

  test('save to a file on the libvirt host stops the guest (saved); restore carries on', async () => {
    const file = path.join(t.libvirtd!.dir, 'guest.save');
    const saved = await t.client.call('domain.save', { domain: NAME, file });
    assert.equal(saved.job.status, 'completed');
    assert.equal(saved.job.operation, 'save');
    assert.ok(saved.job.totalBytes > 1 << 20, `a save of a 128 MiB guest has megabytes (${saved.job.totalBytes})`);
    assert.ok(fs.statSync(file).size > 1 << 20);
    const seen = eventsOf(saved.job.id);
    assert.equal(seen[0]?.name, 'job.progress');
    assert.equal(seen.at(-1)?.name, 'job.completed');
    assert.equal(seen.at(-1)?.job.status, 'completed');
    assert.ok(seen.every((e) => e.connection === uri), 'job events are tagged with the connection');
    await until(async () => (await state()).state === 'shutoff', 10_000, 'the guest to stop');
    assert.equal((await state()).reason, 'saved');
    assert.match((await t.libvirtd!.virsh('domstate', NAME, '--reason')).stdout, /shut off \(saved\)/);
    assert.equal((await t.client.call('domain.jobInfo', { domain: NAME, completed: true })).job?.status, 'completed');

    const restored = await t.client.call('domain.restore', { file });
    assert.equal(restored.domain.name, NAME);
    assert.deepEqual([restored.domain.state, restored.domain.reason], ['running', 'restored']);
    assert.equal(restored.job.operation, 'restore');
    assert.equal(restored.job.status, 'completed');
    assert.equal(eventsOf(restored.job.id).at(-1)?.name, 'job.completed');
    await assertAlive();
    await assert.rejects(t.client.call('domain.restore', { file }), /already active|is already running|already exists/);
  });

  test('domus -c URI save --verbose and restore --paused', async () => {
    const file = path.join(t.libvirtd!.dir, 'cli.save');
    // The file is the libvirt host's: a relative path would name a file in the daemon's directory.
    const relative = await cli('save', NAME, 'cli.save');
    assert.equal(relative.code, 1);
    assert.match(relative.stderr, /'cli\.save' must be an absolute path on the host of qemu\+unix/);
    const saved = await cli('save', NAME, file, '--verbose');
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, new RegExp(`Domain '${NAME}' saved to ${file}`));
    const info = await cli('domjobinfo', NAME, '--completed');
    assert.match(info.stdout, /^Job type:\s+Completed/m);
    assert.match(info.stdout, /^Operation:\s+Save/m);
    const restored = await cli('restore', file, '--paused');
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, new RegExp(`Domain restored from ${file}`));
    assert.equal((await state()).state, 'paused');
    await t.client.call('domain.resume', { domain: NAME });
    await assertAlive();
  });

  test('managed save: the list shows it, start restores it, managedSaveRemove discards it', async () => {
    const r = await t.client.call('domain.managedSave', { domain: NAME });
    assert.equal(r.job.status, 'completed');
    assert.equal(r.job.operation, 'managedsave');
    assert.equal(eventsOf(r.job.id).at(-1)?.name, 'job.completed');
    await until(async () => (await state()).state === 'shutoff', 10_000, 'the guest to stop');
    const listed = (await t.client.call('domain.list', { all: true })).domains.find((d) => d.name === NAME);
    assert.equal(listed?.managedSave, true);
    assert.equal(listed?.reason, 'saved');

    const started = await t.client.call('domain.start', { domain: NAME });
    assert.deepEqual([started.domain.state, started.domain.reason, started.domain.managedSave], ['running', 'restored', false]);
    await assertAlive();

    await t.client.call('domain.managedSave', { domain: NAME });
    const removed = await t.client.call('domain.managedSaveRemove', { domain: NAME });
    assert.equal(removed.domain.managedSave, false);
    assert.match((await t.libvirtd!.virsh('dominfo', NAME)).stdout, /^Managed save:\s+no$/m);
    await assert.rejects(t.client.call('domain.managedSaveRemove', { domain: NAME }), /has no managed save image/);
  });

  test('<on_crash>preserve</on_crash>: a panicked guest shows as crashed (panicked); dump --crash writes its core and stops it as crashed', async () => {
    const { xml } = await t.client.call('domain.xml', { domain: NAME, inactive: true, secure: true });
    assert.match(xml, /<on_crash>destroy<\/on_crash>/);
    // pvpanic tells QEMU, and so libvirt, that the guest panicked.
    await t.client.call('domain.define', { xml: xml.replace('<on_crash>destroy</on_crash>', '<on_crash>preserve</on_crash>').replace('</devices>', "<panic model='isa'/></devices>") });
    await t.client.call('domain.start', { domain: NAME });
    const serial = await SerialWatch.open(t.client, NAME);
    await serial.wait(/DOMUS-GUEST-READY/, 120_000);
    const procVersion = (await serial.sh('cat /proc/version')).split('\n').find((l) => l.startsWith('Linux version')) ?? '';
    const lifecycle: string[] = [];
    const off = t.client.on('domain.lifecycle', (e: Events['domain.lifecycle']) => {
      if (e.domain.name === NAME) lifecycle.push(`${e.event}:${e.domain.state}/${e.domain.reason}`);
    });
    await t.client.call('domain.serialWrite', { domain: NAME, data: Buffer.from('echo c > /proc/sysrq-trigger\n').toString('base64') });
    await until(async () => (await state()).state === 'crashed', 60_000, 'the guest to panic');
    assert.equal((await state()).reason, 'panicked');
    assert.match((await t.libvirtd!.virsh('domstate', NAME, '--reason')).stdout, /crashed \(panicked\)/);
    await until(() => lifecycle.includes('crashed:crashed/panicked'), 10_000, 'the crashed event');

    const file = path.join(t.libvirtd!.dir, 'crashed.core');
    const dumped = await cli('dump', NAME, file, '--memory-only', '--crash');
    assert.equal(dumped.code, 0, dumped.stderr);
    checkDump(file, await bannerAddress(procVersion), procVersion, MEMORY_MIB);
    await until(() => lifecycle.includes('stopped:shutoff/crashed'), 10_000, 'the stopped event');
    off();
    assert.deepEqual([(await state()).state, (await state()).reason], ['shutoff', 'crashed']);
  });
});
