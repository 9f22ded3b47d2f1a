// The runner's side of the domain lifecycle against real guests. One PV guest is booted, saved (its
// state file then seeds every shutdown test: a restore takes well under a second, a boot 6-30 s),
// and rebooted through the agent, Ctrl+Alt+Del and reset (v86's direct-kernel reset bug). Restored
// guests power off through ACPI, the agent, a typed `poweroff`, or ignore the request without acpid
// and agent. An HVM guest without ACPI and agent reboots natively (Ctrl+Alt+Del) and its halt counts
// as a power-off. Damaged or mismatched state files are refused and left untouched.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { CTRL_ALT_DEL } from '../common/keymap.js';
import { bootOrderValue, readStateHeader, type HelloResult, type RunnerExit, type SaveResult, type ShutdownResult, type StatsResult } from './protocol.js';
import { STATE_ENGINE_VERSION } from '../common/statefile.js';
import { rewriteStateHeader } from '../testing/state-files.js';
import { sleep, until } from '../testing/harness.js';
import { RfbClient } from '../testing/rfb-client.js';
import { ControlClient, READY, baseConfig, findGuest, guestFile, pvConfig, spawnRunner, type SpawnedRunner } from '../testing/runner-harness.js';

const guest = findGuest();
const skip = 'missing' in guest ? guest.missing : false;
const iso = guestFile('tiny.iso');
const BOOT_MS = 180_000;
const UUID = '6b1f7c1e-0000-4000-8000-000000000001';
const DOMAIN_XML = "<domain type='v86'><name>lifecycle</name><uuid>6b1f7c1e-0000-4000-8000-000000000001</uuid></domain>";

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-lifecycle-'));
/** The booted PV guest's state, written by the first test. */
const savedState = path.join(workDir, 'booted.state');
after(() => fs.rmSync(workDir, { recursive: true, force: true }));

const b64 = (text: string) => Buffer.from(text).toString('base64');
const digest = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const readExit = (r: SpawnedRunner) => JSON.parse(fs.readFileSync(r.paths.exit, 'utf8')) as RunnerExit;

async function attach(r: SpawnedRunner): Promise<{ ctl: ControlClient; hello: HelloResult }> {
  const ctl = await ControlClient.connect(r.paths.control);
  const hello = await ctl.call<HelloResult>('hello');
  ctl.serial = Buffer.from(hello.serialBacklog, 'base64').toString('latin1') + ctl.serial;
  return { ctl, hello };
}

/**
 * The guest's agent has announced itself to the runner: it waits for its first request, in the poll
 * (i386 syscall 168) of busybox's `read`, which it reaches only after writing DOMUS-AGENT-READY.
 */
async function agentUp(ctl: ControlClient): Promise<void> {
  const probe = 'p=$(cat /run/domus-agent.pid 2>/dev/null) && cat /proc/$p/syscall';
  await until(async () => /^168 /m.test(await ctl.sh(probe)), 60_000, 'the guest agent to wait for requests on /dev/hvc0');
}

/** Waits for a power-off: the event, exit code 0, exit.json, no sockets or pid file left. */
async function expectPoweroff(r: SpawnedRunner, poweroff: Promise<unknown>): Promise<void> {
  await poweroff;
  assert.equal(await r.exited, 0);
  assert.deepEqual(readExit(r), { reason: 'poweroff' });
  for (const f of [r.paths.control, r.paths.vnc, r.paths.pid]) assert.ok(!fs.existsSync(f), `${f} removed`);
}

describe('PV guest: save, abort, reboots, reset', { skip }, () => {
  let runner: SpawnedRunner;
  let ctl: ControlClient;
  let pid: number;

  before(async () => {
    if ('missing' in guest) return;
    runner = spawnRunner(pvConfig(guest, { name: 'lifecycle', uuid: UUID }));
    ({ ctl } = await attach(runner));
    pid = runner.child.pid!;
    await ctl.waitSerial(new RegExp(READY), BOOT_MS);
  });

  after(async () => {
    ctl?.close();
    await runner?.kill();
  });

  let boots = 1;
  /** Checks that the same runner is still there and its guest booted again, of a kernel image of its own that it then freed. */
  async function bootedAgain(from: number): Promise<void> {
    await ctl.waitSerial(new RegExp(READY), BOOT_MS, from);
    assert.equal(await ctl.sh('echo UP-$((2+3))').then((out) => /UP-5/.test(out)), true);
    assert.equal((await ctl.call<HelloResult>('hello')).pid, pid);
    assert.equal(runner.child.exitCode, null);
    boots++;
    assert.equal(runner.log().match(/kernel (read from .+?|unpacked on the host) \(xz/g)?.length, boots, 'each boot unpacks the kernel (or reads it from the cache)');
    // The unpacked sample kernel is 31 MiB; its detached memory goes with the next GC.
    await until(async () => ((await ctl.call<StatsResult>('stats')).memory?.arrayBuffers ?? Infinity) < 16 * 1024 * 1024, 15_000, "the runner's ArrayBuffers to fall below 16 MiB");
  }

  test('save: the state file has the header, the guest stays paused', async (t: TestContext) => {
    await ctl.sh('echo MARK-$((6*7)) > /tmp/marker');
    await agentUp(ctl);
    const progress: { processedBytes: number; totalBytes: number }[] = [];
    ctl.on('event', (e) => {
      if (e.event === 'job-progress') progress.push({ processedBytes: e.processedBytes, totalBytes: e.totalBytes });
    });
    const paused = ctl.waitEvent('state', 10_000);
    const result = await ctl.call<SaveResult>('save', { file: savedState, header: { domainXml: DOMAIN_XML, name: 'lifecycle', uuid: UUID } });
    assert.deepEqual(await paused, { event: 'state', state: 'paused' });
    assert.equal((await ctl.call<HelloResult>('hello')).state, 'paused');
    assert.equal(result.bytes, fs.statSync(savedState).size);
    assert.match(result.checksum, /^[0-9a-f]{64}$/);
    assert.ok(progress.length >= 3, `${progress.length} progress events`);
    assert.deepEqual(progress.at(-1), { processedBytes: result.bytes, totalBytes: result.bytes });
    const header = readStateHeader(savedState);
    assert.deepEqual(
      [header.engine, header.engineVersion, header.name, header.uuid, header.domainXml, header.payloadSha256],
      ['v86', STATE_ENGINE_VERSION, 'lifecycle', UUID, DOMAIN_XML, result.checksum],
    );
    assert.deepEqual(header.machine, { memoryBytes: 128 << 20, vgaMemoryBytes: 8 << 20, acpi: true, balloon: true, guestAgent: true, disks: {}, nic: 'ne2k' });
    assert.equal(header.guest.agentConnected, true);
    assert.ok(Math.abs(Date.parse(header.createdAt) - Date.now()) < 60_000);
    const phases = new RegExp(`saved ${result.bytes} bytes: pause and device state \\d+ ms \\(cpu \\d+\\), scan for the \\d+ non-zero pages \\d+ ms \\(cpu \\d+\\), file written, hashed and synced \\d+ ms \\(cpu \\d+\\)`);
    assert.match(runner.log(), phases, 'the save phases are logged');
    t.diagnostic(`save of the 128 MiB PV guest: ${(result.bytes / 2 ** 20).toFixed(1)} MiB in ${result.ms} ms`);
  });

  test('abortJob during a save: an error reply, no file, the guest runs on', async () => {
    await ctl.call('resume');
    const file = path.join(workDir, 'aborted.state');
    // Pipelined: the abort arrives while the save is under way.
    const save = ctl.request('save', { file, header: { domainXml: DOMAIN_XML, name: 'lifecycle', uuid: UUID } });
    const abort = ctl.request('abortJob');
    assert.deepEqual([await save, await abort].map((r) => (r.ok ? 'ok' : r.error)), ['save aborted', 'ok']);
    assert.ok(!fs.existsSync(file));
    assert.deepEqual(fs.readdirSync(workDir), ['booted.state'], 'no temporary file left');
    assert.equal((await ctl.call<HelloResult>('hello')).state, 'running');
    assert.match(await ctl.sh('echo RUN-$((3*3))'), /RUN-9/);
    const none = await ctl.request('abortJob');
    assert.ok(!none.ok && none.error === 'no job is running');
  });

  test('reboot through the agent: guest-reboot, then a fresh boot in the same runner', async () => {
    const from = ctl.serial.length;
    const rebooted = ctl.waitEvent('guest-reboot', 30_000);
    assert.deepEqual(await ctl.call('reboot'), { method: 'agent' });
    await rebooted;
    await bootedAgain(from);
    assert.doesNotMatch(await ctl.sh('cat /tmp/marker 2>&1'), /MARK-42/, 'a new boot, not the old guest');
  });

  test('Ctrl+Alt+Del on the PS/2 keyboard reboots too', async () => {
    const from = ctl.serial.length;
    const rebooted = ctl.waitEvent('guest-reboot', 30_000);
    await ctl.call('sendScancodes', { codes: CTRL_ALT_DEL });
    await rebooted;
    await bootedAgain(from);
  });

  test('reset: a reset event (no guest-reboot); VNC viewers get a DesktopSize and the whole screen', async () => {
    const viewer = await RfbClient.open(runner.paths.vnc);
    try {
      await viewer.handshake();
      viewer.setEncodings([0, -223]);
      viewer.requestUpdate(false);
      await viewer.readUpdate();
      const events: string[] = [];
      ctl.on('event', (e) => events.push(e.event));
      const from = ctl.serial.length;
      assert.equal((await ctl.request('reset')).ok, true);
      assert.ok(events.includes('reset') && !events.includes('guest-reboot'), events.join());
      viewer.requestUpdate(true);
      const resized = await viewer.readUpdate();
      assert.deepEqual(resized.map((r) => r.encoding), [-223]);
      viewer.requestUpdate(true);
      const full = await viewer.readUpdate();
      assert.equal(full.reduce((a, r) => a + r.w * r.h, 0), viewer.width * viewer.height);
      await bootedAgain(from);
      assert.ok(!events.includes('guest-reboot'), events.join());
    } finally {
      viewer.close();
    }
  });

  test('destroy: exit 0, exit.json says destroy', async () => {
    assert.equal((await ctl.request('destroy')).ok, true);
    assert.equal(await runner.exited, 0);
    assert.deepEqual(readExit(runner), { reason: 'destroy' });
  });
});

describe('shutdown and restore (guests restored from the saved PV guest)', { skip }, () => {
  const g = guest as { kernel: string; initrd: string };
  const restoredConfig = (extra = {}) => pvConfig(g, { name: 'lifecycle', uuid: UUID, restoreFrom: savedState, ...extra });
  const running: SpawnedRunner[] = [];
  const clients: ControlClient[] = [];

  after(async () => {
    clients.forEach((c) => c.close());
    await Promise.all(running.map((r) => r.kill()));
  });

  async function restored(): Promise<{ runner: SpawnedRunner; ctl: ControlClient; hello: HelloResult }> {
    const runner = spawnRunner(restoredConfig());
    running.push(runner);
    const { ctl, hello } = await attach(runner);
    clients.push(ctl);
    return { runner, ctl, hello };
  }

  test('restore: no boot, the shell answers at once, a file written before the save is there; then ACPI shutdown', async (t) => {
    const t0 = Date.now();
    const { runner, ctl, hello } = await restored();
    assert.equal(hello.restored, true);
    assert.equal(hello.state, 'running');
    assert.match(await ctl.sh('cat /tmp/marker'), /MARK-42/);
    t.diagnostic(`restore: runner spawn to shell answer ${Date.now() - t0} ms`);
    assert.doesNotMatch(ctl.serial, new RegExp(READY), 'not booted');
    assert.match(runner.log(), /emulator restored in \d+ ms/);
    // The saved file restores (the shell answered above), and each phase of the restore is logged.
    const phases = /restore phases: (.*)/.exec(runner.log())?.[1];
    assert.match(
      phases ?? '',
      /^node start and modules \d+ ms \(cpu \d+\), configuration and images \d+ ms \(cpu \d+\), state file header checked \d+ ms \(cpu \d+\), emulator and the saved guest in it \d+ ms \(cpu \d+\)$/,
    );
    t.diagnostic(`restore phases: ${phases}`);

    const t1 = Date.now();
    const poweroff = ctl.waitEvent('guest-poweroff', 30_000);
    assert.deepEqual(await ctl.call('shutdown', { channels: ['acpi'] }), { acpi: 'pressed' });
    await expectPoweroff(runner, poweroff);
    t.diagnostic(`ACPI shutdown: request to runner exit ${Date.now() - t1} ms`);
  });

  test('shutdown through the guest agent', async () => {
    const { runner, ctl } = await restored();
    const poweroff = ctl.waitEvent('guest-poweroff', 30_000);
    assert.deepEqual(await ctl.call('shutdown', { channels: ['agent'] }), { agent: 'acknowledged' });
    await expectPoweroff(runner, poweroff);
  });

  test('poweroff typed in the guest shell', async () => {
    const { runner, ctl } = await restored();
    const poweroff = ctl.waitEvent('guest-poweroff', 30_000);
    await ctl.call('serialWrite', { data: b64('poweroff\n') });
    await expectPoweroff(runner, poweroff);
  });

  test('a guest without acpid and agent ignores the request and runs on; SIGTERM ends it', async () => {
    const { runner, ctl } = await restored();
    await ctl.sh('killall acpid domus-agent');
    assert.match(await ctl.sh('pidof acpid domus-agent || echo NONE-$((0))-LEFT'), /NONE-0-LEFT/, 'both stopped');
    const events: string[] = [];
    ctl.on('event', (e) => events.push(e.event));
    // The kernel still listens to its power button (acpid is what acts on it); the agent is gone.
    assert.deepEqual(await ctl.call('shutdown', { channels: ['acpi', 'agent'] }), { acpi: 'pressed', agent: 'no-answer' });
    // What is under test is that nothing happens: the guest is given 3 s to (wrongly) power off.
    await sleep(3000);
    assert.match(await ctl.sh('echo ALIVE-$((4*4))'), /ALIVE-16/);
    assert.ok(!events.includes('guest-poweroff'));
    runner.child.kill('SIGTERM');
    assert.equal(await runner.exited, 0);
    assert.deepEqual(readExit(runner), { reason: 'signal', message: 'SIGTERM' });
  });

  /** Spawns a runner restoring `file` and checks it exits 2 with `message` and leaves the file as it was. */
  async function refused(file: string, message: RegExp, extra = {}): Promise<void> {
    const before = digest(file);
    const runner = spawnRunner(restoredConfig({ restoreFrom: file, ...extra }));
    running.push(runner);
    assert.equal(await runner.exited, 2);
    const errors = runner.log().split('\n').filter((l) => l.startsWith('error: '));
    assert.equal(errors.length, 1, runner.log());
    assert.match(errors[0], message);
    assert.ok(!fs.existsSync(runner.paths.control) && !fs.existsSync(runner.paths.exit));
    assert.equal(digest(file), before, 'the state file is untouched');
  }

  test('refused: a flipped payload byte, a truncated file, another engine version, another machine', async () => {
    const bytes = fs.readFileSync(savedState);
    const flipped = path.join(workDir, 'flipped.state');
    const copy = Buffer.from(bytes);
    copy[copy.length - 4096] ^= 0x40;
    fs.writeFileSync(flipped, copy);
    await refused(flipped, /^error: state file '.*flipped\.state' is corrupt: checksum mismatch$/);

    const truncated = path.join(workDir, 'truncated.state');
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
    await refused(truncated, /^error: state file '.*truncated\.state' is truncated$/);

    const oldEngine = path.join(workDir, 'old-engine.state');
    await rewriteStateHeader(savedState, oldEngine, (header) => (header.engineVersion = '0.5.400'));
    await refused(oldEngine, new RegExp(`^error: state file '.*old-engine\\.state' was written by engine v86 0\\.5\\.400, this is ${STATE_ENGINE_VERSION.replace(/\./g, '\\.')}$`));

    await refused(savedState, /^error: state file '.*' does not match the domain: memory is 128 MiB in the file but 256 MiB in the configuration$/, {
      memoryBytes: 256 << 20,
    });
  });
});

describe('HVM guest (CD-ROM) without ACPI or agent', { skip: skip || (typeof iso === 'string' ? false : iso.missing) }, () => {
  let runner: SpawnedRunner;
  let ctl: ControlClient;

  before(async () => {
    if (typeof iso !== 'string' || skip) return;
    runner = spawnRunner(
      baseConfig({ name: 'lifecycle-hvm', cdrom: iso, bootOrder: bootOrderValue(['cdrom']), acpi: false, guestAgent: false }),
    );
    ({ ctl } = await attach(runner));
    await ctl.waitSerial(new RegExp(READY), BOOT_MS);
  });

  after(async () => {
    ctl?.close();
    await runner?.kill();
  });

  test('shutdown has no channel: the runner says so (the host decides what follows), and the guest runs on', async () => {
    const r = await ctl.call<ShutdownResult>('shutdown', { channels: ['acpi', 'agent'] });
    assert.equal(r.acpi, 'absent', JSON.stringify(r));
    assert.ok(r.agent === 'absent' || r.agent === 'not-connected', JSON.stringify(r));
    assert.match(await ctl.sh('echo HVM-$((5*5))'), /HVM-25/);
  });

  test('reboot without an agent: Ctrl+Alt+Del, guest-reboot, the BIOS boots the CD again', async () => {
    const from = ctl.serial.length;
    const rebooted = ctl.waitEvent('guest-reboot', 30_000);
    assert.deepEqual(await ctl.call('reboot'), { method: 'ctrl-alt-del' });
    await rebooted;
    await ctl.waitSerial(new RegExp(READY), BOOT_MS, from);
    assert.match(await ctl.sh('echo BACK-$((7*7))'), /BACK-49/);
    assert.equal(runner.child.exitCode, null);
  });

  test('poweroff without ACPI halts the CPU: seen as a power-off', async () => {
    const poweroff = ctl.waitEvent('guest-poweroff', 30_000);
    await ctl.call('serialWrite', { data: b64('poweroff\n') });
    await expectPoweroff(runner, poweroff);
    assert.match(runner.log(), /the guest powered off \(CPU halted with interrupts disabled\)/);
  });
});
