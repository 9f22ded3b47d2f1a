import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { ConnectionState } from '@shared/api';
import { ApiCallError } from '@shared/client';
import { connectFakeHost, settle, type FakeHostTransport } from '../testing/fakeHost';
import { useConnectionsStore } from './connections';
import { useToastStore } from './toasts';

const SERVER = 'qemu+ssh://root@server/system';
const DEAD = 'qemu+tcp://127.0.0.1:1/system';

function state(uri: string, fields: Partial<ConnectionState> = {}): ConnectionState {
  return { uri, kind: 'libvirt', state: 'disconnected', autoconnect: true, ...fields };
}

const toastLines = () => useToastStore().toasts.map((t) => [t.kind, t.title, t.message]);

describe('connections store', () => {
  let host: FakeHostTransport;

  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost([], { connections: [state(SERVER, { state: 'connected', hostname: 'server', hypervisor: 'QEMU 7.2.0' })] });
  });
  afterEach(() => mock.timers.reset());

  it('lists the connections when the host connection opens, and follows their state events', async () => {
    const connections = useConnectionsStore();
    await settle();
    assert.equal(connections.loaded, true);
    assert.deepEqual(
      connections.list.map((c) => [c.uri, c.state]),
      [[SERVER, 'connected']],
    );
    host.emit('connection.state', { connection: state(SERVER, { state: 'failed', error: 'connection reset by peer', retryAt: 5000 }) });
    host.emit('connection.state', { connection: state(DEAD, { state: 'connecting' }) });
    await settle();
    assert.deepEqual(connections.byUri[SERVER], state(SERVER, { state: 'failed', error: 'connection reset by peer', retryAt: 5000 }));
    assert.deepEqual(
      connections.list.map((c) => [c.uri, c.state]),
      [
        [SERVER, 'failed'],
        [DEAD, 'connecting'],
      ],
    );
    // Libvirt connections' events of other kinds are not connection states.
    host.emit('connection.state', { connection: state(DEAD, { state: 'connected' }) }, DEAD);
    await settle();
    assert.equal(connections.byUri[DEAD].state, 'connecting');
  });

  it('marks a connection busy while it connects, and words a failure in a toast', async () => {
    const connections = useConnectionsStore();
    await settle();
    host.emit('connection.state', { connection: state(DEAD, { state: 'failed', error: 'connection refused' }) });
    await settle();
    const opened = connections.open(DEAD);
    await settle();
    assert.equal(connections.pending[DEAD], 'open');
    assert.equal(await connections.open(DEAD), false, 'a second press while the first is in flight is not sent');
    assert.deepEqual(host.refuse('connection.open', { code: 'SYSTEM_ERROR', message: 'connect ECONNREFUSED 127.0.0.1:1' }), { uri: DEAD });
    assert.equal(await opened, false);
    assert.equal(connections.pending[DEAD], undefined);
    assert.equal(host.sent('connection.open').length, 1);
    assert.deepEqual(toastLines(), [['error', 'Could not connect to QEMU/KVM: 127.0.0.1:1', 'connect ECONNREFUSED 127.0.0.1:1']]);
  });

  it('applies the answer of a disconnect, and forgets a removed connection', async () => {
    const connections = useConnectionsStore();
    await settle();
    const closed = connections.close(SERVER);
    await settle();
    host.reply('connection.close', { connection: state(SERVER) });
    assert.equal(await closed, true);
    assert.equal(connections.byUri[SERVER].state, 'disconnected');
    const removed = connections.remove(SERVER);
    await settle();
    assert.equal(connections.pending[SERVER], 'remove');
    assert.deepEqual(host.reply('connection.remove', {}), { uri: SERVER });
    assert.equal(await removed, true);
    assert.deepEqual(connections.list, []);
    assert.deepEqual(toastLines(), []);
  });

  it('re-lists when a connection disconnects (a client\u2019s connection leaves the list then)', async () => {
    const connections = useConnectionsStore();
    await settle();
    const before = host.sent('connection.list').length;
    host.emit('connection.state', { connection: state(SERVER, { state: 'connecting' }) });
    await settle();
    assert.equal(host.sent('connection.list').length, before);
    host.answer('connection.list', () => ({ connections: [] }));
    host.emit('connection.state', { connection: state(SERVER) });
    await settle();
    assert.equal(host.sent('connection.list').length, before + 1);
    assert.deepEqual(connections.list, []);
  });

  it('hands a refusal of a new connection to the dialog, without a toast', async () => {
    const connections = useConnectionsStore();
    await settle();
    host.answer('connection.add', () => {
      throw { code: 'OPERATION_INVALID', message: `Requested operation is not valid: connection ${SERVER} already exists` };
    });
    await assert.rejects(connections.add(SERVER, true), (err) => err instanceof ApiCallError && /already exists/.test(err.message));
    assert.equal(connections.adding, false);
    host.answer('connection.add', () => {
      throw { code: 'INVALID_ARG', message: "invalid argument: qemu:///session is this host's own connection; it is always there" };
    });
    await assert.rejects(connections.add('qemu:///session', true), /own connection/);
    assert.deepEqual(toastLines(), []);
    assert.deepEqual(
      connections.list.map((c) => c.uri),
      [SERVER],
    );
  });

  it('is done adding once the host announces the connection; a failure to connect then is a toast', async () => {
    const connections = useConnectionsStore();
    await settle();
    let done = false;
    const added = connections.add(DEAD, true).then(() => (done = true));
    await settle();
    assert.equal(connections.adding, true);
    assert.deepEqual(host.sent('connection.add'), [{ uri: DEAD, autoconnect: true }]);
    assert.equal(done, false);
    // The host's list as it changes (a new connection's first state, 'disconnected', has it re-listed).
    const server = connections.byUri[SERVER];
    let dead = state(DEAD);
    host.answer('connection.list', () => ({ connections: [server, dead] }));
    host.emit('connection.state', { connection: dead });
    await added;
    assert.equal(connections.adding, false);
    dead = state(DEAD, { state: 'connecting' });
    host.emit('connection.state', { connection: dead });
    await settle();
    assert.equal(connections.byUri[DEAD].state, 'connecting');
    assert.deepEqual(toastLines(), []);
    // The open the add started fails: the tree shows it; the person also hears of it once.
    dead = state(DEAD, { state: 'failed', error: 'connect ECONNREFUSED 127.0.0.1:1', retryAt: 1000 });
    host.emit('connection.state', { connection: dead });
    host.refuse('connection.add', { code: 'SYSTEM_ERROR', message: 'connect ECONNREFUSED 127.0.0.1:1' });
    await settle();
    await settle();
    assert.equal(connections.byUri[DEAD].state, 'failed');
    assert.deepEqual(toastLines(), [['error', 'Added QEMU/KVM: 127.0.0.1:1, but could not connect', 'connect ECONNREFUSED 127.0.0.1:1']]);
  });

  it('adds a connection that is not opened (autoconnect off) from the answer alone', async () => {
    const connections = useConnectionsStore();
    await settle();
    host.answer('connection.add', ({ uri, autoconnect }) => ({ connection: state(uri, { autoconnect }) }));
    await connections.add('qemu:///system', false);
    assert.deepEqual(connections.byUri['qemu:///system'], state('qemu:///system', { autoconnect: false }));
  });
});
