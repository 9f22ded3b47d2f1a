// Accessibility: axe-core (@axe-core/playwright, its default rules) over every screen of the
// renderer in Chromium against the web shell, light and dark — the manager, each page of the New VM wizard, every
// Details page with the guest shut off and running, and the console's display and serial tabs.
// Prints each screen's violations (rule, impact, nodes) and fails on any but a minor one (the issue
// asked for no serious or critical; moderate ones are gone too and stay gone).
// One sample guest on one engine: the renderer is the same on every engine.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ENGINES, engineSkip, guest, sampleGuestXml, TestHost } from '../main/testing/harness.js';
import { CHROMIUM_ARGS, chooserSettled } from './browser.js';

const engine = ENGINES[0] ?? 'v86';
const NAME = 'a11y-vm';
const BLOCKING = new Set(['moderate', 'serious', 'critical']);

// About 50 s of CPU; the timeout is for a loaded machine shared by several agents (10 min seen at load 30).
describe('accessibility (axe)', { skip: engineSkip(engine), timeout: 1_200_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  let origin: string;
  /** The moderate, serious or critical violations found since the last assertNone(), as "screen: rule (impact, nodes) targets". */
  let blocking: string[] = [];

  const byId = (id: string) => page.getByTestId(id);

  /** Runs axe on the page as it is now, in the light and the dark variant, and prints what it found under `screen`. */
  async function check(screen: string): Promise<void> {
    for (const colorScheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme });
      const name = colorScheme === 'light' ? screen : `${screen} [dark]`;
      const { violations } = await new AxeBuilder({ page }).analyze();
      const found = violations.map((v) => `${v.id} (${v.impact ?? 'unknown'}, ${v.nodes.length})`);
      console.log(`axe ${name}: ${found.length ? found.join(', ') : 'no violations'}`);
      for (const v of violations) {
        if (!BLOCKING.has(v.impact ?? '')) continue;
        blocking.push(`${name}: ${v.id} (${v.impact}, ${v.nodes.length}) ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`);
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
  }

  function assertNone(): void {
    const found = blocking;
    blocking = [];
    assert.ok(found.length === 0, `serious or critical violations:\n${found.join('\n')}`);
  }

  /** Each Details page in the list on the left, in order. */
  async function checkDetails(state: string): Promise<void> {
    await byId('tb-details').click();
    await byId('page-overview').waitFor();
    const ids = await page.locator('[data-testid^="details-nav-"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')!.slice('details-nav-'.length)));
    assert.ok(ids.length >= 10, `Details lists ${ids.join(', ')}`);
    for (const id of ids) {
      await byId(`details-nav-${id}`).click();
      await page.locator(`[data-testid="details-nav-${id}"][aria-current="page"]`).waitFor();
      await check(`Details ${id} (${state})`);
    }
    await byId('details-close').click();
  }

  before(async () => {
    t = await TestHost.start();
    const devices = `<disk type='file' device='cdrom'><source file='${guest('tiny.iso')}'/><target dev='hdc' bus='ide'/><readonly/></disk>
    <interface type='network'><source network='default'/><model type='ne2k_pci'/></interface>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
    <memballoon model='virtio'/>`;
    await t.client.call('domain.define', { xml: sampleGuestXml(NAME, engine, devices) });
    const url = (await t.client.call('host.webShell', {})).url;
    origin = new URL(url).origin;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    // A context of its own, not browser.newPage()'s: AxeBuilder opens a blank page in the page's context.
    page = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    await page.goto(url);
    await byId(`domain-row-${NAME}`).click();
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('the manager and each page of the New VM wizard', async () => {
    await check('manager (shut off)');
    await byId('tb-new').click();
    await byId('newvm-dialog').waitFor();
    await check('wizard step 0 (method)');
    // The media page of each install method; the later pages are the same for all of them.
    for (const method of ['download', 'import', 'pv', 'pygrub', 'iso']) {
      await byId(`wizard-method-${method}`).check();
      await byId('wizard-next').click();
      await byId('wizard-step-1').waitFor();
      await check(`wizard step 1 (${method})`);
      if (method !== 'iso') {
        await byId('wizard-back').click();
        await byId('wizard-step-0').waitFor();
      }
    }
    await byId('browse-iso').click();
    await byId('file-chooser').waitFor();
    await chooserSettled(page);
    await check('wizard file chooser');
    await byId('chooser-path').fill(guest('tiny.iso'));
    await byId('chooser-use').click();
    await byId('newvm-error-iso').waitFor({ state: 'detached' });
    for (const step of [2, 3, 4]) {
      await byId('wizard-next').click();
      await byId(`wizard-step-${step}`).waitFor();
      await check(`wizard step ${step}`);
    }
    await page.keyboard.press('Escape');
    await byId('wizard-discard').waitFor();
    await check('wizard discard question');
    await byId('wizard-discard').click();
    await byId('newvm-dialog').waitFor({ state: 'detached' });
    assertNone();
  });

  it('every Details page, shut off', async () => {
    await checkDetails('shut off');
    assertNone();
  });

  it('the console and every Details page, running', async () => {
    // The console's screens do not depend on what the guest has booted to: running is enough.
    const { uuid } = (await t.client.call('domain.start', { domain: NAME })).domain;
    await byId(`domain-state-${NAME}`).filter({ hasText: 'Running' }).waitFor();
    await check('manager (running)');
    await checkDetails('running');
    await page.goto(`${origin}/#/console/${uuid}`);
    await page.locator('[data-testid="vnc-screen"] canvas').waitFor();
    await check('console display');
    await byId('tab-serial').click();
    await byId('serial-terminal').waitFor();
    await check('console serial');
    assertNone();
  });
});
