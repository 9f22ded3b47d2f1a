// End to end in Chromium: a guest that cannot be asked to shut down (no ACPI, no guest agent, as
// virt-install writes some definitions). Shut Down offers Force Off instead of failing or hanging,
// and quitting Domus with such a guest running forces it off and completes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { SAMPLE_CMDLINE, TestHost, engineSkip, guest } from '../main/testing/harness.js';
import { openWebShell } from './browser.js';

describe('shutting down a guest that cannot be asked (web shell)', { timeout: 300_000, skip: engineSkip('v86') }, () => {
  let t: TestHost;
  let browser: Browser;
  let page: Page;
  const state = (name: string) => page.getByTestId(`domain-state-${name}`);

  before(async () => {
    t = await TestHost.start();
    await t.client.call('domain.create', {
      spec: { name: 'bare', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } },
    });
    const { xml } = await t.client.call('domain.xml', { domain: 'bare', inactive: true });
    const bare = xml.replace(/<acpi\/>/, '').replace(/<channel[^>]*>\s*<target[^>]*org\.qemu\.guest_agent\.0[^>]*\/>\s*<\/channel>/, '');
    assert.doesNotMatch(bare, /<acpi|guest_agent/);
    await t.client.call('domain.define', { xml: bare });
    ({ browser, page } = await openWebShell(t.client));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('Shut Down says the guest cannot be asked and offers Force Off', async () => {
    await t.client.call('domain.start', { domain: 'bare' });
    await page.getByTestId('domain-row-bare').click();
    await state('bare').filter({ hasText: 'running' }).waitFor({ timeout: 30_000 });

    await page.getByTestId('tb-shutdown').click();
    const offer = page.getByTestId('force-off-offer');
    await offer.waitFor();
    assert.match((await offer.textContent()) ?? '', /This guest cannot be asked to shut down: Force Off\?/);
    assert.match(
      (await page.getByTestId('force-off-reason').textContent()) ?? '',
      /^Operation not supported: domain 'bare' cannot be asked to shut down: it has no ACPI .*; it has no guest agent channel$/,
    );
    await page.getByRole('button', { name: 'Cancel' }).click();
    await offer.waitFor({ state: 'detached' });
    assert.equal((await t.client.call('domain.info', { domain: 'bare' })).state, 'running', 'Cancel leaves it running');

    await page.getByTestId('tb-shutdown').click();
    await page.getByTestId('confirm-force-off').click();
    await state('bare').filter({ hasText: 'shut off' }).waitFor({ timeout: 30_000 });
    assert.equal((await t.client.call('domain.info', { domain: 'bare' })).reason, 'destroyed');
  });

  it('quitting with such a guest running forces it off and completes', async () => {
    await t.client.call('domain.start', { domain: 'bare' });
    await state('bare').filter({ hasText: 'running' }).waitFor({ timeout: 30_000 });
    const started = Date.now();
    await page.keyboard.press('Control+Shift+Q');
    await page.getByTestId('quit-confirm-ok').click();
    // The host's shutdown timeout is 60 s: finishing well before it shows nothing waited for it.
    await page.getByTestId('quit-done').waitFor({ timeout: 45_000 });
    assert.ok(Date.now() - started < 45_000);
    const forced = page.getByTestId('quit-outcome-forced');
    const text = (await forced.textContent()) ?? '';
    assert.match(text, /Forced off/);
    assert.match(text, /bare \(domain 'bare' cannot be asked to shut down \(it has no ACPI .*\): forced off\)/);
  });
});
