// Test support: small images made by the Debian tools (e2fsprogs, genisoimage, xorriso, dosfstools
// + mtools, sfdisk), filled from one source tree, so the reader is checked against real writers.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BIG_BYTES = 3 * 1024 * 1024 + 123;

/** A deterministic pseudo-random buffer (the same for every run). */
export function pattern(bytes: number, seed: string): Buffer {
  const out = Buffer.alloc(bytes);
  let block = crypto.createHash('sha256').update(seed).digest();
  for (let off = 0; off < bytes; off += block.length) {
    block.copy(out, off);
    block = crypto.createHash('sha256').update(block).digest();
  }
  return out;
}

/** A fake bzImage setup header: enough for the boot protocol fields the reader looks at. */
export function fakeBzImage(version: string, sixtyFour: boolean, bytes = 8192): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUInt16LE(0xaa55, 0x1fe);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x020f, 0x206);
  b.writeUInt16LE(0x400 - 0x200, 0x20e);
  b.write(`${version} (builder@example) #1 SMP\0`, 0x400, 'latin1');
  b.writeUInt16LE(sixtyFour ? 0x7f : 0x04, 0x236);
  return b;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `domus-${prefix}-`));
}

/**
 * The source tree: a kernel layout in /boot, text, a 3 MiB file (ext2 double-indirect blocks), a
 * sparse file with 12 data runs (an ext4 extent tree of depth 1), symlinks (relative, absolute,
 * dangling, a loop), a long name, a deep directory and a 600-entry directory (an htree index).
 */
export function makeTree(root: string, opts: { symlinks?: boolean; sparse?: boolean; many?: number } = {}): void {
  const w = (p: string, data: string | Buffer): void => {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), data);
  };
  w('boot/vmlinuz-5.10.0-9-686', fakeBzImage('5.10.0-9-686', false));
  w('boot/vmlinuz-5.10.0-10-686', fakeBzImage('5.10.0-10-686', false));
  w('boot/initrd.img-5.10.0-10-686', 'initrd-10');
  w('boot/initrd.img-5.10.0-9-686', 'initrd-9');
  w('hello.txt', 'hello, world\n');
  w('big.bin', pattern(BIG_BYTES, 'big'));
  w('A Long File Name With Spaces.text', 'long name\n');
  w('d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt', 'deep\n');
  const many = opts.many ?? 600;
  for (let i = 0; i < many; i++) w(`many/file-${String(i).padStart(4, '0')}-with-a-longer-name`, `${i}\n`);
  if (opts.sparse) {
    const fd = fs.openSync(path.join(root, 'sparse.bin'), 'w');
    for (let i = 0; i < 12; i++) fs.writeSync(fd, pattern(4096, `sparse${i}`), 0, 4096, i * 65536);
    fs.closeSync(fd);
  }
  if (opts.symlinks) {
    fs.symlinkSync('boot/vmlinuz-5.10.0-10-686', path.join(root, 'vmlinuz'));
    fs.symlinkSync('/hello.txt', path.join(root, 'd1/abs-link'));
    fs.symlinkSync('../../hello.txt', path.join(root, 'd1/d2/rel-link'));
    fs.symlinkSync('nowhere', path.join(root, 'dangling'));
    fs.symlinkSync('loop-b', path.join(root, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(root, 'loop-b'));
    const longTarget = `/${'x'.repeat(80)}/hello.txt`;
    fs.symlinkSync(longTarget, path.join(root, 'slow-link'));
  }
}

export function mkExt(file: string, src: string, kind: string, extra: string[] = [], sizeK = 8192): void {
  fs.rmSync(file, { force: true });
  run(`mkfs.${kind}`, ['-q', '-F', '-d', src, ...extra, file, `${sizeK}`]);
}

export function mkIso(file: string, src: string, tool: 'genisoimage' | 'xorriso', flags: string[]): void {
  fs.rmSync(file, { force: true });
  if (tool === 'genisoimage') run('genisoimage', ['-quiet', ...flags, '-V', 'TESTISO', '-o', file, src]);
  else run('xorriso', ['-as', 'mkisofs', '-quiet', ...flags, '-V', 'TESTISO', '-o', file, src]);
}

export function mkFat(file: string, src: string, bits: 12 | 16 | 32, sizeK: number): void {
  fs.rmSync(file, { force: true });
  run('mkfs.fat', ['-C', '-F', String(bits), '-n', `FAT${bits}TEST`, file, String(sizeK)]);
  run('mcopy', ['-s', '-i', file, ...fs.readdirSync(src).map((n) => path.join(src, n)), '::/']);
}

/** A disk with `parts` written at 1 MiB steps, partitioned by sfdisk with `script` (sectors). */
export function mkDisk(file: string, sizeMiB: number, script: string, parts: { image: string; startSector: number }[]): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, sizeMiB * 1024 * 1024);
  run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', file], { input: script });
  const fd = fs.openSync(file, 'r+');
  for (const p of parts) fs.writeSync(fd, fs.readFileSync(p.image), 0, undefined, p.startSector * 512);
  fs.closeSync(fd);
}
