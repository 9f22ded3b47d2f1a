// Installs what is missing before `npm start` / `npm test`: node modules, then (for tests) the
// Debian packages and the sample guests.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed with ${r.status ?? r.signal}`);
    process.exit(r.status || 1);
  }
}

export function ensureNodeModules() {
  const lock = path.join(root, 'package-lock.json');
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  if (fs.existsSync(marker) && (!fs.existsSync(lock) || fs.statSync(marker).mtimeMs >= fs.statSync(lock).mtimeMs)) return;
  console.log('domus: installing node modules (npm install)');
  run('npm', ['install', '--no-audit', '--no-fund']);
}

export function ensureDebianPackages() {
  run('bash', [path.join(root, 'build', 'install-deps.sh')]);
}

// What build/guests/build-guests.sh makes that the tests use: the i686 samples (v86 and QEMU), the
// disk drivers archive, and the amd64 pair (QEMU only).
export const GUEST_FILES = ['vmlinuz', 'initrd.gz', 'tiny.iso', 'disk.img', 'disk-modules.cpio.gz', 'vmlinuz-amd64', 'initrd-amd64.gz'];

/**
 * Runs build-guests.sh (it keeps outputs newer than their inputs: ~3 s then), then checks every file
 * is there. Asynchronous: on a fresh machine it mostly waits for Debian's archive (~50 s), time the
 * caller can spend building.
 */
export async function ensureGuests() {
  const dir = path.join(root, 'build', 'guests');
  const code = await new Promise((resolve) => {
    const child = spawn('bash', [path.join(dir, 'build-guests.sh')], { stdio: 'inherit', cwd: root });
    child.on('error', () => resolve(1));
    child.on('close', (status, signal) => resolve(status ?? signal));
  });
  if (code !== 0) {
    console.error(`bash build/guests/build-guests.sh failed with ${code}`);
    process.exit(typeof code === 'number' ? code : 1);
  }
  const missing = GUEST_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length) {
    console.error(`domus: build-guests.sh did not produce ${missing.map((f) => `build/guests/${f}`).join(', ')}`);
    process.exit(1);
  }
}
