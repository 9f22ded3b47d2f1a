// The copy-before-write stores of v86 snapshots: a disk written after two snapshots reverts to
// either exactly (the other store kept exact by the revert), a partial last chunk, a store of
// another disk size refused, space held only for the chunks kept and freed with the file.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CHUNK_BYTES, CowStore, keepBeforeWrite, revertDisk } from './cow-store.js';

describe('snapshot stores (copy before write)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cow-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const size = 10 * CHUNK_BYTES + 512;
  const disk = path.join(dir, 'disk.img');

  /** A guest write: the stores keep what it overwrites first. */
  function write(stores: CowStore[], at: number, data: Buffer): void {
    const fd = fs.openSync(disk, 'r+');
    keepBeforeWrite(fd, size, stores, at, data.length);
    fs.writeSync(fd, data, 0, data.length, at);
    fs.closeSync(fd);
  }

  it('reverts to each of two snapshots exactly, whatever was written between and after', () => {
    const v0 = randomBytes(size);
    fs.writeFileSync(disk, v0);
    const a = CowStore.create(path.join(dir, 'a.cow'), size);
    write([a], 100, randomBytes(3000));
    write([a], size - 300, randomBytes(300));
    const v1 = fs.readFileSync(disk);
    const b = CowStore.create(path.join(dir, 'b.cow'), size);
    write([a, b], CHUNK_BYTES * 4 - 10, randomBytes(20));
    write([a, b], 50, randomBytes(10));
    revertDisk(disk, a, [b]);
    assert.ok(fs.readFileSync(disk).equals(v0), 'back at snapshot a');
    write([a, b], 7 * CHUNK_BYTES, randomBytes(CHUNK_BYTES));
    revertDisk(disk, b, [a]);
    assert.ok(fs.readFileSync(disk).equals(v1), 'back at snapshot b, after a revert to a');
    revertDisk(disk, a, [b]);
    assert.ok(fs.readFileSync(disk).equals(v0), 'and at a again');
    for (const s of [a, b]) s.close();
  });

  it('holds space only for the chunks kept, reopens with them, and refuses another size or a foreign file', () => {
    const file = path.join(dir, 'c.cow');
    const c = CowStore.create(file, size);
    const empty = fs.statSync(file).blocks;
    write([c], 0, Buffer.alloc(10, 1));
    c.close();
    assert.ok(fs.statSync(file).blocks - empty <= (CHUNK_BYTES + 8192) / 512, 'one chunk held');
    const again = CowStore.open(file, size);
    assert.deepEqual([...again.held()], [0]);
    again.close();
    assert.throws(() => CowStore.open(file, size + 512), /is for a disk of 655872 bytes, but the disk now has 656384 \(resized since the snapshot\)/);
    fs.writeFileSync(path.join(dir, 'junk.cow'), 'x'.repeat(5000));
    assert.throws(() => CowStore.open(path.join(dir, 'junk.cow'), size), /is not a Domus snapshot store/);
  });
});
