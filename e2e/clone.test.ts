// End to end in Chromium: Clone from a domain row's context menu as virt-manager's dialog does it (the
// name virt-clone would choose, the copy's path, the host's refusal of a name taken, a running
// original paused while its disk is copied), and Force Off's and Delete's questions with "Don't ask
// again", which Preferences turns back on; Delete is also the key on a row, as its menu item shows.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { TestHost, engineSkip, networkGuestXml } from '../main/testing/harness.js';
import { openWebShell } from './browser.js';

const MAC = '52:54:00:c1:00:01';

describe('clone, Force Off and Delete asked first, shortcuts in menus (web shell)', { timeout: 300_000, skip: engineSkip('v86') }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  let pool: string;
  let content: Buffer;

  before(async () => {
    t = await TestHost.start();
    pool = (await t.client.call('pool.list', {})).pools[0].path;
    content = Buffer.alloc(1 << 20);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 9)) & 0xff;
    fs.writeFileSync(path.join(pool, 'web.img'), content);
    const xml = networkGuestXml({ name: 'web', engine: 'v86', network: 'default', mac: MAC, model: 'ne2k_pci' }).replace(
      '</devices>',
      `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${path.join(pool, 'web.img')}'/><target dev='hda' bus='ide'/></disk></devices>`,
    );
    await t.client.call('domain.define', { xml });
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  const openClone = async (): Promise<void> => {
    await page.getByTestId('domain-row-web').click({ button: 'right' });
    await page.getByTestId('domain-menu-clone').click();
    await page.getByTestId('clone-dialog').waitFor();
  };
  const state = async (name: string): Promise<string> => (await t.client.call('domain.list', { all: true })).domains.find((d) => d.name === name)!.state;

  it('clones a shut-off domain from the context menu: a new row, a copy of its disk, a new MAC', async () => {
    await openClone();
    const name = page.getByTestId('clone-name');
    assert.equal(await name.evaluate((el) => el === document.activeElement), true, 'focus is on the name');
    await page.getByTestId('clone-disk-hda').getByTestId('clone-disk-file').filter({ hasText: path.join(pool, 'web-clone.img') }).waitFor();
    assert.equal(await name.inputValue(), 'web-clone', "virt-clone's name");
    await page.getByTestId('clone-submit').click();
    await page.getByTestId('domain-row-web-clone').waitFor();
    await page.getByTestId('clone-dialog').waitFor({ state: 'detached' });
    assert.deepEqual(fs.readFileSync(path.join(pool, 'web-clone.img')), content, 'the disk is copied');
    const info = await t.client.call('domain.info', { domain: 'web-clone' });
    assert.equal(info.config.disks[0].source, path.join(pool, 'web-clone.img'));
    assert.notEqual(info.config.interfaces[0].mac?.toLowerCase(), MAC, 'the clone has a MAC of its own');
  });

  it("says in the dialog that a name is taken, and clones nothing", async () => {
    await openClone();
    await page.getByTestId('clone-name').fill('web-clone');
    await page.getByTestId('clone-error').filter({ hasText: "cannot name the clone 'web-clone': a domain of that name already exists" }).waitFor();
    await page.getByTestId('clone-submit').click();
    await page.getByTestId('clone-error').filter({ hasText: 'already exists' }).waitFor();
    await page.getByTestId('clone-close').click();
    await page.getByTestId('clone-dialog').waitFor({ state: 'detached' });
    assert.equal((await t.client.call('domain.list', { all: true })).domains.length, 2);
  });

  it('asks before Force Off until told not to, and Preferences asks again', async () => {
    const forceOff = async (): Promise<void> => {
      await t.client.call('domain.start', { domain: 'web' });
      await page.getByTestId('domain-state-web').filter({ hasText: 'running' }).waitFor({ timeout: 60_000 });
      await page.getByTestId('domain-row-web').click({ button: 'right' });
      await page.getByTestId('domain-menu-force-off').click();
    };
    await forceOff();
    await page.getByTestId('force-off-question').waitFor();
    await page.getByTestId('force-off-dont-ask').check();
    await page.getByTestId('confirm-force-off').click();
    await page.getByTestId('domain-state-web').filter({ hasText: 'shut off' }).waitFor({ timeout: 30_000 });

    await forceOff();
    await page.getByTestId('domain-state-web').filter({ hasText: 'shut off' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('force-off-question').count(), 0, 'not asked again');

    await page.getByTestId('tb-menu').click();
    await page.getByTestId('tb-preferences').click();
    const ask = page.getByTestId('pref-ask-force-off');
    assert.equal(await ask.isChecked(), false);
    await ask.check();
    await page.getByTestId('pref-close').click();
    await forceOff();
    await page.getByTestId('force-off-question').waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await state('web'), 'running', 'Cancel leaves it running');
  });

  it('clones a running domain only paused while copying, and resumes it', async () => {
    await openClone();
    await page.getByTestId('clone-running-note').waitFor();
    assert.equal(await page.getByTestId('clone-name').inputValue(), 'web-clone1');
    await page.getByTestId('clone-submit').click();
    await page.getByTestId('clone-error').filter({ hasText: "domain 'web' is running" }).waitFor();
    await page.getByTestId('clone-pause').check();
    await page.getByTestId('clone-submit').click();
    // The row shows once the clone is defined; the dialog closes once clone answered, the original resumed.
    await page.getByTestId('clone-dialog').waitFor({ state: 'detached' });
    await page.getByTestId('domain-row-web-clone1').waitFor();
    assert.deepEqual(fs.readFileSync(path.join(pool, 'web-clone1.img')), content);
    assert.equal(await state('web'), 'running', 'the original runs again');
    await t.client.call('domain.destroy', { domain: 'web' });
  });

  it("Delete on a row asks (its menu shows the key) until told not to; then it keeps the disks", async () => {
    await page.getByTestId('domain-row-web-clone1').click({ button: 'right' });
    const item = page.getByTestId('domain-menu-delete');
    assert.equal(await item.getAttribute('aria-keyshortcuts'), 'Delete');
    assert.equal(await item.locator('.shortcut').textContent(), 'Delete');
    await page.keyboard.press('Escape');
    await page.getByTestId('domain-row-web-clone1').click();
    await page.keyboard.press('Delete');
    await page.getByTestId('delete-dont-ask').check();
    await page.getByTestId('confirm-delete').click();
    await page.getByTestId('domain-row-web-clone1').waitFor({ state: 'detached' });

    await page.getByTestId('domain-row-web-clone').click();
    await page.keyboard.press('Delete');
    await page.getByTestId('domain-row-web-clone').waitFor({ state: 'detached' });
    assert.equal(await page.getByTestId('delete-disks').count(), 0, 'not asked again');
    assert.equal(fs.existsSync(path.join(pool, 'web-clone.img')), true, 'without the question its disk stays');
    await page.getByTestId('tb-menu').click();
    await page.getByTestId('tb-preferences').click();
    assert.equal(await page.getByTestId('pref-ask-delete').isChecked(), false);
    await page.getByTestId('pref-close').click();
  });
});
