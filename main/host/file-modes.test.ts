// What Domus writes that can hold guest memory, VNC passwords or console output is the user's alone:
// files without group/other bits, 0700 directories, QEMU's save stream included while it is written;
// and a host tightens what an earlier version left looser.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ApiClient } from '../../shared/client.js';
import { SAMPLE_CMDLINE, TestHost, createOn, engineSkip, guest, until, type TestEngine } from '../testing/harness.js';

const spec = (name: string) => ({
  name,
  memoryMiB: 128,
  vcpus: 1,
  boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE },
});

/** Every path under `root` (itself included) whose mode lets group or others in. */
function loose(root: string): string[] {
  const out: string[] = [];
  const visit = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return; // a runner removed it meanwhile
    }
    if (st.isSymbolicLink()) return;
    if (st.mode & 0o077) out.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  visit(root);
  return out;
}

const mode = (p: string): number => fs.statSync(p).mode & 0o777;

/** A domain with a VNC password on `engine`. */
async function defineWithPassword(client: ApiClient, name: string, engine: TestEngine): Promise<string> {
  await createOn(client, spec(name), engine);
  const { xml } = await client.call('domain.xml', { domain: name, inactive: true, secure: true });
  const withVnc = xml.replace('</devices>', "  <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='s3cret-pw'/>\n  </devices>");
  const { domain, warnings } = await client.call('domain.define', { xml: withVnc });
  assert.ok(
    warnings.some((w) => /9 bytes long .*only the first 8/.test(w.message)),
    'a password longer than VNC checks is warned about at define',
  );
  return domain.uuid;
}

describe('file modes', { timeout: 600_000 }, () => {
  let t: TestHost;
  // A save target as a user might pick: a world-readable directory.
  const target = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-modes-target-'));
  before(async () => {
    fs.chmodSync(target, 0o755);
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
    fs.rmSync(target, { recursive: true, force: true });
  });

  it('v86: definition, run directory, save and managed save are owner-only', async () => {
    const uuid = await defineWithPassword(t.client, 'modes', 'v86');
    const definition = path.join(t.paths.domains, `${uuid}.xml`);
    assert.match(fs.readFileSync(definition, 'utf8'), /s3cret-pw/);
    assert.equal(mode(definition), 0o600);
    assert.equal(mode(t.home), 0o700);
    assert.equal(mode(t.paths.domains), 0o700);

    await t.client.call('domain.start', { domain: 'modes' });
    const runDir = path.join(t.paths.run, uuid);
    await until(() => fs.existsSync(path.join(runDir, 'vnc.sock')), 30_000, 'the runner to listen');
    for (const file of fs.readdirSync(runDir)) {
      const st = fs.lstatSync(path.join(runDir, file));
      if (st.isFile()) assert.equal(st.mode & 0o777, 0o600, `run/${file}`);
    }
    assert.equal(mode(runDir), 0o700);
    assert.deepEqual(loose(t.home), []);

    const file = path.join(target, 'modes.state');
    assert.equal((await t.client.call('domain.save', { domain: 'modes', file })).job.status, 'completed');
    assert.equal(mode(file), 0o600);
    // A cold boot, not a restore: v86 cannot save again a state restored from so early in the boot.
    await t.client.call('domain.start', { domain: 'modes' });
    assert.equal((await t.client.call('domain.managedSave', { domain: 'modes' })).job.status, 'completed');
    assert.equal(mode(path.join(t.paths.saves, `${uuid}.state`)), 0o600);
    assert.deepEqual(loose(t.home), []);
    assert.deepEqual(loose(target).filter((p) => !p.startsWith(`${target} `)), []);
  });

  it('QEMU: the migration stream is owner-only for the whole save, and so are its logs and serial line', { skip: engineSkip('qemu') }, async () => {
    const uuid = await defineWithPassword(t.client, 'modes-qemu', 'qemu');
    await t.client.call('domain.start', { domain: 'modes-qemu' });
    const runDir = path.join(t.paths.run, uuid);
    for (const file of ['qemu.log', 'serial.out', 'serial.in']) assert.equal(mode(path.join(runDir, file)), 0o600, file);
    assert.deepEqual(loose(t.home), []);

    const file = path.join(target, 'modes-qemu.state');
    const streamModes = new Set<number>();
    let polls = 0;
    const poll = setInterval(() => {
      polls++;
      for (const name of fs.readdirSync(target)) {
        if (!name.endsWith('.qemu-stream')) continue;
        try {
          streamModes.add(mode(path.join(target, name)));
        } catch {
          // renamed or removed between listing and stat
        }
      }
    }, 2);
    try {
      assert.equal((await t.client.call('domain.save', { domain: 'modes-qemu', file })).job.status, 'completed');
    } finally {
      clearInterval(poll);
    }
    assert.ok(polls > 0);
    assert.deepEqual([...streamModes], [0o600], `stream modes seen during the save: ${[...streamModes].map((m) => m.toString(8))}`);
    assert.equal(mode(file), 0o600);
    // QEMU ended with the save: its log went to logs/.
    await until(() => fs.existsSync(path.join(t.paths.logs, 'qemu-modes-qemu.log')), 10_000, 'the kept QEMU log');
    assert.deepEqual(loose(t.home), []);
    assert.deepEqual(loose(target).filter((p) => !p.startsWith(`${target} `)), []);
  });

  it('a new host tightens files and directories left looser', async () => {
    const { domains } = await t.client.call('domain.list', { all: true });
    for (const d of domains) if (d.state !== 'shutoff') await t.client.call('domain.destroy', { domain: d.uuid });
    await t.client.call('host.stop', {});
    await until(() => !fs.existsSync(t.paths.daemonPid), 30_000, 'the host to stop');
    t.client.close();

    const definition = path.join(t.paths.domains, fs.readdirSync(t.paths.domains).find((f) => f.endsWith('.xml'))!);
    const stale = path.join(t.paths.run, 'stale-run-dir');
    fs.mkdirSync(stale, { mode: 0o755 });
    fs.writeFileSync(path.join(stale, 'runner.log'), 'old output', { mode: 0o644 });
    fs.writeFileSync(path.join(t.paths.saves, 'old.state'), 'guest memory', { mode: 0o644 });
    for (const p of [t.home, t.paths.domains, t.paths.saves, stale]) fs.chmodSync(p, 0o755);
    for (const p of [definition, t.paths.log, path.join(stale, 'runner.log'), path.join(t.paths.saves, 'old.state')]) fs.chmodSync(p, 0o644);
    assert.ok(loose(t.home).length >= 8);

    await t.reconnect();
    assert.deepEqual(loose(t.home), []);
    assert.equal(mode(definition), 0o600);
    assert.equal(mode(t.home), 0o700);
    assert.match(fs.readFileSync(t.paths.log, 'utf8'), /made \d+ files and directories owner-only/);
  });
});
