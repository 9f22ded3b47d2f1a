// Finding QEMU: qemu-system-x86_64 on PATH (as libvirt's qemu:///session finds its emulator), with
// the version it reports. A missing or broken binary is a one-line problem, never a crash.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const QEMU_BINARY = 'qemu-system-x86_64';

export interface QemuBinary {
  path?: string;
  /** "7.2.22" */
  version?: string;
  problem?: string;
}

const cache = new Map<string, QemuBinary>();

/** Looks QEMU up on `envPath` (the host's PATH); cached per PATH value and binary mtime. */
export function findQemu(envPath = process.env.PATH ?? ''): QemuBinary {
  const found = envPath
    .split(path.delimiter)
    .filter(Boolean)
    .map((dir) => path.join(dir, QEMU_BINARY))
    .find((file) => {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    });
  if (!found) {
    return { problem: `${QEMU_BINARY} not found on PATH: install Debian's package 'qemu-system-x86' (apt-get install --no-install-recommends qemu-system-x86)` };
  }
  const key = `${found}:${fs.statSync(found).mtimeMs}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let result: QemuBinary;
  try {
    const out = execFileSync(found, ['-version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const m = /version (\d+\.\d+\.\d+)/.exec(out);
    result = m ? { path: found, version: m[1] } : { path: found, problem: `${found} -version printed no version: ${out.trim().split('\n')[0]}` };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    result = { path: found, problem: `${found} -version failed: ${(e.stderr || e.message).trim().split('\n')[0]}` };
  }
  cache.set(key, result);
  return result;
}
