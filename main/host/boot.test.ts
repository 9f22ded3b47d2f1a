// Integration: real guests boot from cold through the host API (PV kernel+initrd, HVM from the
// ISO and from the disk), answer on serial, take keyboard input, show a screen, and die on destroy.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import type { DomainSummary, Events } from '../../shared/api.js';
import { processAlive } from '../common/fsutil.js';
import { ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, until } from '../testing/harness.js';

const BOOT_TIMEOUT = 120_000;

function distinctColours(png: Buffer): number {
  const img = PNG.sync.read(png);
  const seen = new Set<number>();
  for (let i = 0; i < img.data.length && seen.size < 64; i += 4 * 7) {
    seen.add((img.data[i] << 16) | (img.data[i + 1] << 8) | img.data[i + 2]);
  }
  return seen.size;
}

for (const engine of ENGINES) describe(`boot through the host API (${engine})`, { timeout: 600_000, skip: engineSkip(engine) }, () => {
  let t: TestHost;
  const lifecycle: Events['domain.lifecycle'][] = [];
  before(async () => {
    t = await TestHost.start();
    t.client.on('domain.lifecycle', (e) => lifecycle.push(e));
  });
  after(async () => {
    await t?.stop();
  });

  it('boots the PV sample (kernel + initrd) to DOMUS-GUEST-READY and drives it', async () => {
    await createOn(t.client, { name: 'pv', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } }, engine);
    assert.equal((await t.client.call('domain.info', { domain: 'pv' })).state, 'shutoff');
    const t0 = Date.now();
    const started = await t.client.call('domain.start', { domain: 'pv' });
    assert.equal(started.domain.state, 'running');
    assert.equal(started.domain.reason, 'booted');
    assert.equal(started.domain.engine, engine);
    const serial = await SerialWatch.open(t.client, 'pv');
    await serial.wait(/DOMUS-GUEST-READY/, BOOT_TIMEOUT);
    console.log(`# PV cold boot (${engine}) to DOMUS-GUEST-READY through Domus: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    assert.match(await serial.sh('echo $((6*7))'), /^42$/m);

    // Keyboard: typed into the shell on the VGA console (tty1), which writes to the serial line.
    const from = serial.text.length;
    await t.client.call('domain.sendKeys', { domain: 'pv', text: 'echo KBD$((6*7))OK > /dev/ttyS0\n' });
    await serial.wait(/KBD42OK/, 30_000, from);

    const shot = await t.client.call('domain.screenshot', { domain: 'pv' });
    assert.ok(shot.width >= 640 && shot.height >= 400, `screen ${shot.width}x${shot.height}`);
    assert.ok(distinctColours(Buffer.from(shot.png, 'base64')) > 1, 'screenshot is blank');

    const paused = await t.client.call('domain.suspend', { domain: 'pv' });
    assert.equal(paused.domain.state, 'paused');
    await assert.rejects(t.client.call('domain.suspend', { domain: 'pv' }), /already paused/);
    const resumed = await t.client.call('domain.resume', { domain: 'pv' });
    assert.equal(resumed.domain.state, 'running');
    assert.match(await serial.sh('echo alive'), /alive/);

    const info = await t.client.call('domain.info', { domain: 'pv' });
    const pid = t.runnerPid(info.uuid);
    assert.ok(pid && processAlive(pid), 'runner process is running');
    if (engine === 'v86') {
      assert.match(fs.readFileSync(`/proc/${pid}/environ`, 'latin1'), /(^|\0)MALLOC_ARENA_MAX=1\0/, 'the runner has one malloc arena');
      // With TurboFan compiling v86's JIT modules a booted runner held 318-332 MiB; Liftoff alone ~200.
      const rssMiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
      console.log(`# v86 runner RSS after boot and a few commands: ${rssMiB.toFixed(0)} MiB`);
      assert.ok(rssMiB < 260, `the runner of a booted 128 MiB guest holds ${rssMiB.toFixed(0)} MiB`);
    }
    const destroyed = await t.client.call('domain.destroy', { domain: 'pv' });
    assert.equal(destroyed.domain.state, 'shutoff');
    assert.equal(destroyed.domain.reason, 'destroyed');
    await until(() => !processAlive(pid), 5000, 'the runner process to exit');

    const events = lifecycle.filter((e) => e.domain.name === 'pv').map((e) => `${e.event}:${e.domain.state}/${e.domain.reason}`);
    assert.deepEqual(
      events.filter((e) => !e.startsWith('defined') && !e.startsWith('step')),
      ['started:running/booted', 'suspended:paused/user', 'resumed:running/unpaused', 'stopped:shutoff/destroyed'],
    );
  });

  for (const kind of ['cdrom', 'disk'] as const) {
    it(`boots the HVM sample from ${kind === 'cdrom' ? 'tiny.iso' : 'disk.img'} through SeaBIOS`, async () => {
      const name = `hvm-${kind}`;
      // A copy: the guest writes to its disk, and other test files use the sample at the same time.
      const disk = path.join(t.home, `${name}.img`);
      if (kind === 'disk') fs.copyFileSync(guest('disk.img'), disk);
      const boot = kind === 'cdrom' ? { kind, iso: guest('tiny.iso') } : { kind, disk };
      await createOn(t.client, { name, memoryMiB: 128, vcpus: 1, boot }, engine);
      const stats: number[] = [];
      t.client.on('domain.stats', (s) => stats.push(s.cpuPercent));
      await t.client.call('stats.watch', { domains: [name] });
      const t0 = Date.now();
      await t.client.call('domain.start', { domain: name });
      const serial = await SerialWatch.open(t.client, name);
      await serial.wait(/DOMUS-GUEST-READY/, BOOT_TIMEOUT);
      console.log(`# HVM (${kind}, ${engine}) cold boot to DOMUS-GUEST-READY: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.match(await serial.sh('echo $((6*7))'), /^42$/m);
      // A fast boot (QEMU boots these in ~5 s) can end before the second sample, the first with a CPU delta.
      await until(() => stats.some((p) => p > 0), 15_000, 'a stats event reporting CPU usage for the guest');
      const { domains } = await t.client.call('domain.list', { all: true });
      const row = domains.find((d: DomainSummary) => d.name === name);
      assert.equal(row?.state, 'running');
      await t.client.call('stats.unwatch', {});
      await t.client.call('domain.destroy', { domain: name });
    });
  }
});
