// A full disk through a real host and the CLI: define, desc, vol-create-as, vol-clone, save and
// managedsave each fail with an error naming the file and "No space left on device", leave no
// temporary or partial file, and keep what was there byte for byte. The full disks are small
// tmpfs mounts (root only: skipped otherwise) over the host's own directories and a save target.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SAMPLE_CMDLINE, TestHost, createOn, guest, guestsBuilt } from '../testing/harness.js';
import { fillUp, mountTmpfs, type Tmpfs } from '../testing/tmpfs.js';

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const canMount = ((): string | false => {
  const probe = mountTmpfs('domus-full-probe-', '1m');
  if (typeof probe === 'string') return probe;
  probe.unmount();
  return false;
})();

describe('a full disk loses nothing', { timeout: 600_000, skip: canMount }, () => {
  let t: TestHost;
  let work: string;
  const mounts: Tmpfs[] = [];
  const mount = (size: string, at?: string): Tmpfs => {
    const m = mountTmpfs('domus-full-', size, at);
    if (typeof m === 'string') throw new Error(m);
    mounts.push(m);
    return m;
  };
  let uuid: string;
  let definition: string;

  before(async () => {
    t = await TestHost.start();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-full-work-'));
    await createOn(
      t.client,
      { name: 'keep', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } },
      'v86',
    );
    uuid = (await t.client.call('domain.info', { domain: 'keep' })).uuid;
    // The definition moves onto a 2 MiB filesystem that then fills up.
    const xml = fs.readFileSync(path.join(t.paths.domains, `${uuid}.xml`));
    mount('2m', t.paths.domains);
    fs.writeFileSync(path.join(t.paths.domains, `${uuid}.xml`), xml);
    definition = path.join(t.paths.domains, `${uuid}.xml`);
    fillUp(t.paths.domains);
  });
  after(async () => {
    await t?.client.call('domain.destroy', { domain: 'keep' }).catch(() => undefined);
    for (const m of mounts.reverse()) m.unmount();
    await t?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('define, redefine and desc --config fail naming the definition file; the domain keeps its definition, also after a host restart', async () => {
    const before = fs.readFileSync(definition, 'utf8');
    const { xml } = await t.client.call('domain.xml', { domain: 'keep', inactive: true, secure: true });
    const changed = path.join(work, 'changed.xml');
    fs.writeFileSync(changed, xml.replace('</name>', '</name>\n  <description>a change that does not fit</description>'));
    let r = await t.cli(['define', changed]);
    assert.equal(r.code, 1);
    assert.equal((await t.client.call('domain.xml', { domain: 'keep', inactive: true, secure: true })).xml, xml);
    assert.equal(r.stderr, `error: Failed to define domain from ${changed}\nerror: cannot write '${definition}': No space left on device\n`);

    // A new domain: before, the record went live first and vanished at the next host start.
    const fresh = path.join(work, 'fresh.xml');
    fs.writeFileSync(fresh, xml.replace('<name>keep</name>', '<name>fresh</name>').replace(/<uuid>[^<]*<\/uuid>/, ''));
    r = await t.cli(['define', fresh]);
    assert.equal(r.code, 1);
    assert.deepEqual((await t.client.call('domain.list', { all: true })).domains.map((d) => d.name), ['keep']);
    assert.match(r.stderr, new RegExp(`^error: Failed to define domain from ${fresh}\nerror: cannot write '${t.paths.domains}/[0-9a-f-]{36}\\.xml': No space left on device\n$`));

    r = await t.cli(['desc', 'keep', '--config', 'a', 'new', 'description']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: Failed to set new domain description\nerror: cannot write '${definition}': No space left on device\n`);

    const check = async (): Promise<void> => {
      const { domains } = await t.client.call('domain.list', { all: true });
      assert.deepEqual(
        domains.map((d) => d.name),
        ['keep'],
      );
      assert.equal((await t.client.call('domain.xml', { domain: 'keep', inactive: true, secure: true })).xml, xml);
      assert.equal(fs.readFileSync(definition, 'utf8'), before);
      assert.deepEqual(fs.readdirSync(t.paths.domains).sort(), [`${uuid}.xml`, 'filler']);
    };
    await check();
    await t.killHost();
    await t.reconnect();
    await check();
  });

  it('vol-create-as and vol-clone fail naming the volume and leave no partial volume; a volume of the same name keeps its bytes', async () => {
    fs.mkdirSync(t.paths.images, { recursive: true });
    mount('4m', t.paths.images);
    const images = t.paths.images;
    assert.equal((await t.cli(['vol-create-as', 'default', 'keep.img', '1M'])).code, 0);
    assert.equal((await t.cli(['vol-create-as', 'default', 'src.img', '1M'])).code, 0);
    fs.writeFileSync(path.join(images, 'keep.img'), randomBytes(1024 * 1024));
    fs.writeFileSync(path.join(images, 'src.img'), randomBytes(1024 * 1024 + 5000));
    const kept = sha256(path.join(images, 'keep.img'));
    fillUp(images);

    let r = await t.cli(['vol-create-as', 'default', 'q.qcow2', '100M', '--format', 'qcow2']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `error: Failed to create vol q.qcow2\nerror: cannot create volume 'q.qcow2': qemu-img create '${images}/q.qcow2': Could not write qcow2 header: No space left on device\n`,
    );
    // tmpfs cannot reflink: this is the copy.
    r = await t.cli(['vol-clone', 'src.img', 'copy.img', '--pool', 'default']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: Failed to clone vol from src.img\nerror: cannot clone volume 'src.img': cannot write '${images}/copy.img': No space left on device\n`);
    r = await t.cli(['vol-create-as', 'default', 'keep.img', '1M']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists/);

    assert.deepEqual(fs.readdirSync(images).sort(), ['filler', 'keep.img', 'src.img']);
    assert.equal(sha256(path.join(images, 'keep.img')), kept);
  });

  it('save and managedsave fail part way naming the state file, keep the guest running and an older save file intact', { skip: !guestsBuilt() && 'sample guests not built' }, async () => {
    // What fails here is the save, not the boot: a restored post-boot state will do.
    const serial = await t.bootOrRestore('keep', 180_000);

    const target = mount('8m').dir;
    const file = path.join(target, 'guest.save');
    fs.writeFileSync(file, randomBytes(1024 * 1024));
    const kept = sha256(file);
    let r = await t.cli(['save', 'keep', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: Failed to save domain 'keep' to ${file}\nerror: operation failed: save of 'keep' failed: cannot write state file '${file}': No space left on device\n`);
    assert.deepEqual(fs.readdirSync(target), ['guest.save']);
    assert.equal(sha256(file), kept);
    assert.equal((await t.client.call('domain.info', { domain: 'keep' })).state, 'running');

    const saveDir = path.join(t.home, 'save');
    mount('8m', saveDir);
    const managed = path.join(saveDir, `${uuid}.state`);
    r = await t.cli(['managedsave', 'keep']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: Failed to save domain 'keep' state\nerror: operation failed: save of 'keep' failed: cannot write state file '${managed}': No space left on device\n`);
    assert.deepEqual(fs.readdirSync(saveDir), []);
    const info = await t.client.call('domain.info', { domain: 'keep' });
    assert.deepEqual([info.state, info.managedSave], ['running', false]);
    assert.match(await serial.sh('echo still-$((20+22))'), /still-42/);
  });
});
