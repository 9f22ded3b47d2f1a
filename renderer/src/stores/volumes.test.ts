import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { VolumeInfo } from '@shared/api';
import { connectFakeHost, settle, type FakeHostTransport } from '../testing/fakeHost';
import { useToastStore } from './toasts';
import { freeVolumeName, useVolumesStore, volumeNameOf } from './volumes';

const URI = 'qemu+tcp://127.0.0.1:16509/system';

function volume(name: string): VolumeInfo {
  return { pool: 'default', name, path: `/var/lib/libvirt/images/${name}`, format: 'raw', capacityBytes: 1 << 30, allocationBytes: 0, usedBy: [] };
}

describe('volume names', () => {
  it("names a new disk after the guest, as virt-manager does, and skips the pool's names", () => {
    assert.equal(freeVolumeName('web', 'qcow2', []), 'web.qcow2');
    assert.equal(freeVolumeName('web', 'qcow2', ['web.qcow2', 'web-1.qcow2', 'web.raw']), 'web-2.qcow2');
    // A guest name libvirt's volume names cannot hold is made one.
    assert.equal(freeVolumeName('my guest', 'raw', []), 'my_guest.raw');
    assert.equal(volumeNameOf('/home/me/Debian 12.iso'), 'Debian_12.iso');
  });
});

describe('volumes store', () => {
  let host: FakeHostTransport;

  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost();
  });
  afterEach(() => mock.timers.reset());

  it('lists a pool once for pickers opened together, on the connection, and toasts its warnings once', async () => {
    const volumes = useVolumesStore();
    const both = Promise.all([volumes.refresh(URI), volumes.refresh(URI)]);
    await settle();
    assert.deepEqual(host.sent('volume.list'), [{ pool: 'default' }]);
    assert.deepEqual(host.sentTo('volume.list'), [URI]);
    host.reply('volume.list', { volumes: [volume('a.iso')], warnings: ["created the 'default' pool"] });
    await both;
    assert.deepEqual(volumes.listing(URI)?.volumes.map((v) => v.name), ['a.iso']);
    assert.deepEqual(useToastStore().toasts.map((t) => t.message), ["created the 'default' pool"]);
    // A later look asks again: volumes change on the host.
    void volumes.refresh(URI);
    await settle();
    assert.equal(host.sent('volume.list').length, 2);
  });

  it('keeps the last listing with the reason when the pool cannot be listed', async () => {
    const volumes = useVolumesStore();
    host.answer('volume.list', () => ({ volumes: [volume('a.iso')] }));
    await volumes.refresh(URI);
    host.answer('volume.list', () => {
      throw { code: 'NO_STORAGE_POOL', message: "Storage pool not found: no storage pool with matching name 'default'" };
    });
    await volumes.refresh(URI);
    assert.equal(volumes.listing(URI)?.volumes.length, 1);
    assert.match(volumes.listing(URI)?.problem ?? '', /no storage pool with matching name/);
  });

  it('creates a volume on the connection and lists the pool after, so pickers show it', async () => {
    const volumes = useVolumesStore();
    host.answer('volume.create', () => ({ volume: volume('web.qcow2') }));
    host.answer('volume.list', () => ({ volumes: [volume('web.qcow2')] }));
    const made = await volumes.create(URI, 'web.qcow2', 2 * 1024 ** 3, 'qcow2');
    assert.equal(made.path, '/var/lib/libvirt/images/web.qcow2');
    assert.deepEqual(host.sent('volume.create'), [{ pool: 'default', name: 'web.qcow2', capacityBytes: 2 * 1024 ** 3, format: 'qcow2' }]);
    assert.deepEqual(host.sentTo('volume.create'), [URI]);
    assert.deepEqual(volumes.listing(URI)?.volumes.map((v) => v.name), ['web.qcow2']);
  });
});
