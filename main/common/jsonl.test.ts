import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { until } from '../testing/harness.js';
import { JsonlConnection } from './jsonl.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jsonl-test-'));
const sockPath = path.join(dir, 's.sock');
let server: net.Server;
const accepted: net.Socket[] = [];

before(async () => {
  server = net.createServer((s) => accepted.push(s));
  await new Promise<void>((r) => server.listen(sockPath, r));
});
after(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A JsonlConnection on our end and the raw peer socket. */
async function pair(options?: ConstructorParameters<typeof JsonlConnection>[1]) {
  const n = accepted.length;
  const client = net.connect(sockPath);
  await new Promise((r) => client.once('connect', r));
  while (accepted.length === n) await new Promise((r) => setImmediate(r));
  const conn = new JsonlConnection(client, options);
  const messages: unknown[] = [];
  const invalid: string[] = [];
  conn.on('message', (m) => messages.push(m));
  conn.on('invalid', (e) => invalid.push(e.message));
  return { conn, peer: accepted[accepted.length - 1], messages, invalid };
}

/** Writes `data` from the peer and waits until our end has read it: each write arrives as a chunk of its own. */
async function feed(peer: net.Socket, conn: JsonlConnection, data: string | Buffer): Promise<void> {
  const total = conn.socket.bytesRead + Buffer.byteLength(data);
  peer.write(data);
  await until(() => conn.socket.bytesRead >= total, 5000, `our end to have read ${total} bytes`);
}

test('partial lines, several lines per chunk, UTF-8 split across chunks', async () => {
  const { peer, messages, conn } = await pair();
  const euro = Buffer.from('{"s":"€"}\n');
  await feed(peer, conn, '{"a":1}\n{"b"');
  await feed(peer, conn, ':2}\r\n\n');
  await feed(peer, conn, euro.subarray(0, 7));
  await feed(peer, conn, euro.subarray(7));
  assert.deepEqual(messages, [{ a: 1 }, { b: 2 }, { s: '€' }]);
  conn.destroy();
});

test('a malformed line is reported and skipped; the next one still parses', async () => {
  const { peer, messages, invalid, conn } = await pair();
  await feed(peer, conn, '{oops\n[1,2]\n');
  assert.equal(invalid.length, 1);
  assert.match(invalid[0], /^malformed JSON line/);
  assert.deepEqual(messages, [[1, 2]]);
  conn.destroy();
});

test('an over-long line is reported once and skipped up to its newline', async () => {
  const { peer, messages, invalid, conn } = await pair({ maxLineBytes: 100 });
  await feed(peer, conn, '"' + 'x'.repeat(80));
  await feed(peer, conn, 'x'.repeat(80));
  await feed(peer, conn, 'x'.repeat(80) + '"\n{"after":true}\n' + JSON.stringify('y'.repeat(150)) + '\n');
  assert.deepEqual(invalid, ['line longer than 100 bytes; skipped', 'line longer than 100 bytes; skipped']);
  assert.deepEqual(messages, [{ after: true }]);
  conn.destroy();
});

test('send writes one line; after the peer is gone send returns false and close reports', async () => {
  const { peer, conn } = await pair();
  let received = '';
  peer.on('data', (d) => (received += d));
  assert.equal(conn.send({ hello: 'world' }), true);
  await until(() => received.endsWith('\n'), 5000, 'the peer to receive a line');
  assert.equal(received, '{"hello":"world"}\n');
  const closed = new Promise((r) => conn.on('close', r));
  peer.destroy();
  await closed;
  assert.equal(conn.isOpen, false);
  assert.equal(conn.send({ late: true }), false);
});

test('writing into a connection the peer reset does not throw (EPIPE is absorbed)', async () => {
  const { peer, conn } = await pair();
  const closed = new Promise((r) => conn.on('close', r));
  peer.destroy();
  for (let i = 0; i < 50 && conn.isOpen; i++) {
    conn.send({ i, pad: 'z'.repeat(10000) });
    await new Promise((r) => setImmediate(r));
  }
  await closed;
});

test('a peer that stops reading is dropped once the cap is queued, for send and sendLine alike', async () => {
  const { conn, peer } = await pair({ maxBufferedBytes: 256 * 1024 });
  peer.pause();
  const closed = new Promise<Error | undefined>((r) => conn.once('close', r));
  const line = JSON.stringify({ pad: 'x'.repeat(8192) });
  let sent = 0;
  while (sent < 10_000 && (sent % 2 ? conn.send({ pad: 'x'.repeat(8192) }) : conn.sendLine(line))) sent++;
  assert.ok(sent < 10_000, 'sending stopped');
  assert.equal(conn.sendLine(line), false);
  assert.match(String(await closed), /peer is not reading \(over 262144 bytes queued\); dropped/);
});
