// The console in Chromium against the web shell, as virt-manager's: one running sample guest shared
// by every test here. Display (scaling, fullscreen, keyboard grab, Send Key, typing the clipboard,
// screenshot), Dump Memory…, its own window, the serial console in two viewers, a password-protected display,
// and the placeholder and reconnection when the guest stops and starts. On every engine: the same
// i686 sample guest, on v86 and on QEMU.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import WebSocket from 'ws';
import type { TraceRecord } from '../shared/api.js';
import { APP_ROOT } from '../main/common/paths.js';
import { ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, until } from '../main/testing/harness.js';
import { CHROMIUM_ARGS, canvasState, chooserSettled, serialText, typeOnKeyboard } from './browser.js';

const BOOT_TIMEOUT = 240_000;
const NAME = 'console-guest';
const SHOTS = path.join(APP_ROOT, 'test-results');

for (const engine of ENGINES) describe(`the console in Chromium (${engine})`, { skip: engineSkip(engine), timeout: 900_000 }, () => {
  let t: TestHost;
  let url: string;
  let origin: string;
  let uuid: string;
  let serial: SerialWatch;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let consoleWindow: Page | undefined;
  const trace: TraceRecord[] = [];

  const consoleUrl = (id: string): string => `${origin}/#/console/${id}`;

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    t = await TestHost.start();
    url = (await t.client.call('host.webShell', {})).url;
    origin = new URL(url).origin;
    const spec = { name: NAME, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } };
    await createOn(t.client, spec, engine);
    uuid = (await t.client.call('domain.info', { domain: NAME })).uuid;
    t.client.on('trace.record', ({ record }) => trace.push(record));
    await t.client.call('trace.subscribe', { domain: NAME, backlog: false });
    // The console is what is tested here, not the boot (the last test starts it cold again).
    serial = await t.bootOrRestore(NAME, BOOT_TIMEOUT);
    assert.equal((await t.client.call('domain.info', { domain: uuid })).engine, engine, 'the guest runs on the engine under test');
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1200, height: 800 }, acceptDownloads: true });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    page = await context.newPage();
    await page.goto(url); // Sets the token cookie.
    await page.goto(consoleUrl(uuid));
  });
  afterEach(async (ctx) => {
    // What each page showed at the end of each test, to look at when one fails.
    const slug = ctx.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
    await page?.screenshot({ path: path.join(SHOTS, `console-${engine}-${slug}.png`) }).catch(() => undefined);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('refuses the console page and its display without the token', async () => {
    assert.equal((await fetch(`${origin}/`)).status, 401);
    const ws = new WebSocket(`ws://${new URL(origin).host}/vnc/${uuid}`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => resolve(-1));
    });
    assert.equal(status, 401);
    assert.match(fs.readFileSync(t.paths.log, 'utf8'), new RegExp(`refused WebSocket GET /vnc/${uuid}`));
  });

  it('shows the running guest, scales to fit or 1:1 (remembered), and goes fullscreen', async () => {
    await page.getByTestId('console-view').waitFor();
    await page.locator('[data-testid="vnc-screen"] canvas').waitFor({ timeout: 30_000 });
    await until(async () => (await canvasState(page)).colours > 1, 30_000, 'a non-blank guest display');

    const fit = await canvasState(page);
    assert.ok(fit.width >= 640 && fit.height >= 400, `guest screen ${fit.width}x${fit.height}`);
    // Fit: the screen fills the display area's width or height (larger than the guest's 720x400).
    assert.ok(fit.shownWidth > fit.width, `scaled to fit: shown ${fit.shownWidth} wide for ${fit.width}`);

    await page.getByTestId('console-scale-menu').click();
    await page.getByTestId('scale-actual').click();
    await until(async () => (await canvasState(page)).shownWidth === fit.width, 5000, 'the 1:1 size');
    const actual = await canvasState(page);
    assert.equal(actual.shownHeight, actual.height);

    // Remembered for this domain: a reload comes back at 1:1.
    await page.reload();
    await page.locator('[data-testid="vnc-screen"] canvas').waitFor({ timeout: 30_000 });
    await until(async () => (await canvasState(page)).shownWidth === fit.width, 10_000, 'the remembered 1:1 size');
    await page.getByTestId('console-scale-menu').click();
    assert.equal(await page.getByTestId('scale-actual').getAttribute('aria-checked'), 'true');
    await page.getByTestId('scale-fit').click();
    await until(async () => (await canvasState(page)).shownWidth === fit.shownWidth, 5000, 'the fitted size again');

    await page.getByTestId('console-scale-menu').click();
    await page.getByTestId('console-fullscreen').click();
    await until(
      () => page.evaluate(() => (document.fullscreenElement as HTMLElement | null)?.dataset.testid === 'vnc-display'),
      5000,
      'the display in fullscreen',
    );
    try {
      // In fullscreen the display covers the screen, and the fitted guest spans it one way.
      const fills = async (): Promise<boolean> => {
        const screen = await page.evaluate(() => {
          const r = document.querySelector('[data-testid="vnc-display"]')!.getBoundingClientRect();
          return { w: window.innerWidth, h: window.innerHeight, dw: r.width, dh: r.height };
        });
        const c = await canvasState(page);
        return (
          screen.dw === screen.w &&
          screen.dh === screen.h &&
          (Math.abs(c.shownWidth - screen.w) <= 1 || Math.abs(c.shownHeight - screen.h) <= 1)
        );
      };
      await until(fills, 5000, 'the guest display to fill the screen');
    } finally {
      await page.getByTestId('leave-fullscreen').click();
    }
    await until(() => page.evaluate(() => document.fullscreenElement === null), 5000, 'fullscreen to end');
  });

  it('grabs the keyboard on click, sends Ctrl keys to the guest, keeps Ctrl+Shift+Q, releases on Ctrl+Alt', async () => {
    const canvas = page.locator('[data-testid="vnc-screen"] canvas');
    await canvas.click();
    await page.getByTestId('grab-indicator').waitFor();
    assert.match((await page.getByTestId('grab-indicator').textContent()) ?? '', /Keyboard grabbed — press Ctrl\+Alt to release/);
    assert.equal(await page.getByTestId('console-grab').getAttribute('aria-pressed'), 'true');

    // Ctrl+U reaches the guest's shell and kills the half-typed line.
    const from = serial.text.length;
    await typeOnKeyboard(page, 'echo WRONG');
    await page.keyboard.press('Control+u');
    await typeOnKeyboard(page, 'echo KEYS$((3+3))OK > /dev/ttyS0\n');
    await serial.wait(/KEYS6OK/, 30_000, from);
    assert.doesNotMatch(serial.text.slice(from), /WRONG/);

    // Domus's shortcut stays with Domus (web shell: the quit dialog), never the guest.
    await page.keyboard.press('Control+Shift+KeyQ');
    await page.getByTestId('quit-confirm').waitFor();
    await page.keyboard.press('Escape');
    await page.getByTestId('quit-confirm').waitFor({ state: 'detached' });

    await canvas.click();
    await page.getByTestId('grab-indicator').waitFor();
    await page.keyboard.down('Control');
    try {
      await page.keyboard.down('Alt');
      await page.getByTestId('grab-indicator').waitFor({ state: 'detached', timeout: 5000 });
    } finally {
      await page.keyboard.up('Alt');
      await page.keyboard.up('Control');
    }
    assert.equal(await page.getByTestId('console-grab').getAttribute('aria-pressed'), 'false');

    // The toolbar toggle grabs too.
    await page.getByTestId('console-grab').click();
    await page.getByTestId('grab-indicator').waitFor();
    await page.getByTestId('console-grab').click();
    await page.getByTestId('grab-indicator').waitFor({ state: 'detached' });
  });

  it('types the clipboard into the guest, and falls back to a paste box where the clipboard is refused', async () => {
    let from = serial.text.length;
    await page.evaluate(() => navigator.clipboard.writeText('echo CLIP$((3*4))Z > /dev/ttyS0\r\n'));
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'echo CLIP$((3*4))Z > /dev/ttyS0\r\n');
    const seen = trace.length;
    await page.getByTestId('console-sendkey').click();
    await page.getByTestId('type-clipboard').click();
    const typed = (): TraceRecord | undefined => trace.slice(seen).find((r) => r.op === 'domain.sendKeys' && r.kind === 'request');
    try {
      await until(() => typed() !== undefined, 10_000, 'domain.sendKeys in the trace');
    } catch (err) {
      throw new Error(`${(err as Error).message}; the page says: ${(await page.getByTestId('toast').allTextContents()).join(' | ')}`);
    }
    assert.equal(typed()!.ok, true, typed()!.error);
    await serial.wait(/CLIP12Z/, 30_000, from);

    // A browser profile that was not granted the clipboard.
    const bare = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    try {
      const other = await bare.newPage();
      await other.goto((await t.client.call('host.webShell', {})).url); // a one-time address of its own
      await other.goto(consoleUrl(uuid));
      await other.getByTestId('console-sendkey').click();
      await other.getByTestId('type-clipboard').click();
      await other.getByTestId('type-text-box').fill('echo BOX$((7*6))Q > /dev/ttyS0\n');
      from = serial.text.length;
      await other.getByTestId('type-text-submit').click();
      await serial.wait(/BOX42Q/, 30_000, from);
    } finally {
      await bare.close();
    }
  });

  it('sends Ctrl+Alt+F2 and Ctrl+Alt+F1 from the Send Key menu: domain.sendKey reaches the host and the guest switches console', async () => {
    const sent = async (combo: string, keys: string[]): Promise<void> => {
      const seen = trace.length;
      await page.getByTestId('console-sendkey').click();
      await page.getByTestId(`sendkey-${combo}`).click();
      await until(() => trace.slice(seen).some((r) => r.op === 'domain.sendKey' && r.kind === 'request'), 10_000, 'domain.sendKey in the trace');
      const record = trace.slice(seen).find((r) => r.op === 'domain.sendKey')!;
      assert.equal(record.client?.kind, 'web');
      assert.deepEqual((record.args as { keycodes: string[] }).keycodes, keys);
      assert.equal(record.ok, true, `domain.sendKey failed: ${record.error}`);
    };
    // Opening /dev/tty2 allocates the guest's second virtual console (the kernel ignores a switch to
    // one that does not exist); the active one is in sysfs.
    await serial.sh('echo ON-TTY2 > /dev/tty2');
    const activeVt = async (): Promise<string> => (await serial.sh('cat /sys/class/tty/tty0/active')).trim();
    await sent('ctrl-alt-f2', ['KEY_LEFTCTRL', 'KEY_LEFTALT', 'KEY_F2']);
    await until(async () => (await activeVt()) === 'tty2', 15_000, 'the guest to switch to tty2');
    await sent('ctrl-alt-f1', ['KEY_LEFTCTRL', 'KEY_LEFTALT', 'KEY_F1']);
    await until(async () => (await activeVt()) === 'tty1', 15_000, 'the guest back on tty1');
  });

  it('saves a screenshot as a PNG of the guest screen', async () => {
    const { width, height } = await canvasState(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('console-screenshot').click()]);
    assert.match(download.suggestedFilename(), new RegExp(`^${NAME}-.*\\.png$`));
    const file = await download.path();
    const png = PNG.sync.read(fs.readFileSync(file));
    assert.deepEqual([png.width, png.height], [width, height]);
    const colours = new Set<number>();
    for (let i = 0; i < png.data.length; i += 4 * 13) colours.add(png.data.readUInt32BE(i));
    assert.ok(colours.size > 1, 'the screenshot is blank');
  });

  it("dumps the guest's memory from the Shut Down menu (Dump Memory…): the host's file picker, options as the host takes them, errors in place, the file and its size", async () => {
    await page.getByTestId('console-shutdown-menu').click();
    await page.getByTestId('menu-dump').click();
    const field = page.getByTestId('dump-path');
    await until(async () => (await field.inputValue()) !== '', 10_000, 'a suggested path');
    assert.match(await field.inputValue(), new RegExp(`^/.*/${NAME}-\\d{8}-\\d{6}\\.core$`));
    // Live or Reset rule Crash out, and Crash rules both out (domain.coreDump's refinements).
    await page.getByTestId('dump-live').check();
    assert.equal(await page.getByTestId('dump-crash').isDisabled(), true);
    await page.getByTestId('dump-live').uncheck();
    await page.getByTestId('dump-crash').check();
    assert.deepEqual([await page.getByTestId('dump-live').isDisabled(), await page.getByTestId('dump-reset').isDisabled()], [true, true]);
    await page.getByTestId('dump-crash').uncheck();
    await page.getByTestId('dump-live').check();

    await field.fill('relative.core');
    await page.getByTestId('dump-start').click();
    assert.equal(await page.getByTestId('dump-error').textContent(), 'Give an absolute path on this computer.');
    await field.fill(path.join(t.home, 'no', 'such', 'x.core'));
    await page.getByTestId('dump-start').click();
    await until(async () => /directory '.*\/no\/such' does not exist/.test((await page.getByTestId('dump-error').textContent()) ?? ''), 30_000, "the host's error in the dialog");

    const file = path.join(t.home, 'dialog.core');
    await page.getByTestId('dump-browse').click();
    await chooserSettled(page);
    await page.getByTestId('chooser-path').fill(file);
    await page.getByTestId('chooser-use').click();
    assert.equal(await field.inputValue(), file);
    await page.getByTestId('dump-start').click();
    const done = page.getByTestId('dump-done');
    await done.waitFor({ timeout: 60_000 });
    const size = fs.statSync(file).size;
    assert.ok(size > 128 * 1024 * 1024, `a core of a 128 MiB guest has its RAM (${size} bytes)`);
    assert.match((await done.textContent()) ?? '', new RegExp(`^Written to ${file.replace(/\./g, '\\.')} on this computer \\(\\d+\\.\\d MiB\\)\\.$`));
    const head = Buffer.alloc(4);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    assert.equal(head.toString('latin1'), '\x7fELF');
    assert.equal(await page.getByTestId('dump-error').count(), 0);
    assert.equal((await t.client.call('domain.info', { domain: uuid })).state, 'running');
    await page.getByTestId('dump-close').click();
    assert.equal(await page.getByTestId('dump-dialog').count(), 0);
    fs.rmSync(file);
  });

  it('opens the console in a window of its own', async () => {
    const [win] = await Promise.all([context.waitForEvent('page'), page.getByTestId('console-new-window').click()]);
    consoleWindow = win;
    await win.waitForLoadState();
    assert.match(win.url(), new RegExp(`#/console/${uuid}/window$`));
    await win.getByTestId('console-view').waitFor();
    assert.equal(await win.getByTestId('console-back').count(), 0, 'a console window has no way back to the list');
    await win.locator('[data-testid="vnc-screen"] canvas').waitFor({ timeout: 30_000 });
    await until(async () => (await canvasState(win)).colours > 1, 30_000, 'the guest display in the console window');
    assert.equal(await win.title(), `${NAME} – Domus`);
    // The main window went back to the list of machines.
    await page.getByTestId(`domain-row-${NAME}`).waitFor();
  });

  it('shows the serial console in two viewers at once, with copy and paste', async () => {
    const win = consoleWindow!;
    await page.getByTestId(`domain-row-${NAME}`).dblclick();
    for (const p of [page, win]) {
      await p.getByTestId('tab-serial').click();
      await until(async () => (await serialText(p)).includes('domus#'), 30_000, 'the serial backlog with the shell prompt');
    }
    await win.locator('[data-testid="serial-terminal"] .xterm-helper-textarea').focus();
    await win.keyboard.type('echo TWO$((4*5))V\n', { delay: 20 });
    for (const p of [page, win]) await until(async () => (await serialText(p)).includes('TWO20V'), 30_000, 'TWO20V in both viewers');

    // Copy: select all, Ctrl+Shift+C.
    await page.locator('[data-testid="serial-terminal"]').click({ button: 'right' });
    await page.getByTestId('serial-select-all').click();
    await page.keyboard.press('Control+Shift+KeyC');
    await until(async () => (await page.evaluate(() => navigator.clipboard.readText())).includes('TWO20V'), 5000, 'the selection on the clipboard');

    // Paste from the context menu.
    await page.evaluate(() => navigator.clipboard.writeText('echo PASTE$((1+1))D\n'));
    await page.locator('[data-testid="serial-terminal"]').click({ button: 'right' });
    await page.getByTestId('serial-paste').click();
    for (const p of [page, win]) await until(async () => (await serialText(p)).includes('PASTE2D'), 30_000, 'PASTE2D in both viewers');
  });

  it('connects the console of a display protected by a VNC password without asking (the host answers for its viewers)', async () => {
    const xml = `<domain type='${engine}'><name>locked</name><memory unit='MiB'>128</memory><os><type>hvm</type><kernel>${guest('vmlinuz')}</kernel><initrd>${guest('initrd.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline></os><devices><graphics type='vnc' passwd='hunter2'/></devices></domain>`;
    const locked = await t.client.call('domain.createTransient', { xml, paused: true });
    try {
      const p = await context.newPage();
      await p.goto(consoleUrl(locked.domain.uuid));
      await p.locator('[data-testid="vnc-screen"] canvas').waitFor({ timeout: 30_000 });
      await until(async () => (await canvasState(p)).width > 0, 30_000, 'the protected display to connect');
      assert.equal(await p.getByTestId('vnc-password').count(), 0);
      await p.close();
    } finally {
      await t.client.call('domain.destroy', { domain: locked.domain.uuid });
    }
  });

  it('gives up on a display that accepts but does not answer, says so, and connects once it does', async () => {
    // A stopped engine process still accepts connections on its display socket (the kernel queues
    // them) but sends no handshake: the viewer must not wait forever.
    const pid = t.runnerPid(uuid)!;
    const p = await context.newPage();
    process.kill(pid, 'SIGSTOP');
    try {
      await p.goto(consoleUrl(uuid));
      await p.getByTestId('vnc-failure').filter({ hasText: 'did not answer within 10 s' }).waitFor({ timeout: 20_000 });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until(async () => (await canvasState(p)).width > 0, 30_000, 'the display to connect once the engine runs again');
    await p.close();
  });

  it('shows a placeholder while the guest is off and reconnects when it starts', async () => {
    const win = consoleWindow!;
    await win.getByTestId('tab-display').click();
    await t.client.call('domain.destroy', { domain: uuid });
    await win.getByTestId('display-not-running').waitFor({ timeout: 15_000 });
    await win.getByTestId('tab-serial').click();
    await win.getByTestId('serial-not-running').waitFor();
    await win.getByTestId('tab-display').click();
    await t.client.call('domain.start', { domain: uuid });
    await win.getByTestId('display-not-running').waitFor({ state: 'detached', timeout: 15_000 });
    const why = async () => (await win.getByTestId('vnc-failure').textContent({ timeout: 100 }).catch(() => null)) ?? 'no failure shown';
    await until(async () => (await canvasState(win)).width > 0, 60_000, 'the restarted guest\'s display to connect').catch(async (err: Error) => {
      throw new Error(`${err.message} (the console says: ${await why()})`);
    });
    await until(async () => (await canvasState(win)).colours > 1, BOOT_TIMEOUT, 'the restarted guest to draw on its display');
  });
});
