// Snapshots on a real libvirtd (private, per run) through a Domus connection, on a shut-off QEMU
// guest with a qcow2 disk (libvirt's internal snapshots; no boot): domus -c URI snapshot-* print
// what virsh prints, the tree comes from libvirt's <parent>, delete re-parents as libvirt does,
// and libvirt's errors come through.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SAMPLE_CMDLINE, TestHost, engineSkip, guest } from '../../testing/harness.js';

describe('snapshots on a libvirt connection', { skip: engineSkip('libvirt'), timeout: 300_000 }, () => {
  let t: TestHost;
  let uri: string;
  const cli = async (...args: string[]) => {
    const r = await t.cli(['-c', uri, ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  before(async () => {
    t = await TestHost.start('libvirt');
    uri = t.libvirtd!.uri;
    const disk = path.join(t.libvirtd!.dir, 'lvsnap.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
    await t.client.call('domain.define', {
      xml: `<domain type='qemu'><name>lvsnap</name><memory unit='MiB'>128</memory><os><type arch='i686'>hvm</type><kernel>${guest('vmlinuz')}</kernel><initrd>${guest('initrd.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline></os>
        <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk></devices></domain>`,
    });
  });
  after(async () => {
    await t?.stop();
  });

  it('creates, lists as a tree, reverts, deletes with re-parenting, through libvirt', async () => {
    assert.equal(await cli('snapshot-create-as', 'lvsnap', 'a', '--description', 'first'), 'Domain snapshot a created\n');
    assert.equal(await cli('snapshot-create-as', 'lvsnap', 'b'), 'Domain snapshot b created\n');
    assert.equal(await cli('snapshot-list', 'lvsnap', '--tree'), 'a\n  |\n  +- b\n    \n\n');
    assert.equal(await cli('snapshot-current', 'lvsnap', '--name'), 'b\n');
    assert.equal(await cli('snapshot-revert', 'lvsnap', 'a'), 'Domain snapshot a reverted\n\n');
    assert.match(await cli('snapshot-info', 'lvsnap', 'a'), /^Name: {11}a\nDomain: {9}lvsnap\nCurrent: {8}yes\nState: {10}shutoff\nLocation: {7}internal\nParent: {9}-\nChildren: {7}1\nDescendants: {4}1\nMetadata: {7}yes\n\n$/);
    assert.match(await cli('snapshot-dumpxml', 'lvsnap', 'a'), /<description>first<\/description>/);
    assert.equal(await cli('snapshot-delete', 'lvsnap', 'a'), 'Domain snapshot a deleted\n\n');
    assert.equal((await t.client.call('snapshot.info', { domain: 'lvsnap', snapshot: 'b' }, { connection: uri })).snapshot.parent, undefined);
    const missing = await t.cli(['-c', uri, 'snapshot-info', 'lvsnap', 'a']);
    assert.match(missing.stderr, /^error: Domain snapshot not found: no domain snapshot with matching name 'a'\n$/);
    assert.equal(await cli('snapshot-delete', 'lvsnap', 'b'), 'Domain snapshot b deleted\n\n');
    assert.equal(await cli('snapshot-list', 'lvsnap', '--name'), '\n');
  });
});
