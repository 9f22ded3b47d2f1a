// The Electron shell, end to end, where an Electron binary exists (none can be fetched on the
// development machines, so there this file reports itself skipped and the web-shell tests cover the
// renderer). It checks what only Electron does: the utility-process host, the MessagePort API channel,
// the sandboxed preload, and quitting through the host's stop policies.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { APP_ROOT, hostAnswers, hostPaths } from '../main/common/paths.js';
import { runCli, until } from '../main/testing/harness.js';

function electronBinary(): string | undefined {
  try {
    const dir = path.join(APP_ROOT, 'node_modules', 'electron');
    const bin = path.join(dir, 'dist', fs.readFileSync(path.join(dir, 'path.txt'), 'utf8').trim());
    return fs.existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

const electron = electronBinary();

describe('Electron shell', { skip: electron ? false : 'no Electron binary in node_modules/electron/dist', timeout: 180_000 }, () => {
  let home: string;
  let app: ElectronApplication;
  let win: Page;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-electron-'));
    app = await _electron.launch({
      executablePath: electron,
      args: [APP_ROOT, '--no-sandbox', '--disable-gpu'],
      env: { ...process.env, DOMUS_HOME: home, DOMUS_TEST: '1' },
    });
    win = await app.firstWindow();
  });
  after(async () => {
    await app?.close().catch(() => undefined);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('opens the manager, fed by the utility-process host over a MessagePort', async () => {
    await win.waitForSelector('[data-testid="manager-view"]');
    assert.equal(await win.title(), 'Domus');
    // The first-run cards come from host.samples: an API round trip over the port.
    await win.waitForSelector('[data-testid="first-run"]');
    assert.ok(await hostAnswers(hostPaths(home).socket), 'the utility process serves the unix socket too');
  });

  it('exposes only the port request to the page, no Node or ipcRenderer', async () => {
    const shape = await win.evaluate(() => {
      const w = window as unknown as Record<string, unknown>;
      const bridge = w.domusBridge as Record<string, unknown> | undefined;
      return { keys: bridge ? Object.keys(bridge).sort() : [], require: typeof w.require, process: typeof w.process };
    });
    assert.deepEqual(shape, { keys: ['requestPort', 'shell'], require: 'undefined', process: 'undefined' });
  });

  it('shows a domain the CLI defines, through the same host', async () => {
    const iso = path.join(APP_ROOT, 'build', 'guests', 'tiny.iso');
    const xml = `<domain type="v86"><name>from-cli</name><memory unit="MiB">128</memory><os><type>hvm</type></os>
      <devices><disk type="file" device="cdrom"><source file="${iso}"/><target dev="hdc" bus="ide"/><readonly/></disk></devices></domain>`;
    const file = path.join(home, 'from-cli.xml');
    fs.writeFileSync(file, xml);
    const r = await runCli(home, ['define', file]);
    assert.equal(r.code, 0, r.stderr);
    await win.waitForSelector('[data-testid="domain-row-from-cli"]');
  });

  it('quits through the host, which then stops answering', async () => {
    await app.close();
    await until(async () => !(await hostAnswers(hostPaths(home).socket)), 15_000, 'host stopped after quit');
  });
});
