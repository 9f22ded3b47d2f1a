// Virtual networks in Chromium against the web shell, checked through the host's API: the
// Connection Details window (create a network from the form, see it listed and started, stop and
// start it, its XML edited with a bad edit refused, delete it; a network defined elsewhere shows up
// by its lifecycle event), a running v86 guest's NIC page (its leased address, the link state
// toggled live as domiflist reports it, the address in the domain list, the network graph's
// counters), Add Hardware → Network and the NIC page's Remove, and the New VM wizard's network choice. The same window on a
// libvirt connection (a private libvirtd in its own network namespace), checked with virsh.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { APP_ROOT } from '../main/common/paths.js';
import { CONNECTION_ENGINES, engineSkip, guest, guestsBuilt, sampleGuestXml, SerialWatch, TestHost, until } from '../main/testing/harness.js';
import { CHROMIUM_ARGS } from './browser.js';

const SHOTS = path.join(APP_ROOT, 'test-results');
/** A boot on a loaded 2-core machine shared by several agents can take minutes. */
const BOOT_MS = 300_000;
const MAC = '52:54:00:5e:00:01';

const guestXml = (name: string, nic: string): string => sampleGuestXml(name, 'v86', nic);

const skip = !guestsBuilt() ? 'sample guests not built' : engineSkip('v86');

describe('Virtual networks in Chromium', { skip, timeout: 900_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  const byId = (id: string) => page.getByTestId(id);
  const networks = async () => (await t.client.call('network.list', {})).networks;
  const network = async (name: string) => (await networks()).find((n) => n.name === name);

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    t = await TestHost.start();
    const url = (await t.client.call('host.webShell', {})).url;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(url);
    await byId('tb-menu').waitFor();
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** From the Domus menu, or (once the tree is shown: a guest exists) this computer's context menu. */
  async function openConnectionDetails(from: 'menu' | 'tree'): Promise<void> {
    if (from === 'menu') {
      await byId('tb-menu').click();
      await byId('tb-connection-details').click();
    } else {
      await byId('connection-row-local').click({ button: 'right' });
      await byId('connection-menu-details').click();
    }
    await byId('connection-details').waitFor();
  }

  async function closeConnectionDetails(): Promise<void> {
    await page.keyboard.press('Escape');
    await byId('connection-details').waitFor({ state: 'detached' });
  }

  it('creates a network from the form, stops and starts it, edits its XML and deletes it', async () => {
    await openConnectionDetails('menu');
    assert.equal(await byId('cd-state').textContent(), 'Connected');
    await byId('cd-tab-networks').click();
    // libvirt's default network, defined and started on the host's first run.
    await byId('net-row-default').click();
    assert.equal(await byId('net-detail-forward').textContent(), 'NAT');
    assert.equal(await byId('net-detail-ipv4').textContent(), '192.168.122.1/24');
    assert.equal((await byId('net-state-default').textContent())?.trim(), 'Active');

    await byId('net-add').click();
    // The next free /24 and the upper half of it for DHCP, as virt-manager suggests.
    assert.equal(await byId('newnet-cidr').inputValue(), '192.168.100.0/24');
    assert.equal(await byId('newnet-dhcp-start').inputValue(), '192.168.100.128');
    await byId('newnet-name').fill('default');
    await byId('newnet-name-problem').waitFor();
    assert.equal(await byId('newnet-create').isDisabled(), true);
    await byId('newnet-name').fill('lab');
    await byId('newnet-cidr').fill('10.77.0.0/16');
    assert.equal(await byId('newnet-dhcp-start').inputValue(), '10.77.128.0', 'the range follows the network');
    await byId('newnet-forward').selectOption('none');
    await page.screenshot({ path: path.join(SHOTS, 'networks-form.png') });
    await byId('newnet-create').click();
    await byId('net-row-lab').waitFor();
    await until(async () => (await byId('net-state-lab').textContent())?.trim() === 'Active', 20_000, 'lab to show as active');
    const lab = await network('lab');
    assert.deepEqual([lab?.active, lab?.forward, lab?.address, lab?.prefix, lab?.dhcpRange], [true, 'none', '10.77.0.1', 16, { start: '10.77.128.0', end: '10.77.255.254' }]);
    assert.equal(await byId('net-detail-forward').textContent(), 'Isolated');
    assert.equal(await byId('net-detail-dhcp').textContent(), '10.77.128.0 – 10.77.255.254');

    await byId('net-stop').click();
    await until(async () => (await byId('net-state-lab').textContent())?.trim() === 'Inactive', 20_000, 'lab to show as stopped');
    assert.equal((await network('lab'))?.active, false);
    await byId('net-autostart').check();
    await until(async () => (await network('lab'))?.autostart === true, 10_000, 'autostart on the host');
    await byId('net-start').click();
    await until(async () => (await network('lab'))?.active === true, 20_000, 'lab to start again');
    await byId('net-stop').waitFor();

    // The XML tab: a bad edit is refused with the host's reason, a good one applied.
    await byId('net-tab-xml').click();
    const editor = byId('net-xml');
    await until(async () => (await editor.inputValue()).includes('<name>lab</name>'), 10_000, 'the XML to load');
    const good = await editor.inputValue();
    await editor.fill(good.replace(/<ip [^>]*>/, "<ip address='10.77.0.1' prefix='40'>"));
    await byId('net-xml-apply').click();
    assert.match((await byId('net-xml-error').textContent()) ?? '', /prefix/);
    assert.match((await t.client.call('network.xml', { network: 'lab', inactive: true })).xml, /prefix='16'/, 'nothing was applied');
    await editor.fill(good.replace("end='10.77.255.254'", "end='10.77.200.0'"));
    await byId('net-xml-apply').click();
    await byId('net-xml-applied').waitFor();
    assert.match((await t.client.call('network.xml', { network: 'lab', inactive: true })).xml, /end='10\.77\.200\.0'/);
    await page.screenshot({ path: path.join(SHOTS, 'networks-xml.png') });

    // A network defined elsewhere shows up (network.lifecycle), and goes again.
    await t.client.call('network.define', { xml: "<network><name>other</name><ip address='10.78.0.1' prefix='24'/></network>" });
    await byId('net-row-other').waitFor({ timeout: 10_000 });
    await t.client.call('network.undefine', { network: 'other' });
    await byId('net-row-other').waitFor({ state: 'detached', timeout: 10_000 });

    await byId('net-row-lab').click();
    await byId('net-tab-details').click();
    await byId('net-delete').click();
    await byId('net-delete-confirm').click();
    await byId('net-row-lab').waitFor({ state: 'detached', timeout: 20_000 });
    assert.equal(await network('lab'), undefined);
    await closeConnectionDetails();
  });

  it("shows a running guest's address, toggles its link live, and graphs its traffic", async () => {
    await t.client.call('domain.define', {
      xml: guestXml('netvm', `<interface type='network'><mac address='${MAC}'/><source network='default'/><model type='virtio'/></interface>`),
    });
    await t.client.call('domain.start', { domain: 'netvm' });
    const serial = await SerialWatch.open(t.client, 'netvm');
    const up = await serial.wait(/DOMUS-NET-UP eth0 ([\d.]+)\/(\d+)/, BOOT_MS);
    const ip = up[1];
    const link = async () => (await t.client.call('domain.interfaces', { domain: 'netvm' })).interfaces.find((i) => i.mac === MAC)?.link;

    await byId('domain-row-netvm').click();
    // The list shows the leased address once a stats sample carries it.
    await until(async () => ((await byId('domain-ip-netvm').textContent({ timeout: 1000 }).catch(() => '')) ?? '').includes(ip), 30_000, 'the address in the list');
    await byId('tb-details').click();
    await byId(`details-nav-nic:0`).click();
    await until(async () => ((await byId('nic-addresses').textContent()) ?? '').includes(`${ip}/${up[2]}`), 30_000, 'the address on the NIC page');
    assert.equal(await byId('nic-mac').getAttribute('readonly'), '');
    assert.equal(await byId('nic-source-select').inputValue(), 'network:default');
    await page.screenshot({ path: path.join(SHOTS, 'networks-nic.png') });

    const box = byId('nic-link');
    assert.equal(await box.isChecked(), true);
    await box.uncheck();
    await until(async () => (await link()) === 'down', 10_000, 'the link down on the host');
    // Down on the switch: the guest no longer reaches its gateway.
    assert.match(await serial.sh('ping -c 1 -W 2 192.168.122.1', 30_000), /0 packets received/);
    await box.check();
    await until(async () => (await link()) === 'up', 10_000, 'the link up on the host');
    assert.match(await serial.sh('ping -c 2 -W 2 192.168.122.1', 30_000), /[12] packets received/);
    assert.match((await t.client.call('domain.xml', { domain: 'netvm', inactive: true })).xml, /<interface type='network'>(?:(?!<\/interface>)[\s\S])*<mac address='52:54:00:5e:00:01'\/>/);

    // The network graph is fed by the switch's counters: the pings above were counted.
    await byId('details-nav-performance').click();
    await until(async () => Number(await byId('graph-net').getAttribute('data-points')) >= 2, 30_000, 'network samples');
    const totals = (await byId(`net-total-${MAC}`).textContent()) ?? '';
    assert.match(totals, /on default: received [1-9][\d.]* (B|KiB|MiB), sent [1-9][\d.]* (B|KiB|MiB)/);
    await page.screenshot({ path: path.join(SHOTS, 'networks-performance.png') });
    await t.client.call('domain.destroy', { domain: 'netvm' });
    await byId('details-close').click();
  });

  it('adds a NIC with Add Hardware, and the wizard puts a new guest on the chosen network', async () => {
    await t.client.call('network.define', { xml: "<network><name>lab2</name><ip address='10.79.0.1' prefix='24'><dhcp><range start='10.79.0.100' end='10.79.0.200'/></dhcp></ip></network>" });
    await t.client.call('network.start', { network: 'lab2' });
    await t.client.call('domain.define', { xml: guestXml('hwvm', '') });
    await openConnectionDetails('tree');
    await byId('cd-tab-networks').click();
    await byId('net-row-lab2').click();
    assert.equal(await byId('net-detail-forward').textContent(), 'Isolated');
    await closeConnectionDetails();
    await byId('domain-row-hwvm').click();
    await byId('tb-details').click();
    await byId('details-add-hardware').click();
    await byId('add-kind-network').check();
    await byId('add-nic-source').locator('option[value="network:lab2"]').waitFor({ state: 'attached' });
    await byId('add-nic-source').selectOption('network:lab2');
    await byId('add-finish').click();
    await byId('page-nic-0').waitFor();
    const { interfaces } = await t.client.call('domain.interfaces', { domain: 'hwvm', inactive: true });
    assert.deepEqual(interfaces.map((i) => [i.type, i.source, i.model]), [['network', 'lab2', 'virtio']]);
    // And Remove takes it out again (detach-interface --config), after the question.
    page.once('dialog', (d) => void d.accept());
    await byId('nic-remove').click();
    await byId('page-overview').waitFor();
    assert.deepEqual((await t.client.call('domain.interfaces', { domain: 'hwvm', inactive: true })).interfaces, []);
    await byId('details-close').click();

    await byId('tb-new').click();
    await byId('newvm-dialog').waitFor();
    await byId('wizard-method-pv').check();
    await byId('wizard-next').click();
    await byId('newvm-kernel').fill(guest('vmlinuz'));
    await byId('newvm-initrd').fill(guest('initrd.gz'));
    for (let i = 0; i < 3; i++) await byId('wizard-next').click();
    // 'default' is chosen when the host has it, as virt-install does; the person picks another.
    const choice = byId('newvm-network');
    await until(async () => (await choice.inputValue()) === 'network:default', 10_000, "the 'default' network to be chosen");
    assert.match((await choice.locator('option[value="network:default"]').textContent()) ?? '', /Virtual network 'default' : NAT/);
    await choice.selectOption('network:lab2');
    await byId('newvm-name').fill('wiz-net');
    await byId('newvm-customize').check();
    await byId('newvm-create').click();
    await byId('newvm-dialog').waitFor({ state: 'detached', timeout: 60_000 });
    const xml = (await t.client.call('domain.xml', { domain: 'wiz-net', inactive: true })).xml;
    assert.match(xml, /<interface type='network'>\s*<mac address='52:54:00(:[0-9a-f]{2}){3}'\/>\s*<source network='lab2'\/>\s*<model type='virtio'\/>/);
  });
});

const libvirtSkip = CONNECTION_ENGINES.includes('libvirt') ? engineSkip('libvirt') : 'libvirt is not among DOMUS_TEST_ENGINES';
describe('Virtual networks of a libvirt connection in Chromium', { skip: libvirtSkip, timeout: 300_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  let uri: string;
  const byId = (id: string) => page.getByTestId(id);
  const virsh = async (...args: string[]) => (await t.libvirtd!.virsh(...args)).stdout;

  before(async () => {
    // Its own network namespace: the bridge, dnsmasq and NAT rules of the network it starts stay there.
    t = await TestHost.start('libvirt', { netns: true });
    uri = t.libvirtd!.uri;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto((await t.client.call('host.webShell', {})).url);
    await byId(`connection-row-${uri}`).waitFor();
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it("creates, stops, edits and deletes a network on the connection from its context menu's Details", async () => {
    await until(async () => (await byId(`connection-state-${uri}`).textContent())?.trim() === 'Connected', 30_000, 'the connection to open');
    await byId(`connection-row-${uri}`).click({ button: 'right' });
    await byId('connection-menu-details').click();
    assert.equal(await byId('cd-uri').textContent(), uri);
    await byId('cd-tab-networks').click();
    await byId('net-add').click();
    await byId('newnet-name').fill('lvnet');
    await byId('newnet-create').click();
    await byId('net-row-lvnet').waitFor({ timeout: 30_000 });
    await until(async () => (await byId('net-state-lvnet').textContent())?.trim() === 'Active', 30_000, 'lvnet to show as active');
    const info = await virsh('net-info', 'lvnet');
    assert.match(info, /Active:\s+yes/);
    assert.match(await virsh('net-dumpxml', 'lvnet'), /<forward mode='nat'/);
    assert.equal(await byId('net-detail-forward').textContent(), 'NAT');

    await byId('net-stop').click();
    await until(async () => /Active:\s+no/.test(await virsh('net-info', 'lvnet')), 20_000, 'lvnet to stop on the libvirt host');
    await byId('net-start').waitFor();

    await byId('net-tab-xml').click();
    const editor = byId('net-xml');
    await until(async () => (await editor.inputValue()).includes('<name>lvnet</name>'), 10_000, 'the XML to load');
    await editor.fill((await editor.inputValue()).replace('<name>lvnet</name>', '<name>lvnet</name><bogus'));
    await byId('net-xml-apply').click();
    assert.match((await byId('net-xml-error').textContent()) ?? '', /XML/i, "libvirt's complaint is shown");
    await byId('net-xml-revert').click();

    await byId('net-tab-details').click();
    await byId('net-delete').click();
    await byId('net-delete-confirm').click();
    await byId('net-row-lvnet').waitFor({ state: 'detached', timeout: 20_000 });
    assert.doesNotMatch(await virsh('net-list', '--all', '--name'), /lvnet/);
  });
});
