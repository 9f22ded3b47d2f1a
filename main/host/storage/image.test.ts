// Image files: sparse raw create, qcow2 through qemu-img, clones that keep holes, grow-only resize
// and format probing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { guest } from '../../testing/harness.js';
import { fillUp, mountTmpfs } from '../../testing/tmpfs.js';
import { cloneImage, createImage, ImageError, probeImage, resizeImage } from './image.js';

const MiB = 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-image-'));
const at = (name: string): string => path.join(dir, name);
const head = (file: string, n: number): string => {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(n);
  fs.readSync(fd, buf, 0, n, 0);
  fs.closeSync(fd);
  return buf.toString();
};
const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const leftovers = (): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

describe('disk image files', () => {
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates a raw image as a sparse file of the capacity, and never over an existing file', async () => {
    await createImage(at('a.img'), 64 * MiB, 'raw');
    const p = probeImage(at('a.img'));
    assert.equal(p.format, 'raw');
    assert.equal(p.capacityBytes, 64 * MiB);
    assert.ok(p.allocationBytes < MiB, `sparse: ${p.allocationBytes} bytes allocated`);
    fs.writeFileSync(at('a.img'), 'keep', { flag: 'r+' });
    await assert.rejects(createImage(at('a.img'), MiB, 'raw'), /already exists/);
    assert.equal(fs.readFileSync(at('a.img')).subarray(0, 4).toString(), 'keep');
    assert.equal(fs.statSync(at('a.img')).size, 64 * MiB);
    assert.deepEqual(leftovers(), []);
  });

  it('creates and grows qcow2 with qemu-img; the probe reads the virtual size from the header', async () => {
    await createImage(at('q.qcow2'), 100 * MiB, 'qcow2');
    const p = probeImage(at('q.qcow2'));
    assert.equal(p.format, 'qcow2');
    assert.equal(p.capacityBytes, 100 * MiB);
    assert.ok(fs.statSync(at('q.qcow2')).size < MiB, 'qcow2 metadata only');
    await resizeImage(at('q.qcow2'), 200 * MiB);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', at('q.qcow2')], { encoding: 'utf8' })) as { 'virtual-size': number; format: string };
    assert.equal(info.format, 'qcow2');
    assert.equal(info['virtual-size'], 200 * MiB);
    assert.equal(probeImage(at('q.qcow2')).capacityBytes, 200 * MiB);
    await assert.rejects(resizeImage(at('q.qcow2'), 100 * MiB), /cannot shrink.*only growing/);
    assert.equal(probeImage(at('q.qcow2')).capacityBytes, 200 * MiB);
  });

  it('refuses qcow2 with a clear error when qemu-img is missing', async () => {
    const pathBefore = process.env.PATH;
    process.env.PATH = dir;
    try {
      await assert.rejects(createImage(at('none.qcow2'), MiB, 'qcow2'), /qemu-img, which is not installed.*qemu-utils/);
    } finally {
      process.env.PATH = pathBefore;
    }
    assert.equal(fs.existsSync(at('none.qcow2')), false);
  });

  it('clones with holes kept and data identical', async () => {
    const src = at('holes.img');
    await createImage(src, 32 * MiB, 'raw');
    const fd = fs.openSync(src, 'r+');
    fs.writeSync(fd, Buffer.alloc(8192, 0xab), 0, 8192, 0);
    fs.writeSync(fd, Buffer.from('middle'), 0, 6, 17 * MiB + 5);
    fs.writeSync(fd, Buffer.alloc(100, 0xcd), 0, 100, 32 * MiB - 100);
    fs.closeSync(fd);
    await cloneImage(src, at('copy.img'));
    assert.ok(fs.readFileSync(src).equals(fs.readFileSync(at('copy.img'))), 'same bytes');
    const copy = probeImage(at('copy.img'));
    assert.equal(copy.capacityBytes, 32 * MiB);
    assert.ok(copy.allocationBytes <= 64 * 1024, `holes kept: ${copy.allocationBytes} bytes allocated of 32 MiB`);
    await assert.rejects(cloneImage(src, at('copy.img')), /already exists/);
    assert.deepEqual(leftovers(), []);
  });

  it('copies every byte without reflink, also a last block shorter than 4 KiB', async () => {
    // /tmp here is ext4 (no reflink); reflink: false makes sure the copy runs on any filesystem.
    for (const size of [1, 4095, 4097, MiB + 2048]) {
      const src = at(`tail-${size}.img`);
      const data = randomBytes(size);
      data[size - 1] = 0x5a;
      fs.writeFileSync(src, data);
      await cloneImage(src, at(`tail-${size}.copy`), { reflink: false });
      assert.equal(fs.statSync(at(`tail-${size}.copy`)).size, size);
      assert.equal(sha256(at(`tail-${size}.copy`)), sha256(src), `${size} bytes`);
    }
    assert.deepEqual(leftovers(), []);
  });

  it('copies a sparse file with data at both ends keeping the hole, and a file without holes whole', async () => {
    const sparse = at('ends.img');
    const size = 8 * MiB + 123;
    const fd = fs.openSync(sparse, 'wx');
    fs.ftruncateSync(fd, size);
    fs.writeSync(fd, randomBytes(10_000), 0, 10_000, 0);
    fs.writeSync(fd, randomBytes(3000), 0, 3000, size - 3000);
    fs.closeSync(fd);
    await cloneImage(sparse, at('ends.copy'), { reflink: false });
    assert.equal(sha256(at('ends.copy')), sha256(sparse));
    const [from, to] = [fs.statSync(sparse), fs.statSync(at('ends.copy'))];
    assert.equal(to.size, size);
    assert.ok(to.blocks * 512 <= 32 * 1024, `hole kept: ${to.blocks * 512} bytes allocated (source ${from.blocks * 512})`);

    const full = at('full.img');
    fs.writeFileSync(full, Buffer.concat([randomBytes(MiB), Buffer.alloc(MiB, 0x11), randomBytes(MiB + 100)]));
    await cloneImage(full, at('full.copy'), { reflink: false });
    assert.equal(sha256(at('full.copy')), sha256(full));
    assert.ok(fs.statSync(at('full.copy')).blocks >= fs.statSync(full).blocks, 'every block of data written');
    assert.deepEqual(leftovers(), []);
  });

  it('on a full disk a clone or a new qcow2 fails naming the file, leaves nothing behind and keeps what was there', async (t) => {
    const small = mountTmpfs('domus-image-full-', '4m');
    if (typeof small === 'string') return t.skip(small);
    try {
      const src = at('8m.img');
      fs.writeFileSync(src, randomBytes(8 * MiB));
      const copy = path.join(small.dir, 'copy.img');
      // Fails part way: 8 MiB of data into 4 MiB.
      await assert.rejects(cloneImage(src, copy, { reflink: false }), (err: ImageError) => err.kind === 'io' && err.message === `cannot write '${copy}': No space left on device`);
      assert.deepEqual(fs.readdirSync(small.dir), []);

      const keep = path.join(small.dir, 'keep.img');
      fs.writeFileSync(keep, 'old volume');
      fillUp(small.dir);
      await assert.rejects(cloneImage(src, keep, { reflink: false }), /already exists/);
      fs.writeFileSync(at('page.img'), 'one page');
      await assert.rejects(cloneImage(at('page.img'), path.join(small.dir, 'small.img'), { reflink: false }), /cannot write '.*small\.img': No space left on device/);
      await assert.rejects(createImage(path.join(small.dir, 'q.qcow2'), 100 * MiB, 'qcow2'), (err: ImageError) => {
        assert.equal(err.message, `qemu-img create '${path.join(small.dir, 'q.qcow2')}': Could not write qcow2 header: No space left on device`);
        return err.kind === 'io';
      });
      assert.deepEqual(fs.readdirSync(small.dir).sort(), ['filler', 'keep.img']);
      assert.equal(fs.readFileSync(keep, 'utf8'), 'old volume');
    } finally {
      small.unmount();
    }
  });

  it('grows a raw image (the new part is a hole, the data stays) and refuses to shrink it', async () => {
    const file = at('grow.img');
    await createImage(file, 4 * MiB, 'raw');
    fs.writeFileSync(file, 'data', { flag: 'r+' });
    await resizeImage(file, 1024 * MiB);
    const p = probeImage(file);
    assert.equal(p.capacityBytes, 1024 * MiB);
    assert.ok(p.allocationBytes < MiB);
    assert.equal(head(file, 4), 'data');
    await assert.rejects(resizeImage(file, 2 * MiB), /cannot shrink 'grow.img' from 1073741824 to 2097152 bytes/);
    assert.equal(fs.statSync(file).size, 1024 * MiB);
  });

  it('knows an ISO by its volume descriptor', { skip: !fs.existsSync(guest('tiny.iso')) && 'sample guests not built' }, () => {
    assert.equal(probeImage(guest('tiny.iso')).format, 'iso');
    assert.equal(probeImage(guest('disk.img')).format, 'raw');
  });
});
