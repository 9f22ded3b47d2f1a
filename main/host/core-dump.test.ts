// Guest core dumps on real guests, one boot per engine: `domus dump` (paused, then resumed) and a
// --live dump are ELF cores whose PT_LOADs cover the guest's RAM, with NT_PRSTATUS; Debian's gdb
// reads the registers and the kernel's linux_banner at its link address (found in the kernel image,
// build/guests/vmlinuz); an aborted dump leaves no file; bad paths are refused;
// --reset reboots the guest after the dump;
// <on_crash>coredump-destroy</on_crash> dumps a guest that panics (sysrq c) and stops it as crashed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Events } from '../../shared/api.js';
import type { ApiCallError } from '../../shared/client.js';
import { bannerAddress, checkDump, kernelText, loads } from '../testing/coredump.js';
import { ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, until } from '../testing/harness.js';

const BOOT = 120_000;
const MEMORY_MIB = 128;

for (const engine of ENGINES) describe(`core dumps (${engine})`, { timeout: 600_000, skip: engineSkip(engine) }, () => {
  let t: TestHost;
  let serial: SerialWatch;
  let dir: string;
  let procVersion: string;
  let banner: string;
  const events: Events['domain.lifecycle'][] = [];

  before(async () => {
    t = await TestHost.start();
    dir = path.join(t.home, 'dumps-here');
    fs.mkdirSync(dir);
    t.client.on('domain.lifecycle', (e) => events.push(e));
    await createOn(t.client, {
      name: 'core',
      memoryMiB: MEMORY_MIB,
      vcpus: 1,
      // nokaslr: the kernel image's addresses are the link-time ones; KASLR (on in Debian's kernel) moves them.
      boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: `${SAMPLE_CMDLINE} nokaslr` },
    }, engine);
    const { xml } = await t.client.call('domain.xml', { domain: 'core', inactive: true, secure: true });
    assert.match(xml, /<on_crash>destroy<\/on_crash>/);
    await t.client.call('domain.define', { xml: xml.replace(/<on_crash>destroy<\/on_crash>/, '<on_crash>coredump-destroy</on_crash>') });
    await t.client.call('domain.start', { domain: 'core' });
    serial = await SerialWatch.open(t.client, 'core');
    await serial.wait(/DOMUS-GUEST-READY/, BOOT);
    procVersion = (await serial.sh('cat /proc/version')).split('\n').find((l) => l.startsWith('Linux version')) ?? '';
    banner = await bannerAddress(procVersion);
    // nokaslr: the running kernel is where it was linked (its own symbol table, text symbols only,
    // puts _text where the image's first segment is), so linux_banner is at its link address.
    assert.match(await serial.sh('grep -w _text /proc/kallsyms'), new RegExp(`^${await kernelText()} T _text`, 'm'));
  });
  after(async () => {
    await t?.stop();
  });

  const steps = (): string[] => events.filter((e) => e.domain.name === 'core' && e.event === 'step').map((e) => `${e.domain.step ?? '-'}:${e.domain.state}/${e.domain.reason}`);

  it('domus dump pauses the guest, writes an ELF core gdb reads, and resumes it', async () => {
    const file = path.join(dir, 'paused.core');
    const from = events.length;
    const t0 = Date.now();
    const r = await t.cli(['dump', 'core', file, '--memory-only', '--verbose']);
    const ms = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `\nDomain 'core' dumped to ${file}\n\n`);
    assert.match(r.stderr, /dump: \[100 %\]/);
    const during = events.slice(from).filter((e) => e.domain.name === 'core' && e.event === 'step');
    assert.deepEqual(during.map((e) => `${e.domain.step}:${e.domain.state}/${e.domain.reason}`), ['dumping:paused/dumping']);
    const info = await t.client.call('domain.info', { domain: 'core' });
    assert.deepEqual([info.state, info.reason, info.step], ['running', 'booted', null]);
    checkDump(file, banner, procVersion, MEMORY_MIB);
    assert.match(await serial.sh('echo alive-$((6*7))'), /alive-42/);
    const done = await t.cli(['domjobinfo', 'core', '--completed']);
    assert.match(done.stdout, /Job type:\s+Completed\nOperation:\s+Dump\n/);
    console.log(`${engine}: dump of ${MEMORY_MIB} MiB: ${fs.statSync(file).size} bytes in ${ms} ms (CLI round trip), ${loads(file).length} PT_LOADs`);
  });

  it('a --live dump leaves the guest running throughout', async () => {
    const file = path.join(dir, 'live.core');
    const from = events.length;
    const r = await t.client.call('domain.coreDump', { domain: 'core', file, live: true });
    assert.equal(r.job.status, 'completed');
    assert.equal(r.file, file);
    const during = events.slice(from).filter((e) => e.domain.name === 'core' && e.event !== 'step');
    assert.deepEqual(during.map((e) => e.event), [], 'no suspended/resumed events for a live dump');
    assert.deepEqual(steps().slice(-1), ['dumping:running/booted']);
    checkDump(file, banner, procVersion, MEMORY_MIB);
  });

  it('an aborted dump leaves no file; bad paths are refused with the reason', async () => {
    const file = path.join(dir, 'aborted.core');
    // Asked right behind the dump: the host begins the job as it reads the dump request, and a dump of
    // 128 MiB can be over in a fraction of a second, before a progress event could trigger an abort.
    const dump = t.client.call('domain.coreDump', { domain: 'core', file, live: true });
    const [during] = await Promise.all([t.client.call('domain.jobInfo', { domain: 'core' }), t.client.call('domain.jobAbort', { domain: 'core' })]);
    const { job } = await dump;
    assert.equal(during.job?.operation, 'dump');
    assert.match((await t.cli(['domjobinfo', 'core', '--completed'])).stdout, /Job type:\s+Cancelled\nOperation:\s+Dump\n/);
    assert.equal(job.status, 'aborted');
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('aborted')), []);
    assert.equal((await t.client.call('domain.info', { domain: 'core' })).state, 'running');

    await assert.rejects(t.client.call('domain.coreDump', { domain: 'core', file: path.join(dir, 'no', 'such', 'dir', 'x.core') }), (err: ApiCallError) => {
      assert.equal(err.code, 'INVALID_ARG');
      assert.match(err.message, /cannot write dump file '.*\/no\/such\/dir\/x\.core': directory '.*\/no\/such\/dir' does not exist/);
      return true;
    });
    const cli = await t.cli(['dump', 'core', dir]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, new RegExp(`^error: Failed to core dump domain 'core' to ${dir}\nerror: .*cannot write dump file '${dir}': it is a directory\n$`));
    const both = await t.cli(['dump', 'core', path.join(dir, 'x.core'), '--crash', '--reset']);
    assert.match(both.stderr, /crash and reset are mutually exclusive/);
    assert.equal((await t.client.call('domain.info', { domain: 'core' })).state, 'running');
  });

  it('--reset resets the guest after the dump (it boots again)', async () => {
    const file = path.join(dir, 'reset.core');
    await serial.sh('echo before-reset > /tmp/marker');
    const from = serial.text.length;
    const r = await t.cli(['dump', 'core', file, '--reset']);
    assert.equal(r.code, 0, r.stderr);
    await serial.wait(/DOMUS-GUEST-READY/, BOOT, from);
    assert.doesNotMatch(await serial.sh('cat /tmp/marker 2>&1'), /before-reset/);
    assert.equal((await t.client.call('domain.info', { domain: 'core' })).state, 'running');
    checkDump(file, banner, procVersion, MEMORY_MIB);
  });

  it("<on_crash>coredump-destroy</on_crash>: a panicking guest is dumped to <home>/dump and stopped as crashed", async () => {
    const stopped = new Promise<Events['domain.lifecycle']>((resolve) => {
      const off = t.client.on('domain.lifecycle', (e) => {
        if (e.domain.name === 'core' && e.event === 'stopped') {
          off();
          resolve(e);
        }
      });
    });
    const from = events.length;
    // sysrq c: "Kernel panic - not syncing: sysrq triggered crash"; no panic= on the command line, so
    // the kernel waits (Debian's CONFIG_PANIC_TIMEOUT=0) rather than rebooting before the dump.
    await t.client.call('domain.serialWrite', { domain: 'core', data: Buffer.from('echo c > /proc/sysrq-trigger\n').toString('base64') });
    const end = await stopped;
    assert.deepEqual([end.domain.state, end.domain.reason], ['shutoff', 'crashed']);
    const seen = events.slice(from).filter((e) => e.domain.name === 'core' && e.event !== 'step').map((e) => `${e.event}:${e.domain.state}/${e.domain.reason}`);
    assert.deepEqual(seen, ['crashed:crashed/panicked', 'stopped:shutoff/crashed']);
    const dumps = fs.readdirSync(path.join(t.home, 'dump'));
    assert.equal(dumps.length, 1, `dumps: ${dumps.join(', ')}`);
    assert.match(dumps[0], /^core-\d{4}-\d\d-\d\dT[\d-]+Z\.core$/);
    const file = path.join(t.home, 'dump', dumps[0]);
    assert.match(end.detail ?? '', new RegExp(`core dumped to ${file.replace(/[.]/g, '\\.')}`));
    if (engine === 'v86') assert.match(end.detail ?? '', /sysrq triggered crash/);
    checkDump(file, banner, procVersion, MEMORY_MIB);
  });
});
