// The unpacked-kernel cache: the sample kernel comes back byte for byte from it; an entry is named by
// the bzImage's bytes and the limit; a damaged entry, a kernel that is booted as it is, a cache that
// cannot be written and one that others could write to all fall back to unpacking; only the most
// recently used entries are kept.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { guest, guestsBuilt } from '../testing/harness.js';
import { INITRD_ADDRESS } from './config.js';
import { execFileSync } from 'node:child_process';
import { cachedUnpack, KERNEL_CACHE_ENTRIES, KERNEL_CACHE_MAX_BYTES, kernelCacheDir } from './kernel-cache.js';
import { unpackKernel, type UnpackedKernel } from './kernel-unpack.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});
function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-kcache-'));
  dirs.push(dir);
  return path.join(dir, 'kernels');
}

const fake = (bytes: number[]): UnpackedKernel => ({ image: new Uint8Array(bytes).buffer, entry: 0x1000000, format: 'gzip' });
const entries = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.kernel'));

describe('unpacked kernel cache', () => {
  it("follows XDG_CACHE_HOME, else ~/.cache", () => {
    assert.equal(kernelCacheDir({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/domus/kernels');
    assert.equal(kernelCacheDir({}), path.join(os.homedir(), '.cache', 'domus', 'kernels'));
  });

  it('unpacks without the cache when no home directory is known', async () => {
    const got = await cachedUnpack(undefined, new Uint8Array([1]).buffer, 64, async () => fake([3]));
    assert.deepEqual([...new Uint8Array((got as UnpackedKernel).image)], [3]);
  });

  it('gives the sample kernel back as unpacked, in a fraction of the time', { skip: !guestsBuilt(['vmlinuz']) && 'sample guests not built' }, async () => {
    const dir = scratch();
    const bz = fs.readFileSync(guest('vmlinuz'));
    const bzimage = bz.buffer.slice(bz.byteOffset, bz.byteOffset + bz.byteLength);
    let unpacks = 0;
    const unpack = () => (unpacks++, unpackKernel(bzimage, INITRD_ADDRESS));
    let t0 = Date.now();
    const first = await cachedUnpack(dir, bzimage, INITRD_ADDRESS, unpack);
    const unpackMs = Date.now() - t0;
    t0 = Date.now();
    const second = await cachedUnpack(dir, bzimage, INITRD_ADDRESS, unpack);
    const cachedMs = Date.now() - t0;
    assert.equal(unpacks, 1);
    assert.ok(!('skipped' in first) && !('skipped' in second));
    assert.equal(first.cached, undefined);
    assert.equal(second.cached, true);
    assert.equal(second.entry, first.entry);
    assert.equal(second.format, 'xz');
    assert.ok(Buffer.from(second.image).equals(Buffer.from(first.image)), 'the cached image differs');
    assert.equal(second.image.byteLength, first.image.byteLength, 'the image has an ArrayBuffer of its own');
    console.log(`# sample kernel: unpacked in ${unpackMs} ms, from the cache in ${cachedMs} ms`);
    assert.ok(cachedMs * 3 < unpackMs, `cache ${cachedMs} ms vs unpack ${unpackMs} ms`);
    // Another limit is another entry (the unpacker checks the image against it).
    await cachedUnpack(dir, bzimage, INITRD_ADDRESS / 2, unpack);
    assert.equal(unpacks, 2);
    assert.equal(entries(dir).length, 2);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temporary file left');
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  });

  it('unpacks again over a damaged entry, and keeps nothing of a kernel booted as it is', async () => {
    const dir = scratch();
    const bzimage = new Uint8Array([1, 2, 3]).buffer;
    let unpacks = 0;
    const unpack = async () => (unpacks++, fake([9, 8, 7, 6]));
    await cachedUnpack(dir, bzimage, 64, unpack);
    const [name] = entries(dir);
    const file = path.join(dir, name!);
    fs.truncateSync(file, fs.statSync(file).size - 1);
    const again = await cachedUnpack(dir, bzimage, 64, unpack);
    assert.equal(unpacks, 2);
    assert.ok(!('skipped' in again));
    assert.deepEqual([...new Uint8Array(again.image)], [9, 8, 7, 6]);
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, true);
    fs.writeFileSync(file, Buffer.alloc(40));
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, undefined, 'an entry without the magic is not read');
    // Right length, other bytes (a crash after the rename): the CRC tells.
    const whole = fs.readFileSync(file);
    whole[whole.length - 1] ^= 0xff;
    fs.writeFileSync(file, whole);
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, undefined, 'an entry with other image bytes is not read');
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, true);

    const other = new Uint8Array([4]).buffer;
    const skipped = await cachedUnpack(dir, other, 64, async () => ({ skipped: 'not a bzImage' }));
    assert.deepEqual(skipped, { skipped: 'not a bzImage' });
    assert.equal(entries(dir).length, 1);
  });

  it('still boots when the cache cannot be written', async () => {
    const parent = scratch();
    fs.writeFileSync(parent, 'a file where the directory should be');
    const got = await cachedUnpack(path.join(parent, 'kernels'), new Uint8Array([1]).buffer, 64, async () => fake([5]));
    assert.ok(!('skipped' in got));
    assert.deepEqual([...new Uint8Array(got.image)], [5]);
    // fs.mkdirSync({ recursive }) never returns on this one.
    const proc = await cachedUnpack('/proc/domus-no-such-dir/kernels', new Uint8Array([1]).buffer, 64, async () => fake([6]));
    assert.ok(!('skipped' in proc));
  });

  it('reads no entry that is a link, a FIFO or in a directory others can write to', async () => {
    const dir = scratch();
    const bzimage = new Uint8Array([7]).buffer;
    let unpacks = 0;
    const unpack = async () => (unpacks++, fake([1, 2]));
    await cachedUnpack(dir, bzimage, 64, unpack);
    const [name] = entries(dir);
    const file = path.join(dir, name!);
    const elsewhere = path.join(path.dirname(dir), 'planted');
    fs.renameSync(file, elsewhere);
    fs.symlinkSync(elsewhere, file);
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, undefined, 'a link is followed');
    fs.rmSync(file);
    execFileSync('mkfifo', [file]);
    const t0 = Date.now();
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, undefined);
    assert.ok(Date.now() - t0 < 2000, 'a FIFO held the boot');
    fs.rmSync(file);
    await cachedUnpack(dir, bzimage, 64, unpack);
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, true);
    fs.chmodSync(dir, 0o777);
    const before = unpacks;
    assert.equal((await cachedUnpack(dir, bzimage, 64, unpack)).cached, undefined, 'a world-writable cache is trusted');
    assert.equal(unpacks, before + 1);
    fs.chmodSync(dir, 0o700);
  });

  it('keeps no image larger than the limit, and removes what a runner that died while writing left', async () => {
    const dir = scratch();
    const big: UnpackedKernel = { image: new ArrayBuffer(KERNEL_CACHE_MAX_BYTES + 1), entry: 0, format: 'xz' };
    await cachedUnpack(dir, new Uint8Array([1]).buffer, 2 ** 31, async () => big);
    assert.deepEqual(entries(dir), []);
    const stale = path.join(dir, '.old.kernel.abc.tmp');
    const fresh = path.join(dir, '.new.kernel.def.tmp');
    fs.writeFileSync(stale, 'x');
    fs.writeFileSync(fresh, 'x');
    const hourAgo = new Date(Date.now() - 3_600_000);
    fs.utimesSync(stale, hourAgo, hourAgo);
    await cachedUnpack(dir, new Uint8Array([2]).buffer, 64, async () => fake([2]));
    assert.ok(!fs.existsSync(stale), 'a stale temporary file is left');
    assert.ok(fs.existsSync(fresh), "another runner's temporary file was removed while it writes");
  });

  it(`keeps the ${KERNEL_CACHE_ENTRIES} most recently used entries`, async () => {
    const dir = scratch();
    const kernels = Array.from({ length: KERNEL_CACHE_ENTRIES + 2 }, (_, i) => new Uint8Array([i]).buffer);
    for (const [i, k] of kernels.entries()) {
      await cachedUnpack(dir, k, 64, async () => fake([i]));
      // The first one stays in use.
      await new Promise((r) => setTimeout(r, 20));
      assert.equal((await cachedUnpack(dir, kernels[0]!, 64, async () => fake([0]))).cached, true, `kernel 0 pruned after kernel ${i}`);
    }
    assert.equal(entries(dir).length, KERNEL_CACHE_ENTRIES);
    assert.equal((await cachedUnpack(dir, kernels[1]!, 64, async () => fake([1]))).cached, undefined, 'the least recently used entry was kept');
  });
});
