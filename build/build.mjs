// Builds Domus: the Node side (host daemon, v86 runner, CLI, Electron main/preload/utility) with
// esbuild, the renderer with Vite. Skips a part when its outputs are newer than its sources.
// Usage: node build/build.mjs [--force] [--node-only]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const nodeOnly = process.argv.includes('--node-only');

function newest(dirs) {
  let t = 0;
  const walk = (p) => {
    if (!fs.existsSync(p)) return;
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p)) if (e !== 'node_modules' && !e.startsWith('.')) walk(path.join(p, e));
    } else t = Math.max(t, st.mtimeMs);
  };
  dirs.forEach((d) => walk(path.join(root, d)));
  return t;
}
const stamp = (name) => path.join(root, 'dist', `.${name}.stamp`);
const fresh = (name, dirs) => !force && fs.existsSync(stamp(name)) && fs.statSync(stamp(name)).mtimeMs >= newest(dirs);
const mark = (name) => {
  fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
  fs.writeFileSync(stamp(name), new Date().toISOString());
};

export async function buildNode() {
  if (fresh('node', ['main', 'shared', 'package.json', 'build/build.mjs'])) return false;
  const esbuild = await import('esbuild');
  // npm packages stay in node_modules, but zod: its ~100 modules took ~55 ms to load at every start
  // of a CLI command or a runner (one file: ~30 ms).
  const externalButZod = {
    name: 'external-but-zod',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (a) => (a.path === 'zod' || a.path.startsWith('zod/') ? undefined : { path: a.path, external: true }));
    },
  };
  const common = { bundle: true, platform: 'node', target: 'node20', plugins: [externalButZod], sourcemap: 'linked', logLevel: 'warning' };
  await esbuild.build({
    ...common,
    format: 'esm',
    entryPoints: {
      'host/domusd': 'main/host/domusd.ts',
      'host/fsimage-worker': 'main/host/images/reader-worker.ts',
      'host/askpass': 'main/host/libvirt/askpass.ts',
      'runner/main': 'main/runner/main.ts',
      'runner/payload-worker': 'main/runner/payload-worker.ts',
      'netswitch/main': 'main/netswitch/main.ts',
      'qemu/migrate-relay': 'main/host/drivers/qemu/migrate-relay.ts',
      'cli/domus': 'main/cli/domus.ts',
    },
    outdir: path.join(root, 'dist'),
    outExtension: { '.js': '.mjs' },
    absWorkingDir: root,
  });
  // Electron loads its main and preload as CommonJS; the utility process runs the ESM host.
  await esbuild.build({
    ...common,
    format: 'cjs',
    entryPoints: { 'electron/main': 'main/electron/main.ts', 'electron/preload': 'main/electron/preload.ts' },
    outdir: path.join(root, 'dist'),
    outExtension: { '.js': '.cjs' },
    external: ['electron'],
    absWorkingDir: root,
  });
  await esbuild.build({
    ...common,
    format: 'esm',
    entryPoints: { 'electron/host-utility': 'main/electron/host-utility.ts' },
    outdir: path.join(root, 'dist'),
    outExtension: { '.js': '.mjs' },
    external: ['electron'],
    absWorkingDir: root,
  });
  mark('node');
  return true;
}

export async function buildRenderer() {
  if (fresh('renderer', ['renderer', 'shared'])) return false;
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'renderer', 'vite.config.ts'), logLevel: 'warn' });
  mark('renderer');
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  const n = await buildNode();
  const r = nodeOnly ? false : await buildRenderer();
  console.log(`build: node ${n ? 'built' : 'up to date'}${nodeOnly ? '' : `, renderer ${r ? 'built' : 'up to date'}`} (${Date.now() - t0} ms)`);
}
