// `npm test`: installs what is missing (node modules; as root the Debian packages; the sample
// guests), builds, type-checks, then runs every test file with node's test runner, several at a time.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDebianPackages, ensureGuests, ensureNodeModules, root } from './ensure.mjs';

const t0 = Date.now();
ensureNodeModules();
ensureDebianPackages();
// The sample guests build (on a fresh machine mostly waiting for Debian's archive) while the code builds.
const guests = ensureGuests();
const { buildNode, buildRenderer } = await import('./build.mjs');
await buildNode();
await buildRenderer();
await guests;
console.log(`domus: set up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

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
// at a time in one test runner first. The others (each its own host, guests, browser) then run as
// many at a time as there are cores, each file in a test runner of its own whose output is printed
// in one piece when it ends.
const startsProcesses = (file) => /testing\/(harness|runner-harness)|browser\.js|startLibvirtd|child_process|worker_threads|spawn/.test(fs.readFileSync(path.join(root, file), 'utf8'));
const light = files.filter((f) => !startsProcesses(f));
const heavy = files.filter((f) => startsProcesses(f));
console.log(`domus: running ${files.length} test files (${light.length} that start no process, two at a time)`);
// Post-boot states kept for the whole run (main/testing/state-files.ts): a test not about booting
// restores the state an earlier one kept for the same guest instead of booting it again.
const stateCache = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-test-states-'));
const env = { ...process.env, DOMUS_TEST: '1', DOMUS_TEST_STATE_CACHE: stateCache };
const testArgs = (concurrency) => ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec'];

// As many at a time as there are cores (DOMUS_TEST_JOBS overrides).
const SLOTS = process.env.DOMUS_TEST_JOBS === undefined ? os.availableParallelism() : Number(process.env.DOMUS_TEST_JOBS);
if (!Number.isInteger(SLOTS) || SLOTS < 1) {
  console.error(`domus: DOMUS_TEST_JOBS must be a whole number of files at a time, 1 or more, not '${process.env.DOMUS_TEST_JOBS}'`);
  process.exit(2);
}

const failed = [];
/** What node's reporter said about each failing test, repeated at the end where a log's tail shows it. */
const failures = [];
/** A reporter's text without colours (FORCE_COLOR would colour it), for matching. */
const plain = (text) => text.replace(/\x1b\[[0-9;]*m/g, '');
/** Runs a command to its end, its output kept and returned (to print in one piece). */
function capture(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    child.on('error', (err) => out.push(Buffer.from(`${err.message}\n`)));
    child.on('close', (code, signal) => resolve({ ok: code === 0, why: signal ?? `exit ${code}`, text: Buffer.concat(out).toString() }));
  });
}
// The type check runs beside the files that start no process: neither needs the other.
const lightStarted = Date.now();
const [typecheck, lightRun] = await Promise.all([
  capture('npm', ['run', '--silent', 'typecheck']),
  light.length ? capture(process.execPath, [...testArgs(2), ...light]) : { ok: true, why: '', text: '' },
]);
process.stdout.write(lightRun.text);
if (!lightRun.ok) {
  const what = `the ${light.length} files that start no process`;
  failed.push(`(one of ${what}: see above)`);
  failures.push(failureReport(what, lightRun.text, lightRun.why));
}
process.stdout.write(typecheck.text);
if (!typecheck.ok) {
  failed.push('the type check (npm run typecheck)');
  failures.push(`== npm run typecheck (${typecheck.why})\n${typecheck.text.trimEnd().split('\n').slice(0, 80).join('\n')}`);
}
console.log(`domus: type check ${typecheck.ok ? 'passed' : 'FAILED'}, and the files that start no process ${lightRun.ok ? 'passed' : 'FAILED'}, in ${((Date.now() - lightStarted) / 1000).toFixed(0)} s`);

const totals = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const took = [];
/** The output of each file still running, printed at an interrupt. */
const pending = new Map();
function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    console.log(`domus: ${file} started`);
    const child = spawn(process.execPath, [...testArgs(1), file], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    pending.set(file, { child, out });
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    let ended = false;
    const end = (code, why) => {
      if (ended) return;
      ended = true;
      pending.delete(file);
      const text = Buffer.concat(out).toString();
      process.stdout.write(text);
      for (const m of plain(text).matchAll(/^ℹ (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) totals[m[1]] += Number(m[2]);
      const seconds = (Date.now() - started) / 1000;
      took.push([seconds, file]);
      if (code !== 0) {
        failed.push(file);
        failures.push(failureReport(file, text, why));
      }
      console.log(`domus: ${file} ${code === 0 ? 'passed' : `FAILED (${why})`} in ${seconds.toFixed(0)} s`);
      resolve();
    };
    child.on('error', (err) => end(1, err.message));
    child.on('close', (code, signal) => end(code ?? 1, signal ?? `exit ${code}`));
  });
}
// Interrupted (Ctrl+C, CI's kill): what the running files printed so far, then no test process and no cache left behind.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const [file, { child, out }] of pending) {
      process.stdout.write(Buffer.concat(out).toString());
      console.log(`domus: ${file} interrupted by ${sig}`);
      child.kill('SIGTERM');
    }
    fs.rmSync(stateCache, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

/** The reporter's closing 'failing tests' part of a file's output (or its last lines), at most 80 lines. */
function failureReport(file, text, why) {
  const bare = plain(text);
  const at = bare.lastIndexOf('✖ failing tests:');
  // Node's own stack frames say nothing about the test.
  const lines = (at >= 0 ? bare.slice(at) : bare).trimEnd().split('\n').filter((l) => !/^\s+at (.* \()?node:/.test(l));
  const shown = at >= 0 ? lines.slice(0, 80) : lines.slice(-80);
  return `== ${file} (${why})\n${shown.join('\n')}${lines.length > 80 ? `\n  … and ${lines.length - 80} more lines in its output above` : ''}`;
}

/** Busy and total jiffies of the whole machine (Linux), to say how loaded the run kept it. */
function cpuTimes() {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
    return { busy: user + nice + system + irq + softirq, total: user + nice + system + idle + iowait + irq + softirq + steal, steal };
  } catch {
    return undefined;
  }
}
async function runHeavy(list) {
  const queue = [...list];
  const running = new Set();
  while (queue.length || running.size) {
    if (queue.length && running.size < SLOTS) {
      const job = runFile(queue.shift()).then(() => running.delete(job));
      running.add(job);
    } else {
      await Promise.race(running);
    }
  }
}
const before = cpuTimes();
await runHeavy(heavy);
const after = cpuTimes();
fs.rmSync(stateCache, { recursive: true, force: true });

console.log('domus: the slowest files:');
for (const [seconds, file] of took.sort((a, b) => b[0] - a[0]).slice(0, 12)) console.log(`  ${seconds.toFixed(0).padStart(5)} s  ${file}`);
console.log(`domus: the ${heavy.length} files that start processes: ${totals.tests} tests, ${totals.pass} passed, ${totals.fail} failed, ${totals.cancelled} cancelled, ${totals.skipped} skipped`);
if (failures.length) console.log(`domus: what the failing tests said:\n${failures.join('\n')}`);
if (failed.length) console.log(`domus: failed files:\n  ${failed.join('\n  ')}`);
if (before && after && after.total > before.total) {
  const pct = (k) => ((100 * (after[k] - before[k])) / (after.total - before.total)).toFixed(0);
  console.log(`domus: ${SLOTS} files at a time kept the machine ${pct('busy')} % busy (${pct('steal')} % stolen by the hypervisor)`);
}
console.log(`domus: test suite took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exit(failed.length ? 1 : 0);
