// End to end in Chromium: a domain row's context menu (right click, Shift+F10); Delete lists the
// domain's disks as virt-manager's dialog does; a checked volume is deleted with the domain, a disk
// another domain uses cannot be checked and says so.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { TestHost, engineSkip, sampleGuestXml } from '../main/testing/harness.js';
import { openWebShell } from './browser.js';

const disk = (file: string, dev: string) => `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${file}'/><target dev='${dev}' bus='ide'/></disk>`;

describe('domain context menu and delete with storage (web shell)', { timeout: 300_000, skip: engineSkip('v86') }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  let pool: string;

  before(async () => {
    t = await TestHost.start();
    pool = (await t.client.call('pool.list', {})).pools[0].path;
    for (const f of ['own.img', 'shared.img']) fs.writeFileSync(path.join(pool, f), Buffer.alloc(1 << 20, 1));
    await t.client.call('domain.define', { xml: sampleGuestXml('doomed', 'v86', `${disk(path.join(pool, 'own.img'), 'hda')}${disk(path.join(pool, 'shared.img'), 'hdb')}`) });
    await t.client.call('domain.define', { xml: sampleGuestXml('keeper', 'v86', disk(path.join(pool, 'shared.img'), 'hda')) });
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('opens a context menu from the keyboard (Shift+F10) whose items act on the row', async () => {
    await page.getByTestId('domain-row-keeper').click();
    await page.keyboard.press('Shift+F10');
    const run = page.getByTestId('domain-menu-run');
    await run.waitFor();
    assert.equal(await run.evaluate((el) => el === document.activeElement), true, 'focus is on the first item');
    assert.equal(await page.getByTestId('domain-menu-force-off').isDisabled(), true, 'Force Off is off for a shut-off guest');
    await page.keyboard.press('Enter');
    await page.getByTestId('domain-state-keeper').filter({ hasText: 'running' }).waitFor({ timeout: 60_000 });
    await t.client.call('domain.destroy', { domain: 'keeper' });
    await page.getByTestId('domain-state-keeper').filter({ hasText: 'shut off' }).waitFor({ timeout: 30_000 });
  });

  it("deletes the checked volume with the domain (from the row's context menu) and keeps the one another domain uses", async () => {
    await page.getByTestId('domain-row-doomed').click({ button: 'right' });
    await page.getByTestId('domain-menu-delete').click();
    const own = page.getByTestId('delete-disk-hda').getByRole('checkbox');
    const shared = page.getByTestId('delete-disk-hdb');
    await own.waitFor();
    assert.equal(await own.isChecked(), true, 'its own disk is checked');
    assert.equal(await shared.getByRole('checkbox').isDisabled(), true, 'a disk another domain uses cannot be checked');
    assert.match((await shared.textContent()) ?? '', /kept: also used by keeper/);
    await page.getByTestId('confirm-delete').click();
    await page.getByTestId('domain-row-doomed').waitFor({ state: 'detached' });
    // The row goes with the host's event, which can reach the page before the host has deleted the
    // files (as libvirt's does before virsh deletes the volumes); the toast follows the answer.
    await page.getByTestId('toast').filter({ hasText: 'Deleted “doomed”' }).waitFor();
    assert.equal(fs.existsSync(path.join(pool, 'own.img')), false, 'the checked volume is gone');
    assert.equal(fs.existsSync(path.join(pool, 'shared.img')), true, "keeper's disk stays");
    assert.deepEqual(
      (await t.client.call('domain.list', { all: true })).domains.map((d) => d.name),
      ['keeper'],
    );
  });
});
