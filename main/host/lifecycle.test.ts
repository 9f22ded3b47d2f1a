// The management layer against real guests: every lifecycle path with libvirt's reasons, clean and
// forced shutdown, reboot/reset, save/restore with jobs and abort, edit conflicts, transient domains.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Events } from '../../shared/api.js';
import type { ApiCallError } from '../../shared/client.js';
import { processAlive } from '../common/fsutil.js';
import { ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, until } from '../testing/harness.js';

const BOOT = 120_000;
const pvSpec = (name: string) => ({
  name,
  memoryMiB: 128,
  vcpus: 1,
  boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE },
});

for (const engine of ENGINES) describe(`lifecycle with reasons (${engine})`, { timeout: 900_000, skip: engineSkip(engine) }, () => {
  let t: TestHost;
  const events: Events['domain.lifecycle'][] = [];
  const seen = (name: string): string[] =>
    events.filter((e) => e.domain.name === name && e.event !== 'defined' && e.event !== 'step').map((e) => `${e.event}:${e.domain.state}/${e.domain.reason}`);

  // Booting is not what these tests are about: one cold boot, then its post-boot state.
  const boot = (name: string): Promise<SerialWatch> => t.bootOrRestore(name, BOOT);

  before(async () => {
    t = await TestHost.start();
    t.client.on('domain.lifecycle', (e) => events.push(e));
    await createOn(t.client, pvSpec('life'), engine);
  });
  after(async () => {
    await t?.stop();
  });

  it('clean shutdown through ACPI: shutting-down step, then shutoff/shutdown', async () => {
    await boot('life');
    const r = await t.client.call('domain.shutdown', { domain: 'life', modes: ['acpi'] });
    assert.deepEqual([r.asked, r.forced], [['acpi'], false]);
    assert.equal(r.domain.step, 'shutting-down');
    await until(async () => (await t.client.call('domain.info', { domain: 'life' })).state === 'shutoff', 60_000, 'the guest to power off');
    const info = await t.client.call('domain.info', { domain: 'life' });
    assert.equal(info.reason, 'shutdown');
    assert.deepEqual(seen('life').slice(-3), ['started:running/restored', 'shutdown:shutoff/shutdown', 'stopped:shutoff/shutdown']);
  });

  it('a guest that powers itself off reaches shutoff/shutdown with no host action', async () => {
    const serial = await boot('life');
    await t.client.call('domain.serialWrite', { domain: 'life', data: Buffer.from('poweroff\n').toString('base64') });
    await until(async () => (await t.client.call('domain.info', { domain: 'life' })).state === 'shutoff', 60_000, 'the guest to power off');
    assert.equal((await t.client.call('domain.info', { domain: 'life' })).reason, 'shutdown');
    assert.ok(serial.text.length > 0);
  });

  it('a guest that ignores the request is forced off after the timeout (reason destroyed)', async () => {
    const serial = await boot('life');
    // No acpid and no agent: nobody in the guest listens for the power button.
    await serial.sh('killall acpid domus-agent; true');
    const t0 = Date.now();
    const stopped = new Promise<Events['domain.lifecycle']>((resolve) => {
      const off = t.client.on('domain.lifecycle', (e) => {
        if (e.domain.name === 'life' && e.event === 'stopped') {
          off();
          resolve(e);
        }
      });
    });
    const r = await t.client.call('domain.shutdown', { domain: 'life', timeoutSec: 3 });
    assert.deepEqual([r.asked, r.forced], [['acpi'], false]);
    // The agent announced itself at boot and was killed since: it is named as not answering (v86); QEMU has no agent link.
    assert.match(r.message ?? '', engine === 'v86' ? /its guest agent did not answer/ : /does not connect the guest agent channel/);
    const end = await stopped;
    const waited = Date.now() - t0;
    assert.ok(waited >= 2900, `forced off after ${waited} ms, before the 3 s timeout`);
    assert.equal(end.domain.reason, 'destroyed');
    assert.match(end.detail ?? '', /did not shut down within 3 s: it got the ACPI power button but did not act on it .*; forced off/);
  });

  it('a guest with neither ACPI nor a guest agent: --mode agent is refused, a plain shutdown forces it off at once', async () => {
    // As virt-install writes a definition without <features><acpi/> and without the agent channel.
    const { xml } = await t.client.call('domain.xml', { domain: 'life', inactive: true });
    const bare = xml
      .replace(/<name>life<\/name>/, '<name>bare</name>')
      .replace(/<uuid>[^<]*<\/uuid>/, '')
      .replace(/<acpi\/>/, '')
      .replace(/<channel[^>]*>\s*<target[^>]*org\.qemu\.guest_agent\.0[^>]*\/>\s*<\/channel>/, '');
    assert.doesNotMatch(bare, /<acpi|guest_agent/);
    await t.client.call('domain.define', { xml: bare });
    await t.client.call('domain.start', { domain: 'bare' });

    const refused = async (params: Omit<Parameters<typeof t.client.call<'domain.shutdown'>>[1], 'domain'>, code: string, message: RegExp) => {
      await assert.rejects(t.client.call('domain.shutdown', { domain: 'bare', ...params }), (err: ApiCallError) => {
        assert.equal(err.code, code, err.message);
        assert.match(err.message, message);
        return true;
      });
      assert.equal((await t.client.call('domain.info', { domain: 'bare' })).state, 'running', 'a refused request leaves the guest running');
    };
    await refused({ modes: ['agent'] }, 'OPERATION_UNSUPPORTED', /^Operation not supported: domain 'bare' cannot be asked to shut down: it has no guest agent channel$/);
    await refused({ modes: ['acpi', 'agent'] }, 'OPERATION_UNSUPPORTED', /it has no ACPI .*; it has no guest agent channel/);
    await refused({ force: false }, 'OPERATION_UNSUPPORTED', /cannot be asked to shut down/);
    await refused({ modes: ['initctl', 'paravirt'] }, 'OPERATION_UNSUPPORTED', new RegExp(`the ${engine} engine cannot shut a guest down by 'initctl', 'paravirt'`));
    const cliRefusal = await t.cli(['shutdown', 'bare', '--mode', 'agent']);
    assert.equal(cliRefusal.code, 1);
    assert.equal(
      cliRefusal.stderr,
      "error: Failed to shutdown domain 'bare'\nerror: Operation not supported: domain 'bare' cannot be asked to shut down: it has no guest agent channel\n",
    );

    const stopped = new Promise<Events['domain.lifecycle']>((resolve) => {
      const off = t.client.on('domain.lifecycle', (e) => {
        if (e.domain.name === 'bare' && e.event === 'stopped') {
          off();
          resolve(e);
        }
      });
    });
    const t0 = Date.now();
    const r = await t.cli(['shutdown', 'bare', '--timeout', '60']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 30_000, 'nothing to wait for: forced off at once, not after the 60 s timeout');
    assert.equal(r.stdout, "Domain 'bare' destroyed\n\n");
    const why = /cannot be asked to shut down \(it has no ACPI \(its definition lacks <features><acpi\/>\); it has no guest agent channel\): forced off/;
    assert.match(r.stderr, new RegExp(`^warning: domain 'bare' ${why.source}\n$`));
    const end = await stopped;
    assert.deepEqual([end.domain.state, end.domain.reason], ['shutoff', 'destroyed']);
    assert.match(end.detail ?? '', why);
    assert.match((await t.cli(['domstate', 'bare', '--reason'])).stdout, /^shut off \(destroyed\)/);
    await t.client.call('domain.undefine', { domain: 'bare' });
  });

  it('reboot and reset keep the domain running and emit reboot events', async () => {
    // Booted cold: a v86 guest restored from a state, then rebooted, once hung after "Switched to
    // clocksource tsc-early" (1 run of 2 under load); until that is understood this test does not mix the two.
    await t.client.call('domain.start', { domain: 'life' });
    const serial = await SerialWatch.open(t.client, 'life');
    await serial.wait(/DOMUS-GUEST-READY/, BOOT);
    // Life's one cold start: its other runs may all be restored from a state an earlier test file kept.
    assert.equal(seen('life').at(-1), 'started:running/booted');
    const id = (await t.client.call('domain.info', { domain: 'life' })).id;
    let from = serial.text.length;
    await t.client.call('domain.reboot', { domain: 'life' });
    await serial.wait(/DOMUS-GUEST-READY/, BOOT, from);
    from = serial.text.length;
    await t.client.call('domain.reset', { domain: 'life' });
    await serial.wait(/DOMUS-GUEST-READY/, BOOT, from);
    const info = await t.client.call('domain.info', { domain: 'life' });
    assert.equal(info.state, 'running');
    assert.equal(info.id, id, 'same run of the domain');
    assert.ok(seen('life').filter((e) => e.startsWith('rebooted')).length >= 2);
    assert.match(await serial.sh('echo $((6*7))'), /42/);
  });

  it('a runner that dies reaches shutoff/crashed, never a stuck running', async () => {
    const info = await t.client.call('domain.info', { domain: 'life' });
    const pid = t.runnerPid(info.uuid)!;
    process.kill(pid, 'SIGKILL');
    await until(async () => (await t.client.call('domain.info', { domain: 'life' })).state === 'shutoff', 10_000, 'crashed state');
    assert.equal((await t.client.call('domain.info', { domain: 'life' })).reason, 'crashed');
    assert.ok(seen('life').includes('crashed:shutoff/crashed'));
  });

  it('save stops the domain (saved); restore carries on where it was; abort leaves it as before', async () => {
    const serial = await boot('life');
    await serial.sh('echo kept-across-save > /tmp/marker');
    const file = path.join(t.home, 'life.state');

    // Abort: the job ends 'aborted', no file, the guest runs on.
    const progress: number[] = [];
    const off = t.client.on('job.progress', ({ job }) => progress.push(job.processedBytes));
    // The abort goes right behind the save: the host begins the job as it reads the save, and a save
    // of ~100 ms could be over before a round trip to see it had begun.
    const saving = t.client.call('domain.save', { domain: 'life', file });
    await t.client.call('domain.jobAbort', { domain: 'life' });
    const aborted = await saving;
    assert.equal(aborted.job.status, 'aborted');
    assert.equal(fs.existsSync(file), false);
    assert.equal((await t.client.call('domain.info', { domain: 'life' })).state, 'running');
    assert.match(await serial.sh('cat /tmp/marker'), /kept-across-save/);

    const saved = await t.client.call('domain.save', { domain: 'life', file });
    off();
    assert.equal(saved.job.status, 'completed');
    assert.ok(saved.job.totalBytes > 1 << 20 && progress.length > 0);
    const off1 = await t.client.call('domain.info', { domain: 'life' });
    assert.deepEqual([off1.state, off1.reason], ['shutoff', 'saved']);
    assert.equal((await t.client.call('domain.jobInfo', { domain: 'life', completed: true })).job?.status, 'completed');

    await t.client.call('domain.restore', { file });
    const back = await t.client.call('domain.info', { domain: 'life' });
    assert.deepEqual([back.state, back.reason], ['running', 'restored']);
    const again = await SerialWatch.open(t.client, 'life');
    assert.match(await again.sh('cat /tmp/marker'), /kept-across-save/);
    await t.client.call('domain.destroy', { domain: 'life' });
  });

  it('refuses corrupt and truncated state files and leaves them untouched', async () => {
    const file = path.join(t.home, 'life.state');
    const good = fs.readFileSync(file);
    const corrupt = path.join(t.home, 'corrupt.state');
    const bytes = Buffer.from(good);
    bytes[bytes.length - 100] ^= 0xff;
    fs.writeFileSync(corrupt, bytes);
    await assert.rejects(t.client.call('domain.restore', { file: corrupt }), /corrupt|checksum/);
    assert.ok(fs.readFileSync(corrupt).equals(bytes));
    const truncated = path.join(t.home, 'truncated.state');
    fs.writeFileSync(truncated, good.subarray(0, good.length >> 1));
    await assert.rejects(t.client.call('domain.restore', { file: truncated }), /truncated/);
    assert.equal(fs.statSync(truncated).size, good.length >> 1);
    await assert.rejects(t.client.call('domain.restore', { file: path.join(t.home, 'nope.state') }), /nope\.state/);
    assert.equal((await t.client.call('domain.info', { domain: 'life' })).state, 'shutoff');
  });

  it('two clients editing one definition: the second gets a conflict', async () => {
    const a = await t.client.call('domain.xml', { domain: 'life', inactive: true });
    const b = await t.client.call('domain.xml', { domain: 'life', inactive: true });
    const first = await t.client.call('domain.define', { xml: a.xml.replace('<name>life</name>', '<name>life</name>\n  <title>from A</title>'), expectGeneration: a.generation });
    assert.equal(first.domain.title, 'from A');
    await assert.rejects(
      t.client.call('domain.define', { xml: b.xml.replace('<name>life</name>', '<name>life</name>\n  <title>from B</title>'), expectGeneration: b.generation }),
      (err: ApiCallError) => err.code === 'DEFINITION_CHANGED' && /changed by another client/.test(err.message),
    );
    await assert.rejects(t.client.call('domain.setMetadata', { domain: 'life', title: 'C', config: true, expectGeneration: b.generation }), /changed by another client/);
    assert.equal((await t.client.call('domain.info', { domain: 'life' })).title, 'from A');
  });

  it('edits say whether they apply now, at next boot, or both', async () => {
    await boot('life');
    await t.client.call('domain.setMetadata', { domain: 'life', description: 'live only', live: true });
    assert.match((await t.client.call('domain.xml', { domain: 'life' })).xml, /<description>live only<\/description>/);
    assert.doesNotMatch((await t.client.call('domain.xml', { domain: 'life', inactive: true })).xml, /live only/);
    await t.client.call('domain.setMetadata', { domain: 'life', description: 'next boot', config: true });
    assert.match((await t.client.call('domain.xml', { domain: 'life', inactive: true })).xml, /next boot/);
    assert.match((await t.client.call('domain.xml', { domain: 'life' })).xml, /live only/);
    await assert.rejects(t.client.call('domain.undefine', { domain: 'life' }), /is running/);
    await t.client.call('domain.destroy', { domain: 'life' });
    assert.match((await t.client.call('domain.xml', { domain: 'life' })).xml, /next boot/);
  });

  it('transient domains exist only while they run', async () => {
    const xml = (await t.client.call('domain.xml', { domain: 'life', inactive: true })).xml
      .replace(/<name>life<\/name>/, '<name>fleeting</name>')
      .replace(/<uuid>[^<]+<\/uuid>/, '');
    const r = await t.client.call('domain.createTransient', { xml });
    assert.equal(r.domain.persistent, false);
    assert.equal(r.domain.state, 'running');
    await assert.rejects(t.client.call('domain.setAutostart', { domain: 'fleeting', enabled: true }), /transient/);
    await t.client.call('domain.destroy', { domain: 'fleeting' });
    await assert.rejects(t.client.call('domain.info', { domain: 'fleeting' }), /Domain not found/);
  });

  it('a failed start reaches shutoff/failed', async () => {
    const xml = (await t.client.call('domain.xml', { domain: 'life', inactive: true })).xml
      .replace(/<name>life<\/name>/, '<name>broken</name>')
      .replace(/<uuid>[^<]+<\/uuid>/, '')
      .replace(guest('vmlinuz'), '/nonexistent/vmlinuz');
    await t.client.call('domain.define', { xml });
    await assert.rejects(t.client.call('domain.start', { domain: 'broken' }), /cannot access kernel/);
    const info = await t.client.call('domain.info', { domain: 'broken' });
    assert.deepEqual([info.state, info.reason], ['shutoff', 'failed']);
    const pid = t.runnerPid(info.uuid);
    assert.ok(pid === undefined || !processAlive(pid));
  });
});
