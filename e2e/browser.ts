// What the Playwright tests share: how Chromium is started, typing as a person does, screenshots.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { APP_ROOT } from '../main/common/paths.js';
import type { ApiClient } from '../shared/client.js';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** Debian's Chromium on the host's web shell (its one-time address), in a 1200×800 window. */
export async function openWebShell(client: ApiClient): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  await page.goto((await client.call('host.webShell', {})).url);
  return { browser, page };
}

/** A request the page sent to the host's API, as the WebSocket carried it. */
export interface SentRequest {
  method: string;
  params: unknown;
  connection?: string;
}

/** Records every API request the page sends from now on (pages opened later included). */
export function recordApiRequests(page: Page): SentRequest[] {
  const sent: SentRequest[] = [];
  page.on('websocket', (ws) => {
    if (!ws.url().endsWith('/api')) return;
    ws.on('framesent', ({ payload }) => {
      const msg = JSON.parse(String(payload)) as Partial<SentRequest>;
      if (msg.method) sent.push({ method: msg.method, params: msg.params, connection: msg.connection });
    });
  });
  return sent;
}

/**
 * Types as a person does on a PC keyboard: Shift held for shifted characters. (Playwright's
 * keyboard.type sends 'G' or '$' without a Shift key event; a console that forwards scancodes,
 * as noVNC with QEMU's extended key events does, then types 'g' and '4'.)
 */
export async function typeOnKeyboard(page: Page, text: string): Promise<void> {
  for (const ch of text) {
    const shifted = /[A-Z~!@#$%^&*()_+{}|:"<>?]/.test(ch);
    if (shifted) await page.keyboard.down('Shift');
    await page.keyboard.press(ch === '\n' ? 'Enter' : ch);
    if (shifted) await page.keyboard.up('Shift');
  }
}

/** The text the serial tab's terminal shows. */
export async function serialText(page: Page): Promise<string> {
  return (await page.locator('[data-testid="serial-terminal"] .xterm-rows').textContent()) ?? '';
}

/** The guest's canvas as noVNC draws it: intrinsic size, size on the page, and whether it shows anything. */
export async function canvasState(page: Page): Promise<{ width: number; height: number; shownWidth: number; shownHeight: number; colours: number }> {
  return page.locator('[data-testid="vnc-screen"] canvas').evaluate((c: HTMLCanvasElement) => {
    const rect = c.getBoundingClientRect();
    // Before the first framebuffer update the canvas has no size yet.
    const data = (c.width && c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data) || new Uint8ClampedArray();
    const seen = new Set<number>();
    for (let i = 0; i < data.length && seen.size < 8; i += 4 * 7) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return { width: c.width, height: c.height, shownWidth: Math.round(rect.width), shownHeight: Math.round(rect.height), colours: seen.size };
  });
}

/** A digest of the guest's canvas pixels alone (a screenshot would also take what is drawn over it). */
export async function canvasDigest(page: Page): Promise<string> {
  return page.locator('[data-testid="vnc-screen"] canvas').evaluate((c: HTMLCanvasElement) => {
    const data = (c.width && c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data) || new Uint8ClampedArray();
    let h = 0x811c9dc5;
    for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], 0x01000193);
    return `${c.width}x${c.height}:${(h >>> 0).toString(16)}`;
  });
}

/** Where e2e tests keep their screenshots, to be looked at. */
export const SHOTS = path.join(APP_ROOT, 'test-results');
/** The window sizes screenshots are taken at: a small laptop and a large monitor. */
const SHOT_SIZES = [
  { width: 1024, height: 640 },
  { width: 1920, height: 1080 },
] as const;

/** Screenshots of what `page` shows at each of SHOT_SIZES, as SHOTS/NAME-WIDTH.png; the viewport is put back after. */
export async function screenshotSizes(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  const was = page.viewportSize();
  for (const size of SHOT_SIZES) {
    await page.setViewportSize(size);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${size.width}.png`) });
  }
  if (was) await page.setViewportSize(was);
}

/**
 * Waits until the host-file chooser has listed its first folder and filled in its path field:
 * text typed before that can be mixed with the path it fills in (fill selects the field's text, the
 * chooser then sets it, and the typed text lands after it).
 */
export async function chooserSettled(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const list = document.querySelector('[data-testid="file-chooser"] ul[aria-busy]');
    const field = document.querySelector<HTMLInputElement>('[data-testid="chooser-path"]');
    return list !== null && list.getAttribute('aria-busy') !== 'true' && Boolean(field?.value);
  });
}
