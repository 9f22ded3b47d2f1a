// `npm test`: installs what is missing (node modules; as root the Debian packages; the sample
// guests), builds, type-checks, then runs every test file with node's test runner, one at a time
// (they boot real guests on a 2-core machine).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
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
console.log(`domus: running ${files.length} test files`);
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, DOMUS_TEST: '1' },
});
console.log(`domus: test suite took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.exit(r.status ?? 1);
