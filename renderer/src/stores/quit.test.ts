import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { connectFakeHost, settle, summary, type FakeHostTransport } from '../testing/fakeHost';
import { useDomainsStore } from './domains';
import { useQuitStore } from './quit';

const RUNNING = summary({ uuid: 'g1', name: 'guest', state: 'running', reason: 'booted', id: 1, onHostStop: 'save' });

describe('quit store', () => {
  let host: FakeHostTransport;

  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost([RUNNING, summary({ uuid: 'off', name: 'off' })]);
    useDomainsStore();
    await settle();
  });
  afterEach(() => mock.timers.reset());

  it('shows what each running guest will do, and goes back to the question when the host refuses', async () => {
    const quit = useQuitStore();
    quit.ask();
    const confirmed = quit.confirm();
    assert.equal(quit.phase, 'stopping');
    assert.deepEqual(quit.progress, [{ uuid: 'g1', name: 'guest', policy: 'save', step: 'pending' }]);
    await settle();
    host.refuse('host.stop', { code: 'OPERATION_INVALID', message: 'a save is already running' });
    await confirmed;
    assert.equal(quit.phase, 'confirm');
    assert.equal(quit.refusal, 'a save is already running');
  });

  it('follows a stop asked elsewhere until the host closes the connection', async () => {
    const quit = useQuitStore();
    host.emit('host.stopping', { domains: [{ uuid: 'g1', name: 'guest', policy: 'save', step: 'done' }] });
    await settle();
    assert.equal(quit.phase, 'stopping');
    assert.equal(quit.progress[0].step, 'done');
    host.close();
    await settle();
    assert.equal(quit.phase, 'stopped', 'a stopped host is not reconnected to');
  });
});
