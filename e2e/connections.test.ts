// End to end in Chromium against the web shell: libvirt connections in the manager. The Add
// Connection dialog writes the URI as its fields are typed, checks them inline and connects on
// Enter; a connection to a port where nothing listens (qemu+tcp://127.0.0.1:1/system: loopback,
// port 1 refuses) shows the failure, the host's error and the countdown to its next attempt, and
// goes again with Remove, all from the keyboard. No traffic leaves the loopback address.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { GUEST_DIR } from '../main/host/new-vm/samples.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, guestsBuilt, until } from '../main/testing/harness.js';
import { libvirtdSkip, startLibvirtd, type Libvirtd } from '../main/testing/libvirtd.js';
import { PASSPHRASE, sshdSkip, startSshd } from '../main/testing/sshd.js';
import { canvasState, chooserSettled, openWebShell, serialText } from './browser.js';

const DEAD = 'qemu+tcp://127.0.0.1:1/system';

describe('libvirt connections in Chromium', { timeout: 180_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  const byId = (id: string) => page.getByTestId(id);
  const hostList = async () => (await t.client.call('connection.list', {})).connections;

  before(async () => {
    t = await TestHost.start();
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('writes the URI as the fields are typed, checks them inline, and closes on Escape', async () => {
    await byId('first-run').waitFor();
    await byId('tb-menu').click();
    await byId('tb-add-connection').click();
    const dialog = byId('add-connection-dialog');
    await dialog.waitFor();
    const uri = byId('addconn-uri');
    assert.equal(await uri.textContent(), 'qemu:///system');
    assert.equal(await byId('addconn-hostname').isDisabled(), true, 'Local needs no host');
    assert.equal(await byId('addconn-username').isDisabled(), true);

    await byId('addconn-transport').selectOption('ssh');
    await byId('addconn-username').focus();
    await page.keyboard.type('root');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'addconn-hostname', 'Tab goes from user to host');
    await page.keyboard.type('server:2222');
    assert.equal(await uri.textContent(), 'qemu+ssh://root@server:2222/system');
    await byId('addconn-transport').selectOption('tcp');
    assert.equal(await uri.textContent(), 'qemu+tcp://server:2222/system', 'TCP has no user name');
    assert.equal(await byId('addconn-username').isDisabled(), true);
    await byId('addconn-transport').selectOption('tls');
    assert.equal(await uri.textContent(), 'qemu+tls://server:2222/system');

    // A bad host name is said under the field once it is left, and Enter adds nothing.
    await byId('addconn-hostname').fill('not a host');
    await page.keyboard.press('Tab');
    assert.match((await byId('addconn-hostname-problem').textContent()) ?? '', /Expected a host name or address/);
    assert.equal(await byId('addconn-hostname').getAttribute('aria-invalid'), 'true');
    await byId('addconn-hostname').press('Enter');
    await dialog.waitFor();
    assert.deepEqual(await hostList(), []);

    // A URI by hand, checked as the host checks it.
    await byId('addconn-hypervisor').selectOption('custom');
    await byId('addconn-custom-uri').fill('server');
    await byId('addconn-custom-uri').press('Enter');
    assert.match((await byId('addconn-custom-uri-problem').textContent()) ?? '', /expected a libvirt URI/);
    assert.deepEqual(await hostList(), []);

    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('adds an unreachable connection on Enter and shows its failure and its retry', async () => {
    await byId('first-run-add-connection').click();
    await byId('addconn-transport').selectOption('tcp');
    await byId('addconn-hostname').fill('127.0.0.1:1');
    assert.equal(await byId('addconn-uri').textContent(), DEAD);
    await byId('addconn-hostname').press('Enter');
    await byId('add-connection-dialog').waitFor({ state: 'detached' });

    const row = byId(`connection-row-${DEAD}`);
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /QEMU\/KVM: 127\.0\.0\.1:1/);
    await byId('connection-row-local').waitFor();
    await byId(`connection-state-${DEAD}`).filter({ hasText: 'Connection failed' }).waitFor({ timeout: 15_000 });
    const [saved] = await hostList();
    assert.equal(saved.uri, DEAD);
    assert.equal(saved.autoconnect, true);
    // The host's words for the failure (between attempts: an attempt in progress has none).
    let error = '';
    await until(
      async () => {
        const [c] = await hostList();
        error = (c.state === 'failed' && c.error) || '';
        return error !== '';
      },
      15_000,
      'the host to say why the connection failed',
    );
    const text = async (id: string) => (await byId(id).allTextContents()).join('').trim();
    await until(async () => (await text(`connection-error-${DEAD}`)) === error, 15_000, `the host's error (${error}) on the row`);

    // The host retries with a growing backoff; the row counts down to each attempt.
    await until(async () => /^Retrying in ([3-9]|\d\d) s$/.test(await text(`connection-retry-${DEAD}`)), 25_000, 'a retry countdown of 3 s or more');

    // Connect by hand fails as the host says, in a toast.
    await byId(`connection-connect-${DEAD}`).click();
    await page.locator('.toast', { hasText: 'Could not connect to QEMU/KVM: 127.0.0.1:1' }).first().waitFor({ timeout: 15_000 });
  });

  it('refuses the same connection twice in the dialog, as the host words it', async () => {
    await byId('add-connection').click();
    await byId('addconn-hypervisor').selectOption('custom');
    await byId('addconn-custom-uri').fill(DEAD);
    await byId('addconn-autoconnect').press('Enter');
    assert.match((await byId('addconn-error').textContent()) ?? '', /already exists/);
    await page.keyboard.press('Escape');
    await byId('add-connection-dialog').waitFor({ state: 'detached' });
    assert.equal((await hostList()).length, 1);
  });

  it('removes the connection from the tree with the keyboard', async () => {
    const tree = page.getByRole('treegrid');
    await tree.focus();
    await page.keyboard.press('Home');
    assert.equal(await byId('connection-row-local').getAttribute('aria-selected'), 'true');
    await page.keyboard.press('ArrowDown');
    const row = byId(`connection-row-${DEAD}`);
    assert.equal(await row.getAttribute('aria-selected'), 'true');
    assert.equal(await tree.getAttribute('aria-activedescendant'), await row.getAttribute('id'));
    // Folding: Left collapses, Right expands again.
    await page.keyboard.press('ArrowLeft');
    assert.equal(await row.getAttribute('aria-expanded'), 'false');
    await page.keyboard.press('ArrowRight');
    assert.equal(await row.getAttribute('aria-expanded'), 'true');

    await page.keyboard.press('Shift+F10');
    await byId('connection-menu-remove').waitFor();
    await page.keyboard.press('End');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'connection-menu-remove');
    await page.keyboard.press('Enter');
    await byId('remove-connection-dialog').waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'confirm-remove-connection');
    await page.keyboard.press('Enter');
    await row.waitFor({ state: 'detached' });
    assert.deepEqual(await hostList(), []);
    // Nothing left here or there: the first-run page is back.
    await byId('first-run').waitFor();
  });
});

describe('a real libvirt host in Chromium', { timeout: 300_000, skip: libvirtdSkip() }, () => {
  let t: TestHost;
  let daemon: Libvirtd;
  let browser: Browser;
  let page: Page;
  const byId = (id: string) => page.getByTestId(id);
  const define = (name: string) => {
    const file = `${daemon.dir}/${name}.xml`;
    fs.writeFileSync(
      file,
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>` +
        `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`,
    );
    return daemon.virsh('define', file);
  };

  before(async () => {
    daemon = await startLibvirtd();
    await define('before');
    t = await TestHost.start();
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
    await daemon?.stop();
  });

  it('over ssh with a key that needs a passphrase: the dialog asks, the typed passphrase connects', { skip: sshdSkip() }, async (c) => {
    const sshd = await startSshd();
    c.after(() => sshd.stop());
    const uri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?socket=${daemon.socket}&keyfile=${sshd.passphraseKey}&command=${sshd.sshCommand()}`;
    await byId('first-run-add-connection').click();
    await byId('addconn-hypervisor').selectOption('custom');
    await byId('addconn-custom-uri').fill(uri);
    await byId('addconn-custom-uri').press('Enter');

    await byId('ssh-prompt-dialog').waitFor({ timeout: 20_000 });
    assert.match((await byId('ssh-prompt-text').textContent()) ?? '', /^Enter passphrase for key '.*passphrase_key':$/);
    assert.equal(await byId('ssh-prompt-answer').getAttribute('type'), 'password');
    await byId('ssh-prompt-answer').fill(PASSPHRASE);
    await byId('ssh-prompt-answer').press('Enter');
    await byId('ssh-prompt-dialog').waitFor({ state: 'detached' });
    await byId(`connection-state-${uri}`).filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    await byId('domain-row-before').waitFor();

    await t.client.call('connection.remove', { uri });
    await byId('first-run').waitFor();
  });

  it('connects, lists the host\'s domains, follows virsh live, and runs and stops a domain from the toolbar', async () => {
    await byId('first-run-add-connection').click();
    await byId('addconn-hypervisor').selectOption('custom');
    await byId('addconn-custom-uri').fill(daemon.uri);
    await byId('addconn-custom-uri').press('Enter');
    await byId(`connection-state-${daemon.uri}`).filter({ hasText: 'Connected' }).waitFor({ timeout: 30_000 });
    await byId(`connection-detail-${daemon.uri}`).filter({ hasText: /QEMU \d+\.\d+/ }).waitFor({ timeout: 10_000 });
    await byId('domain-row-before').waitFor();

    // Defined on the host by virsh: in the tree through libvirt's events, no reload.
    assert.equal((await define('later')).code, 0);
    await byId('domain-row-later').waitFor({ timeout: 5000 });

    await byId('domain-row-later').click();
    await byId('tb-run').click();
    await byId('domain-state-later').filter({ hasText: /Running/i }).waitFor({ timeout: 30_000 });
    assert.match((await daemon.virsh('domstate', 'later')).stdout, /running/);

    // Stopped on the host: the row follows.
    await daemon.virsh('destroy', 'later');
    await byId('domain-state-later').filter({ hasText: /Shut off|Off/i }).waitFor({ timeout: 10_000 });
  });

  it('creates a guest on the libvirt host with the New VM wizard: kernel and initrd uploaded into its default pool, then booted there', async () => {
    await byId(`connection-row-${daemon.uri}`).click();
    await byId('tb-new').click();
    await byId('newvm-dialog').waitFor();
    // The connection's hypervisor stands in for the engine choice; no download or pygrub on a libvirt host.
    await byId('newvm-hypervisor').filter({ hasText: /QEMU \d+\.\d+.* on / }).waitFor();
    assert.equal(await byId('wizard-method-download').count(), 0);
    await byId('wizard-method-pv').check();
    await byId('wizard-next').click();
    await byId('wizard-step-1').waitFor();
    // A fresh libvirtd has no pool: the wizard's first look made the default one, and said so.
    await page.getByText(/created the 'default' pool at \/var\/lib\/libvirt\/images/).first().waitFor({ timeout: 10_000 });
    for (const [key, file] of [['kernel', 'vmlinuz'], ['initrd', 'initrd.gz']]) {
      await byId(`upload-${key}`).click();
      await byId('file-chooser').waitFor();
      await chooserSettled(page);
      await byId('chooser-path').fill(path.join(GUEST_DIR, file));
      await byId('chooser-use').click();
      await page.waitForFunction(
        ([id, want]) => (document.querySelector(`[data-testid="${id}"]`) as HTMLSelectElement | null)?.value === want,
        [`newvm-volume-${key}`, `/var/lib/libvirt/images/${file}`] as const,
        { timeout: 30_000 },
      );
    }
    await byId('newvm-cmdline').fill(SAMPLE_CMDLINE);
    await byId('wizard-next').click();
    await byId('newvm-memory').fill('128');
    await byId('wizard-next').click();
    await byId('wizard-next').click();
    await byId('newvm-name').fill('wizard-on-libvirt');
    await byId('newvm-summary-host').filter({ hasText: 'QEMU' }).waitFor();
    await byId('newvm-create').click();
    await byId('newvm-dialog').waitFor({ state: 'detached', timeout: 60_000 });
    await byId('domain-state-wizard-on-libvirt').filter({ hasText: /Running/i }).waitFor({ timeout: 60_000 });
    assert.match((await daemon.virsh('dominfo', 'wizard-on-libvirt')).stdout, /^State:\s+running$/m);
    assert.match((await daemon.virsh('dumpxml', 'wizard-on-libvirt')).stdout, /<kernel>\/var\/lib\/libvirt\/images\/vmlinuz<\/kernel>/);
    await daemon.virsh('destroy', 'wizard-on-libvirt');
  });

  it("edits a shut-off libvirt domain in Details: vCPUs, a pool volume as CD medium, a new disk volume", async () => {
    // The pool holds the medium; listing it first makes the default pool on a fresh libvirtd.
    await t.client.call('volume.list', { pool: 'default' }, { connection: daemon.uri });
    assert.equal((await daemon.virsh('vol-create-as', 'default', 'media.iso', '1M', '--format', 'raw')).code, 0);
    const medium = '/var/lib/libvirt/images/media.iso';
    await byId('domain-row-before').click();
    await byId('tb-details').click();
    await byId('page-overview').waitFor();

    await byId('details-nav-cpu').click();
    await byId('cpu-count').fill('2');
    await byId('page-apply').click();
    await byId('page-applied').waitFor({ timeout: 10_000 });
    assert.match((await daemon.virsh('dumpxml', '--inactive', 'before')).stdout, /<vcpu placement='static'>2<\/vcpu>/);

    // An empty CD-ROM drive, then a volume of the pool as its medium.
    await byId('details-add-hardware').click();
    await byId('add-disk-device').selectOption('cdrom');
    await byId('add-finish').click();
    await byId('page-disk-hdc').waitFor({ timeout: 10_000 });
    await byId('disk-media-volume').locator(`option[value="${medium}"]`).waitFor({ state: 'attached' });
    await byId('disk-media-volume').selectOption(medium);
    await byId('disk-insert').click();
    await byId('disk-medium').filter({ hasText: medium }).waitFor({ timeout: 10_000 });
    assert.match((await daemon.virsh('domblklist', '--inactive', 'before')).stdout, new RegExp(`^\\s*hdc\\s+${medium}$`, 'm'));

    // A new disk: a volume made in the pool, named after the guest.
    await byId('details-add-hardware').click();
    await byId('add-new-volume').check();
    await byId('add-size').fill('1');
    await byId('add-finish').click();
    await byId('page-disk-vda').waitFor({ timeout: 10_000 });
    assert.equal(await byId('disk-source').inputValue(), '/var/lib/libvirt/images/before.qcow2');
    assert.match((await daemon.virsh('domblklist', '--inactive', 'before')).stdout, /^\s*vda\s+\/var\/lib\/libvirt\/images\/before\.qcow2$/m);
    assert.match((await daemon.virsh('vol-info', '--pool', 'default', 'before.qcow2')).stdout, /^Capacity:\s+1\.00 GiB$/m);
    await byId('details-close').click();
  });

  it('shows a libvirt host that goes away: the connection fails and its domains are greyed', async () => {
    // The libvirt host goes away: the connection says so and its domains are greyed.
    await daemon.stop();
    await byId(`connection-state-${daemon.uri}`).filter({ hasText: 'Connection failed' }).waitFor({ timeout: 30_000 });
    assert.equal(await byId('domain-row-before').getAttribute('aria-disabled'), 'true');
  });
});

// The console of a domain on the libvirt host, from the tree: the display is the guest's framebuffer
// (libvirtd's QEMU on TCP, linked by the host), and the serial tab its console stream, both ways.
describe('the console of a libvirt domain in Chromium', { timeout: 600_000, skip: guestsBuilt() ? engineSkip('libvirt') : 'sample guests not built' }, () => {
  const NAME = 'lv-console';
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  const byId = (id: string) => page.getByTestId(id);

  before(async () => {
    t = await TestHost.start('libvirt');
    await createOn(t.client, { name: NAME, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } }, 'libvirt');
    await t.client.call('domain.start', { domain: NAME });
    const serial = await SerialWatch.open(t.client, NAME);
    await serial.wait(/DOMUS-GUEST-READY/, 300_000);
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it("opens from the tree and shows the guest's display and its serial console", async () => {
    await byId(`domain-row-${NAME}`).dblclick();
    await byId('console-view').waitFor();
    await page.locator('[data-testid="vnc-screen"] canvas').waitFor({ timeout: 30_000 });
    await until(async () => (await canvasState(page)).colours > 1, 30_000, 'a non-blank guest display');
    assert.ok((await canvasState(page)).width >= 640);

    await byId('tab-serial').click();
    await until(async () => (await serialText(page)).includes('domus#'), 30_000, 'the serial backlog with the shell prompt');
    await page.locator('[data-testid="serial-terminal"] .xterm-helper-textarea').focus();
    await page.keyboard.type('echo LV$((6*7))OK\n', { delay: 20 });
    await until(async () => (await serialText(page)).includes('LV42OK'), 30_000, 'the answer of the command typed in the serial tab');
  });
});
