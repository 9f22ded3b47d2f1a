// The reader against images written by the Debian tools: ext2/3/4 variants, ISO 9660 (Rock Ridge,
// Joliet, plain) from genisoimage and xorriso, FAT12/16/32 from mkfs.fat + mcopy, MBR (with logical
// partitions) and GPT from sfdisk, and the sample guest's disk.img.
import assert from 'node:assert/strict';
import hostfs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { guest, guestsBuilt } from '../testing/harness.js';
import { DiskImage, FsImageError, type Filesystem } from './index.js';
import { BIG_BYTES, makeTree, mkDisk, mkExt, mkFat, mkIso, pattern, run, tmpDir } from '../testing/fs-images.js';

let dir: string;
let src: string;
let fatSrc: string;

before(() => {
  dir = tmpDir('fsimage');
  src = path.join(dir, 'src');
  makeTree(src, { symlinks: true, sparse: true });
  fatSrc = path.join(dir, 'fatsrc');
  makeTree(fatSrc, { many: 300 });
});
after(() => hostfs.rmSync(dir, { recursive: true, force: true }));

function only(file: string): { img: DiskImage; fs: Filesystem } {
  const img = DiskImage.open(file);
  const all = img.filesystems();
  assert.equal(all.length, 1, `one filesystem in ${file}: ${JSON.stringify(img.volumes.map((v) => v.problem))}`);
  return { img, fs: all[0].fs };
}

function rejectsWith(fn: () => unknown, code: string, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FsImageError, `FsImageError expected, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return true;
  });
}

/** The checks every filesystem made from the common source tree must pass. */
function checkCommon(fs: Filesystem, opts: { symlinks: boolean; many: number; deep?: boolean }): void {
  assert.equal(fs.readFile('/hello.txt').toString(), 'hello, world\n');
  assert.ok(fs.readFile('/big.bin').equals(pattern(BIG_BYTES, 'big')), 'the 3 MiB file reads back intact');
  // Plain ISO 9660 and Joliet stop at 8 directory levels; genisoimage drops what is deeper.
  if (opts.deep !== false) assert.equal(fs.readFile('/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt').toString(), 'deep\n');
  assert.equal(fs.readFile('/A Long File Name With Spaces.text').toString(), 'long name\n');
  const many = fs.readdir('/many');
  assert.equal(many.length, opts.many);
  assert.equal(fs.readFile(`/many/file-0${opts.many - 1}-with-a-longer-name`).toString(), `${opts.many - 1}\n`);
  const boot = fs.readdir('/boot').map((e) => e.name).sort();
  assert.deepEqual(boot, ['initrd.img-5.10.0-10-686', 'initrd.img-5.10.0-9-686', 'vmlinuz-5.10.0-10-686', 'vmlinuz-5.10.0-9-686']);
  assert.equal(fs.stat('/big.bin').size, BIG_BYTES);
  assert.equal(fs.stat('/d1').kind, 'dir');
  rejectsWith(() => fs.readFile('/nope'), 'not-found', /\/nope: no such file/);
  rejectsWith(() => fs.readFile('/hello.txt/x'), 'not-dir');
  rejectsWith(() => fs.readFile('/d1'), 'is-dir');
  rejectsWith(() => fs.readFile('/big.bin', 1024), 'limit');
  if (opts.symlinks) {
    assert.equal(fs.readlink('/vmlinuz'), 'boot/vmlinuz-5.10.0-10-686');
    assert.equal(fs.stat('/vmlinuz').kind, 'file');
    assert.equal(fs.stat('/vmlinuz', false).kind, 'symlink');
    assert.equal(fs.readFile('/d1/abs-link').toString(), 'hello, world\n');
    assert.equal(fs.readFile('/d1/d2/rel-link').toString(), 'hello, world\n');
    assert.equal(fs.readlink('/slow-link'), `/${'x'.repeat(80)}/hello.txt`);
    rejectsWith(() => fs.readFile('/dangling'), 'not-found');
    rejectsWith(() => fs.readFile('/loop-a'), 'loop', /too many levels of symbolic links/);
  }
}

describe('ext2/3/4', () => {
  const variants: [string, string, string[], number?][] = [
    ['ext2, 1 KiB blocks (indirect blocks)', 'ext2', ['-b', '1024']],
    ['ext3 (journal)', 'ext3', ['-b', '1024']],
    ['ext4 with extents, 4 KiB blocks', 'ext4', ['-b', '4096']],
    ['ext4 without extents', 'ext4', ['-O', '^extent,^64bit', '-b', '1024']],
    ['ext4 64bit + metadata_csum + flex_bg', 'ext4', ['-O', '64bit,metadata_csum,flex_bg', '-b', '1024']],
    ['ext4 inline_data', 'ext4', ['-O', 'inline_data', '-b', '4096']],
    ['ext4 meta_bg', 'ext4', ['-O', 'meta_bg,^resize_inode', '-b', '1024']],
  ];
  for (const [title, kind, extra] of variants) {
    it(title, () => {
      const file = path.join(dir, `${kind}.img`);
      mkExt(file, src, kind, extra);
      const { img, fs } = only(file);
      try {
        assert.equal(img.format, 'disk');
        assert.equal(img.partitionTable, 'none');
        assert.equal(fs.type, kind === 'ext4' ? 'ext4' : kind);
        checkCommon(fs, { symlinks: true, many: 600 });
        const sparse = fs.readFile('/sparse.bin');
        assert.equal(sparse.length, 11 * 65536 + 4096);
        for (let i = 0; i < 12; i++) assert.ok(sparse.subarray(i * 65536, i * 65536 + 4096).equals(pattern(4096, `sparse${i}`)));
        assert.ok(sparse.subarray(4096, 65536).every((b) => b === 0), 'holes read as zeros');
      } finally {
        img.close();
      }
    });
  }

  it('reads an extent tree of depth 1 (debugfs confirms the index node)', () => {
    const file = path.join(dir, 'ext4.img');
    mkExt(file, src, 'ext4', ['-b', '4096']);
    const stat = run('debugfs', ['-R', 'stat /sparse.bin', file]);
    assert.match(stat, /\(ETB0\)|Level Entries|\(0\):\d+.*\(1\)/s);
    assert.match(run('debugfs', ['-R', 'ex /sparse.bin', file]), /^\s*0\/\s*1\s/m, 'the tree has an index level');
    const { img, fs } = only(file);
    assert.equal(fs.readFile('/sparse.bin').subarray(11 * 65536).toString('hex'), pattern(4096, 'sparse11').toString('hex'));
    img.close();
  });
});

describe('ISO 9660', () => {
  it('Rock Ridge + Joliet by genisoimage: POSIX names, symlinks, modes', () => {
    const file = path.join(dir, 'rr.iso');
    mkIso(file, src, 'genisoimage', ['-R', '-J', '-joliet-long']);
    const { img, fs } = only(file);
    assert.equal(img.format, 'iso');
    assert.equal(fs.type, 'iso9660');
    assert.equal(fs.label, 'TESTISO');
    checkCommon(fs, { symlinks: true, many: 600 });
    img.close();
  });

  it('Rock Ridge by xorriso, with the deep directory relocated (CL/RE)', () => {
    const file = path.join(dir, 'xorriso.iso');
    mkIso(file, src, 'xorriso', ['-R', '-J']);
    const { img, fs } = only(file);
    checkCommon(fs, { symlinks: true, many: 600 });
    img.close();
  });

  it('Joliet only: Unicode names, case-insensitive lookup', () => {
    const file = path.join(dir, 'joliet.iso');
    mkIso(file, fatSrc, 'genisoimage', ['-J', '-joliet-long']);
    const { img, fs } = only(file);
    checkCommon(fs, { symlinks: false, many: 300, deep: false });
    assert.equal(fs.readFile('/HELLO.TXT').toString(), 'hello, world\n');
    img.close();
  });

  it('plain ISO 9660 names are shown lowercase without the version', () => {
    const file = path.join(dir, 'plain.iso');
    mkIso(file, path.join(src, 'boot'), 'genisoimage', []);
    const { img, fs } = only(file);
    const names = fs.readdir('/').map((e) => e.name);
    assert.ok(names.every((n) => n === n.toLowerCase() && !n.includes(';')), names.join(' '));
    assert.equal(names.length, 4);
    img.close();
  });
});

describe('FAT', () => {
  for (const [bits, sizeK] of [
    [12, 4000],
    [16, 16384],
    [32, 40000],
  ] as const) {
    it(`FAT${bits} by mkfs.fat + mcopy (long names, subdirectories, cluster chains)`, () => {
      const file = path.join(dir, `fat${bits}.img`);
      mkFat(file, fatSrc, bits, sizeK);
      const { img, fs } = only(file);
      assert.equal(fs.type, `fat${bits}`);
      assert.equal(fs.label, `FAT${bits}TEST`);
      checkCommon(fs, { symlinks: false, many: 300 });
      assert.equal(fs.readFile('/a long file name with spaces.TEXT').toString(), 'long name\n');
      img.close();
    });
  }
});

describe('partition tables', () => {
  it('MBR with primary, extended and logical partitions', () => {
    const ext2 = path.join(dir, 'p-ext2.img');
    mkExt(ext2, path.join(src, 'boot'), 'ext2', ['-b', '1024'], 4096);
    const fat = path.join(dir, 'p-fat.img');
    mkFat(fat, path.join(fatSrc, 'd1'), 12, 4000);
    const disk = path.join(dir, 'mbr.img');
    const script = 'label: dos\nstart=2048, size=8192, type=83, bootable\nstart=10240, size=40960, type=5\nstart=12288, size=16384, type=1\nstart=30720, size=8192, type=83\n';
    mkDisk(disk, 32, script, [
      { image: ext2, startSector: 2048 },
      { image: fat, startSector: 12288 },
    ]);
    const img = DiskImage.open(disk);
    assert.equal(img.partitionTable, 'mbr');
    assert.deepEqual(
      img.partitions.map((p) => [p.index, p.typeId, p.startBytes / 512, p.sizeBytes / 512, p.bootable]),
      [
        [1, '0x83', 2048, 8192, true],
        [2, '0x05', 10240, 40960, false],
        [5, '0x01', 12288, 16384, false],
        [6, '0x83', 30720, 8192, false],
      ],
    );
    const fss = img.filesystems();
    assert.deepEqual(fss.map((f) => [f.volume.where, f.fs.type]), [['partition 1', 'ext2'], ['partition 5', 'fat12']]);
    assert.equal(fss[1].fs.readFile('/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt').toString(), 'deep\n');
    img.close();
  });

  it('GPT with named partitions', () => {
    const ext4 = path.join(dir, 'g-ext4.img');
    mkExt(ext4, path.join(src, 'boot'), 'ext4', [], 4096);
    const disk = path.join(dir, 'gpt.img');
    const script = 'label: gpt\nstart=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"\nstart=8192, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n';
    mkDisk(disk, 16, script, [{ image: ext4, startSector: 8192 }]);
    const img = DiskImage.open(disk);
    assert.equal(img.partitionTable, 'gpt');
    assert.deepEqual(img.problems, []);
    assert.deepEqual(img.partitions.map((p) => [p.index, p.type, p.name, p.startBytes / 512]), [
      [1, 'EFI System', 'EFI', 2048],
      [2, 'Linux filesystem', 'root', 8192],
    ]);
    assert.equal(img.filesystems()[0].fs.readdir('/').length > 0, true);
    img.close();
  });
});

describe('the sample disk.img', { skip: !guestsBuilt() && 'sample guests not built (npm run guests)' }, () => {
  it('MBR + ext2 with extlinux and the kernel in /boot', () => {
    const img = DiskImage.open(guest('disk.img'));
    assert.equal(img.partitionTable, 'mbr');
    const [{ fs, volume }] = img.filesystems();
    assert.equal(volume.where, 'partition 1');
    assert.equal(fs.type, 'ext2');
    assert.equal(fs.label, 'DOMUS');
    const vmlinuz = hostfs.readFileSync(guest('vmlinuz'));
    assert.ok(fs.readFile('/boot/vmlinuz').equals(vmlinuz));
    assert.ok(fs.readFile('/boot/initrd.gz').equals(hostfs.readFileSync(guest('initrd.gz'))));
    const versioned = fs.readdir('/boot').filter((e) => e.name.startsWith('vmlinuz-'));
    assert.equal(versioned.length, 1, 'build-guests.sh links /boot/vmlinuz-<version>');
    assert.ok(fs.readFile(`/boot/${versioned[0].name}`).equals(vmlinuz));
    assert.match(fs.readFile('/boot/extlinux.conf').toString(), /KERNEL \/boot\/vmlinuz/);
    img.close();
  });
});

describe('hostile images end in FsImageError', () => {
  it('FAT: a cluster chain that loops', () => {
    const file = path.join(dir, 'fatloop.img');
    hostfs.rmSync(file, { force: true });
    run('mkfs.fat', ['-C', '-F', '12', file, '1024']);
    hostfs.writeFileSync(path.join(dir, 'loop.bin'), pattern(9000, 'loop'));
    run('mcopy', ['-i', file, path.join(dir, 'loop.bin'), '::/loop.bin']);
    const m = /<(\d+)-(\d+)>/.exec(run('mshowfat', ['-i', file, '::/loop.bin']));
    assert.ok(m, 'mshowfat shows one contiguous chain');
    const [first, last] = [Number(m[1]), Number(m[2])];
    assert.ok(last - first >= 2, `chain <${first}-${last}>`);
    // FAT12: 12-bit entries packed in pairs; the first FAT follows the reserved sectors. The
    // second cluster of the file now points back at the first.
    const img = hostfs.readFileSync(file);
    const fat = img.readUInt16LE(14) * img.readUInt16LE(11);
    const c = first + 1;
    const at = fat + c + (c >> 1);
    const v = img.readUInt16LE(at);
    img.writeUInt16LE(c & 1 ? (v & 0x000f) | (first << 4) : (v & 0xf000) | first, at);
    hostfs.writeFileSync(file, img);
    const { img: opened, fs } = only(file);
    assert.equal(fs.stat('/loop.bin').size, 9000);
    rejectsWith(() => fs.readFile('/loop.bin', 1 << 20), 'corrupt', /cluster chain loops at cluster/);
    opened.close();
  });

  it('ext: a size of 2^42 bytes, and an extent index that points at itself', () => {
    const file = path.join(dir, 'exthostile.img');
    mkExt(file, src, 'ext4', ['-b', '4096']);
    const ex = run('debugfs', ['-R', 'ex /sparse.bin', file]);
    const leaf = /^\s*0\/\s*1\s+1\/\s*1\s+\d+\s*-\s*\d+\s+(\d+)/m.exec(ex);
    assert.ok(leaf, ex);
    run('debugfs', ['-w', '-R', 'sif /hello.txt size 0x40000000000', file]);
    const img = hostfs.readFileSync(file);
    const node = Number(leaf[1]) * 4096;
    img.writeUInt16LE(1, node + 6);
    img.writeUInt32LE(Number(leaf[1]), node + 12 + 4);
    img.writeUInt16LE(0, node + 12 + 8);
    hostfs.writeFileSync(file, img);
    const { img: opened, fs } = only(file);
    assert.equal(fs.stat('/hello.txt').size, 2 ** 42);
    rejectsWith(() => fs.readFile('/hello.txt'), 'limit', /more than the limit/);
    rejectsWith(() => fs.readFile('/sparse.bin'), 'corrupt', /extent tree depth/);
    assert.equal(fs.readFile('/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt').toString(), 'deep\n', 'the rest of the filesystem still reads');
    opened.close();
  });

  it('MBR: an extended partition chain that loops; GPT with a huge entry count', () => {
    const disk = path.join(dir, 'ebrloop.img');
    mkDisk(disk, 8, 'label: dos\nstart=2048, size=12288, type=5\nstart=4096, size=2048, type=83\nstart=8192, size=2048, type=83\n', []);
    const img = hostfs.readFileSync(disk);
    // The second EBR (just before partition 6) gets a "next" entry pointing back at itself.
    const ebr2 = (8192 - 2048) * 512 - 2048 * 512;
    const second = 2048 * 512 + ebr2;
    assert.equal(img.readUInt16LE(second + 510), 0xaa55);
    img[second + 462 + 4] = 0x05;
    img.writeUInt32LE(second / 512 - 2048, second + 462 + 8);
    img.writeUInt32LE(100, second + 462 + 12);
    hostfs.writeFileSync(disk, img);
    const opened = DiskImage.open(disk);
    assert.deepEqual(opened.partitions.map((p) => p.index), [1, 5, 6]);
    assert.ok(opened.problems.includes('the extended partition chain loops'), opened.problems.join('; '));
    opened.close();

    const gpt = path.join(dir, 'gpthuge.img');
    mkDisk(gpt, 4, 'label: gpt\nstart=2048, size=2048, type=L\n', []);
    const g = hostfs.readFileSync(gpt);
    g.writeUInt32LE(0xffffffff, 512 + 80);
    hostfs.writeFileSync(gpt, g);
    const huge = DiskImage.open(gpt);
    assert.match(huge.problems.join('; '), /partition table: GPT claims 4294967295 partition entries/);
    huge.close();
  });

  it('a truncated image, and the read budget', () => {
    const file = path.join(dir, 'trunc.img');
    mkExt(file, src, 'ext2', ['-b', '1024']);
    const full = DiskImage.open(file, { maxBytesRead: 256 * 1024 });
    rejectsWith(() => full.filesystems()[0].fs.readFile('/big.bin'), 'limit', /budget/);
    full.close();
    hostfs.truncateSync(file, 2 * 1024 * 1024);
    const { img, fs } = only(file);
    rejectsWith(() => fs.readFile('/big.bin'), 'corrupt', /outside the filesystem|beyond the end/);
    img.close();
  });
});
