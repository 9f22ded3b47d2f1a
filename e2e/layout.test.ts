// Layout at real window sizes (1024×640 and 1920×1080; the console also at 760 px), in Chromium against the web shell, with one
// running v86 guest: every toolbar control of the manager, the console and Details lies inside the
// viewport and is what a click at its centre reaches, on the toolbar or in its "⋯" menu; the list
// keeps Name, State, CPU and Memory in view beside Details; Console and Details are two views of
// the console window, each with the whole width. Screenshots of each screen go to test-results/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { APP_ROOT } from '../main/common/paths.js';
import { engineSkip, guestsBuilt, sampleGuestXml, TestHost } from '../main/testing/harness.js';
import { CHROMIUM_ARGS } from './browser.js';

const SHOTS = path.join(APP_ROOT, 'test-results');
const BOOT_MS = 300_000;
const NAME = 'layout-vm';
const SIZES = [
  { width: 1024, height: 640 },
  { width: 1920, height: 1080 },
];
const CONSOLE_CONTROLS = ['Back to all virtual machines', 'Console', 'Details', 'Run', 'Pause', 'Shut Down', 'More ways to stop', 'Scale', 'Grab Keys', 'Send Key', 'Screenshot', 'New Window'];
const skip = !guestsBuilt() ? 'sample guests not built' : engineSkip('v86');

/** A control's accessible name as these toolbars give it: aria-label, else its text, else its title. */
function nameOf(el: Element): string {
  return (el.getAttribute('aria-label') || el.textContent?.replace(/\s+/g, ' ').trim() || el.getAttribute('title') || '').replace(/…$/, '');
}

/** Inside the viewport, and the element a click at its centre lands on (not covered, not clipped). */
async function assertReachable(control: Locator, what: string): Promise<void> {
  const box = await control.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return {
      left: Math.round(r.left),
      top: Math.round(r.top),
      right: Math.round(r.right),
      bottom: Math.round(r.bottom),
      vw: window.innerWidth,
      vh: window.innerHeight,
      hit: hit !== null && (hit === el || el.contains(hit)),
      disabled: (el as HTMLButtonElement).disabled === true,
    };
  });
  const where = `${what} at [${box.left},${box.top}]–[${box.right},${box.bottom}] in ${box.vw}x${box.vh}`;
  assert.ok(box.right > box.left && box.bottom > box.top, `${where}: not shown`);
  assert.ok(box.left >= 0 && box.top >= 0 && box.right <= box.vw && box.bottom <= box.vh, `${where}: outside the viewport`);
  assert.ok(box.hit, `${where}: a click at its centre lands on something else`);
  // Playwright's own checks (visible, stable, receives the pointer), without clicking.
  if (!box.disabled) await control.click({ trial: true, timeout: 5000 });
}

/**
 * Every control of a toolbar is reachable, and each expected one is there: on the toolbar, or in
 * the menu of its "⋯" button (More), which must then be reachable itself.
 */
async function assertToolbar(page: Page, toolbar: Locator, expected: string[], what: string): Promise<string[]> {
  const shown = toolbar.getByRole('button');
  const names: string[] = [];
  for (let i = 0; i < (await shown.count()); i++) {
    const control = shown.nth(i);
    const name = await control.evaluate(nameOf);
    names.push(name);
    await assertReachable(control, `${what}: “${name}”`);
  }
  const folded = expected.filter((name) => !names.includes(name));
  if (folded.length) {
    assert.ok(names.includes('More'), `${what}: ${folded.join(', ')} neither on the toolbar (${names.join(', ')}) nor in a More menu`);
    const more = toolbar.getByRole('button', { name: 'More', exact: true });
    assert.equal(await more.getAttribute('aria-haspopup'), 'menu');
    await more.click();
    const menu = page.locator('[role="menu"]:popover-open');
    await menu.waitFor();
    const items = menu.locator('[role^="menuitem"]');
    const inMenu: string[] = [];
    for (let i = 0; i < (await items.count()); i++) {
      inMenu.push(await items.nth(i).evaluate(nameOf));
      await assertReachable(items.nth(i), `${what}: “${inMenu.at(-1)}” in the More menu`);
    }
    assert.deepEqual(folded.filter((name) => !inMenu.includes(name)), [], `${what}: folded controls missing from the More menu (${inMenu.join(', ')})`);
    // The menu is a keyboard's too: focus starts on an item, the arrows move it, Escape closes.
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('role')?.startsWith('menuitem')), true, 'the More menu focuses its first item');
    await page.keyboard.press('Escape');
    await menu.waitFor({ state: 'detached' });
  }
  return names;
}

describe('layout at 1024×640 and 1920×1080', { skip, timeout: 600_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  let uuid: string;
  const byId = (id: string) => page.getByTestId(id);

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    t = await TestHost.start();
    await t.client.call('domain.define', { xml: sampleGuestXml(NAME, 'v86') });
    uuid = (await t.client.call('domain.info', { domain: NAME })).uuid;
    await t.bootOrRestore(NAME, BOOT_MS);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: SIZES[0] })).newPage();
    await page.goto((await t.client.call('host.webShell', {})).url);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  const shot = (size: { width: number }, screen: string) => page.screenshot({ path: path.join(SHOTS, `layout-${size.width}-${screen}.png`) });

  /** Details' own controls: close, every page of its list (scrolled to), Add Hardware, Apply and Revert. */
  async function assertDetails(what: string): Promise<void> {
    const panel = byId('details-panel');
    await byId('page-overview').waitFor();
    await assertReachable(byId('details-close'), `${what}: Close`);
    const pages = panel.getByRole('navigation').getByRole('button');
    for (let i = 0; i < (await pages.count()); i++) {
      await pages.nth(i).scrollIntoViewIfNeeded();
      await assertReachable(pages.nth(i), `${what}: page “${await pages.nth(i).evaluate(nameOf)}”`);
    }
    await assertReachable(byId('page-apply'), `${what}: Apply`);
    await assertReachable(byId('page-revert'), `${what}: Revert`);
  }

  /** The list's four columns, header and the guest's row, in view and not covered by Details. */
  async function assertListColumns(what: string): Promise<void> {
    const header = page.getByRole('row').first();
    for (const name of ['Name', 'State', 'CPU usage', 'Memory']) await assertReachable(header.getByRole('columnheader', { name }), `${what}: column ${name}`);
    await assertReachable(byId(`domain-state-${NAME}`), `${what}: the guest's state`);
    await assertReachable(byId(`domain-cpu-${NAME}`), `${what}: the guest's CPU`);
    await assertReachable(byId(`memory-indicator-${NAME}`), `${what}: the guest's memory`);
  }

  for (const size of SIZES) {
    const at = `${size.width}x${size.height}`;

    it(`${at}: the manager's toolbar and list, with and without Details`, async () => {
      await page.setViewportSize(size);
      await byId(`domain-row-${NAME}`).click();
      await byId(`domain-cpu-${NAME}`).waitFor();
      const toolbar = page.getByRole('toolbar', { name: 'Virtual machine actions' });
      const manager = ['New VM', 'Open', 'Details', 'Run', 'Pause', 'Shut Down', 'More ways to stop', 'Delete', 'Trace', 'Domus menu'];
      await assertToolbar(page, toolbar, manager, `manager ${at}`);
      await assertListColumns(`manager ${at}`);
      await shot(size, 'manager');

      await byId('tb-details').click();
      await assertDetails(`manager Details ${at}`);
      await assertToolbar(page, toolbar, manager, `manager with Details ${at}`);
      await assertListColumns(`manager with Details ${at}`);
      await shot(size, 'manager-details');
      await byId('details-close').click();
      await byId('details-panel').waitFor({ state: 'detached' });
    });

    it(`${at}: the console's toolbar; Console and Details are views of the whole window`, async () => {
      await page.setViewportSize(size);
      await byId(`domain-row-${NAME}`).dblclick();
      await byId('console-view').waitFor();
      await page.locator('[data-testid="vnc-screen"] canvas').waitFor({ timeout: 30_000 });
      const toolbar = page.getByRole('toolbar', { name: 'Console' });
      const console = CONSOLE_CONTROLS;
      await assertToolbar(page, toolbar, console, `console ${at}`);
      const name = page.getByRole('toolbar', { name: 'Console' }).getByText(NAME, { exact: true });
      assert.equal(await name.evaluate((el) => el.scrollWidth <= el.clientWidth), true, `the console names ${NAME} in full`);
      // The display has the window's whole width (less the borders).
      const display = await byId('vnc-display').boundingBox();
      assert.ok(display && display.width >= size.width - 2, `the display is ${display?.width} px wide in a ${size.width} px window`);
      await shot(size, 'console');

      await byId('console-details').click();
      assert.equal(await byId('console-details').getAttribute('aria-pressed'), 'true');
      await assertDetails(`console Details ${at}`);
      assert.equal(await byId('vnc-display').isVisible(), false, 'Details is not beside the display');
      const details = await byId('details-panel').boundingBox();
      assert.ok(details && details.width >= size.width - 2, `Details is ${details?.width} px wide in a ${size.width} px window`);
      await assertToolbar(page, toolbar, console, `console in Details view ${at}`);
      await shot(size, 'console-details');

      await byId('console-show-console').click();
      await byId('details-panel').waitFor({ state: 'detached' });
      assert.ok(((await byId('vnc-display').boundingBox())?.width ?? 0) >= size.width - 2, 'the display has the whole width back');
      await byId('console-back').click();
      await byId('manager-view').waitFor();
    });

    it(`${at}: the console in a window of its own names the guest in full and keeps its controls`, async () => {
      const win = await page.context().newPage();
      try {
        await win.setViewportSize(size);
        await win.goto(`${new URL(page.url()).origin}/#/console/${uuid}/window`);
        await win.getByTestId('console-view').waitFor();
        const toolbar = win.getByRole('toolbar', { name: 'Console' });
        await toolbar.getByText(NAME, { exact: true }).waitFor();
        await assertToolbar(win, toolbar, ['Console', 'Details', 'Run', 'Pause', 'Shut Down', 'More ways to stop', 'Scale', 'Grab Keys', 'Send Key', 'Screenshot'], `console window ${at}`);
        const name = toolbar.getByText(NAME, { exact: true });
        assert.equal(await name.evaluate((el) => el.scrollWidth <= el.clientWidth), true, `the console window names ${NAME} in full`);
      } finally {
        await win.close();
      }
    });
  }

  it('760x640 (half a screen): the console folds its display tools into More, where they work', async () => {
    const size = { width: 760, height: 640 };
    await page.setViewportSize(size);
    await byId(`domain-row-${NAME}`).dblclick();
    await byId('console-view').waitFor();
    const names = await assertToolbar(page, page.getByRole('toolbar', { name: 'Console' }), CONSOLE_CONTROLS, 'console 760x640');
    assert.ok(names.includes('More'), `some controls folded at 760 px (${names.join(', ')})`);
    await shot(size, 'console');
    // Grab Keys grabs from the menu (the menu hands the focus back first); Send Key… opens its
    // own menu under More, keyboard-ready.
    const more = byId('console-more');
    await more.click();
    await byId('more-grab').click();
    await byId('grab-indicator').waitFor();
    await page.keyboard.down('Control');
    await page.keyboard.down('Alt');
    await byId('grab-indicator').waitFor({ state: 'detached' });
    await page.keyboard.up('Alt');
    await page.keyboard.up('Control');
    await more.click();
    await byId('more-sendkey').press('Enter');
    const sendKeys = page.getByRole('menu', { name: 'Send Key' });
    await sendKeys.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'sendkey-ctrl-alt-del');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'sendkey-ctrl-alt-backspace');
    // Its last item too lies in the window (the pointer's trial moves the focus: checked last).
    await assertReachable(byId('type-clipboard'), 'Type clipboard text, from the folded Send Key');
    await page.keyboard.press('Escape');
    await sendKeys.waitFor({ state: 'hidden' });
    await byId('console-back').click();
    await byId('manager-view').waitFor();
  });
});
