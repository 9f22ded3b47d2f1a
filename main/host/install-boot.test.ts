// An install from media as virt-install runs it: the first boot runs the install-time definition
// (the ISO in the CD-ROM, booted first); when the guest reboots, the host switches to the final
// definition (the CD-ROM ejected), which can only boot from the disk.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Events } from '../../shared/api.js';
import { guest, guestsBuilt, SerialWatch, TestHost } from '../testing/harness.js';

describe('install from media', { skip: !guestsBuilt() && 'sample guests not built', timeout: 400_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  it('boots the media first, then the disk once the guest reboots', async () => {
    // Stands in for the disk an installer has just written: it boots through extlinux.
    const disk = path.join(t.home, 'installed.img');
    fs.copyFileSync(guest('disk.img'), disk);
    const { domain } = await t.client.call('domain.create', { spec: { name: 'inst', memoryMiB: 128, boot: { kind: 'install', iso: guest('tiny.iso'), disk } } });
    const inactive = (await t.client.call('domain.xml', { domain: 'inst', inactive: true })).xml;
    assert.match(inactive, /<domus:install [^>]*media='[^']*tiny\.iso'/);

    const events: string[] = [];
    t.client.on('domain.lifecycle', (e: Events['domain.lifecycle']) => {
      if (e.domain.uuid === domain.uuid && e.event !== 'step') events.push(`${e.event}:${e.domain.reason}`);
    });
    await t.client.call('domain.start', { domain: 'inst' });
    const live = (await t.client.call('domain.xml', { domain: 'inst' })).xml;
    assert.match(live, /<boot dev='cdrom'\/>\s*<boot dev='hd'\/>/);
    assert.match(live, /<source file='[^']*tiny\.iso'\/>/);
    const serial = await SerialWatch.open(t.client, 'inst');
    await serial.wait(/DOMUS-GUEST-READY/, 180_000);

    const startedAgain = new Promise<void>((resolve) => {
      t.client.on('domain.lifecycle', (e: Events['domain.lifecycle']) => {
        if (e.domain.uuid === domain.uuid && e.event === 'started' && events.includes('stopped:shutdown')) resolve();
      });
    });
    await t.client.call('domain.serialWrite', { domain: 'inst', data: Buffer.from('reboot\n').toString('base64') });
    await startedAgain;
    assert.deepEqual(events, ['started:booted', 'rebooted:booted', 'shutdown:shutdown', 'stopped:shutdown', 'started:booted']);

    const final = (await t.client.call('domain.xml', { domain: 'inst' })).xml;
    assert.doesNotMatch(final, /tiny\.iso/, 'the CD-ROM is ejected');
    assert.doesNotMatch(final, /domus:install/);
    assert.doesNotMatch((await t.client.call('domain.xml', { domain: 'inst', inactive: true })).xml, /domus:install/);
    // Only the disk can boot now.
    const again = await SerialWatch.open(t.client, 'inst');
    await again.wait(/DOMUS-GUEST-READY/, 180_000);
  });
});
