// The Snapshots page in Chromium against the web shell, on a running v86 guest: Take (name and
// description) shows the snapshot in the tree as current, with the guest's screen of the moment;
// Revert asks first, then the guest is back at that moment (a shell variable set after it is
// gone, the serial shell answering); Delete asks first and empties the tree.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { APP_ROOT } from '../main/common/paths.js';
import { engineSkip, guestsBuilt, sampleGuestXml, SerialWatch, TestHost, until } from '../main/testing/harness.js';
import { CHROMIUM_ARGS } from './browser.js';

const SHOTS = path.join(APP_ROOT, 'test-results');
const BOOT_MS = 300_000;
const skip = !guestsBuilt() ? 'sample guests not built' : engineSkip('v86');

describe('Snapshots page in Chromium', { skip, timeout: 900_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  let serial: SerialWatch;
  const byId = (id: string) => page.getByTestId(id);

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    t = await TestHost.start();
    await t.client.call('domain.define', { xml: sampleGuestXml('snapvm', 'v86') });
    serial = await t.bootOrRestore('snapvm', BOOT_MS);
    const url = (await t.client.call('host.webShell', {})).url;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(url);
    await byId('domain-row-snapvm').click();
    await byId('tb-details').click();
    await byId('details-nav-snapshots').click();
    await byId('page-snapshots').waitFor();
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('takes a snapshot of the running guest from the page', async () => {
    await serial.sh('MARK=before');
    await byId('snapshot-take').click();
    await byId('snapshot-name').fill('first');
    await byId('snapshot-description').fill('from the page');
    await byId('snapshot-take-confirm').click();
    await byId('snapshot-first').waitFor();
    await byId('snapshot-thumbnail').waitFor();
    assert.match(await byId('snapshot-first').innerText(), /first\s+current/);
    assert.match(await byId('snapshot-state').innerText(), /Running \(with memory\)/);
    const { snapshot } = await t.client.call('snapshot.info', { domain: 'snapvm', snapshot: 'first' });
    assert.deepEqual([snapshot.description, snapshot.current, snapshot.memory], ['from the page', true, true]);
    await page.screenshot({ path: path.join(SHOTS, 'snapshots-page.png') });
  });

  it('reverts after asking: the guest is back at the snapshot moment', async () => {
    await serial.sh('MARK=after');
    await byId('snapshot-revert').click();
    await byId('snapshot-revert-confirm').click();
    // The guest stops (shut off, from snapshot), then runs again from the snapshot's state.
    await until(async () => {
      const d = await t.client.call('domain.info', { domain: 'snapvm' });
      return d.state === 'running' && d.reason === 'from snapshot';
    }, 120_000, 'the revert');
    assert.match(await serial.sh('echo mark=$MARK'), /mark=before/);
  });

  it('deletes after asking', async () => {
    await byId('snapshot-delete').click();
    await byId('snapshot-delete-confirm').click();
    await byId('snapshot-first').waitFor({ state: 'detached' });
    assert.deepEqual((await t.client.call('snapshot.list', { domain: 'snapvm' })).snapshots, []);
  });
});
