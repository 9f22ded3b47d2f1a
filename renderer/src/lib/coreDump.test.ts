// The Dump Memory dialog's rules: option combinations the host accepts, paths, defaults, wording.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allowedDumpOptions, defaultDumpPath, dumpDoneText, dumpPathProblem, NO_DUMP_OPTIONS, toggleDumpOption } from './coreDump';

describe('dump options', () => {
  test('nothing ticked: every option can be', () => {
    assert.deepEqual(allowedDumpOptions(NO_DUMP_OPTIONS), { live: true, reset: true, crash: true });
  });

  test('crash goes with neither live nor reset; live and reset go together', () => {
    assert.deepEqual(allowedDumpOptions({ ...NO_DUMP_OPTIONS, crash: true }), { live: false, reset: false, crash: true });
    assert.deepEqual(allowedDumpOptions({ ...NO_DUMP_OPTIONS, live: true }), { live: true, reset: true, crash: false });
    assert.deepEqual(allowedDumpOptions({ ...NO_DUMP_OPTIONS, reset: true }), { live: true, reset: true, crash: false });
    assert.deepEqual(allowedDumpOptions({ live: true, reset: true, crash: false }), { live: true, reset: true, crash: false });
  });

  test('ticking an option that does not go with the others changes nothing; unticking always works', () => {
    const live = toggleDumpOption(NO_DUMP_OPTIONS, 'live', true);
    assert.deepEqual(live, { live: true, reset: false, crash: false });
    assert.equal(toggleDumpOption(live, 'crash', true), live);
    const both = toggleDumpOption(live, 'reset', true);
    assert.deepEqual(both, { live: true, reset: true, crash: false });
    const crash = toggleDumpOption(NO_DUMP_OPTIONS, 'crash', true);
    assert.equal(toggleDumpOption(crash, 'reset', true), crash);
    assert.deepEqual(toggleDumpOption(crash, 'crash', false), NO_DUMP_OPTIONS);
  });
});

describe('dump path', () => {
  test('absolute, and a file rather than a folder', () => {
    assert.equal(dumpPathProblem('', 'this computer'), 'Give the file to write the dump to.');
    assert.equal(dumpPathProblem('   ', 'this computer'), 'Give the file to write the dump to.');
    assert.equal(dumpPathProblem('web.core', 'server.example'), 'Give an absolute path on server.example.');
    assert.equal(dumpPathProblem('/var/tmp/', 'this computer'), 'The path names a folder: add a file name.');
    assert.equal(dumpPathProblem('/var/tmp/web.core', 'this computer'), '');
    assert.equal(dumpPathProblem(' /var/tmp/web.core ', 'this computer'), '');
  });

  test('the default names the guest and the time, in the folder given', () => {
    const at = new Date(2026, 0, 2, 3, 4, 5);
    assert.equal(defaultDumpPath('/home/ann', 'web', at), '/home/ann/web-20260102-030405.core');
    assert.equal(defaultDumpPath('/home/ann/', 'web', at), '/home/ann/web-20260102-030405.core');
    assert.equal(defaultDumpPath('/', 'web', at), '/web-20260102-030405.core');
  });

  test('the done message names the file, its host and, where known, its size', () => {
    assert.equal(dumpDoneText('/d/web.core', 134_217_728 + 4096, 'this computer'), 'Written to /d/web.core on this computer (128.0 MiB).');
    assert.equal(dumpDoneText('/d/web.core', undefined, 'server.example'), 'Written to /d/web.core on server.example.');
  });
});
