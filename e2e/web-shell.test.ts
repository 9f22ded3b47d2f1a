// End to end in Chromium against the web shell: open the app, create a domain from the sample
// guest, run it, watch the console canvas change, type a command, see its output on serial.
// Also: requests without the session cookie are refused, a one-time address works once, and the
// address `domus webshell --open` puts in Chromium's command line is spent once the page has loaded.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { chromiumArgs } from '../main/cli/browser.js';
import { APP_ROOT } from '../main/common/paths.js';
import { processesMatching } from '../main/testing/hang-report.js';
import { TestHost, until } from '../main/testing/harness.js';
import { CHROMIUM_ARGS, canvasDigest, canvasState, serialText, typeOnKeyboard } from './browser.js';

const SHOTS = path.join(APP_ROOT, 'test-results');

/** The status a WebSocket handshake gets (101 when it opens). */
function upgradeStatus(address: string, headers: Record<string, string> = {}): Promise<number> {
  const ws = new WebSocket(address, { headers });
  return new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('error', () => resolve(-1));
  });
}

describe('web shell in Chromium', { timeout: 300_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  const oneTimeUrl = async (): Promise<string> => (await t.client.call('host.webShell', {})).url;

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    t = await TestHost.start();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('refuses HTTP and WebSocket requests without the session cookie; a one-time address works once', async () => {
    const url = await oneTimeUrl();
    const base = new URL(url);
    const plain = `${base.origin}/`;
    assert.equal((await fetch(plain)).status, 401);
    assert.equal((await fetch(`${base.origin}/?token=wrong`)).status, 401);
    assert.equal((await fetch(`${base.origin}/assets/x.js`)).status, 401);
    assert.equal(await upgradeStatus(`ws://${base.host}/api`), 401);
    // The one-time token opens no WebSocket, not even before its use.
    assert.equal(await upgradeStatus(`ws://${base.host}/api${base.search}`), 401);

    // First use: the session cookie and a redirect that drops the token from the address.
    const first = await fetch(url, { redirect: 'manual' });
    assert.equal(first.status, 303);
    assert.equal(first.headers.get('location'), '/');
    const setCookie = first.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^domus_token=[\w-]+; HttpOnly; SameSite=Strict; Path=\/$/);
    assert.ok(!setCookie.includes(base.searchParams.get('token')!), 'the session secret is not the one-time token');
    const cookie = setCookie.split(';')[0];
    assert.equal((await fetch(plain, { headers: { cookie } })).status, 200);
    assert.equal(await upgradeStatus(`ws://${base.host}/api`, { cookie }), 101);

    // Second use: refused, as is the spent token sent as the cookie.
    const again = await fetch(url, { redirect: 'manual' });
    assert.equal(again.status, 401);
    assert.match(await again.text(), /already used or has expired; `domus webshell` prints a new one/);
    assert.equal((await fetch(plain, { headers: { cookie: `domus_token=${base.searchParams.get('token')}` } })).status, 401);

    const log = fs.readFileSync(t.paths.log, 'utf8');
    assert.match(log, /web shell: refused request GET \/ from 127\.0\.0\.1: missing or wrong token/);
    assert.match(log, /refused WebSocket GET \/api/);
    assert.match(log, /refused request GET \/\?token=\*\*\* from 127\.0\.0\.1: one-time address already used/);
  });

  it('`domus webshell` prints a new one-time address at each call', async () => {
    const first = await t.cli(['webshell']);
    const second = await t.cli(['webshell']);
    assert.equal(first.code, 0, first.stderr);
    const [a, b] = [first.stdout.trim(), second.stdout.trim()];
    assert.match(a, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+$/);
    assert.notEqual(a, b);
    for (const url of [b, a]) assert.equal((await fetch(url, { redirect: 'manual' })).status, 303);
    assert.equal((await fetch(a, { redirect: 'manual' })).status, 401);
  });

  it('--open: what Chromium\'s command line holds opens nothing once the page has loaded; the page works', async () => {
    const url = await oneTimeUrl();
    const base = new URL(url);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-chromium-'));
    // The arguments --open uses, plus what a machine without a display needs.
    const { args } = chromiumArgs(url, profile);
    const child = spawn('/usr/bin/chromium', [...args, '--headless', '--disable-gpu', '--remote-debugging-port=0'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
          if (m) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`Chromium exited with code ${code}: ${err}`)));
      });
      const cdp = await chromium.connectOverCDP(endpoint);
      try {
        const context = cdp.contexts()[0];
        await until(() => context.pages().some((p) => p.url().startsWith(base.origin)), 30_000, 'the app page');
        const app = context.pages().find((p) => p.url().startsWith(base.origin))!;
        // The page works (its API WebSocket answers: the sample guests are listed) and its address has no token.
        await app.getByTestId('sample-pv').waitFor({ timeout: 30_000 });
        assert.equal(app.url(), `${base.origin}/`);

        const cmdline = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
        const seen = cmdline.find((a) => a.startsWith('--app='))?.slice('--app='.length);
        assert.equal(seen, url, "the browser's command line holds the one-time address");
        const spent = new URL(seen);
        const token = spent.searchParams.get('token')!;
        assert.equal((await fetch(seen, { redirect: 'manual' })).status, 401);
        assert.equal((await fetch(`${spent.origin}/`, { headers: { cookie: `domus_token=${token}` } })).status, 401);
        assert.equal(await upgradeStatus(`ws://${spent.host}/api${spent.search}`), 401);
        assert.equal(await upgradeStatus(`ws://${spent.host}/api`, { cookie: `domus_token=${token}` }), 401);

        // The session secret itself is in no process's command line.
        const session = (await context.cookies(base.origin)).find((c) => c.name === 'domus_token')?.value;
        assert.ok(session && session !== token);
        assert.deepEqual(processesMatching((cmd) => cmd.includes(session)), [], 'no process has the session secret in its command line');
      } finally {
        await cdp.close();
      }
    } finally {
      // The whole process group: Chromium's helpers (zygote, renderers) write the profile too.
      const exited = new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
      await until(() => processesMatching((cmd) => cmd.includes(profile)).length === 0, 10_000, "Chromium's helpers to exit");
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  });

  it('creates the sample domain, runs it and uses its console', async () => {
    await page.goto(await oneTimeUrl());
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
    // Drawn, not merely changing: the boot may be over (its last screen still) before the canvas shows.
    await until(async () => (await canvasState(page)).colours > 1, 60_000, 'the guest display on the console canvas');

    await page.getByTestId('tab-serial').click();
    await page.getByTestId('serial-terminal').waitFor();
    await until(async () => (await serialText(page)).includes('DOMUS-GUEST-READY'), 120_000, 'DOMUS-GUEST-READY in the serial tab');

    // A command typed on the framebuffer console's keyboard (tty1) shows its output on serial.
    await page.getByTestId('tab-display').click();
    await canvas.click();
    const before = await canvasDigest(page);
    await typeOnKeyboard(page, 'echo GUI$((6*7))OK > /dev/ttyS0\n');
    // The display is live: what was typed shows on tty1.
    await until(async () => (await canvasDigest(page)) !== before, 30_000, 'the typed command on the console canvas');
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
