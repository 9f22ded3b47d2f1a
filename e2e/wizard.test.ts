// The New VM wizard end to end in Chromium against the web shell: inline validation (engine
// limits, a 64-bit ISO on v86, a missing file, drop in the browser), OS downloads from a local
// HTTP server (server error, bad checksum, cancel, resume, success with "customize before
// install"), and one guest per install method (ISO via the host file chooser, imported disk, PV
// direct boot, pygrub), all booting to DOMUS-GUEST-READY together to share the slow part.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { APP_ROOT } from '../main/common/paths.js';
import { guest, guestsBuilt, SAMPLE_CMDLINE, SerialWatch, TestHost } from '../main/testing/harness.js';
import { startImageServer, type ImageServer } from '../main/testing/image-server.js';
import { makeOsinfoIsos } from '../main/testing/osinfo-isos.js';
import { CHROMIUM_ARGS } from './browser.js';

const SHOTS = path.join(APP_ROOT, 'test-results');

/** An ISO whose isolinux.cfg boots a kernel with an x86_64 boot header (XLF_KERNEL_64). */
function make64BitIso(dir: string): string {
  const src = path.join(dir, 'x64src');
  fs.mkdirSync(path.join(src, 'isolinux'), { recursive: true });
  fs.mkdirSync(path.join(src, 'boot'), { recursive: true });
  const header = Buffer.alloc(0x400);
  header.write('HdrS', 0x202, 'latin1');
  header.writeUInt16LE(0x020f, 0x206);
  header.writeUInt16LE(0x0003, 0x236);
  fs.writeFileSync(path.join(src, 'boot', 'vmlinuz'), header);
  fs.writeFileSync(path.join(src, 'isolinux', 'isolinux.cfg'), 'DEFAULT x\nLABEL x\n  KERNEL /boot/vmlinuz\n');
  const iso = path.join(dir, 'x64.iso');
  execFileSync('genisoimage', ['-quiet', '-R', '-J', '-o', iso, src]);
  return iso;
}

describe('New VM wizard in Chromium', { skip: !guestsBuilt() && 'sample guests not built', timeout: 600_000 }, () => {
  let t: TestHost;
  let server: ImageServer;
  let browser: Browser;
  let page: Page;
  let url: string;
  /** The catalogue the host reads, and the disk images the test hands to the wizard. */
  let fixtures: string;

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    server = await startImageServer(fs.readFileSync(guest('tiny.iso')));
    fixtures = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-wizard-'));
    const catalogue = path.join(fixtures, 'catalogue.json');
    fs.writeFileSync(
      catalogue,
      JSON.stringify({
        entries: [
          server.entry('tiny', '/ok/image.iso', { name: 'Tiny Linux', memoryMiB: 160, diskGiB: 1 }),
          server.entry('bad', '/ok/bad.iso', { name: 'Bad checksum', sha256: 'f'.repeat(64) }),
          server.entry('slow', '/slow/slow.iso', { name: 'Slow' }),
          server.entry('error', '/error/error.iso', { name: 'Server error' }),
          server.entry('drop', '/drop/drop.iso', { name: 'Dropped connection' }),
        ],
      }),
    );
    // The host reads the catalogue named here (the daemon inherits the environment).
    process.env.DOMUS_CATALOGUE_URL = catalogue;
    t = await TestHost.start();
    delete process.env.DOMUS_CATALOGUE_URL;
    url = (await t.client.call('host.webShell', {})).url;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
    await page.goto(url);
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
    await server?.close();
    if (fixtures) fs.rmSync(fixtures, { recursive: true, force: true });
  });

  const byId = (id: string) => page.getByTestId(id);
  const forward = () => byId('wizard-next').click();

  async function openWizard(method: string): Promise<void> {
    await page.evaluate(() => (location.hash = '#/'));
    await byId('tb-new').click();
    await byId('newvm-dialog').waitFor();
    await byId(`wizard-method-${method}`).check();
    await forward();
    await byId('wizard-step-1').waitFor();
  }

  /** Memory, storage and name pages with their defaults, except what is given. */
  async function finishWizard(name: string, opts: { memory?: string; diskGiB?: string; customize?: boolean } = {}): Promise<void> {
    await forward();
    await byId('newvm-memory').fill(opts.memory ?? '128');
    await forward();
    if (opts.diskGiB) await byId('newvm-disksize').fill(opts.diskGiB);
    await forward();
    await byId('newvm-name').fill(name);
    if (opts.customize) await byId('newvm-customize').check();
    await byId('newvm-create').click();
    await byId('newvm-dialog').waitFor({ state: 'detached', timeout: 60_000 });
  }

  async function volumes(): Promise<string[]> {
    return (await t.client.call('volume.list', { pool: 'default' })).volumes.map((v) => v.name).sort();
  }

  it('checks every page inline and refuses what could not start', async () => {
    const x64 = make64BitIso(fixtures);
    await openWizard('iso');
    // A browser cannot tell the page where a dropped file lives on the host.
    const dataTransfer = await page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['x'], 'installer.iso'));
      return dt;
    });
    await byId('wizard-step-1').dispatchEvent('drop', { dataTransfer });
    await byId('drop-message').filter({ hasText: 'needs the desktop app' }).waitFor();

    await byId('newvm-iso').fill(x64);
    await byId('newvm-error-iso').filter({ hasText: 'this is a 64-bit (x86_64) image' }).waitFor({ timeout: 15_000 });
    await forward();
    assert.ok(await byId('wizard-step-1').isVisible(), 'a 64-bit ISO on v86 does not get past the media page');
    assert.match((await byId('newvm-error-iso').textContent())!, /v86 engine emulates a 32-bit \(i686\) CPU/);

    await byId('newvm-iso').fill(guest('tiny.iso'));
    await byId('newvm-error-iso').waitFor({ state: 'detached' });
    await forward();
    await byId('newvm-memory').fill('4096');
    await forward();
    assert.equal(await byId('newvm-error-memory').textContent(), 'memory above 2047 MiB is not supported by v86');
    await byId('newvm-vcpus').fill('2');
    await byId('newvm-error-vcpus').filter({ hasText: 'the v86 engine emulates one CPU' }).waitFor();
    await byId('newvm-memory').fill('128');
    await byId('newvm-vcpus').fill('1');
    await forward();
    await byId('newvm-disksize').fill('0');
    await forward();
    assert.equal(await byId('newvm-error-diskSize').textContent(), 'disk size must be a number of GiB above 0');
    await byId('newvm-disksize').fill('1');
    await forward();
    await byId('newvm-name').fill('');
    await byId('newvm-create').click();
    assert.equal(await byId('newvm-error-name').textContent(), 'name is required');

    // A file that vanished: the host refuses, and the disk made for it goes again.
    await byId('newvm-name').fill('w-missing');
    for (let i = 0; i < 3; i++) await byId('wizard-back').click();
    await byId('newvm-iso').fill('/nonexistent/installer.iso');
    for (let i = 0; i < 3; i++) await forward();
    await byId('newvm-create').click();
    await byId('newvm-host-error').filter({ hasText: 'ISO image /nonexistent/installer.iso does not exist' }).waitFor();
    assert.deepEqual(await volumes(), []);
    assert.deepEqual((await t.client.call('domain.list', { all: true })).domains, []);
    await page.screenshot({ path: path.join(SHOTS, 'wizard-refused.png') });
    await page.getByRole('button', { name: 'Cancel' }).click();
  });

  it('detects the OS on an ISO (osinfo-db), presets from it, corrects it from the list, refuses a 64-bit OS on v86', async () => {
    const isos = makeOsinfoIsos(fixtures);
    await openWizard('iso');
    await byId('newvm-iso').fill(isos.fedora);
    await byId('osinfo-detected').filter({ hasText: 'Detected: Fedora Linux 37 (x86_64)' }).waitFor({ timeout: 30_000 });
    await byId('newvm-error-iso').filter({ hasText: 'this is the x86_64 (64-bit) medium of Fedora Linux 37, and the v86 engine emulates a 32-bit (i686) CPU only' }).waitFor();
    await forward();
    assert.ok(await byId('wizard-step-1').isVisible(), 'a 64-bit OS on v86 does not get past the media page');

    await byId('newvm-iso').fill(isos.debian);
    await byId('osinfo-detected').filter({ hasText: 'Detected: Debian testing (i686)' }).waitFor({ timeout: 30_000 });
    await byId('newvm-error-iso').waitFor({ state: 'detached' });
    assert.match((await byId('osinfo-presets').textContent())!, /1024 MiB, 1 vCPU,\s+20 GiB disk \(recommended for Debian testing\), virtio network card; name “debiantesting”/);
    await page.screenshot({ path: path.join(SHOTS, 'wizard-osinfo.png') });
    // The searchable list: an OS published for 64-bit only is refused on v86 too; then back to the detected one.
    await byId('osinfo-search').fill('fedora37');
    await byId('osinfo-list').locator('option[value="http://fedoraproject.org/fedora/37"]').waitFor({ state: 'attached' });
    await byId('osinfo-list').selectOption('http://fedoraproject.org/fedora/37');
    await byId('newvm-error-iso').filter({ hasText: 'Fedora Linux 37 is published for x86_64, aarch64, s390x only' }).waitFor();
    await byId('osinfo-search').fill('debiantesting');
    await byId('osinfo-list').locator('option[value="http://debian.org/debian/testing"]').waitFor({ state: 'attached' });
    await byId('osinfo-list').selectOption('http://debian.org/debian/testing');
    await byId('newvm-error-iso').waitFor({ state: 'detached' });

    await forward();
    assert.equal(await byId('newvm-memory').inputValue(), '1024');
    await forward();
    assert.equal(await byId('newvm-disksize').inputValue(), '20');
    await forward();
    assert.equal(await byId('newvm-name').inputValue(), 'debiantesting');
    assert.equal(await byId('newvm-summary-os').textContent(), 'Debian testing (i686)');
    await byId('newvm-customize').check();
    await byId('newvm-create').click();
    await byId('newvm-dialog').waitFor({ state: 'detached', timeout: 60_000 });
    await byId('details-panel').waitFor();
    const xml = (await t.client.call('domain.xml', { domain: 'debiantesting', inactive: true })).xml;
    assert.match(xml, /<libosinfo:os id='http:\/\/debian.org\/debian\/testing'\/>/);
    assert.match(xml, /<memory unit='KiB'>1048576<\/memory>/);
    // The Memory page's floor is that OS's osinfo-db minimum.
    await byId('details-nav-memory').click();
    await page.waitForFunction(() => (document.querySelector('[data-testid="memory-current"]') as HTMLInputElement | null)?.value === '1024');
    await byId('memory-current').fill('512');
    await byId('memory-low-warning').filter({ hasText: 'below 1024 MiB, the minimum of Debian testing (osinfo-db' }).waitFor();
    await byId('memory-current').fill('1024');
    await byId('memory-low-warning').waitFor({ state: 'detached' });
    await t.client.call('domain.undefine', { domain: 'debiantesting' });
    await t.client.call('volume.delete', { pool: 'default', name: 'debiantesting.img' });
  });

  it('downloads from the catalogue: errors, checksum, cancel and resume leave no file; success, then customize before install', async () => {
    await openWizard('download');
    const tryDownload = async (id: string): Promise<void> => {
      await byId(`catalogue-${id}`).check();
      await byId('download-start').click();
    };
    await tryDownload('error');
    await byId('download-error').filter({ hasText: 'HTTP 500 Internal Server Error' }).waitFor({ timeout: 30_000 });
    await tryDownload('bad');
    await byId('download-error').filter({ hasText: 'SHA-256 mismatch for bad.iso' }).waitFor({ timeout: 60_000 });
    await tryDownload('slow');
    await byId('download-progress').waitFor();
    await page.waitForFunction(() => Number((document.querySelector('[data-testid="download-progress"]') as HTMLProgressElement | null)?.value) > 0);
    await byId('download-cancel').click();
    await byId('download-cancelled').waitFor({ timeout: 30_000 });
    server.ranges.length = 0;
    await tryDownload('drop');
    await byId('download-done').waitFor({ timeout: 120_000 });
    assert.ok(server.ranges.some((r) => /^bytes=\d+-$/.test(r)), `the dropped download resumed with a Range request (${server.ranges.join(', ')})`);
    assert.deepEqual(await volumes(), ['drop.iso']);
    assert.deepEqual(fs.readdirSync(path.join(t.home, 'downloads')), [], 'no .part file is left');

    await tryDownload('tiny');
    await byId('download-done').filter({ hasText: 'image.iso' }).waitFor({ timeout: 120_000 });
    // The entry's defaults: 160 MiB and a 1 GiB disk.
    await forward();
    assert.equal(await byId('newvm-memory').inputValue(), '160');
    await forward();
    assert.equal(await byId('newvm-disksize').inputValue(), '1');
    await forward();
    await byId('newvm-name').fill('w-dl');
    await byId('newvm-customize').check();
    await byId('newvm-create').click();
    await byId('newvm-dialog').waitFor({ state: 'detached', timeout: 60_000 });
    // Customize before install: Details opens on the new domain, which has not started.
    await byId('details-panel').waitFor();
    const info = await t.client.call('domain.info', { domain: 'w-dl' });
    assert.equal(info.state, 'shutoff');
    const xml = (await t.client.call('domain.xml', { domain: 'w-dl', inactive: true })).xml;
    assert.match(xml, /<domus:install [^>]*media='[^']*\/images\/image\.iso'/);
    assert.match(xml, /<source file='[^']*\/images\/w-dl\.img'\/>/);
    assert.deepEqual(await volumes(), ['drop.iso', 'image.iso', 'w-dl.img']);
    await page.screenshot({ path: path.join(SHOTS, 'wizard-customize.png') });
  });

  it('creates a guest by each method, and each boots to DOMUS-GUEST-READY', async () => {
    // ISO install, the ISO picked with the host file chooser; a new 1 GiB disk.
    await openWizard('iso');
    await byId('browse-iso').click();
    await byId('file-chooser').waitFor();
    // The chooser opens in the default pool's folder.
    await page.waitForFunction(() => (document.querySelector('[data-testid="chooser-path"]') as HTMLInputElement | null)?.value.endsWith('/images'));
    await byId('chooser-path').fill(path.dirname(guest('tiny.iso')));
    await byId('chooser-path').press('Enter');
    await byId('chooser-entry-tiny.iso').click();
    assert.equal(await byId('newvm-iso').inputValue(), guest('tiny.iso'));
    await finishWizard('w-iso', { diskGiB: '1' });

    // Import of an existing disk (a copy: the guest writes to it).
    const imported = path.join(fixtures, 'import.img');
    fs.copyFileSync(guest('disk.img'), imported);
    await openWizard('import');
    await byId('newvm-disk').fill(imported);
    await finishWizard('w-import');

    // PV direct boot from host files.
    await openWizard('pv');
    await byId('newvm-kernel').fill(guest('vmlinuz'));
    await byId('newvm-initrd').fill(guest('initrd.gz'));
    await byId('newvm-cmdline').fill(SAMPLE_CMDLINE);
    await finishWizard('w-pv');

    // PV boot of the kernel on the disk (pygrub): the disk's boot menu is offered.
    const pygrub = path.join(fixtures, 'pygrub.img');
    fs.copyFileSync(guest('disk.img'), pygrub);
    await openWizard('pygrub');
    await byId('newvm-disk').fill(pygrub);
    await byId('newvm-entry').locator('option[value="0"]').waitFor({ state: 'attached', timeout: 15_000 });
    await byId('newvm-entry').selectOption('0');
    await finishWizard('w-pygrub');

    const iso = (await t.client.call('domain.xml', { domain: 'w-iso' })).xml;
    assert.match(iso, /<boot dev='cdrom'\/>\s*<boot dev='hd'\/>/, 'the install-time definition boots the CD first');
    assert.match(iso, /<source file='[^']*\/images\/w-iso\.img'\/>/);
    assert.match((await t.client.call('domain.xml', { domain: 'w-pygrub' })).xml, /<bootloader_args>--entry=0<\/bootloader_args>/);
    const started = Date.now();
    const names = ['w-iso', 'w-import', 'w-pv', 'w-pygrub'];
    const times = await Promise.all(
      names.map(async (name) => {
        const serial = await SerialWatch.open(t.client, name);
        await serial.wait(/DOMUS-GUEST-READY/, 400_000);
        return `${name} ${((Date.now() - started) / 1000).toFixed(0)} s`;
      }),
    );
    console.log(`# guests ready: ${times.join(', ')}`);
    await page.evaluate(() => (location.hash = '#/'));
    await page.screenshot({ path: path.join(SHOTS, 'wizard-guests.png') });
  });
});
