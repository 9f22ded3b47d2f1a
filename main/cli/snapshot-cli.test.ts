// snapshot-list --tree draws as virsh does: checked against Debian's virsh on libvirt's test driver
// for the same trees (one root with a branch, then two roots after the root's delete).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { creationTime, snapshotTree } from './commands/snapshot.js';

function virsh(commands: string): string {
  const r = spawnSync('virsh', ['-c', 'test:///default', commands], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const noVirsh = spawnSync('virsh', ['--version']).status !== 0 && 'virsh (libvirt-clients) is not installed';

describe('snapshot-list output', { skip: noVirsh }, () => {
  it('--tree matches virsh for a branched tree and for several roots', () => {
    const out = virsh(
      'snapshot-create-as test a; snapshot-create-as test b; snapshot-revert test a; snapshot-create-as test c; snapshot-create-as test d; ' +
        'snapshot-list test --tree; snapshot-delete test a; snapshot-list test --tree',
    );
    const trees = out.split(/Domain snapshot [a-d] (?:created|reverted|deleted)\n\n?/).filter((s) => s.includes('|') || /^b\n/.test(s));
    assert.equal(trees.length, 2, out);
    assert.equal(snapshotTree([{ name: 'a' }, { name: 'b', parent: 'a' }, { name: 'c', parent: 'a' }, { name: 'd', parent: 'c' }]), trees[0]);
    assert.equal(snapshotTree([{ name: 'b' }, { name: 'c' }, { name: 'd', parent: 'c' }]), trees[1]);
  });

  it('creation times are local time with the zone offset', () => {
    assert.match(creationTime(1796256660), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}$/);
  });
});
