// OS detection against Debian's osinfo-db (installed by build/install-deps.sh): the matcher over the
// real database, and ISOs built here whose volume descriptor and layout are those of osinfo-db's own
// media entries (main/testing/osinfo-isos.ts), plus the sample ISO.
// detectOs and osSpecProblem read the ISO in the image reader's worker (dist/: build first).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { NewDomainSpec, RequestParams } from '../../../shared/api.js';
import { osEngineProblem } from '../../../shared/osinfo.js';
import { readIsoIdentity } from '../../fsimage/index.js';
import { guest } from '../../testing/harness.js';
import { makeOsinfoIsos } from '../../testing/osinfo-isos.js';
import { specToXml } from '../new-vm/spec-to-xml.js';
import { osinfoDb, type OsinfoDb } from './db.js';
import { detectOs, listOses, osSpecProblem } from './detect.js';

const DEBIAN = 'http://debian.org/debian/testing';
const FEDORA = 'http://fedoraproject.org/fedora/37';

describe('osinfo-db', () => {
  let db: OsinfoDb;
  let dir: string;
  let debianIso: string;
  let fedoraIso: string;

  before(async () => {
    const t0 = process.cpuUsage();
    const stalls = monitorEventLoopDelay({ resolution: 5 });
    stalls.enable();
    const found = await osinfoDb('/usr/share/osinfo');
    stalls.disable();
    assert.ok(found.db, found.problem);
    db = found.db;
    const cpu = process.cpuUsage(t0);
    console.log(
      `# osinfo-db: ${db.oses.length} OSes read in ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of CPU; longest event-loop stall ${(stalls.max / 1e6).toFixed(0)} ms`,
    );
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-osinfo-'));
    ({ debian: debianIso, fedora: fedoraIso } = makeOsinfoIsos(dir));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads every OS file of the package, every media regex included', () => {
    assert.ok(db.oses.length > 500, `${db.oses.length} OSes`);
    assert.deepEqual(db.problems, []);
    assert.ok(db.byId.get(DEBIAN) && db.byId.get(FEDORA));
  });

  it('matches media as libosinfo does: every identifier given, unanchored regexes, exact volume size', () => {
    const id = { volumeId: '', systemId: 'LINUX', publisherId: '', applicationId: '', volumeSizeBytes: 592189440 };
    const match = (volumeId: string, more: Partial<typeof id> = {}): string[] => db.identify({ ...id, volumeId, ...more }).map((m) => `${m.os.id} ${m.media.arch}`);
    assert.deepEqual(match('Debian 11.6.0 i386 n'), ['http://debian.org/debian/11 i686']);
    assert.deepEqual(match('Debian 11.6.0 amd64 1'), ['http://debian.org/debian/11 x86_64']);
    assert.deepEqual(match('Ubuntu 22.04.1 LTS amd64'), ['http://ubuntu.com/ubuntu/22.04 x86_64']);
    // Fedora 15's live CD gives a volume size: one byte-count off is another medium.
    assert.deepEqual(match('Fedora-15-i686-Live-Desktop'), ['http://fedoraproject.org/fedora/15 i686']);
    assert.deepEqual(match('Fedora-15-i686-Live-Desktop', { volumeSizeBytes: 592189440 + 2048 }), []);
    // Fedora 37's DVD entry requires system id LINUX; the netinst entry with the same volume id does not.
    assert.deepEqual(match('Fedora-S-dvd-x86_64-37', { systemId: '' }), [`${FEDORA} x86_64`]);
    assert.deepEqual(match('DOMUS_GUEST', { systemId: '' }), []);
  });

  it('identifies the Debian testing i386 netinst ISO and presets from its recommended resources', async () => {
    const r = await detectOs(debianIso);
    assert.equal(r.available, true);
    assert.equal(r.identity?.volumeId, 'Debian testing i386 n');
    assert.equal(r.os?.id, DEBIAN);
    assert.equal(r.os?.name, 'Debian testing');
    assert.equal(r.os?.shortId, 'debiantesting');
    assert.equal(r.arch, 'i686');
    // debian-testing.xml: recommended 1 GiB RAM and 20 GiB storage, minimum 1 GiB RAM; virtio-net listed.
    assert.deepEqual(r.os?.presets, { memoryMiB: 1024, diskGiB: 20, vcpus: 1, source: 'recommended for Debian testing', nic: 'virtio' });
    assert.equal(r.os?.minimumMemoryMiB, 1024);
    assert.equal(osEngineProblem('v86', r.os!, r.arch), undefined);
  });

  it('identifies the Fedora 37 Server DVD (x86_64) and refuses it on v86 with the reason', async () => {
    const r = await detectOs(fedoraIso);
    assert.equal(r.os?.id, FEDORA);
    assert.equal(r.arch, 'x86_64');
    assert.equal(r.os?.presets.memoryMiB, 2048);
    assert.match(osEngineProblem('v86', r.os!, r.arch) ?? '', /x86_64 \(64-bit\) medium of Fedora Linux 37, and the v86 engine emulates a 32-bit \(i686\) CPU only: choose the QEMU engine/);
    assert.equal(osEngineProblem('qemu', r.os!, r.arch), undefined);
    // The host refuses the same spec in domain.create, from the ISO it is given.
    const spec = NewDomainSpec.parse({ name: 'fedora37', memoryMiB: 2047, os: FEDORA, boot: { kind: 'install', iso: fedoraIso, disk: fedoraIso } });
    assert.match((await osSpecProblem(spec)) ?? '', /x86_64 \(64-bit\) medium of Fedora Linux 37/);
    assert.equal(await osSpecProblem({ ...spec, engine: 'qemu' }), undefined);
    assert.equal(await osSpecProblem({ ...spec, os: 'http://example.org/none/1' }), "OS 'http://example.org/none/1' is not in osinfo-db (/usr/share/osinfo)");
  });

  it('finds no OS on the sample ISO, and says what its descriptor holds', async () => {
    const r = await detectOs(guest('tiny.iso'));
    assert.equal(r.available, true);
    assert.equal(r.os, undefined);
    assert.equal(r.identity?.volumeId, 'DOMUS_GUEST');
  });

  it('refuses what is not an ISO, and bounds a hostile descriptor', async () => {
    await assert.rejects(detectOs(guest('disk.img')), /not an ISO 9660 image/);
    await assert.rejects(detectOs(path.join(dir, 'missing.iso')), /cannot read/);
    // A descriptor with control bytes and a huge volume space size: printable text, no throw.
    const bad = Buffer.alloc(18 * 2048);
    bad.write('\x01CD001\x01', 16 * 2048, 'latin1');
    bad.fill(0x07, 16 * 2048 + 40, 16 * 2048 + 72);
    bad.writeUInt32LE(0xffffffff, 16 * 2048 + 80);
    bad.writeUInt16LE(0xffff, 16 * 2048 + 128);
    fs.writeFileSync(path.join(dir, 'bad.iso'), bad);
    const id = readIsoIdentity(path.join(dir, 'bad.iso'));
    assert.equal(id.volumeId, '?'.repeat(32));
    assert.equal(id.volumeSizeBytes, 0xffffffff * 0xffff);
  });

  it('lists and searches OSes with their presets; the API validates its parameters', async () => {
    const r = await listOses({ query: 'debian', limit: 5 });
    assert.equal(r.available, true);
    assert.ok(r.total >= 17, `${r.total} Debian entries`);
    assert.equal(r.oses.length, 5);
    assert.ok(r.oses.every((o) => /debian/i.test(o.name)));
    assert.equal((await listOses({ query: 'fedora37', limit: 50 })).oses[0]?.id, FEDORA);
    assert.equal((await listOses({ query: 'no such os at all', limit: 50 })).total, 0);
    assert.match(osEngineProblem('v86', (await listOses({ query: 'fedora37', limit: 1 })).oses[0]!) ?? '', /Fedora Linux 37 is published for x86_64, aarch64, s390x only/);
    assert.throws(() => RequestParams['osinfo.list'].parse({ query: 'x'.repeat(257) }), /longer than 256/);
    assert.throws(() => RequestParams['osinfo.detect'].parse({ path: '' }), /image path is required/);
    assert.throws(() => RequestParams['osinfo.detect'].parse({ path: '/x', extra: 1 }), /Unrecognized key/);
  });

  it('without osinfo-db: no detection, said plainly', async () => {
    const none = await osinfoDb(path.join(dir, 'no-osinfo'));
    assert.equal(none.db, undefined);
    assert.match(none.problem ?? '', /OS detection is off: no osinfo-db in .*no-osinfo.*apt-get install osinfo-db/);
  });

  it('the definition records the OS as virt-install does, and the NIC the OS drives', () => {
    const spec = NewDomainSpec.parse({ name: 'debiantesting', memoryMiB: 1024, os: DEBIAN, nicModel: 'virtio', network: { network: 'default' }, boot: { kind: 'install', iso: debianIso, disk: '/d.img' } });
    const xml = specToXml(spec);
    assert.match(xml, /<libosinfo:os id="http:\/\/debian.org\/debian\/testing"\/>/);
    assert.match(xml, /<model type="virtio"\/>/);
    assert.match(specToXml({ ...spec, os: 'debian-12-i386', nicModel: 'e1000' }), /<libosinfo:os id="domus:debian-12-i386"\/>[\s\S]*<model type="e1000"\/>/);
  });
});
