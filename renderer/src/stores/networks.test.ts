import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { NetworkInfo } from '@shared/api';
import { connectFakeHost, settle, type FakeHostTransport } from '../testing/fakeHost';
import { useNetworksStore } from './networks';

const URI = 'qemu+tcp://127.0.0.1:16509/system';

function net(name: string, fields: Partial<NetworkInfo> = {}): NetworkInfo {
  return { name, uuid: `uuid-${name}`, active: false, persistent: true, autostart: false, forward: 'nat', address: '192.168.122.1', prefix: 24, ...fields };
}

describe('networks store', () => {
  let host: FakeHostTransport;
  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost();
  });
  afterEach(() => mock.timers.reset());

  it("lists each connection's networks on that connection, sorted, once for callers at the same time", async () => {
    const networks = useNetworksStore();
    const both = Promise.all([networks.refresh(URI), networks.refresh(URI), networks.refresh('')]);
    await settle();
    assert.deepEqual(host.sentTo('network.list'), [URI, undefined]);
    host.reply('network.list', { networks: [net('zeta'), net('default')] });
    host.reply('network.list', { networks: [net('default', { active: true })] });
    await both;
    assert.deepEqual(networks.listing(URI).networks.map((n) => n.name), ['default', 'zeta']);
    assert.equal(networks.listing('').networks[0].active, true);
    assert.equal(networks.listing('').loaded, true);
  });

  it('follows network.lifecycle events of this computer and of each libvirt connection', async () => {
    const networks = useNetworksStore();
    host.answer('network.list', () => ({ networks: [net('default', { active: true })] }));
    await networks.refresh('');
    host.emit('network.lifecycle', { network: net('lab'), event: 'defined' });
    host.emit('network.lifecycle', { network: net('lab', { active: true }), event: 'started' });
    host.emit('network.lifecycle', { network: net('far', { active: true }), event: 'started' }, URI);
    await settle();
    assert.deepEqual(networks.listing('').networks.map((n) => [n.name, n.active]), [['default', true], ['lab', true]]);
    assert.deepEqual(networks.listing(URI).networks.map((n) => n.name), ['far']);
    // Undefined while running it stays (transient); stopped then, it is gone.
    host.emit('network.lifecycle', { network: net('lab', { active: true, persistent: false }), event: 'undefined' });
    await settle();
    assert.equal(networks.listing('').networks.find((n) => n.name === 'lab')?.persistent, false);
    host.emit('network.lifecycle', { network: net('lab', { persistent: false }), event: 'stopped' });
    await settle();
    assert.deepEqual(networks.listing('').networks.map((n) => n.name), ['default']);
  });

  it('creates a network: defines the XML, then starts it, on the connection', async () => {
    const networks = useNetworksStore();
    host.answer('network.define', () => ({ network: net('lab') }));
    host.answer('network.start', () => ({ network: net('lab', { active: true }) }));
    const made = await networks.create(URI, '<network><name>lab</name></network>');
    assert.equal(made.active, true);
    assert.deepEqual(host.sent('network.define'), [{ xml: '<network><name>lab</name></network>' }]);
    assert.deepEqual(host.sent('network.start'), [{ network: 'lab' }]);
    assert.deepEqual(host.sentTo('network.start'), [URI]);
  });

  it('stops a running network before deleting it, and drops it from the list', async () => {
    const networks = useNetworksStore();
    host.answer('network.list', () => ({ networks: [net('lab', { active: true }), net('default', { active: true })] }));
    host.answer('network.destroy', () => ({ network: net('lab') }));
    host.answer('network.undefine', () => ({}));
    await networks.refresh('');
    await networks.remove('', 'lab');
    assert.deepEqual(host.requests.filter((r) => r.method.startsWith('network.') && r.method !== 'network.list').map((r) => r.method), ['network.destroy', 'network.undefine']);
    assert.deepEqual(networks.listing('').networks.map((n) => n.name), ['default']);
  });

  it("keeps the last list with the host's reason when listing fails", async () => {
    const networks = useNetworksStore();
    host.answer('network.list', () => ({ networks: [net('default')] }));
    await networks.refresh(URI);
    host.answer('network.list', () => {
      throw { code: 'NO_SUPPORT', message: 'this function is not supported by the connection driver' };
    });
    await networks.refresh(URI);
    assert.equal(networks.listing(URI).networks.length, 1);
    assert.match(networks.listing(URI).problem, /not supported/);
  });
});
