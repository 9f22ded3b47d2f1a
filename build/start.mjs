// `npm start`: Electron where its binary exists, else the web shell in Debian's Chromium.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ensureNodeModules, root } from './ensure.mjs';

ensureNodeModules();
const { buildNode, buildRenderer } = await import('./build.mjs');
await buildNode();
await buildRenderer();

function electronBinary() {
  try {
    const dir = path.join(root, 'node_modules', 'electron');
    const rel = fs.readFileSync(path.join(dir, 'path.txt'), 'utf8').trim();
    const bin = path.join(dir, 'dist', rel);
    return fs.existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

const electron = process.env.DOMUS_SHELL === 'web' ? undefined : electronBinary();
const [cmd, args] = electron
  ? [electron, [root]]
  : [process.execPath, [path.join(root, 'bin', 'domus.mjs'), 'webshell', '--open']];
if (!electron) console.log('domus: no Electron binary here; starting the web shell');
const child = spawn(cmd, args, { stdio: 'inherit', cwd: root });
child.on('exit', (code) => process.exit(code ?? 0));
