// Untrusted input the host must refuse cleanly. Paths someone names (an image to inspect or boot, a
// medium, a state file) that are not images: a FIFO, /dev/zero, a directory, a socket, a link to a
// FIFO; each is refused at once with the path and its kind, and nothing is left behind (an open(2)
// on a FIFO used to block a reader thread for ever, one leaked thread per call). Domain XML nested
// too deep or using reserved names. State files whose header and XML disagree on the domain, or that
// name a domain clashing with another one.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENGINES, SAMPLE_CMDLINE, TestHost, createOn, engineSkip, guest, guestsBuilt, until } from '../testing/harness.js';
import { makeSpecialFiles } from '../testing/special-files.js';
import { FsimageJobError, runFsimageJob } from './images/reader-client.js';
import { rewriteStateHeader } from '../testing/state-files.js';

function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

async function refusedFast(call: Promise<unknown>, message: RegExp, code = 'INVALID_ARG'): Promise<void> {
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

  it('host.inspectImage refuses each at once, and 20 calls on each leave domusd with the threads it had', async (ctx) => {
    const pid = t.daemonPid();
    const round = async (): Promise<void> => {
      for (const [file, kind] of special.cases) {
        const what = new RegExp(`^invalid argument: cannot inspect '${escape(file)}': it ${kind.source.replace('not a regular file', 'not a regular file or a block device')}$`);
        await refusedFast(t.client.call('host.inspectImage', { path: file }), what);
      }
    };
    await round();
    const before = threads(pid);
    for (let i = 0; i < 20; i++) await round();
    ctx.diagnostic(`domusd threads: ${before} before, ${threads(pid)} after ${20 * special.cases.length} refused calls`);
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
      await refusedFast(t.client.call('domain.start', { domain: name }), new RegExp(`pygrub: '${escape(file)}' ${kind.source} or a block device$`), 'OPERATION_FAILED');
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
      await refusedFast(t.client.call('domain.create', { spec: { name: 'wizard', memoryMiB: 64, boot: { kind: 'cdrom', iso: file } } }), new RegExp(`^invalid argument: ISO image ${what}$`));
      await refusedFast(
        t.client.call('domain.changeMedia', { domain: 'media', target: 'hdc', source: file, config: true }),
        new RegExp(`^invalid argument: cannot use '${escape(file)}': it ${kind.source}$`),
      );
      await refusedFast(
        t.client.call('domain.attachDisk', { domain: 'media', source: file, target: 'hdb', config: true }),
        new RegExp(`^invalid argument: cannot use '${escape(file)}': it ${kind.source}$`),
      );
      await refusedFast(t.client.call('domain.restore', { file }), new RegExp(`^invalid argument: state file ${what}$`));
    }
    assert.equal((await t.client.call('domain.xml', { domain: 'media', inactive: true })).xml, xml);
    assert.deepEqual(
      (await t.client.call('domain.list', { all: true })).domains.map((d) => d.name).filter((n) => !n.startsWith('pygrub-')),
      ['media'],
    );
  });
});

describe('domain XML that is too deep or uses reserved names', () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  const xml = (inner: string): string =>
    `<domain type='v86'>\n<name>hostile</name>\n<memory unit='MiB'>64</memory>\n<os><type arch='i686'>hvm</type></os>\n${inner}\n</domain>\n`;
  const cases: [string, string, string][] = [
    ['deep', xml(`<metadata>${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}</metadata>`), `line 5: elements are nested more than 64 levels deep (at <a>)`],
    ['proto', xml('<__proto__><polluted>yes</polluted></__proto__>'), `line 5: '__proto__' is a reserved name and cannot name an element`],
    ['ctor', xml(`<devices constructor='x'/>`), `line 5: 'constructor' is a reserved name and cannot name an attribute (of <devices>)`],
    ['prototype', xml('<metadata><prototype/></metadata>'), `line 5: 'prototype' is a reserved name and cannot name an element`],
  ];

  it('domain.define refuses them as XML_ERROR and defines nothing', async () => {
    for (const [, text, problem] of cases) {
      await assert.rejects(t.client.call('domain.define', { xml: text }), { code: 'XML_ERROR', message: `XML error: invalid domain XML: ${problem}` });
    }
    assert.deepEqual((await t.client.call('domain.list', { all: true })).domains, []);
    assert.deepEqual(fs.readdirSync(path.join(t.home, 'domains')), []);
  });

  it('domus define prints the reason as virsh does and exits non-zero', async () => {
    for (const [label, text, problem] of cases) {
      const file = path.join(t.home, `${label}.xml`);
      fs.writeFileSync(file, text);
      const r = await t.cli(['define', file]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^error: Failed to define domain from ${escape(file)}\nerror: XML error: invalid domain XML: ${escape(problem)}\n$`));
    }
    assert.equal((await t.cli(['list', '--all', '--name'])).stdout.trim(), '');
  });
});

const digest = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

for (const engine of ENGINES) {
  describe(`restore checks the domain a state file names (${engine})`, { timeout: 600_000, skip: engineSkip(engine) || (!guestsBuilt() && 'sample guests not built') }, () => {
    let t: TestHost;
    let saved: string;
    const uuid: Record<string, string> = {};
    before(async () => {
      t = await TestHost.start();
      const spec = (name: string) => ({ name, memoryMiB: 96, vcpus: 1, boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } });
      for (const name of ['saved', 'other']) {
        await createOn(t.client, spec(name), engine);
        uuid[name] = (await t.client.call('domain.info', { domain: name })).uuid;
      }
      // The guest need not have booted: any state will do, only its header is edited.
      await t.client.call('domain.start', { domain: 'saved' });
      saved = path.join(t.home, 'saved.state');
      await t.client.call('domain.save', { domain: 'saved', file: saved });
    });
    after(async () => {
      await t?.stop();
    });

    const setXml = (h: Record<string, unknown>, name: string, id: string): void => {
      h.domainXml = String(h.domainXml).replace(/<name>[^<]*<\/name>/, `<name>${name}</name>`).replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${id}</uuid>`);
    };

    it('refuses a header and XML that disagree, and a domain that clashes with another, leaving everything as it was', async () => {
      const stranger = crypto.randomUUID();
      const crafted: [string, (h: Record<string, unknown>) => void, string, RegExp][] = [
        ['xml-uuid', (h) => setXml(h, 'saved', stranger), 'INVALID_ARG', new RegExp(`is inconsistent: its header holds domain 'saved' \\(${uuid.saved}\\) but its XML defines 'saved' \\(${stranger}\\)$`)],
        ['header-name', (h) => (h.name = 'renamed'), 'INVALID_ARG', new RegExp(`is inconsistent: its header holds domain 'renamed' \\(${uuid.saved}\\) but its XML defines 'saved' \\(${uuid.saved}\\)$`)],
        [
          'name-of-other',
          (h) => {
            h.name = 'other';
            setXml(h, 'other', uuid.saved);
          },
          'OPERATION_FAILED',
          new RegExp(`^operation failed: cannot restore '.*name-of-other\\.state': domain 'other' already exists with uuid ${uuid.other}$`),
        ],
        [
          'uuid-of-other',
          (h) => {
            h.name = 'newcomer';
            h.uuid = uuid.other;
            setXml(h, 'newcomer', uuid.other);
          },
          'OPERATION_FAILED',
          new RegExp(`^operation failed: cannot restore '.*uuid-of-other\\.state': domain 'other' is already defined with uuid ${uuid.other}$`),
        ],
      ];
      const before = { list: (await t.client.call('domain.list', { all: true })).domains, saved: await t.client.call('domain.xml', { domain: 'saved', inactive: true }), other: await t.client.call('domain.xml', { domain: 'other', inactive: true }) };
      for (const [label, edit, code, message] of crafted) {
        const file = path.join(t.home, `${label}.state`);
        await rewriteStateHeader(saved, file, edit);
        const sum = digest(file);
        await assert.rejects(t.client.call('domain.restore', { file }), (err: Error & { code?: string }) => {
          assert.equal(err.code, code, err.message);
          assert.match(err.message, message);
          return true;
        });
        assert.equal(digest(file), sum);
        assert.deepEqual((await t.client.call('domain.list', { all: true })).domains, before.list);
        assert.deepEqual(await t.client.call('domain.xml', { domain: 'saved', inactive: true }), before.saved);
        assert.deepEqual(await t.client.call('domain.xml', { domain: 'other', inactive: true }), before.other);
        // No runner or QEMU was started: no guest's state directory holds a pid file.
        const guestDirs = t.guestRunDirs().filter((d) => fs.statSync(path.join(t.paths.run, d)).isDirectory());
        assert.deepEqual(guestDirs.filter((d) => fs.readdirSync(path.join(t.paths.run, d)).some((f) => f.endsWith('.pid'))), []);
      }
    });

    it('a copy re-written with the same domain restores (the crafting itself is sound)', async () => {
      const file = path.join(t.home, 'same.state');
      await rewriteStateHeader(saved, file, (h) => (h.createdAt = new Date(0).toISOString()));
      await t.client.call('domain.restore', { file });
      assert.equal((await t.client.call('domain.info', { domain: 'saved' })).state, 'running');
      await t.client.call('domain.destroy', { domain: 'saved' });
    });
  });
}
