// The host-side kernel unpacker against xz-utils' own decoder, and hostile bzImages: whatever it
// cannot read ends in a reason to boot the image as it is, never an exception or a huge allocation.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { guest, guestsBuilt } from '../testing/harness.js';
import { unpackKernel, unxz } from './kernel-unpack.js';

const MiB = 1024 * 1024;
// For the memory test: a global gc() in new contexts.
setFlagsFromString('--expose-gc');
const LIMIT = 64 * MiB;
const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;

describe('kernel unpacking on the host', { skip: !guestsBuilt(['vmlinuz']) && 'sample guests not built' }, () => {
  const bz = fs.readFileSync(guest('vmlinuz'));
  const setupLength = (bz[0x1f1] + 1) * 512;
  const start = setupLength + bz.readUInt32LE(0x248);
  const payloadLength = bz.readUInt32LE(0x24c);
  const payload = bz.subarray(start, start + payloadLength - 4);
  const reference = execFileSync('xz', ['-dc'], { input: payload, maxBuffer: 256 * MiB });

  it("decodes the sample kernel's XZ payload (x86 BCJ + LZMA2) exactly as xz does", async () => {
    const ours = await unxz(payload, reference.length);
    assert.ok(Buffer.isBuffer(ours), String(ours));
    assert.ok(ours.equals(reference));
  });

  it('lays the ELF segments out at their physical addresses and points code32_start at the entry', async () => {
    const r = await unpackKernel(arrayBuffer(bz), LIMIT);
    assert.ok(!('skipped' in r), 'skipped' in r ? r.skipped : '');
    const flat = Buffer.from(r.image);
    assert.equal(r.entry, reference.readUInt32LE(24));
    assert.equal(flat.readUInt32LE(0x214), r.entry);
    const header = Buffer.from(bz.subarray(0, setupLength));
    header.writeUInt32LE(r.entry, 0x214);
    assert.ok(flat.subarray(0, setupLength).equals(header), 'the setup code is unchanged but for code32_start');
    const phoff = reference.readUInt32LE(28);
    let loads = 0;
    for (let i = 0; i < reference.readUInt16LE(44); i++) {
      const h = phoff + i * reference.readUInt16LE(42);
      if (reference.readUInt32LE(h) !== 1) continue;
      const [offset, paddr, filesz] = [4, 12, 16].map((o) => reference.readUInt32LE(h + o));
      const at = setupLength + paddr - 0x100000;
      assert.ok(flat.subarray(at, at + filesz).equals(reference.subarray(offset, offset + filesz)), `segment at 0x${paddr.toString(16)}`);
      loads++;
    }
    assert.ok(loads >= 2);
  });

  it("gives the XZ decoder's wasm memory back once the kernel is out (it would stay for the runner's life)", async () => {
    const gc = runInNewContext('gc') as () => void;
    const wasmAndOther = (): number => {
      gc();
      const m = process.memoryUsage();
      return m.external - m.arrayBuffers;
    };
    const before = wasmAndOther();
    const r = await unpackKernel(arrayBuffer(bz), LIMIT);
    assert.ok(!('skipped' in r));
    // The decoder's last promises still hold its instance for a moment after the kernel is out (longer
    // on a loaded machine): given back within 5 s, where kept it would stay for good.
    let grown = wasmAndOther() - before;
    for (const end = Date.now() + 5000; grown >= 8 * MiB && Date.now() < end; grown = wasmAndOther() - before) {
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(grown < 8 * MiB, `memory outside the JS heap and ArrayBuffers grew by ${(grown / MiB).toFixed(1)} MiB`);
  });

  it('takes a gzip payload too', async () => {
    const gz = zlib.gzipSync(reference, { level: 1 });
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(reference.length);
    const image = Buffer.concat([bz.subarray(0, start), gz, trailer]);
    image.writeUInt32LE(gz.length + 4, 0x24c);
    const fromGzip = await unpackKernel(arrayBuffer(image), LIMIT);
    const fromXz = await unpackKernel(arrayBuffer(bz), LIMIT);
    assert.ok(!('skipped' in fromGzip), 'skipped' in fromGzip ? fromGzip.skipped : '');
    assert.ok(!('skipped' in fromXz), 'skipped' in fromXz ? fromXz.skipped : '');
    assert.equal(fromGzip.format, 'gzip');
    // The same memory from 1 MiB (the setup headers differ in payload_length).
    assert.ok(Buffer.from(fromGzip.image, setupLength).equals(Buffer.from(fromXz.image, setupLength)));
  });

  it('boots what it cannot read as it is, saying why', async () => {
    const cases: [string, Buffer, number, RegExp][] = [
      ['not a bzImage', Buffer.alloc(4096), LIMIT, /not a bzImage/],
      ['truncated', bz.subarray(0, start + 1000), LIMIT, /payload outside the file/],
      ['no room', bz, 8 * MiB, /more than fits below 8 MiB/],
    ];
    const corrupt = Buffer.from(bz);
    for (let i = start + 100_000; i < start + 100_064; i++) corrupt[i] ^= 0x5a;
    cases.push(['corrupt XZ data', corrupt, LIMIT, /does not unpack|unpacks to/]);
    const lying = Buffer.from(bz);
    lying.writeUInt32LE(reference.length + 4096, start + payloadLength - 4);
    cases.push(['a size the XZ index does not confirm', lying, LIMIT, /the XZ index says/]);
    const elfless = Buffer.from(bz);
    const gz = zlib.gzipSync(Buffer.alloc(1000, 1));
    gz.copy(elfless, start);
    elfless.writeUInt32LE(gz.length + 4, 0x24c);
    elfless.writeUInt32LE(1000, start + gz.length);
    cases.push(['a payload that is no ELF', elfless, LIMIT, /not a 32-bit little-endian ELF/]);
    for (const [what, image, limit, why] of cases) {
      const r = await unpackKernel(arrayBuffer(image), limit);
      assert.ok('skipped' in r, `${what}: unpacked`);
      assert.match(r.skipped, why, what);
    }
  });
});
