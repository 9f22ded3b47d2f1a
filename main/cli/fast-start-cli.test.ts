// domus fast-start: shows the setting, enables it (when the guest is ready, or --after seconds after
// boot), refreshes and disables it; bad combinations and values are refused with what is wrong.
// (The restore itself and `list --reason`'s marker: main/host/fast-start.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestHost, sampleGuestXml } from '../testing/harness.js';

describe('domus fast-start', { timeout: 120_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
    await t.client.call('domain.define', { xml: sampleGuestXml('quick', 'v86') });
  });
  after(async () => {
    await t?.stop();
  });

  it('shows, enables, refreshes and disables fast start', async () => {
    assert.equal((await t.cli(['fast-start', 'quick'])).stdout, 'disabled\n\n');
    const on = await t.cli(['fast-start', 'quick', '--enable', '--after', '5']);
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, "Domain 'quick' will start from a post-boot state\n\n");
    assert.equal((await t.cli(['fast-start', 'quick'])).stdout, 'enabled, state taken 5 s after boot; no state kept yet (the next start boots cold)\n\n');
    assert.equal((await t.client.call('domain.info', { domain: 'quick' })).fastStart?.afterSec, 5);
    assert.equal((await t.cli(['fast-start', 'quick', '--enable'])).code, 0);
    assert.equal((await t.cli(['fast-start', 'quick'])).stdout, 'enabled, state taken when the guest is ready; no state kept yet (the next start boots cold)\n\n');
    assert.equal((await t.cli(['fast-start', 'quick', '--refresh'])).stdout, "Domain 'quick' will boot cold once and keep a new post-boot state\n\n");
    assert.equal((await t.cli(['fast-start', 'quick', '--disable'])).stdout, "Domain 'quick' will boot cold (fast start disabled)\n\n");
    assert.equal((await t.cli(['fast-start', 'quick'])).stdout, 'disabled\n\n');
    const listed = await t.cli(['list', '--all', '--reason']);
    assert.match(listed.stdout, /quick +shut off \(unknown\)/);
  });

  it('refuses bad combinations and values, naming them', async () => {
    const both = await t.cli(['fast-start', 'quick', '--enable', '--disable']);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /give one of --enable, --disable and --refresh, not --enable and --disable/);
    assert.match((await t.cli(['fast-start', 'quick', '--disable', '--after', '3'])).stderr, /--after goes with --enable/);
    assert.match((await t.cli(['fast-start', 'quick', '--enable', '--after', '0'])).stderr, /invalid --after '0' \(whole seconds, 1 to 3600\)/);
    assert.match((await t.cli(['fast-start', 'quick', '--refresh'])).stderr, /domain 'quick' does not use fast start/);
    assert.match((await t.cli(['fast-start', 'nosuch', '--enable'])).stderr, /nosuch/);
  });
});
