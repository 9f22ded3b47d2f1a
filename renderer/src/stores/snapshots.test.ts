import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SnapshotInfo } from '@shared/api';
import { fakeHostPerTest, settle, summary } from '../testing/fakeHost';
import { snapshotRows, useSnapshotsStore } from './snapshots';
import { useToastStore } from './toasts';

function snap(name: string, fields: Partial<SnapshotInfo> = {}): SnapshotInfo {
  return { name, createdAt: 0, state: 'running', current: false, memory: true, children: 0, descendants: 0, location: 'internal', thumbnail: false, ...fields };
}

describe('snapshots store', () => {
  const fixture = fakeHostPerTest([summary({ uuid: 'g1', name: 'guest', state: 'running', reason: 'booted', id: 1 })]);

  it('orders the tree parents first, each level oldest first, orphans as roots', () => {
    const rows = snapshotRows([snap('c', { parent: 'a', createdAt: 3 }), snap('b', { parent: 'a', createdAt: 2 }), snap('a', { createdAt: 1 }), snap('d', { parent: 'c', createdAt: 4 }), snap('x', { parent: 'gone', createdAt: 5 })]);
    assert.deepEqual(rows.map((r) => `${r.depth}:${r.snapshot.name}`), ['0:a', '1:b', '1:c', '2:d', '0:x']);
  });

  it('loads, takes a snapshot, reloads on snapshot.changed, and keeps why the engine cannot', async () => {
    const store = useSnapshotsStore();
    let list = [snap('s1', { current: true })];
    fixture.host.answer('snapshot.list', () => ({ snapshots: structuredClone(list) }));
    await store.load('g1');
    assert.deepEqual(store.byDomain.g1.map((s) => s.name), ['s1']);
    fixture.host.answer('snapshot.create', (p) => {
      list = [snap('s1'), snap(p.name ?? 'auto', { parent: 's1', current: true })];
      return { snapshot: list[1], job: { id: 1, uuid: 'g1', domain: 'guest', operation: 'snapshot', status: 'completed', startedAt: 0, elapsedMs: 5, processedBytes: 0, totalBytes: 0 } };
    });
    assert.equal(await store.take('g1', 'two', 'desc'), true);
    assert.deepEqual(fixture.host.sent('snapshot.create'), [{ domain: 'g1', name: 'two', description: 'desc' }]);
    assert.deepEqual(store.byDomain.g1.map((s) => `${s.name}${s.current ? '*' : ''}`), ['s1', 'two*']);
    list = [snap('two', { current: true })];
    fixture.host.answer('snapshot.list', () => ({ snapshots: structuredClone(list), unavailable: "v86 snapshots raw disks only, and disk 'hdb' is qcow2" }));
    fixture.host.emit('snapshot.changed', { uuid: 'g1', name: 'guest', snapshot: 's1', event: 'deleted' });
    await settle();
    await settle();
    assert.deepEqual(store.byDomain.g1.map((s) => s.name), ['two']);
    assert.equal(store.unavailable.g1, "v86 snapshots raw disks only, and disk 'hdb' is qcow2");
  });

  it('turns a refused revert into a toast naming the snapshot, and is not busy afterwards', async () => {
    const store = useSnapshotsStore();
    fixture.host.answer('snapshot.list', () => ({ snapshots: [] }));
    const reverting = store.revert('g1', 'nope');
    await settle();
    assert.equal(store.busy.g1, 'revert');
    fixture.host.refuse('snapshot.revert', { code: 'NO_DOMAIN_SNAPSHOT', message: "Domain snapshot not found: no domain snapshot with matching name 'nope'" });
    assert.equal(await reverting, false);
    assert.equal(store.busy.g1, undefined);
    assert.deepEqual(useToastStore().toasts.map((t) => [t.title, t.message]), [['Could not revert to “nope”', "Domain snapshot not found: no domain snapshot with matching name 'nope'"]]);
  });
});
