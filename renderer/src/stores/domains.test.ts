import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ApiCallError } from '@shared/client';
import { connectFakeHost, settle, summary, type FakeHostTransport } from '../testing/fakeHost';
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
    assert.deepEqual(useViewStore().forceOffOffer, { uuid: 'b2', reason: 'the guest has no ACPI' });
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
