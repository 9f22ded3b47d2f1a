// `npm test`: installs what is missing (node modules; as root the Debian packages; the sample
// guests), builds, type-checks, then runs every test file with node's test runner: those that start
// no process two at a time, then the others one at a time (they boot real guests on a 2-core machine).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDebianPackages, ensureGuests, ensureNodeModules, root, run } from './ensure.mjs';

const t0 = Date.now();
ensureNodeModules();
ensureDebianPackages();
ensureGuests();
const { buildNode, buildRenderer } = await import('./build.mjs');
await buildNode();
await buildRenderer();
run('npm', ['run', '--silent', 'typecheck']);

function find(dir, out = []) {
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) find(rel, out);
    else if (e.name.endsWith('.test.ts')) out.push(rel);
  }
  return out;
}
const only = process.argv.slice(2);
const files = only.length ? only : ['shared', 'main', 'renderer', 'e2e', 'build'].filter((d) => fs.existsSync(path.join(root, d))).flatMap((d) => find(d)).sort();
// Files that start no guest, host, browser or other process (parsers, stores, unit tests) run two
// at a time first; the rest one at a time, as their guests need the cores.
const startsProcesses = (file) => /testing\/(harness|runner-harness)|browser\.js|startLibvirtd|child_process|worker_threads|spawn/.test(fs.readFileSync(path.join(root, file), 'utf8'));
const light = files.filter((f) => !startsProcesses(f));
const heavy = files.filter((f) => startsProcesses(f));
console.log(`domus: running ${files.length} test files (${light.length} that start no process, two at a time)`);
// Post-boot states kept for the whole run (main/testing/state-files.ts): a test not about booting
// restores the state an earlier one kept for the same guest instead of booting it again.
const stateCache = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-test-states-'));
const runFiles = (list, concurrency) =>
  list.length === 0
    ? 0
    : (spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...list], {
        stdio: 'inherit',
        cwd: root,
        env: { ...process.env, DOMUS_TEST: '1', DOMUS_TEST_STATE_CACHE: stateCache },
      }).status ?? 1);
const lightStatus = runFiles(light, 2);
const status = runFiles(heavy, 1) || lightStatus;
fs.rmSync(stateCache, { recursive: true, force: true });
console.log(`domus: test suite took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exit(status);
