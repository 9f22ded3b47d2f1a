// Paths someone names (an image to inspect or boot, a medium, a state file) that are not images: a
// FIFO, /dev/zero, a directory, a socket, a link to a FIFO. Each is refused at once with the path
// and its kind, and nothing is left behind: an open(2) on a FIFO used to block a reader thread for
// ever, one leaked thread per call.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestHost, until } from '../testing/harness.js';
import { makeSpecialFiles } from '../testing/special-files.js';
import { FsimageJobError, runFsimageJob } from './fsimage-client.js';

function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

async function refusedFast(call: Promise<unknown>, message: RegExp, code = 'invalid-arg'): Promise<void> {
  const t0 = Date.now();
  await assert.rejects(call, { message, code });
  const ms = Date.now() - t0;
  assert.ok(ms < 1000, `refused after ${ms} ms`);
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('paths that are not images', { timeout: 120_000 }, () => {
  let t: TestHost;
  let dir: string;
  let special: Awaited<ReturnType<typeof makeSpecialFiles>>;
  before(async () => {
    t = await TestHost.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-untrusted-'));
    special = await makeSpecialFiles(dir);
  });
  after(async () => {
    special.close();
    await t?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('host.inspectImage refuses each at once, and 20 calls on each leave domusd with the threads it had', async () => {
    const pid = t.daemonPid();
    const round = async (): Promise<void> => {
      for (const [file, kind] of special.cases) {
        const what = new RegExp(`^cannot inspect '${escape(file)}': it ${kind.source.replace('not a regular file', 'not a regular file or a block device')}$`);
        await refusedFast(t.client.call('host.inspectImage', { path: file }), what);
      }
    };
    await round();
    const before = threads(pid);
    for (let i = 0; i < 20; i++) await round();
    assert.equal(threads(pid), before);
  });

  it('the reader worker itself opens without blocking (a FIFO swapped in after the host looked)', async () => {
    await runFsimageJob({ op: 'inspect', path: special.cases[2][0] }).catch(() => undefined);
    const before = threads(process.pid);
    for (const [file, kind] of special.cases) {
      const t0 = Date.now();
      await assert.rejects(runFsimageJob({ op: 'inspect', path: file }), (err: Error) => {
        assert.ok(err instanceof FsimageJobError && err.expected, String(err));
        assert.match(err.message, new RegExp(`^'${escape(file)}' ${kind.source} or a block device$`));
        return true;
      });
      // A worker's start-up alone takes about 0.5 s on a loaded machine; blocked, it would wait for the 90 s deadline.
      assert.ok(Date.now() - t0 < 5000, `refused after ${Date.now() - t0} ms`);
    }
    await until(() => threads(process.pid) <= before, 5000, 'the reader workers to end');
  });

  it('pygrub refuses to boot from one', async () => {
    for (const [file, kind] of special.cases) {
      const name = `pygrub-${path.basename(file).replace(/\W/g, '-')}`;
      await t.client.call('domain.define', {
        xml: `<domain type='v86'><name>${name}</name><memory unit='MiB'>64</memory><bootloader>pygrub</bootloader>
          <os><type arch='i686'>linux</type></os>
          <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${file}'/><target dev='xvda' bus='xen'/></disk></devices></domain>`,
      });
      await refusedFast(t.client.call('domain.start', { domain: name }), new RegExp(`pygrub: '${escape(file)}' ${kind.source} or a block device$`), 'engine-failed');
      assert.equal((await t.client.call('domain.info', { domain: name })).state, 'shutoff');
    }
  });

  it('the New VM wizard, change-media, attach-disk and restore name the path and its kind', async () => {
    const iso = path.join(dir, 'real.iso');
    fs.writeFileSync(iso, Buffer.alloc(4096));
    await t.client.call('domain.define', {
      xml: `<domain type='v86'><name>media</name><memory unit='MiB'>64</memory><os><type arch='i686'>hvm</type></os>
        <devices><disk type='file' device='cdrom'><source file='${iso}'/><target dev='hdc' bus='ide'/><readonly/></disk></devices></domain>`,
    });
    const { xml } = await t.client.call('domain.xml', { domain: 'media', inactive: true });
    for (const [file, kind] of special.cases) {
      const what = `'${escape(file)}' ${kind.source}`;
      await refusedFast(t.client.call('domain.create', { spec: { name: 'wizard', memoryMiB: 64, boot: { kind: 'cdrom', iso: file } } }), new RegExp(`^ISO image ${what}$`));
      await refusedFast(
        t.client.call('domain.changeMedia', { domain: 'media', target: 'hdc', source: file, config: true }),
        new RegExp(`^cannot use '${escape(file)}': it ${kind.source}$`),
      );
      await refusedFast(
        t.client.call('domain.attachDisk', { domain: 'media', source: file, target: 'hdb', config: true }),
        new RegExp(`^cannot use '${escape(file)}': it ${kind.source}$`),
      );
      await refusedFast(t.client.call('domain.restore', { file }), new RegExp(`^state file ${what}$`));
    }
    assert.equal((await t.client.call('domain.xml', { domain: 'media', inactive: true })).xml, xml);
    assert.deepEqual(
      (await t.client.call('domain.list', { all: true })).domains.map((d) => d.name).filter((n) => !n.startsWith('pygrub-')),
      ['media'],
    );
  });
});
