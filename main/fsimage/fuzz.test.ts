// Fuzzing by mutation: images made by the Debian tools get bit flips, random bytes and huge counts
// in their metadata, zeroed sectors and truncation; every reader call must end with a result or an
// FsImageError within a time budget. An input that breaks the reader is saved to fixtures/ and
// replayed by the regression test below.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { safetyNet } from './errors.js';
import { exercise } from '../testing/fsimage-fuzz.js';
import { fakeBzImage, makeTree, mkDisk, mkExt, mkFat, mkIso, tmpDir } from '../testing/fs-images.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const BUDGET_MS = Number(process.env.DOMUS_FUZZ_MS ?? 30_000);
const CALL_BUDGET_MS = 10_000;
const SEED = process.env.DOMUS_FUZZ_SEED ?? 'domus-fsimage-1';

/** A seeded generator, so a failing run can be replayed with DOMUS_FUZZ_SEED. */
class Rng {
  private state: Buffer;
  private pool: Buffer = Buffer.alloc(0);
  constructor(seed: string) {
    this.state = crypto.createHash('sha256').update(seed).digest();
  }
  private byte(): number {
    if (this.pool.length === 0) {
      this.state = crypto.createHash('sha256').update(this.state).digest();
      this.pool = this.state;
    }
    const b = this.pool[0];
    this.pool = this.pool.subarray(1);
    return b;
  }
  int(n: number): number {
    const v = (this.byte() << 24) | (this.byte() << 16) | (this.byte() << 8) | this.byte();
    return (v >>> 0) % Math.max(1, n);
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.byte()));
  }
}

interface Seed {
  name: string;
  file: string;
  /** Where the metadata lives: most mutations land here. */
  hot: [number, number][];
}

const HUGE = [0xffffffff, 0x7fffffff, 0x80000000, 0x10000, 0xffff, 0];

function mutate(rng: Rng, seed: Seed, data: Buffer): { data: Buffer; what: string } {
  const out = Buffer.from(data);
  const spot = (align = 1): number => {
    if (rng.int(8) === 0) return rng.int(out.length - 4) & ~(align - 1);
    const [a, b] = seed.hot[rng.int(seed.hot.length)];
    return Math.min(out.length - 4, a + rng.int(b - a)) & ~(align - 1);
  };
  const kind = rng.int(6);
  const n = 1 + rng.int(8);
  switch (kind) {
    case 0:
      for (let i = 0; i < n; i++) {
        const at = spot();
        out[at] ^= 1 << rng.int(8);
      }
      return { data: out, what: `flip ${n} bits` };
    case 1:
      for (let i = 0; i < n; i++) rng.bytes(1 + rng.int(8)).copy(out, spot());
      return { data: out, what: `random bytes x${n}` };
    case 2:
      for (let i = 0; i < n; i++) {
        const v = HUGE[rng.int(HUGE.length)];
        const at = spot(2);
        if (rng.int(2)) out.writeUInt32LE(v >>> 0, at);
        else out.writeUInt16LE(v & 0xffff, at);
      }
      return { data: out, what: `huge counts x${n}` };
    case 3: {
      const at = spot(512);
      out.fill(0, at, Math.min(out.length, at + 512));
      return { data: out, what: `zeroed sector at ${at}` };
    }
    case 4:
      return { data: out.subarray(0, rng.int(out.length)), what: 'truncated' };
    default: {
      const at = spot();
      const len = 16 + rng.int(256);
      rng.bytes(len).copy(out, at);
      return { data: out, what: `random run of ${len}` };
    }
  }
}

describe('fuzz: mutated images end in a result or FsImageError', () => {
  let dir: string;
  const seeds: Seed[] = [];
  before(() => {
    dir = tmpDir('fuzz');
    const src = path.join(dir, 'src');
    makeTree(src, { symlinks: true, sparse: true, many: 40 });
    fs.mkdirSync(path.join(src, 'boot/extlinux'));
    fs.writeFileSync(path.join(src, 'boot/extlinux/extlinux.conf'), 'DEFAULT a\nLABEL a\n KERNEL /boot/vmlinuz-5.10.0-10-686\n APPEND initrd=/boot/initrd.img-5.10.0-10-686 root=/dev/sda1\nINCLUDE /boot/extlinux/extlinux.conf\n');
    fs.mkdirSync(path.join(src, 'boot/grub'));
    fs.writeFileSync(path.join(src, 'boot/grub/grub.cfg'), "set default=0\nmenuentry 'x' {\n linux /boot/vmlinuz-5.10.0-9-686 ro\n initrd /boot/initrd.img-5.10.0-9-686\n}\n");
    fs.rmSync(path.join(src, 'big.bin'));
    const fatSrc = path.join(dir, 'fatsrc');
    makeTree(fatSrc, { many: 40 });
    fs.rmSync(path.join(fatSrc, 'big.bin'));
    fs.writeFileSync(path.join(fatSrc, 'syslinux.cfg'), 'DEFAULT /boot/vmlinuz-5.10.0-10-686 initrd=/boot/initrd.img-5.10.0-10-686\n');
    const add = (name: string, file: string, hot: [number, number][]): void => {
      seeds.push({ name, file, hot });
    };
    const k = 1024;
    mkExt(path.join(dir, 'ext2.img'), src, 'ext2', ['-b', '1024', '-N', '128'], 1024);
    add('ext2', path.join(dir, 'ext2.img'), [[1024, 160 * k]]);
    mkExt(path.join(dir, 'ext4.img'), src, 'ext4', ['-b', '1024', '-N', '128', '-O', '^has_journal,64bit,metadata_csum', '-E', 'lazy_itable_init=0'], 2048);
    add('ext4', path.join(dir, 'ext4.img'), [[1024, 200 * k]]);
    mkExt(path.join(dir, 'ext4-4k.img'), src, 'ext4', ['-b', '4096', '-N', '128', '-O', '^has_journal'], 2048);
    add('ext4-4k', path.join(dir, 'ext4-4k.img'), [[1024, 400 * k]]);
    mkIso(path.join(dir, 'rr.iso'), src, 'genisoimage', ['-R', '-J']);
    add('iso-rr-joliet', path.join(dir, 'rr.iso'), [[32 * k, 120 * k]]);
    mkFat(path.join(dir, 'fat12.img'), fatSrc, 12, 1024);
    add('fat12', path.join(dir, 'fat12.img'), [[0, 64 * k]]);
    mkFat(path.join(dir, 'fat16.img'), fatSrc, 16, 8400);
    add('fat16', path.join(dir, 'fat16.img'), [[0, 96 * k]]);
    // Partition tables: the first sectors, the EBR chain, the GPT header and entries.
    const part = path.join(dir, 'part.img');
    mkExt(part, path.join(src, 'boot'), 'ext2', ['-b', '1024', '-N', '32'], 512);
    mkDisk(path.join(dir, 'mbr.img'), 2, 'label: dos\nstart=64, size=1024, type=83\nstart=1100, size=2000, type=5\nstart=1200, size=1024, type=83\nstart=2300, size=700, type=83\n', [
      { image: part, startSector: 1200 },
    ]);
    add('mbr-logical', path.join(dir, 'mbr.img'), [[0, 512], [1100 * 512, 1101 * 512], [1200 * 512, 1200 * 512 + 64 * k], [2290 * 512, 2300 * 512]]);
    mkDisk(path.join(dir, 'gpt.img'), 2, 'label: gpt\nstart=64, size=1024, type=L\nstart=1100, size=2000, type=L\n', [{ image: part, startSector: 64 }]);
    add('gpt', path.join(dir, 'gpt.img'), [[0, 34 * 512], [64 * 512, 64 * 512 + 64 * k]]);
    assert.ok(fakeBzImage('x', false).length > 0);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('every seed image reads cleanly before mutation', () => {
    for (const s of seeds) {
      const r = exercise(s.file);
      assert.ok(r.ok > 10, `${s.name}: ${JSON.stringify(r)}`);
    }
  });

  it(`mutation loop (${BUDGET_MS / 1000} s, seed '${SEED}')`, { timeout: BUDGET_MS + 120_000 }, () => {
    const rng = new Rng(SEED);
    const originals = seeds.map((s) => fs.readFileSync(s.file));
    const work = path.join(dir, 'work.img');
    const started = Date.now();
    let runs = 0;
    let slowest = 0;
    let calls = 0;
    let errors = 0;
    const perSeed = new Map<string, number>();
    const failures: string[] = [];
    while (Date.now() - started < BUDGET_MS) {
      const i = runs % seeds.length;
      const seed = seeds[i];
      const { data, what } = mutate(rng, seed, originals[i]);
      fs.writeFileSync(work, data);
      const t0 = Date.now();
      try {
        const r = exercise(work, CALL_BUDGET_MS);
        calls += r.ok + r.errors;
        errors += r.errors;
      } catch (err) {
        const name = `crash-${seed.name}-${crypto.createHash('sha256').update(data).digest('hex').slice(0, 12)}.img.gz`;
        fs.mkdirSync(FIXTURES, { recursive: true });
        fs.writeFileSync(path.join(FIXTURES, name), zlib.gzipSync(data, { level: 9 }));
        failures.push(`${seed.name} (${what}): ${(err as Error).stack?.split('\n').slice(0, 3).join(' | ')} → fixtures/${name}`);
      }
      if (safetyNet.hits) {
        failures.push(`${seed.name} (${what}): a bounds check is missing (${safetyNet.last.split('\n').slice(0, 3).join(' | ')})`);
        safetyNet.hits = 0;
      }
      const took = Date.now() - t0;
      slowest = Math.max(slowest, took);
      assert.ok(took < CALL_BUDGET_MS * 2, `${seed.name} (${what}) took ${took} ms`);
      perSeed.set(seed.name, (perSeed.get(seed.name) ?? 0) + 1);
      runs++;
    }
    console.log(`# fuzz: ${runs} mutated images in ${((Date.now() - started) / 1000).toFixed(1)} s (${calls} calls, ${errors} FsImageErrors), slowest ${slowest} ms; ${[...perSeed].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.deepEqual(failures, []);
  });

  const regressions = fs.existsSync(FIXTURES) ? fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.img.gz')) : [];
  it('regression inputs in fixtures/ end in a result or FsImageError', { skip: regressions.length === 0 && 'no regression inputs kept' }, () => {
    for (const f of regressions) {
      const file = path.join(dir, f.replace(/\.gz$/, ''));
      fs.writeFileSync(file, zlib.gunzipSync(fs.readFileSync(path.join(FIXTURES, f))));
      const t0 = Date.now();
      exercise(file, CALL_BUDGET_MS);
      assert.ok(Date.now() - t0 < CALL_BUDGET_MS * 2, `${f} took too long`);
    }
  });
});
