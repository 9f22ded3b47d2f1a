// End to end in Chromium against the web shell: open the app, create a domain from the sample
// guest, run it, watch the console canvas change, type a command, see its output on serial.
// Also: requests without the per-start token are refused.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { APP_ROOT } from '../main/host/paths.js';
import { TestHost, until } from '../main/testing/harness.js';
import { CHROMIUM_ARGS, serialText, typeOnKeyboard } from './browser.js';

const SHOTS = path.join(APP_ROOT, 'test-results');

describe('web shell in Chromium', { timeout: 300_000 }, () => {
  let t: TestHost;
  let url: string;
  let browser: Browser;
  let page: Page;

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    t = await TestHost.start();
    url = (await t.client.call('host.webShell', {})).url;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('refuses HTTP and WebSocket requests without the token', async () => {
    const base = new URL(url);
    const plain = `${base.origin}/`;
    assert.equal((await fetch(plain)).status, 401);
    assert.equal((await fetch(`${base.origin}/?token=wrong`)).status, 401);
    assert.equal((await fetch(`${base.origin}/assets/x.js`)).status, 401);
    const ws = new WebSocket(`ws://${base.host}/api`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    assert.equal(status, 401);
    assert.equal((await fetch(url)).status, 200);
    const log = fs.readFileSync(t.paths.log, 'utf8');
    assert.match(log, /web shell: refused request GET \/ from 127\.0\.0\.1/);
    assert.match(log, /refused WebSocket GET \/api/);
  });

  it('creates the sample domain, runs it and uses its console', async () => {
    await page.goto(url);
    await page.getByTestId('sample-pv').click();
    const row = page.getByTestId('domain-row-sample-pv');
    await row.waitFor();
    await row.click();
    await page.getByTestId('tb-run').click();
    await page.getByTestId('domain-state-sample-pv').filter({ hasText: 'running' }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'manager-running.png') });

    await page.getByTestId('tb-console').click();
    await page.getByTestId('console-view').waitFor();
    const canvas = page.locator('[data-testid="vnc-screen"] canvas');
    await canvas.waitFor({ timeout: 30_000 });
    const hash = async (): Promise<string> => crypto.createHash('sha1').update(await canvas.screenshot()).digest('hex');
    const first = await hash();
    await until(async () => (await hash()) !== first, 60_000, 'the console canvas to change as the guest boots');

    await page.getByTestId('tab-serial').click();
    await page.getByTestId('serial-terminal').waitFor();
    await until(async () => (await serialText(page)).includes('DOMUS-GUEST-READY'), 120_000, 'DOMUS-GUEST-READY in the serial tab');

    // A command typed on the framebuffer console's keyboard (tty1) shows its output on serial.
    await page.getByTestId('tab-display').click();
    await canvas.click();
    await typeOnKeyboard(page, 'echo GUI$((6*7))OK > /dev/ttyS0\n');
    await page.getByTestId('tab-serial').click();
    await until(async () => (await serialText(page)).includes('GUI42OK'), 30_000, 'GUI42OK in the serial tab');

    // And one typed into the serial terminal itself.
    await page.locator('[data-testid="serial-terminal"] .xterm-helper-textarea').focus();
    await page.keyboard.type('echo SER$((5*5))X\n', { delay: 20 });
    await until(async () => (await serialText(page)).includes('SER25X'), 30_000, 'SER25X in the serial tab');
    await page.screenshot({ path: path.join(SHOTS, 'console-serial.png') });

    await page.getByTestId('tab-display').click();
    await page.screenshot({ path: path.join(SHOTS, 'console-display.png') });
  });
});
