// A client that stops reading must not make the host buffer without bound: a trace subscriber that
// never reads, on the unix socket and on the web shell's WebSocket, is dropped once the cap is
// queued (with a log line), the host's memory stays bounded, and other clients carry on.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MAX_BUFFERED_BYTES } from '../../common/jsonl.js';
import { TestHost, until, webShellSession } from '../../testing/harness.js';

/** A define the host refuses (no <memory>, which libvirt's schema requires): traced with its ~4 KB of XML, and cheap for the host. */
const FEED_XML = `<domain type='v86'><name>feed</name><os><type>hvm</type></os><description>${'x'.repeat(3900)}</description></domain>`;
const request = (id: number, method: string, params: unknown) => JSON.stringify({ type: 'request', id, method, params });

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends failing defines over its own connection, in pipelined batches, reading every reply. */
async function feed(socketPath: string, records: number): Promise<void> {
  const s = await connect(socketPath);
  let replies = 0;
  s.on('data', (d: Buffer) => {
    for (const byte of d) if (byte === 0x0a) replies++;
  });
  const batch = 500;
  for (let sent = 0; sent < records; sent += batch) {
    s.write(Array.from({ length: batch }, (_, i) => request(sent + i + 1, 'domain.define', { xml: FEED_XML })).join('\n') + '\n');
    await until(() => replies >= sent + batch, 120_000, 'the feeder replies');
  }
  s.destroy();
}

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe('clients that stop reading', { timeout: 900_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  /** Feeds records until `dropped` says the host let go of the silent client; returns the peak RSS. */
  async function feedUntilDropped(dropped: () => boolean): Promise<{ before: number; peak: number; records: number }> {
    const pid = t.daemonPid();
    const before = rssMiB(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100);
    let records = 0;
    try {
      // The cap is 64 MiB of ~4.3 KB records: about 16 000 of them, plus what the kernel buffers.
      while (!dropped() && records < 40_000) {
        await feed(t.paths.socket, 2000);
        records += 2000;
      }
    } finally {
      clearInterval(sampler);
    }
    return { before, peak, records };
  }

  it('a trace subscriber on the unix socket that never reads is dropped; the host stays small and serves others', async () => {
    const silent = await connect(t.paths.socket);
    silent.write(request(1, 'trace.subscribe', {}) + '\n');
    silent.pause();
    let closed = false;
    silent.on('close', () => (closed = true));
    const log = () => fs.readFileSync(t.paths.log, 'utf8');
    const { before, peak, records } = await feedUntilDropped(() => /local client: peer is not reading/.test(log()));
    console.log(`unix: dropped after ${records} records; domusd RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB`);
    assert.match(log(), new RegExp(`local client: peer is not reading \\(over ${DEFAULT_MAX_BUFFERED_BYTES} bytes queued\\); dropped`));
    assert.ok(peak < before + 200, `domusd RSS peaked at ${peak.toFixed(0)} MiB (from ${before.toFixed(0)})`);
    silent.resume();
    await until(() => closed, 30_000, 'the silent client to be closed');
    assert.equal((await t.client.call('domain.list', { all: true })).domains.length, 0);
    assert.ok((await t.client.call('host.status', {})) !== undefined);
  });

  it('a trace subscriber on the web shell WebSocket that never reads is dropped too', async () => {
    const shell = await webShellSession(t.client);
    const port = new URL(shell.origin).port;
    const sock = net.connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.write(
      `GET /api HTTP/1.1\r\nHost: ${shell.host}\r\nCookie: ${shell.cookie}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const head = await new Promise<string>((resolve) => sock.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    assert.match(head, /^HTTP\/1\.1 101/);
    sock.write(maskedTextFrame(request(1, 'trace.subscribe', {})));
    sock.pause();
    let closed = false;
    sock.on('close', () => (closed = true));
    const log = () => fs.readFileSync(t.paths.log, 'utf8');
    const { before, peak, records } = await feedUntilDropped(() => /web shell \d+: peer is not reading/.test(log()));
    console.log(`WebSocket: dropped after ${records} records; domusd RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB`);
    assert.ok(peak < before + 200, `domusd RSS peaked at ${peak.toFixed(0)} MiB (from ${before.toFixed(0)})`);
    sock.resume();
    await until(() => closed, 30_000, 'the silent WebSocket to be closed');
    assert.ok((await t.client.call('host.status', {})) !== undefined);
  });
});

/** One client-to-server WebSocket text frame (clients must mask). */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = crypto.randomBytes(4);
  const len = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x81]), len, mask, masked]);
}
