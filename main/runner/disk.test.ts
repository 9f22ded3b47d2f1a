import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FileDisk } from './disk.js';

test('FileDisk reads and writes through to the image file, in v86 buffer shape', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filedisk-'));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, Buffer.alloc(1000, 7));
  try {
    const disk = new FileDisk(file, true);
    assert.equal(disk.byteLength, 1000);
    let loaded = false;
    disk.onload = () => (loaded = true);
    disk.load();
    assert.ok(loaded);
    disk.set(512, new Uint8Array([1, 2, 3]), () => undefined);
    let got: Uint8Array | undefined;
    disk.get(510, 6, (d) => (got = d));
    assert.deepEqual([...got!], [7, 7, 1, 2, 3, 7]);
    // A partial last sector reads as zeros past the end of the file.
    assert.deepEqual([...disk.get_from_cache(998, 4)], [7, 7, 0, 0]);
    let firstFlushes = 0;
    disk.onFirstFlush = () => firstFlushes++;
    disk.flush();
    disk.flush();
    assert.equal(firstFlushes, 1, 'the first flush is announced once');
    disk.close();
    assert.deepEqual([...fs.readFileSync(file).subarray(512, 515)], [1, 2, 3], 'the write is in the file');

    const ro = new FileDisk(file, false);
    assert.throws(() => ro.set(0, new Uint8Array([9]), () => undefined), /read-only/);
    ro.close();
    assert.equal(fs.readFileSync(file)[0], 7);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
