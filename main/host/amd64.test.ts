// The 64-bit sample (build/guests/vmlinuz-amd64 + initrd-amd64.gz): it boots on the QEMU engine and
// on a libvirt connection through the host API and runs in long mode, and the wizard's checks refuse
// it on the 32-bit v86 engine.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AMD64_SAMPLE, CONNECTION_ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guestsBuilt } from '../testing/harness.js';

const BOOT_TIMEOUT = 180_000;
const boot = { kind: 'pv' as const, ...AMD64_SAMPLE, cmdline: SAMPLE_CMDLINE };

const built = guestsBuilt(['vmlinuz-amd64', 'initrd-amd64.gz']) || 'amd64 sample not built (npm run guests)';

for (const engine of CONNECTION_ENGINES.filter((e) => e !== 'v86')) {
  describe(`amd64 sample guest boots (${engine})`, { skip: built === true ? engineSkip(engine) : built, timeout: 600_000 }, () => {
    let t: TestHost;
    before(async () => {
      t = await TestHost.start(engine);
    });
    after(async () => {
      await t?.stop();
    });

    it('to DOMUS-GUEST-READY, and the guest is x86_64 with its balloon driver bound', async () => {
      await createOn(t.client, { name: 'amd64', engine: 'qemu', memoryMiB: 256, vcpus: 1, boot }, engine);
      const t0 = Date.now();
      const started = await t.client.call('domain.start', { domain: 'amd64' });
      assert.equal(started.domain.state, 'running');
      if (engine === 'qemu') assert.equal(started.domain.engine, 'qemu');
      const serial = await SerialWatch.open(t.client, 'amd64');
      // Up to the line's end: serial data arrives in chunks, and a chunk can end inside the banner.
      const [, banner] = await serial.wait(/(DOMUS-GUEST-READY \S+ kernel=\S+)\r?\n/, BOOT_TIMEOUT);
      console.log(`# amd64 PV cold boot (${engine}) to DOMUS-GUEST-READY: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.match(banner, /kernel=\d+\.\d+\.\d+-\d+-amd64$/);
      assert.match(await serial.sh('uname -m'), /^x86_64$/m);
      // The same modules as the i686 sample, from the amd64 kernel: the balloon driver is bound.
      assert.match(await serial.sh('cat /sys/bus/virtio/drivers/virtio_balloon/virtio*/device'), /^0x0005$/m);
      const destroyed = await t.client.call('domain.destroy', { domain: 'amd64' });
      assert.equal(destroyed.domain.state, 'shutoff');
    });
  });
}

describe('amd64 sample guest on v86', { skip: built === true ? false : built }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  it('domain.create refuses it on v86 as a 64-bit kernel', async () => {
    await assert.rejects(
      t.client.call('domain.create', { spec: { name: 'amd64-v86', memoryMiB: 128, vcpus: 1, boot } }),
      new RegExp(
        `kernel ${AMD64_SAMPLE.kernel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is a x86_64 guest \\(its boot header says it is a 64-bit kernel\\), ` +
          'and the v86 engine emulates a 32-bit \\(i686\\) CPU; choose a 32-bit \\(i686\\) image or the QEMU engine',
      ),
    );
    const { domains } = await t.client.call('domain.list', { all: true });
    assert.ok(!domains.some((d) => d.name === 'amd64-v86'), 'nothing was defined');
  });
});
