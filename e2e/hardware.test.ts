// End to end in Chromium: Add Hardware and the device pages as virt-manager's, on shut-off domains.
// On v86 what the engine cannot provide (USB host devices, QEMU's buses) is listed greyed with the
// engine's own reason; on QEMU a new qcow2 disk in the default pool, a NIC with a MAC typed in, a
// sound card, a USB tablet, a second serial port and a guest-agent channel land in the definition,
// each opening its page; an existing qcow2 image named .img is not attached as raw; the NIC source is
// one the engine connects; the radio groups move with arrow keys; a unix-socket serial port on a local
// engine offers no path; the video model and a disk's cache change on their pages, and the disk grows.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { TestHost, engineSkip, sampleGuestXml, until } from '../main/testing/harness.js';
import { openWebShell, screenshotSizes } from './browser.js';

const MAC = '52:54:00:ab:cd:ef';
const MAC2 = '52:54:00:ab:cd:01';
const GiB = 1024 ** 3;

describe('Add Hardware and the device pages (web shell)', { timeout: 300_000 }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  const byId = (id: string) => page.getByTestId(id);
  const inactiveXml = async (domain: string): Promise<string> => (await t.client.call('domain.xml', { domain, inactive: true })).xml;

  const shots = (name: string) => screenshotSizes(page, `hardware-${name}`);

  before(async () => {
    t = await TestHost.start();
    if (!engineSkip('v86')) await t.client.call('domain.define', { xml: sampleGuestXml('hw-v86', 'v86') });
    if (!engineSkip('qemu')) await t.client.call('domain.define', { xml: sampleGuestXml('hw-qemu', 'qemu', "<video><model type='vga'/></video>") });
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  async function openDetails(name: string): Promise<void> {
    await byId(`domain-row-${name}`).click();
    await byId('tb-details').click();
    await byId('page-overview').waitFor();
  }
  async function closeDetails(): Promise<void> {
    await byId('details-close').click();
    await byId('details-panel').waitFor({ state: 'detached' });
  }
  /** Add Hardware → kind → (form) → Finish; the dialog closes on the new device's page. */
  async function addDevice(kind: string, form: () => Promise<void> = async () => undefined): Promise<void> {
    await byId('details-add-hardware').click();
    await byId(`add-kind-${kind}`).check();
    await form();
    await byId('add-finish').click();
    await byId('add-hardware').waitFor({ state: 'detached' });
  }

  it('on v86 lists USB host devices and the QEMU-only choices greyed with the reason', { skip: engineSkip('v86') }, async () => {
    const { capabilities: caps } = await t.client.call('domain.capabilities', { domain: 'hw-v86' });
    assert.ok(caps.hostdev.usb.unavailable, 'v86 has no USB passthrough');
    await openDetails('hw-v86');
    await byId('details-add-hardware').click();
    await byId('add-hardware').waitFor();
    assert.equal(await page.evaluate(() => !!document.activeElement?.closest('dialog')), true, 'the focus is in the dialog when it opens');
    // The kinds are one radio group: one tab stop, arrow keys move the choice.
    await byId('add-kind-disk').focus();
    await page.keyboard.press('Tab');
    assert.doesNotMatch((await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))) ?? '', /^add-kind-/, 'Tab leaves the kinds: they are one tab stop');
    await byId('add-kind-disk').focus();
    await page.keyboard.press('ArrowDown');
    assert.equal(await byId('add-kind-network').isChecked(), true, 'ArrowDown moves to the next kind');
    await page.keyboard.press('ArrowUp');
    assert.equal(await byId('add-kind-disk').isChecked(), true);
    await byId('add-kind-reason-hostdev').filter({ hasText: caps.hostdev.usb.unavailable }).waitFor();
    await byId('add-kind-hostdev').check();
    await byId('add-unavailable').filter({ hasText: caps.hostdev.usb.unavailable }).waitFor();
    assert.equal(await byId('add-finish').isDisabled(), true, 'an unavailable kind cannot be added');
    await shots('v86-usb');

    // Storage: the buses v86 lacks (virtio, SCSI…) are there, disabled, their reason in their text.
    await byId('add-kind-disk').check();
    const greyed = caps.disk.bus.filter((b) => b.unavailable);
    assert.ok(greyed.length > 0, 'v86 lacks some disk buses');
    for (const b of greyed) {
      const option = byId(`add-disk-bus-${b.value}`);
      assert.equal(await option.isDisabled(), true, `${b.value} is disabled`);
      assert.match((await option.textContent()) ?? '', new RegExp(b.unavailable!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    }
    // The NIC models QEMU has and v86 has not are greyed the same way.
    await byId('add-kind-network').check();
    for (const m of caps.interface.model.filter((x) => x.unavailable)) assert.equal(await byId(`add-nic-model-${m.value}`).isDisabled(), true, `${m.value} is disabled`);
    await page.keyboard.press('Escape');
    await byId('add-hardware').waitFor({ state: 'detached' });
    await closeDetails();
  });

  it('on QEMU adds a qcow2 disk, a NIC with its MAC, sound, a USB tablet, a serial port and a guest-agent channel', { skip: engineSkip('qemu') }, async () => {
    const { capabilities: caps } = await t.client.call('domain.capabilities', { domain: 'hw-qemu' });
    await openDetails('hw-qemu');

    await addDevice('disk', async () => {
      // New or existing volume: one radio group.
      await byId('add-new-volume').focus();
      await page.keyboard.press('Tab');
      assert.notEqual(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'add-existing-volume', 'new/existing is one tab stop');
      await byId('add-new-volume').focus();
      await page.keyboard.press('ArrowDown');
      assert.equal(await byId('add-existing-volume').isChecked(), true, 'ArrowDown picks an existing image');
      await byId('add-new-volume').check();
      await byId('add-size').fill('1');
      await byId('add-format').selectOption('qcow2');
      await shots('qemu-storage');
    });
    let xml = await inactiveXml('hw-qemu');
    const disk = /<disk[^>]*>\s*<driver name=['"]qemu['"] type=['"]qcow2['"]\/>\s*<source file=['"]([^'"]*hw-qemu\.qcow2)['"]\/>\s*<target dev=['"](\w+)['"]/.exec(xml);
    assert.ok(disk, xml);
    await byId(`page-disk-${disk[2]}`).waitFor();
    const vol = (await t.client.call('volume.list', { pool: 'default' })).volumes.find((v) => v.path === disk[1]);
    assert.equal(vol?.capacityBytes, GiB, 'a 1 GiB volume in the default pool');

    // A qcow2 image whose name says .img: its format is not guessed as raw from the name.
    const old = (await t.client.call('volume.create', { name: 'hw-old.img', capacityBytes: GiB, format: 'qcow2' })).volume;
    await addDevice('disk', async () => {
      await byId('add-existing-volume').check();
      await byId('add-source').fill(old.path);
    });
    xml = await inactiveXml('hw-qemu');
    const oldDisk = new RegExp(`<disk[^>]*>\\s*<driver ([^>]*)/>\\s*<source file=['"]${old.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"]`).exec(xml);
    assert.ok(oldDisk, xml);
    assert.doesNotMatch(oldDisk[1], /type=['"]raw['"]/, 'a qcow2 image is not attached as raw');

    await addDevice('network', async () => {
      // The source is one the engine connects, and Finish is enabled only with one.
      const source = byId('add-nic-source');
      assert.equal(await source.evaluate((s: HTMLSelectElement) => s.selectedOptions[0]?.disabled ?? true), false, `the chosen source ${await source.inputValue()} is available`);
      if (caps.interface.type.find((x) => x.value === 'user')?.unavailable) assert.notEqual(await source.inputValue(), 'user');
      await byId('add-nic-mac').fill(MAC.toUpperCase());
    });
    await byId('page-nic-0').waitFor();
    assert.equal(await byId('nic-mac').inputValue(), MAC);
    // As virt-manager: a shut-off guest's NIC takes another MAC on its page.
    await byId('nic-mac').fill(MAC2);
    await byId('page-apply').click();
    await byId('page-applied').waitFor();

    await addDevice('sound');
    await byId('page-sound-0').waitFor();
    await addDevice('input', () => byId('add-input-device').selectOption('tablet:usb').then(() => undefined));
    await byId('page-input-0').waitFor();
    await addDevice('serial', async () => {
      if (caps.serial.type.find((x) => x.value === 'unix' && !x.unavailable)) {
        await byId('add-serial-type').selectOption('unix');
        await byId('add-serial-socket-hint').waitFor();
        assert.equal(await byId('add-serial-path').count(), 0, 'QEMU makes the socket in its run directory: no path is offered');
        await byId('add-serial-type').selectOption('pty');
      }
    });
    await byId('page-serial-1').waitFor();
    await addDevice('channel', async () => {
      assert.equal(await byId('add-channel-name').inputValue(), 'org.qemu.guest_agent.0', 'the guest agent by default');
    });
    await byId('page-channel-0').waitFor();

    xml = await inactiveXml('hw-qemu');
    assert.match(xml, new RegExp(`<mac address=['"]${MAC2}['"]/>`));
    assert.match(xml, /<sound model=/);
    assert.match(xml, /<input type=['"]tablet['"] bus=['"]usb['"]/);
    assert.equal(xml.match(/<serial /g)?.length, 2, 'two serial ports');
    assert.match(xml, /<target type=['"]virtio['"] name=['"]org\.qemu\.guest_agent\.0['"]/);
  });

  it("on QEMU changes the video model and a disk's cache on their pages, and grows the disk", { skip: engineSkip('qemu') }, async () => {
    const { capabilities: caps } = await t.client.call('domain.capabilities', { domain: 'hw-qemu' });
    await byId('details-nav-video:0').click();
    const model = caps.video.model.find((m) => !m.unavailable && m.value !== 'vga' && m.value !== 'none');
    assert.ok(model, 'QEMU has a video model besides VGA');
    await byId('video-model').selectOption(model.value);
    await byId('page-apply').click();
    await byId('page-applied').waitFor();
    assert.match(await inactiveXml('hw-qemu'), new RegExp(`<video>\\s*<model type=['"]${model.value}['"]`));

    const target = /<source file=['"][^'"]*hw-qemu\.qcow2['"]\/>\s*<target dev=['"](\w+)['"]/.exec(await inactiveXml('hw-qemu'))![1];
    await byId(`details-nav-disk:${target}`).click();
    const cache = caps.disk.cache.find((c) => !c.unavailable && c.value === 'writeback') ?? caps.disk.cache.find((c) => !c.unavailable && c.value !== 'default');
    assert.ok(cache, 'QEMU has a cache mode');
    await byId('disk-cache').selectOption(cache.value);
    await byId('page-apply').click();
    await byId('page-applied').waitFor();
    assert.match(await inactiveXml('hw-qemu'), new RegExp(`<driver name=['"]qemu['"] type=['"]qcow2['"] cache=['"]${cache.value}['"]/>`));

    await byId('disk-capacity').filter({ hasText: '1.0 GiB' }).waitFor();
    await byId('disk-resize').click();
    await byId('disk-resize-size').fill('0.5');
    assert.equal(await byId('disk-resize-apply').isDisabled(), true, 'a disk does not shrink');
    await byId('disk-resize-size').fill('2');
    await byId('disk-resize-apply').click();
    await byId('disk-capacity').filter({ hasText: '2.0 GiB' }).waitFor();
    await shots('qemu-disk');
    assert.equal((await t.client.call('domain.blockInfo', { domain: 'hw-qemu', target })).capacity, 2 * GiB);

    // The machine type changes what the engine gives (SATA is q35's): the window asks again.
    const sata = caps.disk.bus.find((b) => b.value === 'sata');
    assert.ok(sata?.unavailable, 'the pc machine has no SATA');
    const pcXml = await inactiveXml('hw-qemu');
    assert.match(pcXml, /<type arch=['"]i686['"]>hvm<\/type>/);
    await t.client.call('domain.define', { xml: pcXml.replace(/<type arch=['"]i686['"]>/, "<type arch='i686' machine='q35'>") });
    await byId('details-add-hardware').click();
    await byId('add-kind-disk').check();
    await until(async () => !(await byId('add-disk-bus-sata').isDisabled()), 10_000, 'SATA offered once the machine is q35');
    await page.keyboard.press('Escape');
    await byId('add-hardware').waitFor({ state: 'detached' });
  });
});
