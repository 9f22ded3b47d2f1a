// VNC Authentication on a real runner: a password that is not ASCII works with a client that keys
// DES from its UTF-8 bytes (as QEMU and its clients do), and wrong guesses are slowed down per
// listener, so that brute force over the 8 bytes is impractical while the other listener stays fast.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_AUTH_THROTTLE } from './auth-throttle.js';
import type { HelloResult } from './protocol.js';
import { RfbClient } from '../testing/rfb-client.js';
import { ControlClient, findGuest, pvConfig, spawnRunner, type SpawnedRunner } from '../testing/runner-harness.js';
import { desEncrypt } from '../common/vnc-auth.js';

const guest = findGuest();
/** 8 bytes of UTF-8 in 6 characters; as latin1 it would be a different key. */
const PASSWORD = 'pässwö';

/** A client's answer, written from RFB's description rather than with the server's helper. */
function utf8Response(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'utf8').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) {
    let r = 0;
    for (let bit = 0; bit < 8; bit++) if (key[i] & (1 << bit)) r |= 0x80 >> bit;
    key[i] = r;
  }
  return desEncrypt(key, challenge);
}

/** How late the client may see a failure the runner's throttle counts from. */
const ROUND_TRIP_MS = 50;

describe('VNC login', { skip: 'missing' in guest ? guest.missing : false, timeout: 300_000 }, () => {
  let runner: SpawnedRunner;
  let port: number;

  before(async () => {
    if ('missing' in guest) return;
    runner = spawnRunner(pvConfig(guest, { name: 'vnc-login', vncPassword: PASSWORD, vncListen: { address: '127.0.0.1' } }));
    const ctl = await ControlClient.connect(runner.paths.control);
    port = (await ctl.call<HelloResult>('hello')).vncTcp!.port;
    ctl.close();
  });
  after(async () => {
    await runner?.kill();
  });

  async function attempt(response: (challenge: Buffer) => Buffer, over: 'tcp' | 'unix' = 'tcp'): Promise<'ok' | string> {
    const v = over === 'tcp' ? await RfbClient.openTcp(port) : await RfbClient.open(runner.paths.vnc);
    try {
      await v.handshake({ response });
      return 'ok';
    } catch (err) {
      return (err as Error).message;
    } finally {
      v.close();
    }
  }

  test('a non-ASCII password authenticates with the key from its UTF-8 bytes, not from latin1', async () => {
    assert.equal(await attempt((c) => utf8Response(PASSWORD, c), 'unix'), 'ok');
    assert.equal(await attempt((c) => utf8Response(PASSWORD, c)), 'ok');
    assert.equal(await attempt((c) => utf8Response(`${PASSWORD}-rest-ignored`, c)), 'ok', 'only the first 8 bytes count');
    const latin1Key = Buffer.from(PASSWORD, 'latin1').toString('utf8');
    assert.match(await attempt((c) => utf8Response(latin1Key, c)), /authentication failed/);
  });

  test('wrong guesses slow down the next ones on that listener only; the right password still gets in', async () => {
    const { baseDelayMs, maxDelayMs } = DEFAULT_AUTH_THROTTLE;
    const wrong = (c: Buffer) => utf8Response('guess', c);
    // The first test's wrong key counts as failure 1: attempt k here waits base × 2^(k-1), except
    // the first, whose wait may have passed already.
    const n = 4;
    const t0 = Date.now();
    for (let i = 0; i < n; i++) assert.match(await attempt(wrong), /authentication failed/);
    const sequential = Date.now() - t0;
    const expected = baseDelayMs * (2 ** n - 2) - ROUND_TRIP_MS;
    assert.ok(sequential >= expected, `${n} wrong attempts took ${sequential} ms, expected at least ${expected}`);

    // Parallel connections gain nothing: each waits for the delay the one before it earned.
    const t1 = Date.now();
    const results = await Promise.all([0, 1].map(() => attempt(wrong)));
    const parallel = Date.now() - t1;
    assert.ok(results.every((r) => /authentication failed/.test(r)), results.join('; '));
    // The throttle counts from its previous failure, which this side sees a moment later (2 ms
    // here once), so the bound allows for that round trip.
    const expectedParallel = baseDelayMs * 2 ** n + Math.min(baseDelayMs * 2 ** (n + 1), maxDelayMs) - ROUND_TRIP_MS;
    assert.ok(parallel >= expectedParallel, `2 parallel wrong attempts took ${parallel} ms, expected at least ${expectedParallel}`);

    // vnc.sock (the host's own viewers) has its own throttle: no waiting there.
    const t2 = Date.now();
    assert.equal(await attempt((c) => utf8Response(PASSWORD, c), 'unix'), 'ok');
    assert.ok(Date.now() - t2 < baseDelayMs * 2 ** n, `unix login took ${Date.now() - t2} ms`);

    // The right password after the delay gets in, and resets the throttle.
    assert.equal(await attempt((c) => utf8Response(PASSWORD, c)), 'ok');
    const t3 = Date.now();
    assert.equal(await attempt((c) => utf8Response(PASSWORD, c)), 'ok');
    assert.ok(Date.now() - t3 < baseDelayMs * 2, `login after a success took ${Date.now() - t3} ms`);
  });
});
