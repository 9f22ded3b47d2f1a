// Two Domus hosts on "different machines": each host daemon runs in a network namespace this test
// creates, joined by a veth pair whose addresses exist only inside the namespaces. Each listens for
// other hosts with TLS (domusd.conf, a test CA); `domus uri` names that listener. A libvirt client
// in the other namespace with a certificate of that CA reaches the migration procedures; one without
// a client certificate is turned away, as libvirtd does by default.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { APP_ROOT } from '../../common/paths.js';
import { sampleGuestXml, SerialWatch, TestHost } from '../../testing/harness.js';
import { makeTestPki } from '../../testing/libvirtd.js';
import { migrationSkip } from '../../testing/migration.js';

const skip = process.getuid?.() !== 0 ? 'network namespaces need root' : spawnSync('ip', ['-V']).status !== 0 ? 'no ip command' : false;
const tag = `dm${process.pid % 100000}`;
const NS = { a: `${tag}a`, b: `${tag}b` };
const IP = { a: '10.231.7.1', b: '10.231.7.2' };
let pki: string;
let a: TestHost;
let b: TestHost;

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const conf = (addr: string): string =>
  [`listen_tls = 1`, `listen_addr = "${addr}"`, `key_file = "${pki}/serverkey.pem"`, `cert_file = "${pki}/servercert.pem"`, `ca_file = "${pki}/cacert.pem"`].join('\n') + '\n';

/** Runs a small script with this repository's modules inside namespace `ns`; its stdout. */
function inNetns(ns: string, script: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: APP_ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  if (skip) return;
  pki = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-pki-'));
  makeTestPki(pki, 'Domus migration test CA', [IP.a, IP.b]);
  ip('netns', 'add', NS.a);
  ip('netns', 'add', NS.b);
  ip('link', 'add', `${tag}x`, 'netns', NS.a, 'type', 'veth', 'peer', 'name', `${tag}y`, 'netns', NS.b);
  for (const [ns, dev, addr] of [[NS.a, `${tag}x`, IP.a], [NS.b, `${tag}y`, IP.b]]) {
    ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
    ip('-n', ns, 'link', 'set', dev, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  [a, b] = await Promise.all([TestHost.start(undefined, undefined, { netns: NS.a, conf: conf(IP.a) }), TestHost.start(undefined, undefined, { netns: NS.b, conf: conf(IP.b) })]);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
  if (pki) fs.rmSync(pki, { recursive: true, force: true });
});

test('domus uri names the TLS listener; a client with a CA-signed certificate reaches the migration procedures over it', { skip }, async () => {
  const { uri } = await b.client.call('host.uri', {});
  assert.equal(uri, `v86+tls://${IP.b}/session`);
  assert.equal((await b.cli(['uri'])).stdout, `${uri}\n\n`);
  // From the other namespace, as host a's daemon would: Prepare3 of a guest whose engine b would not run it on.
  const cookie = JSON.stringify({ engine: 'qemu', engineVersion: '7.2.22', cpu: { model: 'qemu32', features: [] }, vcpus: 1, memoryKiB: 131072 });
  const r = inNetns(
    NS.a,
    `import { RpcClient } from './main/host/libvirt/rpc-client.ts';
     const c = await RpcClient.connect(${JSON.stringify(`${uri}?pkipath=${pki}`)});
     console.log('uri', (await c.call('REMOTE_PROC_CONNECT_GET_URI')).uri);
     const params = [{ field: 'destination_xml', value: { type: 7, s: ${JSON.stringify(sampleGuestXml('mig', 'v86'))} } }];
     await c.call('REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS', { params, cookie_in: Buffer.from(${JSON.stringify(cookie)}), flags: 3 }).catch((e) => console.log('refused', e.message));
     c.close();`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^uri v86:\/\/\/session$/m);
  assert.match(r.stdout, /refused .*runs on qemu 7\.2\.22 on the source; this host would run it on v86/);
  assert.deepEqual((await b.client.call('domain.list', { all: true })).domains, []);
});

test('a client without a certificate of the CA is turned away at the TLS handshake', { skip }, async () => {
  const r = inNetns(
    NS.a,
    `import tls from 'node:tls'; import fs from 'node:fs';
     const s = tls.connect({ host: ${JSON.stringify(IP.b)}, port: 16514, ca: fs.readFileSync(${JSON.stringify(`${pki}/cacert.pem`)}) });
     s.on('data', (d) => console.log('data', d.length));
     s.on('error', (e) => console.log('error', e.code ?? e.message));
     s.on('close', () => console.log('closed'));`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^data/m);
  assert.match(r.stdout, /error .*(CERTIFICATE_REQUIRED|ECONNRESET|HANDSHAKE)/i);
});

test('the listener is on the namespace address only: nothing listens for other hosts outside it', { skip }, async () => {
  const r = spawnSync('ss', ['-ltnH', 'sport = :16514'], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), '');
});

test('a guest migrates over TLS to the other namespace and back, its serial console going on', { skip: skip || migrationSkip('v86') }, async () => {
  const uri = async (h: TestHost): Promise<string> => `${(await h.client.call('host.uri', {})).uri}?pkipath=${pki}`;
  await a.client.call('domain.define', { xml: sampleGuestXml('tlsmig', 'v86') });
  await a.bootOrRestore('tlsmig', 180_000);
  for (const [from, to, mark] of [[a, b, 'there'], [b, a, 'back']] as const) {
    const r = await from.cli(['migrate', '--live', 'tlsmig', await uri(to)]);
    assert.equal(r.code, 0, r.stderr);
    const serial = await SerialWatch.open(to.client, 'tlsmig');
    // The console answers; a v86 guest's serial shell may respawn on arrival (its banner comes first).
    assert.match(await serial.sh(`echo ${mark}-$((6*7))`), new RegExp(`(^|\n)${mark}-42\n$`));
  }
  assert.deepEqual((await b.client.call('domain.list', { all: true })).domains, []);
});
