// Migration between Domus hosts, what a destination refuses before anything is sent, spoken as a
// source host speaks it (libvirt's Prepare3/Finish3 *_PARAMS over the destination's libvirt socket):
// a malformed or foreign cookie, a guest on an engine the destination would not run it on, a disk
// that is not on shared storage, a port file that is not here or a host device, a finish nobody
// prepared. Each refusal names the problem and leaves the destination as it was. No guest is booted here (migration.test.ts migrates real ones).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RpcClient } from '../libvirt/rpc-client.js';
import { sampleGuestXml, TestHost } from '../../testing/harness.js';
import { encodeSourceCookie, PARAM, stringParam, VIR_MIGRATE } from './protocol.js';

let dest: TestHost;
let rpc: RpcClient;
let uri: string;

const COOKIE = { engine: 'v86', engineVersion: '0', cpu: { model: 'pentium4', features: ['fpu'] }, vcpus: 1, memoryKiB: 131072 };

before(async () => {
  dest = await TestHost.start();
  ({ uri } = await dest.client.call('host.uri', {}));
  rpc = await RpcClient.connect(uri);
});

after(async () => {
  rpc?.close();
  await dest?.stop();
});

function prepare(xml: string, cookie: Buffer, flags = VIR_MIGRATE.LIVE | VIR_MIGRATE.PEER2PEER): Promise<unknown> {
  return rpc.call('REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS', { params: [stringParam(PARAM.DEST_NAME, 'mig'), stringParam(PARAM.DEST_XML, xml)], cookie_in: cookie, flags });
}

/** Nothing of the refused guest on the destination: no domain, no engine process or run directory. */
async function assertClean(): Promise<void> {
  const { domains } = await dest.client.call('domain.list', { all: true });
  assert.deepEqual(domains, []);
  assert.deepEqual(dest.guestRunDirs(), []);
  assert.deepEqual(fs.readdirSync(dest.paths.domains), []);
}

test('host.uri and domus uri name the libvirt socket, which a libvirt client opens', async () => {
  assert.equal(uri, `v86+unix:///session?socket=${dest.paths.libvirtSocket}`);
  const r = await dest.cli(['uri']);
  assert.equal(r.stdout, `${uri}\n\n`);
  assert.equal((await rpc.call('REMOTE_PROC_CONNECT_GET_URI')).uri, 'v86:///session');
});

test('a cookie that is not a Domus engine cookie is refused, naming what is wrong', async () => {
  const xml = sampleGuestXml('mig', 'v86');
  await assert.rejects(prepare(xml, Buffer.from('<qemu-migration/>')), /source host's migration cookie is not JSON/);
  await assert.rejects(prepare(xml, Buffer.from(JSON.stringify({ ...COOKIE, vcpus: -1 }))), /malformed: vcpus/);
  await assert.rejects(prepare(xml, Buffer.alloc(100_000, 0x20)), /100000 bytes; a Domus host sends at most 65536/);
  await assertClean();
});

test('a guest whose engine state this host would not run on that engine is refused before anything is sent', async () => {
  const cookie = encodeSourceCookie({ ...COOKIE, engine: 'qemu', engineVersion: '7.2.22' });
  await assert.rejects(prepare(sampleGuestXml('mig', 'v86'), cookie), /runs on qemu 7\.2\.22 on the source; this host would run it on v86, which cannot take its state/);
  await assertClean();
});

test('without --copy-storage-all a disk must be on shared storage: the missing path is named', async () => {
  const missing = path.join(dest.home, 'nowhere', 'disk.img');
  const xml = sampleGuestXml('mig', 'v86', `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${missing}'/><target dev='hda' bus='ide'/></disk>`);
  await assert.rejects(prepare(xml, encodeSourceCookie(COOKIE)), new RegExp(`disk 'hda' of domain 'mig': '${missing}' does not exist on this host`));
  await assertClean();
});

test("a port's file must already be here as a regular file, and a host device is not taken: the rule is named", async () => {
  const missing = path.join(dest.home, 'nowhere', 'serial.log');
  const cookie = encodeSourceCookie(COOKIE);
  for (const file of [missing, '/dev/null', dest.home]) {
    const xml = sampleGuestXml('mig', 'v86', `<serial type='file'><source path='${file}'/><target port='1'/></serial>`);
    await assert.rejects(prepare(xml, cookie), new RegExp(`<serial type='file'> of domain 'mig': '${file}' is not a regular file on this host; a migrated guest's port files, like its disks, must already exist here`), file);
  }
  const hostdev = `<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>`;
  await assert.rejects(prepare(sampleGuestXml('mig', 'v86', hostdev), cookie), /domain 'mig' has a host device \(<hostdev>\): a host's device is not migrated/);
  await assertClean();
});

test('a finish nobody prepared, and a read-only client, are refused', async () => {
  await assert.rejects(
    rpc.call('REMOTE_PROC_DOMAIN_MIGRATE_FINISH3_PARAMS', { params: [stringParam(PARAM.DEST_NAME, 'mig')], cookie_in: Buffer.alloc(0), flags: 0, cancelled: 0 }),
    /no incoming migration of domain 'mig' on this host/,
  );
  const ro = await RpcClient.connect(uri);
  await ro.call('REMOTE_PROC_CONNECT_CLOSE');
  await ro.call('REMOTE_PROC_CONNECT_OPEN', { name: 'v86:///session', flags: 1 });
  await assert.rejects(
    ro.call('REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS', { params: [stringParam(PARAM.DEST_XML, sampleGuestXml('mig', 'v86'))], cookie_in: encodeSourceCookie(COOKIE), flags: 0 }),
    /read only access prevents virDomainMigratePrepare3Params/,
  );
  ro.close();
  await assertClean();
});
