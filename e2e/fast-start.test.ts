// Fast start in the GUI (web shell in Chromium): the Boot options page turns it on; after the cold
// boot has kept its state, the next start resumes it and the list row carries the "fast start"
// badge, its state tooltip saying restored. v86 only: the host test covers both engines.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { SerialWatch, TestHost, sampleGuestXml, until } from '../main/testing/harness.js';
import { CHROMIUM_ARGS } from './browser.js';

/** A boot on a loaded 2-core machine shared by several agents can take minutes. */
const BOOT_MS = 300_000;

describe('fast start in the GUI', { timeout: 600_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  before(async () => {
    t = await TestHost.start();
    await t.client.call('domain.define', { xml: sampleGuestXml('quick', 'v86') });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto((await t.client.call('host.webShell', {})).url);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('the Boot page turns fast start on; a resumed guest is marked in the list', async () => {
    await page.getByTestId('domain-row-quick').click();
    await page.getByTestId('tb-details').click();
    await page.getByTestId('details-nav-boot').click();
    await page.getByTestId('details-faststart').check();
    await until(async () => (await t.client.call('domain.info', { domain: 'quick' })).fastStart !== undefined, 10_000, 'fast start on the host');
    assert.match((await page.getByTestId('details-faststart-state').textContent()) ?? '', /No state kept yet/);

    await t.client.call('domain.start', { domain: 'quick' });
    await (await SerialWatch.open(t.client, 'quick')).wait(/DOMUS-GUEST-READY/, BOOT_MS);
    await page.getByTestId('details-faststart-state').getByText('A post-boot state is kept').waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('badge-fast-start-quick').count(), 0, 'a booted guest has no fast-start badge');
    await t.client.call('domain.destroy', { domain: 'quick' });

    await t.client.call('domain.start', { domain: 'quick' });
    const badge = page.getByTestId('badge-fast-start-quick');
    await badge.waitFor({ timeout: 30_000 });
    assert.match((await badge.getAttribute('title')) ?? '', /resumed from its kept post-boot state/);
    assert.match((await page.getByTestId('domain-row-quick').locator('.col-state').getAttribute('title')) ?? '', /restored/i);
    await t.client.call('domain.destroy', { domain: 'quick' });
    await page.getByTestId('badge-fast-start-quick').waitFor({ state: 'detached', timeout: 30_000 });
  });
});
