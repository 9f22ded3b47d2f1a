// The runner process against real guests: config errors; one PV runner for hello and the serial
// backlog across a host disconnect, pause/resume, screenshot, stats, keyboard ops, protocol errors,
// several clients, an RFB login without a password and destroy; an HVM CD-ROM boot started paused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import { bootOrderValue, type HelloResult, type ScreenshotResult, type StatsResult } from './protocol.js';
import { sleep, until } from '../testing/harness.js';
import { RfbClient } from '../testing/rfb-client.js';
import { ControlClient, READY, baseConfig, findGuest, guestFile, pvConfig, spawnRunner, type SpawnedRunner } from '../testing/runner-harness.js';

const guest = findGuest();
const skip = 'missing' in guest ? guest.missing : false;

describe('runner configuration errors', () => {
  async function expectConfigError(config: string | Parameters<typeof spawnRunner>[0], pattern: RegExp): Promise<void> {
    const r = spawnRunner(config);
    try {
      assert.equal(await r.exited, 2);
      const errors = r.log().split('\n').filter((l) => l.startsWith('error: '));
      assert.equal(errors.length, 1, `one error line in runner.log:\n${r.log()}`);
      assert.match(errors[0], pattern);
      assert.ok(!fs.existsSync(r.paths.control) && !fs.existsSync(r.paths.vnc), 'no sockets');
      assert.ok(!fs.existsSync(r.paths.pid), 'pid file removed');
    } finally {
      await r.kill();
    }
  }
  const base = pvConfig({ kernel: '/nonexistent/vmlinuz', initrd: '/nonexistent/initrd.gz' });

  test('missing kernel', () =>
    expectConfigError(base, /^error: cannot read kernel '\/nonexistent\/vmlinuz': ENOENT$/));
  test('runner.json is not JSON', () => expectConfigError('{"name":', /^error: runner config '.*runner\.json' is not valid JSON/));
  test('schema violations are listed', () =>
    expectConfigError({ ...base, memoryBytes: 1024, balloon: 'yes' as unknown as boolean }, /memoryBytes: must be at least 16 MiB; balloon: /));
  test('a file that is not a BIOS', () =>
    expectConfigError({ ...base, bios: '/usr/share/seabios/vgabios-stdvga.bin' }, /^error: bios '.*' is \d+ bytes; expected 64, 128, 192 or 256 KiB$/));
  test('a directory as CD-ROM image', () =>
    expectConfigError({ ...base, kernel: undefined, initrd: undefined, cdrom: '/tmp' }, /^error: cdrom '\/tmp' is a directory, not a regular file$/));
  test('initrd too large for the memory size', { skip }, () => {
    const g = guest as { kernel: string; initrd: string };
    return expectConfigError(pvConfig(g, { memoryBytes: 64 * 1024 * 1024 }), /too small for initrd .* at least \d+ MiB is needed$/);
  });
});

describe('runner lifecycle', { skip }, () => {
  let runner: SpawnedRunner;
  let ctl: ControlClient;

  before(async () => {
    if ('missing' in guest) return;
    runner = spawnRunner(pvConfig(guest, { name: 'runner-test' }));
    ctl = await ControlClient.connect(runner.paths.control);
  });

  after(async () => {
    ctl?.close();
    await runner?.kill();
  });

  test('hello: identity, state, pid file; the guest boots', async () => {
    const hello = await ctl.call<HelloResult>('hello');
    assert.equal(hello.pid, Number(fs.readFileSync(runner.paths.pid, 'utf8')));
    assert.equal(hello.pid, runner.child.pid);
    assert.equal(hello.name, 'runner-test');
    assert.equal(hello.uuid, '6b1f7c1e-0000-4000-8000-000000000001');
    assert.equal(hello.state, 'running');
    assert.ok(Math.abs(hello.startedAt - Date.now()) < 60_000);
    ctl.serial = Buffer.from(hello.serialBacklog, 'base64').toString('latin1') + ctl.serial;
    await ctl.waitSerial(new RegExp(READY), 180_000);
    await ctl.sh('true');
    for (const f of [runner.paths.control, runner.paths.vnc]) {
      const st = fs.statSync(f);
      assert.ok(st.isSocket(), `${f} is a socket`);
      assert.equal(st.mode & 0o777, 0o600);
    }
  });

  test("each hello hands over the guest's recent serial output: what nobody was attached for, and what a client that vanished had been sent", async () => {
    // The guest prints 1 s from now; the "host" vanishes right away.
    await ctl.call('serialWrite', { data: Buffer.from('(sleep 1; echo BACKLOG-$((40+2))) &\n').toString('base64') });
    ctl.conn.socket.destroy();
    // Waits out the guest's delay, with room for a loaded machine: only a hello can see what was
    // printed while nobody was attached, and a hello attaches.
    await sleep(5000);
    ctl = await ControlClient.connect(runner.paths.control);
    const hello = await ctl.call<HelloResult>('hello');
    const backlog = Buffer.from(hello.serialBacklog, 'base64').toString('latin1');
    assert.match(backlog, /BACKLOG-42/);
    // Also what the vanished client was sent (bytes on their way to a killed host are not lost).
    assert.match(backlog, new RegExp(READY));
    ctl.serial = backlog + ctl.serial;
    // A second client gets the same, then live output: no byte twice, none missing.
    const other = await ControlClient.connect(runner.paths.control);
    const again = await other.call<HelloResult>('hello');
    other.serial = Buffer.from(again.serialBacklog, 'base64').toString('latin1') + other.serial;
    assert.match(other.serial, /BACKLOG-42/);
    const from = [ctl.serial.length, other.serial.length];
    await ctl.sh('echo BOTH-$((1+1))');
    await other.waitSerial(/BOTH-2/, 10_000, from[1]);
    assert.match(ctl.serial.slice(from[0]), /BOTH-2/);
    assert.equal(ctl.serial.match(/^BOTH-2/gm)?.length, 1, 'the first client got the output once');
    assert.equal(other.serial.match(/^BOTH-2/gm)?.length, 1, 'the second client got the output once');
    other.close();
  });

  test('pause and resume: state events, the guest stops and continues', async () => {
    const paused = ctl.waitEvent('state');
    assert.deepEqual(await ctl.call('pause'), { state: 'paused' });
    assert.deepEqual(await paused, { event: 'state', state: 'paused' });
    assert.equal((await ctl.call<HelloResult>('hello')).state, 'paused');
    const from = ctl.serial.length;
    await ctl.call('serialWrite', { data: Buffer.from('echo RESUMED-$((3*3))\n').toString('base64') });
    // What is under test is that nothing happens: a running guest would answer well within 1 s.
    await sleep(1000);
    assert.doesNotMatch(ctl.serial.slice(from), /RESUMED-9/, 'a paused guest does not run');
    const resumed = ctl.waitEvent('state');
    assert.deepEqual(await ctl.call('resume'), { state: 'running' });
    assert.deepEqual(await resumed, { event: 'state', state: 'running' });
    await ctl.waitSerial(/RESUMED-9/, 10_000, from);
  });

  test('screenshot is a non-blank PNG of the screen', async () => {
    const shot = await ctl.call<ScreenshotResult>('screenshot');
    const png = PNG.sync.read(Buffer.from(shot.png, 'base64'));
    assert.equal(png.width, shot.width);
    assert.equal(png.height, shot.height);
    assert.deepEqual([shot.width, shot.height], [720, 400], 'VGA text mode 80x25, 9x16 cells');
    const colours = new Set<number>();
    for (let i = 0; i < png.data.length; i += 4) colours.add(png.data.readUInt32BE(i));
    assert.ok(colours.size >= 2, 'more than one colour');
  });

  test('stats op: counters on request only, no periodic push', async () => {
    // No copy of the unpacked kernel (31 MiB for the sample) once it is in guest RAM (35 MiB when v86
    // kept it); the detached memory goes with the next GC.
    let s = await ctl.call<StatsResult>('stats');
    await until(async () => ((s = await ctl.call<StatsResult>('stats')).memory?.arrayBuffers ?? Infinity) < 16 * 1024 * 1024, 15_000, "the runner's ArrayBuffers to fall below 16 MiB");
    assert.ok(s.cpuTimeMs > 0 && s.rssBytes > 100 * 1024 * 1024 && s.wallMs > 0, JSON.stringify(s));
    const mem = s.memory;
    assert.ok(mem, 'a loaded runner reports where its memory goes');
    assert.equal(mem.ramBytes, 128 * 1024 * 1024);
    assert.ok(mem.wasmBytes >= mem.ramBytes + mem.vramBytes, JSON.stringify(mem));
    // What is under test is that nothing happens: 2.5 s without a request, without a stats event.
    await sleep(2500);
    const again = await ctl.call<StatsResult>('stats');
    assert.equal(again.requests, s.requests + 1, 'only our own requests were answered');
    assert.ok(again.cpuTimeMs >= s.cpuTimeMs);
    // The guest's vCPU time is the emulation (main) thread's: part of the process's, never more
    // (a clock tick of 10 ms apart, the two being read one after the other).
    assert.ok(again.vcpuTimeMs !== undefined && again.vcpuTimeMs > 0 && again.vcpuTimeMs <= again.cpuTimeMs + 10, JSON.stringify(again));
    assert.equal(ctl.events.filter((e) => (e as { event: string }).event === 'stats').length, 0, 'the runner pushes no statistics');
  });

  test('sendScancodes and sendText reach the tty1 shell', async () => {
    const from = ctl.serial.length;
    // "echo " as raw make/break codes, the rest as text.
    await ctl.call('sendScancodes', { codes: [0x12, 0x92, 0x2e, 0xae, 0x23, 0xa3, 0x18, 0x98, 0x39, 0xb9] });
    await ctl.call('sendText', { text: 'TEXT$((5*5)) > /dev/ttyS0\n' });
    await ctl.waitSerial(/TEXT25/, 20_000, from);
    // Long text goes through without overrunning v86's 1 KiB keyboard buffer.
    const long = 'x'.repeat(600);
    await ctl.call('sendText', { text: `echo ${long} | wc -c > /dev/ttyS0\n` });
    await ctl.waitSerial(/\b601\b/, 30_000, from);
  });

  test('protocol errors get error replies and leave the connection usable', async () => {
    const unknown = await ctl.request('frobnicate');
    assert.deepEqual(unknown, { id: unknown.id, ok: false, error: "unknown op 'frobnicate'" });
    const badArgs = await ctl.request('sendScancodes', { codes: [300] });
    assert.ok(!badArgs.ok && /invalid arguments for 'sendScancodes': codes\.0/.test(badArgs.error), JSON.stringify(badArgs));
    const badText = await ctl.request('sendText', { text: 'café' });
    assert.ok(!badText.ok && /cannot type U\+00E9/.test(badText.error), JSON.stringify(badText));
    ctl.conn.socket.write('{not json\n');
    ctl.conn.socket.write(JSON.stringify({ op: 'stats' }) + '\n');
    const stats = await ctl.request('stats');
    assert.ok(stats.ok);
    assert.equal(ctl.nullReplies.length, 2);
    assert.match((ctl.nullReplies[0] as { error: string }).error, /^malformed JSON line/);
    assert.match((ctl.nullReplies[1] as { error: string }).error, /integer "id"/);
  });

  test('RFB without a password: security type None for 3.8 and 3.7 clients', async () => {
    for (const version of ['003.008', '003.007']) {
      const v = await RfbClient.open(runner.paths.vnc);
      await v.handshake({ version });
      assert.deepEqual([v.width, v.height, v.name], [720, 400, 'runner-test']);
      v.requestUpdate(false);
      const rects = await v.readUpdate();
      assert.equal(rects.reduce((a, r) => a + r.w * r.h, 0), 720 * 400);
      v.close();
    }
  });

  test('destroy: reply, then exit 0 with sockets and pid file removed', async () => {
    const reply = await ctl.request('destroy');
    assert.equal(reply.ok, true);
    assert.equal(await runner.exited, 0);
    for (const f of [runner.paths.control, runner.paths.vnc, runner.paths.pid]) assert.ok(!fs.existsSync(f), `${f} removed`);
  });
});

const iso = guestFile('tiny.iso');

describe('runner HVM boot', { skip: typeof iso === 'string' ? false : iso.missing }, () => {
  test('startPaused, then a BIOS boot from the ISO on the (file-backed) CD-ROM drive', async () => {
    const runner = spawnRunner(
      baseConfig({ name: 'hvm-test', cdrom: iso as string, bootOrder: bootOrderValue(['cdrom', 'hd']), startPaused: true }),
    );
    const ctl = await ControlClient.connect(runner.paths.control);
    try {
      assert.equal((await ctl.call<HelloResult>('hello')).state, 'paused');
      // What is under test is that nothing runs: the paused machine is given 1.5 s to stay silent in.
      await sleep(1500);
      assert.equal(ctl.serial, '', 'nothing runs before resume');
      await ctl.call('resume');
      await ctl.waitSerial(new RegExp(READY), 180_000);
      assert.equal((await ctl.request('destroy')).ok, true);
      assert.equal(await runner.exited, 0);
    } finally {
      ctl.close();
      await runner.kill();
    }
  });
});
