// The RPC client against a real libvirtd (Debian's, private to this run) over unix, TCP and ssh,
// with Debian's virsh driving the same daemon.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, libvirtdSkip, makeTestPki, startLibvirtd, type Libvirtd } from '../../testing/libvirtd.js';
import { sshdSkip, startSshd, type Sshd } from '../../testing/sshd.js';
import { LibvirtError, VIR_DOMAIN_EVENT, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_ERR } from './errors.js';
import { RpcClient, type RpcStream } from './rpc-client.js';

const skip = libvirtdSkip();
const run = randomBytes(3).toString('hex');
let daemon: Libvirtd;
let tcpPort: number;
let tlsPort: number;
let pki: string;
let client: RpcClient;

const domainXml = (name: string): string => `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>`;

async function waitFor<T>(what: string, f: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const collect = (s: RpcStream): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
  });

before(async () => {
  if (skip) return;
  tcpPort = await freePort();
  tlsPort = await freePort();
  pki = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-pki-'));
  makeTestPki(pki);
  daemon = await startLibvirtd({ tcpPort, tls: { port: tlsPort, pkiDir: pki }, keepaliveInterval: 1, keepaliveCount: 3 });
  client = await RpcClient.connect(daemon.uri);
});

after(async () => {
  await client?.close();
  await daemon?.stop();
  if (pki) fs.rmSync(pki, { recursive: true, force: true });
});

test('over the unix socket: version, hostname, the domain list as virsh sees it', { skip }, async () => {
  const { hv_ver } = await client.call('REMOTE_PROC_CONNECT_GET_VERSION');
  const version = await daemon.virsh('version');
  const qemu = /Running hypervisor: QEMU (\d+)\.(\d+)\.(\d+)/.exec(version.stdout);
  assert.ok(qemu, version.stdout + version.stderr);
  assert.equal(hv_ver, BigInt(Number(qemu[1]) * 1_000_000 + Number(qemu[2]) * 1000 + Number(qemu[3])));
  assert.equal((await client.call('REMOTE_PROC_CONNECT_GET_LIB_VERSION')).lib_ver, 9_000_000n);
  assert.equal((await client.call('REMOTE_PROC_CONNECT_GET_HOSTNAME')).hostname, os.hostname());
  const { uri } = await client.call('REMOTE_PROC_CONNECT_GET_URI');
  assert.equal(uri, 'qemu:///system');

  const name = `domus-rpc-list-${run}`;
  const file = path.join(daemon.dir, `${name}.xml`);
  fs.writeFileSync(file, domainXml(name));
  assert.equal((await daemon.virsh('define', file)).code, 0);
  const { domains } = await client.call('REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS', { need_results: 1, flags: 0 });
  const listed = (await daemon.virsh('list', '--all', '--name')).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(domains.map((d) => d.name).sort(), listed);
  assert.ok(listed.includes(name));
  await daemon.virsh('undefine', name);
});

test('define, look up, XML back; a libvirt error keeps its code', { skip }, async () => {
  const name = `domus-rpc-def-${run}`;
  const { dom } = await client.call('REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS', { xml: domainXml(name), flags: 0 });
  assert.equal(dom.name, name);
  const { dom: found } = await client.call('REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME', { name });
  assert.deepEqual(found.uuid, dom.uuid);
  assert.equal(found.id, -1, 'a defined, inactive domain has no id');
  const { xml } = await client.call('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom: found, flags: 0 });
  assert.match(xml, new RegExp(`<name>${name}</name>`));
  assert.match(xml, /<memory unit='KiB'>32768<\/memory>/);
  assert.match((await daemon.virsh('dominfo', name)).stdout, /State:\s+shut off/);
  await client.call('REMOTE_PROC_DOMAIN_UNDEFINE', { dom: found });

  const err = await client.call('REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME', { name }).then(
    () => assert.fail('lookup of an undefined domain succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LibvirtError);
  assert.equal(err.code, VIR_ERR.NO_DOMAIN);
  assert.equal(err.codeName, 'VIR_ERR_NO_DOMAIN');
  assert.match(err.message, new RegExp(`Domain not found: no domain with matching name '${name}'`));
});

test('lifecycle events as virsh defines, starts, destroys and undefines; the serial console as a stream', { skip }, async () => {
  const events: { name: string; event: number }[] = [];
  const stop = client.onMessage('REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE', ({ msg }) => events.push({ name: msg.dom.name, event: msg.event }));
  const { callbackID } = await client.call('REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', { eventID: VIR_DOMAIN_EVENT_ID_LIFECYCLE, dom: null });
  const name = `domus-rpc-ev-${run}`;
  const file = path.join(daemon.dir, `${name}.xml`);
  fs.writeFileSync(file, domainXml(name));
  const seen = (event: number): Promise<unknown> => waitFor(`event ${event} of ${name}`, () => events.find((e) => e.name === name && e.event === event));

  assert.equal((await daemon.virsh('define', file)).code, 0);
  await seen(VIR_DOMAIN_EVENT.DEFINED);
  const started = await daemon.virsh('start', name);
  assert.equal(started.code, 0, started.stderr + daemon.log().slice(-2000));
  await seen(VIR_DOMAIN_EVENT.STARTED);

  const { dom } = await client.call('REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME', { name });
  assert.ok(dom.id > 0);
  const console = await client.openStream('REMOTE_PROC_DOMAIN_OPEN_CONSOLE', { dom, dev_name: null, flags: 0 });
  console.on('error', () => {});
  console.write('\r');
  await console.abort();
  // The console is free again: libvirt refuses a second open while one is active.
  const second = await client.openStream('REMOTE_PROC_DOMAIN_OPEN_CONSOLE', { dom, dev_name: null, flags: 0 });
  await second.finish();

  assert.equal((await daemon.virsh('destroy', name)).code, 0);
  await seen(VIR_DOMAIN_EVENT.STOPPED);
  assert.equal((await daemon.virsh('undefine', name)).code, 0);
  await seen(VIR_DOMAIN_EVENT.UNDEFINED);
  // libvirt also sends RESUMED as the vCPUs start and SHUTDOWN (finished) on destroy; these four come in this order.
  const { DEFINED, STARTED, STOPPED, UNDEFINED } = VIR_DOMAIN_EVENT;
  assert.deepEqual(
    events.filter((e) => e.name === name && [DEFINED, STARTED, STOPPED, UNDEFINED].includes(e.event as 0)).map((e) => e.event),
    [DEFINED, STARTED, STOPPED, UNDEFINED],
  );
  stop();
  await client.call('REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY', { callbackID });
});

test('volume upload and download streams carry bytes both ways', { skip }, async () => {
  const pool = `domus-rpc-pool-${run}`;
  const target = path.join(daemon.dir, 'pool');
  fs.mkdirSync(target);
  assert.equal((await daemon.virsh('pool-create-as', pool, 'dir', '--target', target)).code, 0);
  assert.equal((await daemon.virsh('vol-create-as', pool, 'v.img', '64K', '--format', 'raw')).code, 0);
  const { pool: p } = await client.call('REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME', { name: pool });
  const { vol } = await client.call('REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_NAME', { pool: p, name: 'v.img' });
  const data = randomBytes(65536);
  const up = await client.openStream('REMOTE_PROC_STORAGE_VOL_UPLOAD', { vol, offset: 0n, length: 0n, flags: 0 });
  up.write(data);
  await up.finish();
  assert.deepEqual(fs.readFileSync(path.join(target, 'v.img')), data);
  const down = await client.openStream('REMOTE_PROC_STORAGE_VOL_DOWNLOAD', { vol, offset: 0n, length: 0n, flags: 0 });
  assert.deepEqual(await collect(down), data);
  await down.finish();
  await daemon.virsh('pool-destroy', pool);
});

test('keepalive: the client answers the daemon\'s pings, and a silent daemon is declared dead', { skip }, async () => {
  // The daemon pings every second and drops a client after 3 unanswered pings; this client sends none.
  const quiet = await RpcClient.connect(daemon.uri, { keepaliveInterval: 0 });
  await new Promise((r) => setTimeout(r, 5500));
  assert.ok(!quiet.closed);
  assert.equal((await quiet.call('REMOTE_PROC_CONNECT_GET_HOSTNAME')).hostname, os.hostname());
  await quiet.close();

  const watcher = await RpcClient.connect(daemon.uri, { keepaliveInterval: 0.5, keepaliveCount: 2 });
  const closed = new Promise<Error | null>((resolve) => watcher.onClose(resolve));
  process.kill(daemon.pid, 'SIGSTOP');
  try {
    const t0 = Date.now();
    const why = await closed;
    assert.match(String(why), /keepalive timeout/);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    process.kill(daemon.pid, 'SIGCONT');
  }
  await assert.rejects(watcher.call('REMOTE_PROC_CONNECT_GET_HOSTNAME'), /closed/);
});

test('over TCP on 127.0.0.1', { skip }, async () => {
  const tcp = await RpcClient.connect(`qemu+tcp://127.0.0.1:${tcpPort}/system`);
  assert.equal((await tcp.call('REMOTE_PROC_CONNECT_GET_HOSTNAME')).hostname, os.hostname());
  await tcp.close();
  await assert.rejects(RpcClient.connect(`qemu+tcp://127.0.0.1:${await freePort()}/system`, { connectTimeout: 5000 }), /cannot connect to libvirt at 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
});

test('over TLS on 127.0.0.1 with libvirt\'s pkipath layout; a server from another CA refused', { skip }, async () => {
  const tls = await RpcClient.connect(`qemu+tls://127.0.0.1:${tlsPort}/system?pkipath=${pki}`);
  assert.equal((await tls.call('REMOTE_PROC_CONNECT_GET_HOSTNAME')).hostname, os.hostname());
  await tls.close();
  const other = path.join(pki, 'other');
  makeTestPki(other, 'Another CA');
  for (const f of ['clientcert.pem', 'clientkey.pem']) fs.copyFileSync(path.join(pki, f), path.join(other, f));
  await assert.rejects(RpcClient.connect(`qemu+tls://127.0.0.1:${tlsPort}/system?pkipath=${other}`), /cannot connect to libvirt at 127\.0\.0\.1:\d+: .*certificate/);
  const unverified = await RpcClient.connect(`qemu+tls://127.0.0.1:${tlsPort}/system?pkipath=${other}&no_verify=1`);
  await unverified.close();
});

test('over ssh to 127.0.0.1 (nc -U on the far side), and a wrong host key refused', { skip: skip || sshdSkip() }, async (t) => {
  const sshd: Sshd = await startSshd();
  t.after(() => sshd.stop());
  const uri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?socket=${daemon.socket}&keyfile=${sshd.clientKey}`;
  const ssh = await RpcClient.connect(uri, { sshArgs: sshd.sshArgs() });
  assert.equal((await ssh.call('REMOTE_PROC_CONNECT_GET_HOSTNAME')).hostname, os.hostname());
  const { domains } = await ssh.call('REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS', { need_results: 1, flags: 0 });
  assert.ok(Array.isArray(domains));
  await ssh.close();

  await assert.rejects(RpcClient.connect(uri, { sshArgs: sshd.sshArgs(sshd.wrongKnownHosts) }), (err: Error) => {
    assert.match(err.message, /ssh exited with status 255: .*Host key verification failed/);
    return true;
  });
});
