import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Storage } from './pools.js';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-pools-'));
after(() => fs.rmSync(home, { recursive: true, force: true }));

test('further dir pools: defined atomically, listed after default, volumes found by name across pools or by path', async () => {
  const storage = new Storage({ images: path.join(home, 'images'), pools: path.join(home, 'storage', 'pools') }, () => []);
  const isoDir = path.join(home, 'isos');
  const info = storage.definePool({ name: 'isos', type: 'dir', path: isoDir, autostart: false });
  assert.deepEqual([info.name, info.state, info.autostart], ['isos', 'running', false]);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(home, 'storage', 'pools', 'isos.json'), 'utf8')), { name: 'isos', type: 'dir', path: isoDir, autostart: false });
  assert.deepEqual(storage.listPools().map((p) => p.name), ['default', 'isos']);

  await storage.createVolume('isos', 'only-here.img', 1 << 20, 'raw');
  assert.equal(storage.volumeInfo('only-here.img').pool, 'isos');
  assert.equal(storage.volumeInfo(path.join(isoDir, 'only-here.img')).name, 'only-here.img');
  assert.throws(() => storage.volumeInfo('only-here.img', 'default'), /no storage vol with matching name 'only-here\.img' in pool 'default'/);
  assert.throws(() => storage.volumeInfo(path.join(home, 'elsewhere.img')), /no storage vol with matching path/);
  assert.throws(() => storage.listVolumes('nope'), /no storage pool with matching name 'nope'/);

  // A broken definition is skipped, not fatal.
  fs.writeFileSync(path.join(home, 'storage', 'pools', 'bad.json'), '{"name": 1}');
  assert.deepEqual(storage.listPools().map((p) => p.name), ['default', 'isos']);
});
