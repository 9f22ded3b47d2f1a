// A request the host cannot read at all (a line over the 16 MiB limit) has no id the host could
// answer: the client must fail the calls it is waiting on, not wait forever (`domus define` of a
// save file hung this way), and the connection must serve the next call.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MAX_LINE_BYTES } from '../../common/jsonl.js';
import { TestHost } from '../../testing/harness.js';

describe('an oversized request over the unix socket', () => {
  let t: TestHost;
  before(async () => (t = await TestHost.start()));
  after(async () => t?.stop());

  it('fails the waiting call with the RPC error, and the connection serves on', { timeout: 60_000 }, async () => {
    const xml = `<domain type='v86'><name>big</name><description>${'x'.repeat(DEFAULT_MAX_LINE_BYTES)}</description></domain>`;
    const t0 = Date.now();
    await assert.rejects(t.client.call('domain.define', { xml }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'RPC');
      assert.match(err.message, /^RPC error: malformed message: line longer than 16777216 bytes; skipped$/);
      return true;
    });
    assert.ok(Date.now() - t0 < 30_000);
    assert.deepEqual((await t.client.call('domain.list', { all: true })).domains, []);
  });
});
