import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JobInfo } from '@shared/api';
import { migrationDestinations, migrationFormProblems, migrationOutcomeText, migrationProgressLines, migrationRequest, type MigrationForm } from './migration';

const FORM: MigrationForm = { destination: 'qemu+ssh://root@b/system', live: true, postcopy: false, persistent: false, undefineSource: false, copyStorage: false, bandwidth: '', timeout: '' };
const A = 'qemu+ssh://root@a/system';
const B = 'qemu+ssh://root@b/system';

describe('migration destinations', () => {
  test("a libvirt host's domain: the other open connections; this computer's engines listed but off", () => {
    const got = migrationDestinations(A, [{ uri: A, state: 'connected' }, { uri: B, state: 'connected' }, { uri: 'qemu+tcp://c/system', state: 'disconnected' }], ['v86:///session']);
    assert.deepEqual(
      got.map((d) => [d.uri, d.off ?? '']),
      [
        [B, ''],
        ['qemu+tcp://c/system', 'Not connected'],
        ['v86:///session', "A libvirt host cannot reach this computer's engines"],
      ],
    );
    assert.equal(got[0].label, 'QEMU/KVM: root@b');
  });

  test("this computer's domain: the libvirt connections, not its own engines", () => {
    assert.deepEqual(migrationDestinations(undefined, [{ uri: B, state: 'connected' }], ['v86:///session', 'qemu:///session']).map((d) => d.uri), [B]);
  });
});

describe('the form', () => {
  test('a good form makes the request, numbers only when given', () => {
    assert.deepEqual(migrationFormProblems(FORM), {});
    assert.deepEqual(migrationRequest({ ...FORM, destination: ` ${B} `, persistent: true, bandwidth: '8', timeout: ' 30 ' }), {
      destination: B,
      live: true,
      postcopy: false,
      persistent: true,
      undefineSource: false,
      copyStorageAll: false,
      bandwidthMiBs: 8,
      timeoutS: 30,
    });
    assert.equal('bandwidthMiBs' in migrationRequest(FORM), false);
  });

  test('each field says what is wrong with it', () => {
    assert.deepEqual(migrationFormProblems({ ...FORM, destination: '  ', bandwidth: '1.5', timeout: '90000', live: false, postcopy: true }), {
      destination: 'Choose a destination, or enter its URI.',
      bandwidth: 'A whole number of MiB/s, at least 1.',
      timeout: 'At most 86,400 seconds.',
      postcopy: 'Post-copy needs a live migration.',
    });
    assert.match(migrationFormProblems({ ...FORM, destination: 'not a uri' }).destination ?? '', /./);
    assert.equal(migrationFormProblems({ ...FORM, bandwidth: '0' }).bandwidth, 'A whole number of MiB/s, at least 1.');
  });
});

describe('progress and outcome', () => {
  const job = (fields: Partial<JobInfo>): JobInfo => ({
    id: 1, uuid: 'g1', domain: 'guest', operation: 'migrate', status: 'running', startedAt: 0, elapsedMs: 0, processedBytes: 0, totalBytes: 0, ...fields,
  });

  test('before libvirt reports figures: starting, no bar', () => {
    assert.deepEqual(migrationProgressLines(job({ migration: { phase: 'begin', iteration: 0, remainingBytes: 0 } })), { phase: 'Starting', figures: [] });
  });

  test('pre-copy: pass, remaining, dirty rate', () => {
    const lines = migrationProgressLines(
      job({ processedBytes: 64 << 20, totalBytes: 128 << 20, migration: { phase: 'precopy', iteration: 2, remainingBytes: 3 << 20, dirtyRateBytesPerSec: 512 << 10 } }),
    );
    assert.deepEqual(lines, { phase: 'Copying memory while the guest runs', figures: ['Pass 2', '3.0 MiB remaining', 'dirtied 512.0 KiB/s'] });
    assert.equal(migrationProgressLines(job({ migration: { phase: 'postcopy', iteration: 2, remainingBytes: 0 } })).phase, 'Running on the destination: fetching the rest (post-copy)');
  });

  test('the outcome: downtime and total time', () => {
    assert.equal(
      migrationOutcomeText({ downtimeMs: 81, totalMs: 14520, transferredBytes: 15 << 20, iterations: 3, postcopy: false }),
      'Downtime 81 ms, total 14.5 s; 15.0 MiB sent in 3 passes.',
    );
    assert.match(migrationOutcomeText({ downtimeMs: 5, totalMs: 900, transferredBytes: 1024, iterations: 1, postcopy: true }), /1 pass, switched to post-copy\.$/);
  });
});
