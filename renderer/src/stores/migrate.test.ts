import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobInfo, MigrationOutcome } from '@shared/api';
import { domainKey } from '../lib/connections';
import { fakeHostPerTest, settle, summary } from '../testing/fakeHost';
import { useJobsStore } from './jobs';
import { useMigrateStore } from './migrate';

const SRC = 'qemu+ssh://root@a/system';
const DST = 'qemu+ssh://root@b/system';
const KEY = domainKey(SRC, 'g1');
const RESULT: MigrationOutcome = { downtimeMs: 80, totalMs: 4000, transferredBytes: 15 << 20, iterations: 3, postcopy: false };

function job(fields: Partial<JobInfo>): JobInfo {
  return { id: 7, uuid: 'g1', domain: 'guest', operation: 'migrate', status: 'running', startedAt: 0, elapsedMs: 0, processedBytes: 0, totalBytes: 0, ...fields };
}

/** A menu button: counts the times focus came back to it. */
function opener(connected = true) {
  return { focused: 0, isConnected: connected, focus() { this.focused++; } };
}

describe('migrate store', () => {
  const fixture = fakeHostPerTest([summary({ uuid: 'local', name: 'local' })]);

  it("sends domain.migrate to the domain's connection, follows its progress, and ends with the outcome", async () => {
    const store = useMigrateStore();
    const jobs = useJobsStore();
    const button = opener();
    store.open(KEY, button);
    const running = store.migrate({ destination: DST, live: true, bandwidthMiBs: 4 });
    await settle();
    assert.equal(store.phase, 'running');
    fixture.host.emit('job.progress', { job: job({ processedBytes: 4 << 20, totalBytes: 128 << 20, migration: { phase: 'precopy', iteration: 1, remainingBytes: 11 << 20 } }) }, SRC);
    await settle();
    assert.equal(store.job?.migration?.phase, 'precopy');
    assert.equal(jobs.byKey[KEY].processedBytes, 4 << 20);
    const { params, connection } = fixture.host.replyTo('domain.migrate', { job: job({ status: 'completed' }), destination: DST, result: RESULT });
    assert.deepEqual(params, { destination: DST, live: true, bandwidthMiBs: 4, domain: 'g1' });
    assert.equal(connection, SRC);
    await running;
    assert.equal(store.phase, 'done');
    assert.deepEqual(store.outcome?.result, RESULT);
    store.close();
    assert.equal(store.key, null);
    await settle();
    assert.equal(button.focused, 1, 'focus goes back to what opened the dialog');
  });

  it("shows the destination's refusal, and the form can be sent again", async () => {
    const store = useMigrateStore();
    store.open(KEY, null);
    const refused = store.migrate({ destination: DST, live: true });
    await settle();
    fixture.host.refuse('domain.migrate', { code: 'OPERATION_FAILED', message: "operation failed: Cannot access storage file '/var/lib/libvirt/images/x.img': No such file or directory" });
    await refused;
    assert.equal(store.phase, 'failed');
    assert.match(store.failure, /Cannot access storage file/);
    void store.migrate({ destination: DST, live: true });
    await settle();
    assert.equal(store.phase, 'running');
    assert.equal(store.failure, '');
    assert.equal(fixture.host.sent('domain.migrate').length, 2);
  });

  it('Escape while it runs asks first; the answer after it closed changes nothing', async () => {
    const store = useMigrateStore();
    const button = opener();
    store.open(KEY, button);
    void store.migrate({ destination: DST, live: true });
    fixture.host.emit('job.progress', { job: job({ migration: { phase: 'precopy', iteration: 1, remainingBytes: 1 } }) }, SRC);
    await settle();
    store.close(true);
    assert.equal(store.confirmingClose, true);
    assert.equal(store.key, KEY, 'still open');
    // Cancel is the job's own (JobProgress): domain.jobAbort on the domain's connection.
    void useJobsStore().abort(KEY);
    await settle();
    assert.deepEqual(fixture.host.sent('domain.jobAbort'), [{ domain: 'g1' }]);
    assert.deepEqual(fixture.host.sentTo('domain.jobAbort'), [SRC]);
    store.close();
    assert.equal(store.key, null);
    // The answer that comes after the dialog closed does not reopen or change it.
    fixture.host.refuse('domain.migrate', { code: 'OPERATION_ABORTED', message: 'operation aborted: migration out job: canceled by client' });
    await settle();
    assert.equal(store.phase, 'running');
    assert.equal(store.key, null);
    assert.equal(button.focused, 1);
  });

  it('a dialog closed after its opener left the page focuses nothing', async () => {
    const store = useMigrateStore();
    const gone = opener(false);
    store.open(KEY, gone);
    store.close(true);
    assert.equal(store.key, null, 'nothing runs: Escape closes at once');
    await settle();
    assert.equal(gone.focused, 0);
  });
});
