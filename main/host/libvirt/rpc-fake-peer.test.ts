// The client's protocol handling against a scripted peer: serial matching, errors, events,
// keepalive both ways, and a peer that sends garbage.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LibvirtError } from './errors.js';
import { encodePacket, PacketDecoder, type Packet } from './packet.js';
import { KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM } from './protocol/keepalive.js';
import * as remote from './protocol/remote.js';
import { VIR_NET_CONTINUE, VIR_NET_ERROR, VIR_NET_MESSAGE, VIR_NET_OK, VIR_NET_REPLY, VIR_NET_REPLY_WITH_FDS, VIR_NET_STREAM } from './protocol/virnet.js';
import { RpcClient } from './rpc-client.js';
import { spawnSsh } from './transports.js';
import { decode, encode, type Codec } from './xdr.js';

/** A client connected to a peer whose packets the test reads and writes by hand; `connect` runs the handshake. */
async function pair(
  t: { after: (f: () => void) => void },
  connect?: (uri: string) => Promise<RpcClient>,
): Promise<{ client: Promise<RpcClient>; peer: net.Socket; next: () => Promise<Packet> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-rpc-'));
  const sockPath = path.join(dir, 'sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(sockPath, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = connect ? connect(`qemu+unix:///system?socket=${sockPath}`) : Promise.resolve(new RpcClient(net.connect(sockPath)));
  // the test itself awaits a handshake that must fail; this keeps it from counting as unhandled
  client.catch(() => {});
  const peer = await accepted;
  const decoder = new PacketDecoder();
  const queue: Packet[] = [];
  const waiters: ((p: Packet) => void)[] = [];
  peer.on('data', (d: Buffer) => {
    for (const p of decoder.push(d)) (waiters.shift() ?? ((x: Packet) => queue.push(x)))(p);
  });
  t.after(async () => {
    (await client.catch(() => undefined))?.destroy();
    peer.destroy();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { client, peer, next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))) };
}

const reply = (call: Packet, status: Packet['header']['status'], payload: Buffer): Buffer => encodePacket({ ...call.header, type: VIR_NET_REPLY, status }, payload);

test('replies are matched by serial, whatever their order; an error reply is a LibvirtError', async (t) => {
  const { client: connecting, peer, next } = await pair(t);
  const client = await connecting;
  const a = client.call('REMOTE_PROC_CONNECT_GET_HOSTNAME');
  const b = client.call('REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME', { name: 'x' });
  const ca = await next();
  const cb = await next();
  assert.equal(ca.header.proc, remote.REMOTE_PROC_CONNECT_GET_HOSTNAME);
  assert.deepEqual(cb.payload, encode(remote.remote_domain_lookup_by_name_args, { name: 'x' }));
  const err = { code: 42, domain: 10, message: "Domain not found: no domain with matching name 'x'", level: 2, dom: null, str1: null, str2: null, str3: null, int1: 0, int2: 0, net: null };
  peer.write(reply(cb, VIR_NET_ERROR, encode(remote.remote_error, err)));
  peer.write(reply(ca, VIR_NET_OK, encode(remote.remote_connect_get_hostname_ret, { hostname: 'h' })));
  assert.deepEqual(await a, { hostname: 'h' });
  await assert.rejects(b, (e: unknown) => e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_DOMAIN' && e.domain === 10 && /matching name 'x'/.test(e.message));
  const fd = client.call('REMOTE_PROC_DOMAIN_OPEN_GRAPHICS_FD', { dom: { name: 'd', uuid: Buffer.alloc(16), id: 1 }, idx: 0, flags: 0 });
  peer.write(encodePacket({ ...(await next()).header, type: VIR_NET_REPLY_WITH_FDS, status: VIR_NET_OK }, Buffer.from([0, 0, 0, 1])));
  await assert.rejects(fd, /REMOTE_PROC_DOMAIN_OPEN_GRAPHICS_FD returns file descriptors, which this client cannot receive/);
});

test('events reach their listeners decoded; pings are answered with pongs', async (t) => {
  const { client: connecting, peer, next } = await pair(t);
  const client = await connecting;
  const got: number[] = [];
  client.onMessage('REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE', (m) => got.push(m.msg.event));
  const msg = { callbackID: 1, msg: { dom: { name: 'd', uuid: Buffer.alloc(16), id: 3 }, event: 2, detail: 0 } };
  const header = { prog: remote.REMOTE_PROGRAM, vers: 1, proc: remote.REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE, type: VIR_NET_MESSAGE, serial: 0, status: VIR_NET_OK } as const;
  peer.write(encodePacket(header, encode(remote.remote_domain_event_callback_lifecycle_msg, msg)));
  peer.write(encodePacket({ ...header, prog: KEEPALIVE_PROGRAM, proc: KEEPALIVE_PROC_PING }));
  const pong = await next();
  assert.deepEqual([pong.header.prog, pong.header.proc, pong.header.type], [KEEPALIVE_PROGRAM, KEEPALIVE_PROC_PONG, VIR_NET_MESSAGE]);
  assert.deepEqual(got, [2]);
});

test('a silent peer is declared dead after the keepalive pings go unanswered', async (t) => {
  const { client: connecting, next } = await pair(t);
  const client = await connecting;
  const closed = new Promise<Error | null>((r) => client.onClose(r));
  const pending = client.call('REMOTE_PROC_CONNECT_GET_HOSTNAME');
  client.startKeepalive(0.1, 2);
  await next();
  assert.equal((await next()).header.proc, KEEPALIVE_PROC_PING);
  assert.match(String(await closed), /keepalive timeout: no answer to 2 pings/);
  await assert.rejects(pending, /keepalive timeout/);
});

test('a peer sending a hostile length or a malformed reply is cut off with the reason', async (t) => {
  const { client: connecting, peer, next } = await pair(t);
  const client = await connecting;
  const pending = client.call('REMOTE_PROC_CONNECT_GET_HOSTNAME');
  const call = await next();
  peer.write(reply(call, VIR_NET_OK, Buffer.from([0, 0, 0, 200])));
  await assert.rejects(pending, /truncated: string of 200 needs 200 bytes, 0 left/);
  assert.ok(!client.closed, 'a reply that does not decode fails only its call');
  const closed = new Promise<Error | null>((r) => client.onClose(r));
  peer.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  assert.match(String(await closed), /protocol error from the libvirt peer: packet length 4294967295 is outside/);
});

test('the opening handshake: auth list, polkit, keepalive feature, connect open with the URI\'s name; SASL refused clearly', async (t) => {
  const { client, peer, next } = await pair(t, (uri) => RpcClient.connect(uri, { keepaliveInterval: 1 }));
  const answer = async (proc: number, codec: Codec<never> | null, value?: unknown): Promise<Packet> => {
    const call = await next();
    assert.equal(call.header.proc, proc);
    peer.write(reply(call, VIR_NET_OK, codec ? encode(codec, value as never) : Buffer.alloc(0)));
    return call;
  };
  await answer(remote.REMOTE_PROC_AUTH_LIST, remote.remote_auth_list_ret as Codec<never>, { types: [remote.REMOTE_AUTH_POLKIT] });
  await answer(remote.REMOTE_PROC_AUTH_POLKIT, remote.remote_auth_polkit_ret as Codec<never>, { complete: 1 });
  const feature = await answer(remote.REMOTE_PROC_CONNECT_SUPPORTS_FEATURE, remote.remote_connect_supports_feature_ret as Codec<never>, { supported: 0 });
  assert.deepEqual(decode(remote.remote_connect_supports_feature_args, feature.payload), { feature: 10 });
  const open = await answer(remote.REMOTE_PROC_CONNECT_OPEN, null);
  assert.deepEqual(decode(remote.remote_connect_open_args, open.payload), { name: 'qemu:///system', flags: 0 });
  (await client).destroy();

  const sasl = await pair(t, (uri) => RpcClient.connect(uri));
  const call = await sasl.next();
  sasl.peer.write(reply(call, VIR_NET_OK, encode(remote.remote_auth_list_ret, { types: [remote.REMOTE_AUTH_SASL] })));
  await assert.rejects(sasl.client, /the libvirt server requires SASL authentication, which Domus does not support/);
});

test('a peer that sends pings but reads nothing cannot make the client queue pongs without end', async (t) => {
  const { client: connecting, peer, next } = await pair(t);
  const client = await connecting;
  const transport = (client as unknown as { stream: net.Socket }).stream;
  peer.pause();
  const ping = encodePacket({ prog: KEEPALIVE_PROGRAM, vers: 1, proc: KEEPALIVE_PROC_PING, type: VIR_NET_MESSAGE, serial: 0, status: VIR_NET_OK });
  const burst = Buffer.concat(Array.from({ length: 4096 }, () => ping));
  let most = 0;
  for (let i = 0; i < 100; i++) {
    if (!peer.write(burst)) await Promise.race([new Promise((r) => peer.once('drain', r)), new Promise((r) => setTimeout(r, 50))]);
    most = Math.max(most, transport.writableLength);
  }
  await new Promise((r) => setTimeout(r, 200));
  most = Math.max(most, transport.writableLength);
  assert.ok(most < 6 << 20, `${most} bytes of pongs queued for a peer that reads nothing`);
  // Once the peer reads again, so does the client: a call still gets its answer.
  peer.resume();
  const hostname = client.call('REMOTE_PROC_CONNECT_GET_HOSTNAME');
  for (;;) {
    const p = await next();
    if (p.header.prog === KEEPALIVE_PROGRAM) continue;
    peer.write(reply(p, VIR_NET_OK, encode(remote.remote_connect_get_hostname_ret, { hostname: 'h' })));
    break;
  }
  assert.deepEqual(await hostname, { hostname: 'h' });
});

test('stream data nobody reads is cut off, not buffered; data after the end of file is ignored', async (t) => {
  const { client: connecting, peer, next } = await pair(t);
  const client = await connecting;
  const vol = { pool: 'p', name: 'v', key: 'k' };
  const opening = client.openStream('REMOTE_PROC_STORAGE_VOL_UPLOAD', { vol, offset: 0n, length: 1n, flags: 0 });
  const call = await next();
  peer.write(reply(call, VIR_NET_OK, Buffer.alloc(0)));
  const upload = await opening;
  const failed = new Promise<Error>((r) => upload.once('error', r));
  const data = (n: number): Buffer => encodePacket({ ...call.header, type: VIR_NET_STREAM, status: VIR_NET_CONTINUE }, Buffer.alloc(n, 1));
  for (let i = 0; i < 80; i++) peer.write(data(256 * 1024));
  assert.match(String(await failed), /more than 8388608 bytes of stream data that were not read; the stream was aborted/);
  assert.ok(upload.readableLength <= 8 << 20, `${upload.readableLength} bytes held`);
  let abort: Packet;
  do abort = await next();
  while (abort.header.type !== VIR_NET_STREAM);
  assert.deepEqual([abort.header.serial, abort.header.status], [call.header.serial, VIR_NET_ERROR]);

  const again = client.openStream('REMOTE_PROC_DOMAIN_SCREENSHOT', { dom: { name: 'd', uuid: Buffer.alloc(16), id: 1 }, screen: 0, flags: 0 });
  const shot = await next();
  peer.write(reply(shot, VIR_NET_OK, encode(remote.remote_domain_screenshot_ret, { mime: null })));
  const screenshot = await again;
  const got: Buffer[] = [];
  const ended = new Promise<void>((r) => screenshot.on('data', (b: Buffer) => got.push(b)).once('end', r));
  const errors: Error[] = [];
  screenshot.on('error', (e) => errors.push(e));
  const shotData = (payload: Buffer): Buffer => encodePacket({ ...shot.header, type: VIR_NET_STREAM, status: VIR_NET_CONTINUE }, payload);
  peer.write(Buffer.concat([shotData(Buffer.from('abc')), shotData(Buffer.alloc(0)), shotData(Buffer.from('late'))]));
  await ended;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(Buffer.concat(got).toString(), 'abc');
  assert.deepEqual(errors, []);
});

test('an abort waits for the server to confirm it, and fails rather than hangs when the connection goes first', async (t) => {
  const { client: connecting, peer, next } = await pair(t);
  const client = await connecting;
  const dom = { name: 'd', uuid: Buffer.alloc(16), id: 1 };
  const open = async () => {
    const opening = client.openStream('REMOTE_PROC_DOMAIN_OPEN_CONSOLE', { dom, dev_name: null, flags: 0 });
    const call = await next();
    peer.write(reply(call, VIR_NET_OK, Buffer.alloc(0)));
    return { stream: await opening, call };
  };
  const streamPacket = async (): Promise<Packet> => {
    let p: Packet;
    do p = await next();
    while (p.header.type !== VIR_NET_STREAM);
    return p;
  };
  const first = await open();
  let confirmed = false;
  const aborting = first.stream.abort().then(() => (confirmed = true));
  const abort = await streamPacket();
  assert.deepEqual([abort.header.serial, abort.header.status], [first.call.header.serial, VIR_NET_ERROR]);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(confirmed, false, 'not before the server says so');
  peer.write(encodePacket({ ...abort.header, status: VIR_NET_OK }, Buffer.alloc(0)));
  await aborting;

  const second = await open();
  const torn = new Promise<Error>((r) => second.stream.once('error', r));
  const unconfirmed = second.stream.abort();
  await streamPacket();
  peer.destroy();
  await assert.rejects(unconfirmed, /the libvirt peer closed the connection/);
  assert.ok((await torn) instanceof LibvirtError);
});

test('an ssh transport nobody reads leaves the far side\'s output in its pipe, not in memory', async (t) => {
  const ssh = await spawnSsh({ command: process.execPath, args: ['-e', 'const b = Buffer.alloc(1 << 20); (function go(n) { if (n) process.stdout.write(b, () => go(n - 1)); })(64)'] });
  t.after(() => ssh.destroy());
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(ssh.readableLength < 1 << 20, `${ssh.readableLength} bytes of ssh output held`);
  let total = 0;
  for await (const chunk of ssh) total += (chunk as Buffer).length;
  assert.equal(total, 64 << 20, 'reading resumes the output');
});
