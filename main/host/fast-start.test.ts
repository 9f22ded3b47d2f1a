// Fast start: the first start of a domain boots cold and keeps a post-boot state once the guest is
// ready; the next start restores it (reason restored, summary.fastStarted) and the guest answers at
// once; a changed definition or a boot file changed outside drops it; writable disks are refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stateFile } from './fast-start-file.js';
import { parseDomainXml } from './domain/xml.js';
import { ENGINES, SerialWatch, TestHost, engineSkip, guest, sampleGuestXml, until } from '../testing/harness.js';

// Engines' own temporaries (QEMU's stream beside the file, '.'-named) are not states.
const states = (t: TestHost): string[] => fs.readdirSync(t.paths.saves).filter((f) => !f.startsWith('.') && f.includes('.fast-'));

describe('fast-start state file', () => {
  it('pairs with the definition (metadata aside) and with its boot files as they were', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-fast-'));
    try {
      const kernel = path.join(dir, 'vmlinuz');
      fs.writeFileSync(kernel, 'kernel');
      const xml = (memory: number, title = '') =>
        `<domain type='v86'><name>g</name><uuid>3c3f4b7e-8d0e-4f56-9d3e-2f6a4b1c0d11</uuid>${title}<memory unit='MiB'>${memory}</memory><os><type>hvm</type><kernel>${kernel}</kernel></os></domain>`;
      const first = stateFile(dir, parseDomainXml(xml(128)));
      assert.equal(stateFile(dir, parseDomainXml(xml(128, '<title>renamed</title>'))), first);
      assert.notEqual(stateFile(dir, parseDomainXml(xml(96))), first);
      fs.utimesSync(kernel, new Date(), new Date(Date.now() + 5000));
      assert.notEqual(stateFile(dir, parseDomainXml(xml(128))), first);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const engine of ENGINES) describe(`fast start (${engine})`, { timeout: 600_000, skip: engineSkip(engine) }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  it('boots cold once, then restores the post-boot state; a changed definition drops it', async () => {
    const xml = sampleGuestXml('quick', engine);
    await t.client.call('domain.define', { xml });
    const enabled = await t.client.call('domain.fastStart', { domain: 'quick', action: 'enable' });
    assert.deepEqual(enabled.domain.fastStart, { kept: false });

    const cold = await t.client.call('domain.start', { domain: 'quick' });
    assert.equal(cold.domain.reason, 'booted');
    assert.equal(cold.domain.fastStarted, undefined);
    const booted = await SerialWatch.open(t.client, 'quick');
    await booted.wait(/DOMUS-GUEST-READY/, 300_000);
    // Saved, then resumed: the guest runs on, still booted.
    await until(
      async () => {
        const d = await t.client.call('domain.info', { domain: 'quick' });
        return d.fastStart?.kept === true && d.step === null && d.state === 'running' && d.reason === 'booted';
      },
      60_000,
      'the fast-start state, the guest running on',
    );
    assert.equal(states(t).length, 1);
    assert.match(await booted.sh('echo $((6*7))'), /^42$/m);
    await t.client.call('domain.destroy', { domain: 'quick' });

    const t0 = Date.now();
    const fast = await t.client.call('domain.start', { domain: 'quick' });
    assert.equal(fast.domain.state, 'running');
    assert.equal(fast.domain.reason, 'restored');
    assert.equal(fast.domain.fastStarted, true);
    const serial = await SerialWatch.open(t.client, 'quick');
    assert.match(await serial.sh('echo $((6*7))'), /^42$/m);
    console.log(`# fast start (${engine}) to an answering shell: ${Date.now() - t0} ms`);
    const listed = (await t.client.call('domain.list', {})).domains.find((d) => d.name === 'quick');
    assert.equal(listed?.fastStarted, true);
    assert.match((await t.cli(['list', '--reason'])).stdout, /quick +running \(restored, fast start\)/);
    // The state stays for the starts that follow.
    assert.equal(states(t).length, 1);
    await t.client.call('domain.destroy', { domain: 'quick' });
    assert.equal((await t.client.call('domain.info', { domain: 'quick' })).fastStarted, undefined);

    // A changed definition: the state no longer pairs with it and goes at once.
    const { xml: defined } = await t.client.call('domain.xml', { domain: 'quick', inactive: true });
    assert.match(defined, /fast-start=["']on["']/);
    await t.client.call('domain.define', { xml: defined.replace(/<memory[^>]*>\d+<\/memory>/, "<memory unit='MiB'>112</memory>") });
    assert.deepEqual(states(t), []);
    const info2 = await t.client.call('domain.info', { domain: 'quick' });
    assert.deepEqual(info2.fastStart, { kept: false });
    const again = await t.client.call('domain.start', { domain: 'quick' });
    assert.equal(again.domain.reason, 'booted');
    await t.client.call('domain.destroy', { domain: 'quick' });

    // Disable drops the setting and any state; refresh needs it on.
    const off = await t.client.call('domain.fastStart', { domain: 'quick', action: 'disable' });
    assert.equal(off.domain.fastStart, undefined);
    await assert.rejects(t.client.call('domain.fastStart', { domain: 'quick', action: 'refresh' }), /does not use fast start/);
  });

  it('refuses a domain with a writable disk, naming it', async () => {
    await t.client.call('domain.define', { xml: sampleGuestXml('disky', engine, `<disk type='file' device='disk'><source file='${guest('disk.img')}'/><target dev='hda' bus='ide'/></disk>`) });
    await assert.rejects(t.client.call('domain.fastStart', { domain: 'disky', action: 'enable' }), /disk 'hda' is writable/);
  });
});
