#!/usr/bin/env node
// `domus` entry: builds the Node bundles on first use after `npm install`, then runs the CLI.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli', 'domus.mjs');
if (!fs.existsSync(cli) && fs.existsSync(path.join(root, 'main'))) {
  const { buildNode } = await import(path.join(root, 'build', 'build.mjs'));
  await buildNode();
}
await import(cli);
