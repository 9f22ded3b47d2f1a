import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobInfo } from '@shared/api';
import { fakeHostPerTest, settle, summary } from '../testing/fakeHost';
import { useDomainsStore } from './domains';
import { useJobsStore } from './jobs';
import { useToastStore } from './toasts';

const GUEST = summary({ uuid: 'g1', name: 'guest', state: 'running', reason: 'booted', id: 1 });

function job(fields: Partial<JobInfo>): JobInfo {
  return { id: 3, uuid: 'g1', domain: 'guest', operation: 'managedsave', status: 'running', startedAt: 0, elapsedMs: 0, processedBytes: 0, totalBytes: 1000, ...fields };
}

describe('jobs store', () => {
  const fixture = fakeHostPerTest([GUEST]);

  it('tracks a managed save from its answer through its progress to its completion toast', async () => {
    const domains = useDomainsStore();
    const jobs = useJobsStore();
    fixture.host.answer('domain.managedSave', () => ({ job: job({}) }));
    assert.equal(await domains.managedSave('g1'), true);
    assert.equal(jobs.byKey.g1.id, 3);
    fixture.host.emit('job.progress', { job: job({ processedBytes: 500 }) });
    await settle();
    assert.equal(jobs.byKey.g1.processedBytes, 500);
    fixture.host.emit('job.completed', { job: job({ status: 'completed', elapsedMs: 2500, processedBytes: 1000 }) });
    // Progress that trails the completion does not bring the bar back.
    fixture.host.emit('job.progress', { job: job({ processedBytes: 999 }) });
    await settle();
    assert.equal(jobs.byKey.g1, undefined);
    assert.deepEqual(
      useToastStore().toasts.map((t) => [t.kind, t.title, t.message]),
      [['success', 'Saved “guest”', 'Finished in 2.5 s. Run restores it where it left off.']],
    );
  });

  it('marks an abort in flight, and turns a refused abort into a toast', async () => {
    const jobs = useJobsStore();
    fixture.host.emit('job.progress', { job: job({}) });
    await settle();
    const aborting = jobs.abort('g1');
    await settle();
    assert.equal(jobs.aborting.g1, true);
    fixture.host.refuse('domain.jobAbort', { code: 'OPERATION_INVALID', message: 'no job is running' });
    await aborting;
    assert.equal(jobs.aborting.g1, undefined);
    assert.deepEqual(
      useToastStore().toasts.map((t) => [t.title, t.message]),
      [['Could not cancel the job of “guest”', 'no job is running']],
    );
  });

  it('asks about the jobs of domains that were mid-save when the list loaded', async () => {
    const jobs = useJobsStore();
    fixture.host.answer('domain.jobInfo', ({ domain }) => ({ job: job({ uuid: domain, processedBytes: 10 }) }));
    jobs.recover([summary({ uuid: 'g1', name: 'guest', state: 'running', reason: 'booted', step: 'saving' }), summary({ uuid: 'idle', name: 'idle' })]);
    await settle();
    assert.deepEqual(fixture.host.sent('domain.jobInfo'), [{ domain: 'g1' }]);
    assert.equal(jobs.byKey.g1.processedBytes, 10);
  });
  it("follows a libvirt connection's jobs apart from this computer's, and aborts and recovers them on it", async () => {
    const jobs = useJobsStore();
    const uri = 'qemu+ssh://server/system';
    const key = `${uri} g1`;
    fixture.host.emit('job.progress', { job: job({ processedBytes: 200 }) }, uri);
    await settle();
    assert.equal(jobs.byKey.g1, undefined);
    assert.equal(jobs.byKey[key].processedBytes, 200);
    const aborting = jobs.abort(key);
    await settle();
    assert.equal(jobs.aborting[key], true);
    assert.deepEqual(fixture.host.sent('domain.jobAbort'), [{ domain: 'g1' }]);
    assert.deepEqual(fixture.host.sentTo('domain.jobAbort'), [uri]);
    fixture.host.replyTo('domain.jobAbort', { job: job({}) });
    await aborting;
    // Each connection numbers its jobs: this computer's job 3 ending is not the connection's.
    fixture.host.emit('job.completed', { job: job({ status: 'completed' }) });
    await settle();
    assert.equal(jobs.byKey[key].id, 3);
    fixture.host.emit('job.completed', { job: job({ status: 'aborted' }) }, uri);
    await settle();
    assert.equal(jobs.byKey[key], undefined);
    assert.equal(jobs.aborting[key], undefined);

    fixture.host.answer('domain.jobInfo', ({ domain }) => ({ job: job({ id: 4, uuid: domain, processedBytes: 10 }) }));
    jobs.recover([summary({ uuid: 'g2', name: 'far', state: 'paused', reason: 'saving' }), summary({ uuid: 'idle', name: 'idle', state: 'paused', reason: 'user' })], uri);
    await settle();
    assert.deepEqual(fixture.host.sent('domain.jobInfo'), [{ domain: 'g2' }]);
    assert.deepEqual(fixture.host.sentTo('domain.jobInfo'), [uri]);
    assert.equal(jobs.byKey[`${uri} g2`].processedBytes, 10);
  });
});
