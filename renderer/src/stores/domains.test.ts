import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { ConnectionState } from '@shared/api';
import { ApiCallError } from '@shared/client';
import { connectFakeHost, settle, summary, type FakeHostTransport } from '../testing/fakeHost';
import { useConnectionsStore } from './connections';
import { useDomainsStore } from './domains';
import { useToastStore } from './toasts';
import { useViewStore } from './view';

const ALPHA = summary({ uuid: 'a1', name: 'alpha' });
const BETA = summary({ uuid: 'b2', name: 'beta', state: 'running', reason: 'booted', id: 1 });

describe('domains store', () => {
  let host: FakeHostTransport;

  beforeEach(async () => {
    // The toasts' lifetimes are timers; they need not run.
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost([ALPHA, BETA]);
  });
  afterEach(() => mock.timers.reset());

  it('loads the list when the connection opens, sorted by name', async () => {
    const domains = useDomainsStore();
    await settle();
    assert.equal(domains.loaded, true);
    assert.deepEqual(
      domains.list.map((d) => d.name),
      ['alpha', 'beta'],
    );
  });

  it('marks a domain busy while its action is in flight, then applies the answer', async () => {
    const domains = useDomainsStore();
    await settle();
    const started = domains.start('a1');
    await settle();
    assert.equal(domains.pending.a1, 'start');
    // A second press while the first is in flight is not sent.
    assert.equal(await domains.start('a1'), false);
    assert.deepEqual(host.reply('domain.start', { domain: { ...ALPHA, state: 'running', reason: 'booted', id: 2 } }), { domain: 'a1' });
    assert.equal(await started, true);
    assert.equal(domains.pending.a1, undefined);
    assert.equal(domains.byUuid.a1.state, 'running');
    assert.equal(host.sent('domain.start').length, 1);
    assert.deepEqual(useToastStore().toasts, []);
  });

  it("a transient domain's Force Off answer after the event that removed it does not bring its row back", async () => {
    const domains = useDomainsStore();
    await settle();
    const gamma = summary({ uuid: 'c3', name: 'gamma', state: 'running', reason: 'booted', id: 3, persistent: false });
    host.emit('domain.lifecycle', { domain: gamma, event: 'started' });
    await settle();
    assert.equal(domains.byUuid.c3?.state, 'running');
    const destroyed = domains.destroy('c3');
    await settle();
    host.emit('domain.undefined', { uuid: 'c3', name: 'gamma' });
    await settle();
    host.reply('domain.destroy', { domain: { ...gamma, id: undefined, state: 'shutoff', reason: 'destroyed' } });
    assert.equal(await destroyed, true);
    assert.equal(domains.byUuid.c3, undefined);
    assert.deepEqual(
      domains.list.map((d) => d.name),
      ['alpha', 'beta'],
    );
  });

  it('turns a refusal into a toast naming the domain and clears the busy mark', async () => {
    const domains = useDomainsStore();
    await settle();
    const paused = domains.suspend('b2');
    await settle();
    host.refuse('domain.suspend', { code: 'OPERATION_INVALID', message: 'Requested operation is not valid: domain is not running' });
    assert.equal(await paused, false);
    assert.equal(domains.pending.b2, undefined);
    assert.deepEqual(
      useToastStore().toasts.map((t) => [t.kind, t.title, t.message]),
      [['error', 'Could not pause “beta”', 'Requested operation is not valid: domain is not running']],
    );
  });

  it('words a failed start as the caller asks', async () => {
    const domains = useDomainsStore();
    await settle();
    const started = domains.start('a1', 'Created “alpha” but could not start it');
    await settle();
    host.refuse('domain.start', { code: 'OPERATION_FAILED', message: 'operation failed: no kernel' });
    assert.equal(await started, false);
    assert.equal(useToastStore().toasts[0].title, 'Created “alpha” but could not start it');
  });

  it('offers to force off a guest that cannot be asked to shut down, without a toast', async () => {
    const domains = useDomainsStore();
    await settle();
    const shutdown = domains.shutdown('b2');
    await settle();
    assert.deepEqual(host.refuse('domain.shutdown', { code: 'AGENT_UNRESPONSIVE', message: 'the guest has no ACPI' }), { domain: 'b2', unreachable: 'fail' });
    assert.equal(await shutdown, false);
    assert.deepEqual(useViewStore().forceOffOffer, { key: 'b2', reason: 'the guest has no ACPI' });
    assert.deepEqual(useToastStore().toasts, []);
  });

  it('applies lifecycle events: a new state, a crash with its toast, a deletion', async () => {
    const domains = useDomainsStore();
    await settle();
    host.emit('domain.lifecycle', { domain: { ...ALPHA, state: 'running', reason: 'booted' }, event: 'started' });
    await settle();
    assert.equal(domains.byUuid.a1.state, 'running');
    host.emit('domain.lifecycle', { domain: { ...BETA, state: 'crashed', reason: 'crashed' }, event: 'crashed', detail: 'the runner exited' });
    host.emit('domain.undefined', { uuid: 'a1', name: 'alpha' });
    await settle();
    assert.equal(domains.byUuid.b2.state, 'crashed');
    assert.equal(domains.byUuid.a1, undefined);
    assert.deepEqual(
      useToastStore().toasts.map((t) => [t.kind, t.title, t.message]),
      [['error', '“beta” crashed', 'the runner exited']],
    );
  });

  it('creates an installer guest on a new disk, and removes the disk again when the definition is refused', async () => {
    const domains = useDomainsStore();
    await settle();
    host.answer('volume.create', ({ name, capacityBytes }) => ({
      volume: { pool: 'default', name, path: `/pool/${name}`, format: 'raw', capacityBytes, allocationBytes: 0, usedBy: [] },
    }));
    host.answer('volume.delete', () => ({}));
    const spec = { name: 'gamma', memoryMiB: 128, boot: { kind: 'install', iso: '/isos/tiny.iso', disk: 'new-volume' } } as const;
    const created = domains.create(spec, { newDiskBytes: 1024 ** 3 });
    await settle();
    assert.deepEqual(host.sent('volume.create'), [{ pool: 'default', name: 'gamma.img', capacityBytes: 1024 ** 3, format: 'raw' }]);
    const asked = host.refuse('domain.create', { code: 'OPERATION_FAILED', message: 'ISO image /isos/tiny.iso does not exist' });
    assert.deepEqual(asked.spec.boot, { kind: 'install', iso: '/isos/tiny.iso', disk: '/pool/gamma.img' });
    await assert.rejects(created, (err) => err instanceof ApiCallError && /does not exist/.test(err.message));
    assert.deepEqual(host.sent('volume.delete'), [{ pool: 'default', name: 'gamma.img' }]);
    assert.equal(domains.byUuid.gamma, undefined);
  });
});

describe('domains store with libvirt connections', () => {
  const REMOTE = 'qemu+ssh://root@server/system';
  const connection = (state: ConnectionState['state'], fields: Partial<ConnectionState> = {}): ConnectionState => ({
    uri: REMOTE,
    kind: 'libvirt',
    state,
    autoconnect: true,
    ...fields,
  });
  // The far side's guests: one holds the same UUID as a guest here (a copied definition).
  const FAR_ALPHA = summary({ uuid: 'a1', name: 'far-alpha', engine: REMOTE, onHostStop: 'keep', generation: 0 });
  const FAR_GAMMA = summary({ uuid: 'c3', name: 'gamma', engine: REMOTE, state: 'running', reason: 'booted', id: 4, onHostStop: 'keep', generation: 0 });
  const key = (uuid: string) => `${REMOTE} ${uuid}`;
  let host: FakeHostTransport;

  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost([ALPHA, BETA], { connections: [connection('connected')], domains: { [REMOTE]: [FAR_ALPHA, FAR_GAMMA] } });
  });
  afterEach(() => mock.timers.reset());

  it('lists an open connection on that connection, apart from this computer’s list', async () => {
    const domains = useDomainsStore();
    await settle();
    await settle();
    assert.deepEqual(host.sentTo('domain.list').sort(), [REMOTE, undefined].sort());
    assert.deepEqual(
      domains.list.map((d) => d.name),
      ['alpha', 'beta'],
    );
    assert.deepEqual(
      domains.listOf(REMOTE).map((d) => d.name),
      ['far-alpha', 'gamma'],
    );
    assert.equal(domains.get('a1')?.name, 'alpha');
    assert.equal(domains.get(key('a1'))?.name, 'far-alpha');
    assert.equal(domains.isStale(key('a1')), false);
    assert.equal(domains.names.has('gamma'), false, 'the wizard’s names are this computer’s');
  });

  it('sends every action of a remote domain to its connection and applies the answer there', async () => {
    const domains = useDomainsStore();
    await settle();
    await settle();
    const started = domains.start(key('a1'));
    await settle();
    assert.equal(domains.pending[key('a1')], 'start');
    assert.equal(domains.pending.a1, undefined, 'the guest here with the same UUID is not busy');
    const asked = host.replyTo('domain.start', { domain: { ...FAR_ALPHA, state: 'running', reason: 'booted', id: 5 } });
    assert.deepEqual(asked, { params: { domain: 'a1' }, connection: REMOTE });
    assert.equal(await started, true);
    assert.equal(domains.get(key('a1'))?.state, 'running');
    assert.equal(domains.byUuid.a1.state, 'shutoff');

    host.answer('domain.undefine', () => ({}));
    host.answer('domain.setAutostart', ({ enabled }) => ({ domain: { ...FAR_GAMMA, autostart: enabled } }));
    assert.equal(await domains.undefine(key('a1')), true);
    await domains.setAutostart(key('c3'), true);
    assert.deepEqual(host.sentTo('domain.undefine'), [REMOTE]);
    assert.deepEqual(host.sentTo('domain.setAutostart'), [REMOTE]);
    assert.equal(domains.get(key('a1')), undefined);
    assert.equal(domains.byUuid.a1.name, 'alpha');
    assert.equal(domains.get(key('c3'))?.autostart, true);
    // Actions of this computer's guests still go without a connection.
    host.answer('domain.destroy', () => ({ domain: { ...BETA, state: 'shutoff', reason: 'destroyed' } }));
    await domains.destroy('b2');
    assert.deepEqual(host.sentTo('domain.destroy'), [undefined]);
  });

  it('applies events to the list of the connection they come from', async () => {
    const domains = useDomainsStore();
    await settle();
    await settle();
    host.emit('domain.lifecycle', { domain: { ...FAR_ALPHA, state: 'running', reason: 'booted' }, event: 'started' }, REMOTE);
    host.emit('domain.defined', { domain: summary({ uuid: 'd4', name: 'delta', engine: REMOTE }) }, REMOTE);
    host.emit('domain.undefined', { uuid: 'c3', name: 'gamma' }, REMOTE);
    await settle();
    assert.equal(domains.get(key('a1'))?.state, 'running');
    assert.equal(domains.byUuid.a1.state, 'shutoff');
    assert.deepEqual(
      domains.listOf(REMOTE).map((d) => d.name),
      ['delta', 'far-alpha'],
    );
    assert.deepEqual(
      domains.list.map((d) => d.name),
      ['alpha', 'beta'],
    );
    // An event of a connection nobody listed is left to its list.
    host.emit('domain.defined', { domain: summary({ uuid: 'e5', name: 'elsewhere' }) }, 'qemu+tcp://other/system');
    await settle();
    assert.equal(domains.remote['qemu+tcp://other/system'], undefined);
  });

  it('greys the domains of a connection that fails, refuses their actions, and lists them again on reconnection', async () => {
    const domains = useDomainsStore();
    await settle();
    await settle();
    host.emit('connection.state', { connection: connection('failed', { error: 'connection reset by peer', retryAt: 4000 }) });
    await settle();
    assert.equal(domains.isStale(key('c3')), true);
    assert.deepEqual(
      domains.listOf(REMOTE).map((d) => d.name),
      ['far-alpha', 'gamma'],
      'the last known states stay on screen',
    );
    assert.equal(await domains.destroy(key('c3')), false);
    assert.equal(host.sent('domain.destroy').length, 0);
    // Events of a connection that is down are not applied to its greyed list.
    host.emit('domain.undefined', { uuid: 'c3', name: 'gamma' }, REMOTE);
    await settle();
    assert.ok(domains.get(key('c3')));

    const lists = host.sentTo('domain.list').filter((c) => c === REMOTE).length;
    host.emit('connection.state', { connection: connection('connecting') });
    host.emit('connection.state', { connection: connection('connected', { hostname: 'server' }) });
    await settle();
    await settle();
    assert.equal(host.sentTo('domain.list').filter((c) => c === REMOTE).length, lists + 1);
    assert.equal(domains.isStale(key('c3')), false);
  });

  it('shows nothing of a connection disconnected on purpose or removed', async () => {
    const domains = useDomainsStore();
    const connections = useConnectionsStore();
    await settle();
    await settle();
    host.answer('connection.close', () => ({ connection: connection('disconnected') }));
    host.answer('connection.list', () => ({ connections: [connection('disconnected')] }));
    await connections.close(REMOTE);
    assert.deepEqual(domains.listOf(REMOTE), []);
    assert.equal(domains.remote[REMOTE], undefined);

    host.answer('connection.open', () => ({ connection: connection('connected') }));
    await connections.open(REMOTE);
    await settle();
    assert.equal(domains.listOf(REMOTE).length, 2);
    host.answer('connection.remove', () => ({}));
    await connections.remove(REMOTE);
    assert.equal(domains.remote[REMOTE], undefined);
    assert.equal(domains.get(key('a1')), undefined);
  });

  it('lists the open connections again after the Domus host comes back', async () => {
    const domains = useDomainsStore();
    await settle();
    await settle();
    const lists = () => host.sentTo('domain.list').filter((c) => c === REMOTE).length;
    const before = lists();
    host.close();
    await settle();
    assert.equal(domains.isStale(key('a1')), true);
    mock.timers.tick(1000);
    await settle();
    await settle();
    assert.equal(lists(), before + 1);
    assert.equal(domains.isStale(key('a1')), false);
  });
});
