// End to end in Chromium against the web shell: the Migrate dialog moves a running guest between
// two libvirt connections (two private libvirtds, libvirt's peer-to-peer migration). From the Shut
// Down menu, the keyboard: focus on the first field, Enter migrates, Escape closes and focus returns
// to the menu button. A destination lacking the guest's disk refuses and the dialog shows why; given
// the disk, progress shows while it copies, then the downtime, and the guest runs at the destination.
import assert from 'node:assert/strict';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { connectHost } from '../main/cli/connect.js';
import { SerialWatch, TestHost, engineSkip, guestsBuilt, sampleGuestXml } from '../main/testing/harness.js';
import { startLibvirtd, type Libvirtd } from '../main/testing/libvirtd.js';
import { openWebShell } from './browser.js';

const NAME = `e2e-mig-${process.pid}`;
const DISK = '/var/lib/libvirt/images/only-here.img';
const diskOf = (d: Libvirtd): string => path.join(d.dir, 'tree1', 'images', 'only-here.img');

/** libvirt sends the migration to this machine's hostname: it must be loopback (the network rule). */
async function hostnameSkip(): Promise<string | false> {
  const { address } = await dns.lookup(os.hostname(), { family: 4 }).catch(() => ({ address: '' }));
  return address.startsWith('127.') ? false : `libvirt migrates to the hostname ${os.hostname()}, which is not loopback here`;
}

const skip = guestsBuilt() ? engineSkip('libvirt') || (await hostnameSkip()) : 'sample guests not built';

describe('the Migrate dialog in Chromium', { timeout: 600_000, skip }, () => {
  let t: TestHost;
  let src: Libvirtd;
  let dst: Libvirtd;
  let browser: Browser;
  let page: Page;
  const byId = (id: string) => page.getByTestId(id);
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid'));

  before(async () => {
    [src, dst] = await Promise.all([startLibvirtd(), startLibvirtd()]);
    t = await TestHost.start();
    for (const d of [src, dst]) await t.client.call('connection.add', { uri: d.uri, autoconnect: true });
    fs.mkdirSync(path.dirname(diskOf(src)), { recursive: true });
    fs.writeFileSync(diskOf(src), Buffer.alloc(1 << 20));
    const disk = `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${DISK}'/><target dev='vdb' bus='virtio'/><readonly/></disk>`;
    // Transient: once migrated it is gone from the source, so its row is the destination's.
    await t.client.call('domain.createTransient', { xml: sampleGuestXml(NAME, 'qemu', disk) }, { connection: src.uri });
    const client = await connectHost(t.paths, false, src.uri);
    try {
      await (await SerialWatch.open(client, NAME)).wait(/DOMUS-GUEST-READY/, 300_000);
    } finally {
      client.close();
    }
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  async function openDialog(): Promise<void> {
    await byId(`domain-row-${NAME}`).click();
    await byId('tb-shutdown-menu').click();
    await byId('menu-migrate').click();
    await byId('migrate-dialog').waitFor();
    assert.equal(await focused(), 'migrate-destination', 'focus is on the first field');
    await byId('migrate-destination').selectOption(dst.uri);
  }

  it("shows the destination's refusal; Escape closes and focus returns to the menu button", async () => {
    await openDialog();
    await byId('migrate-destination').press('Enter');
    await byId('migrate-error').waitFor({ timeout: 60_000 });
    assert.match((await byId('migrate-error').textContent()) ?? '', /only-here\.img.*No such file or directory/);
    assert.match((await src.virsh('domstate', NAME)).stdout, /running/);
    assert.equal((await dst.virsh('list', '--all', '--name')).stdout.trim(), '');
    await page.keyboard.press('Escape');
    await byId('migrate-dialog').waitFor({ state: 'detached' });
    assert.equal(await focused(), 'tb-shutdown-menu');
  });

  it('migrates live with progress, then shows the downtime; the guest runs at the destination', async () => {
    fs.mkdirSync(path.dirname(diskOf(dst)), { recursive: true });
    fs.copyFileSync(diskOf(src), diskOf(dst));
    await openDialog();
    assert.equal(await byId('migrate-live').isChecked(), true);
    // 4 MiB/s: the guest's ~15 MiB take a few seconds, so the progress is seen.
    await byId('migrate-bandwidth').fill('4');
    await byId('migrate-bandwidth').press('Enter');
    await byId('migrate-progress').waitFor();
    await page.getByText('Copying memory while the guest runs').waitFor({ timeout: 30_000 });
    assert.match((await byId('migrate-figures').textContent()) ?? '', /remaining/);
    // Escape while it runs asks first, and Keep Open keeps it.
    await page.keyboard.press('Escape');
    await byId('migrate-keep-open').click();
    await byId('migrate-done').waitFor({ timeout: 120_000 });
    assert.match((await byId('migrate-done').textContent()) ?? '', /Downtime \d+(\.\d)? ms, total [\d.]+ (ms|s)/);
    assert.match((await dst.virsh('domstate', NAME)).stdout, /running/);
    assert.doesNotMatch((await src.virsh('list', '--all', '--name')).stdout, new RegExp(NAME));
    await byId('migrate-close').click();
    await byId('migrate-dialog').waitFor({ state: 'detached' });
    // The row is the destination's now: the source's transient domain left the list.
    await page.waitForFunction((id) => document.querySelectorAll(`[data-testid="${id}"]`).length === 1, `domain-row-${NAME}`, { timeout: 10_000 });
    assert.match((await page.getByTestId(`domain-row-${NAME}`).textContent()) ?? '', /running/);
  });
});
