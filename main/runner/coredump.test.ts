// The v86 core file format against Debian's readelf and gdb, on a made-up machine (no guest): page
// tables mapping a kernel half at 0xC0000000 (4 MiB pages) and two user pages (4 KiB), registers, and
// strings in RAM that gdb must read at their virtual addresses. The real guests are in
// main/host/core-dump.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { mappedSegments, writeCoreFile, type CoreSource } from './coredump.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-core-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;

function machine(pae: boolean): CoreSource {
  const ram = new Uint8Array(16 * MiB);
  const view = new DataView(ram.buffer);
  const registers = { eax: 1, ebx: 2, ecx: 3, edx: 4, esi: 5, edi: 6, ebp: 0xc0ff0000, esp: 0xc0ff1234, eip: 0xc0123456, eflags: 0x246, cs: 0x60, ss: 0x68, ds: 0x7b, es: 0x7b, fs: 0xd8, gs: 0xe0 };
  if (pae) {
    // PDPT at 0x1000 -> PD for 3-4 GiB at 0x2000 (2 MiB pages) and PD for 0-1 GiB at 0x3000 -> PT at 0x4000.
    view.setUint32(0x1000 + 3 * 8, 0x2000 | 1, true);
    for (let j = 0; j < 8; j++) view.setUint32(0x2000 + j * 8, (j * 2 * MiB) | 0x83, true);
    view.setUint32(0x1000, 0x3000 | 1, true);
    view.setUint32(0x3000 + 0x40 * 8, 0x4000 | 7, true);
    view.setUint32(0x4000 + 0x48 * 8, 0x200000 | 7, true);
    view.setUint32(0x4000 + 0x49 * 8, 0x201000 | 7, true);
  } else {
    // Page directory at 0x1000: 0xC0000000.. -> 0.. in four 4 MiB pages; 0x08048000 -> 0x200000 (two 4 KiB pages).
    for (let i = 0; i < 4; i++) view.setUint32(0x1000 + (0x300 + i) * 4, (i * 4 * MiB) | 0x83, true);
    view.setUint32(0x1000 + 0x20 * 4, 0x2000 | 7, true);
    view.setUint32(0x2000 + 0x48 * 4, 0x200000 | 7, true);
    view.setUint32(0x2000 + 0x49 * 4, 0x201000 | 7, true);
  }
  Buffer.from('Linux version 6.1.0-test (made up)\0').copy(ram, 0x100000);
  Buffer.from('user page\0').copy(ram, 0x201000);
  return { registers, cr0: 0x80000011, cr3: 0x1000, cr4: pae ? 0x30 : 0x10, ram: () => ram };
}

function gdb(core: string, ...commands: string[]): string {
  return execFileSync('gdb', ['-nx', '-batch', '-c', core, ...commands.flatMap((c) => ['-ex', c])], { encoding: 'utf8' });
}

for (const pae of [false, true]) {
  test(`an ELF32 core of a ${pae ? 'PAE' : 'non-PAE'} machine: readelf lists its segments, gdb reads registers and memory by virtual address`, async () => {
    const src = machine(pae);
    assert.deepEqual(mappedSegments(src, src.ram()), [
      { vaddr: 0x08048000, paddr: 0x200000, size: 0x2000 },
      { vaddr: 0xc0000000, paddr: 0, size: 16 * MiB },
    ]);
    const file = path.join(dir, `core-${pae ? 'pae' : 'flat'}`);
    const progress: number[] = [];
    const bytes = await writeCoreFile(file, src, { onProgress: (done) => progress.push(done) });
    assert.equal(fs.statSync(file).size, bytes);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(progress.at(-1), bytes);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);

    const header = execFileSync('readelf', ['-h', file], { encoding: 'utf8' });
    assert.match(header, /Type:\s+CORE/);
    assert.match(header, /Machine:\s+Intel 80386/);
    const loads = execFileSync('readelf', ['-lW', file], { encoding: 'utf8' }).split('\n').filter((l) => /^\s*LOAD/.test(l));
    assert.deepEqual(
      loads.map((l) => l.trim().split(/\s+/).slice(2, 5)),
      [
        ['0x08048000', '0x00200000', '0x02000'],
        ['0xc0000000', '0x00000000', '0x1000000'],
        ['0x00000000', '0x00000000', '0x1000000'],
      ],
    );
    assert.match(execFileSync('readelf', ['-n', file], { encoding: 'utf8' }), /CORE\s+0x00000090\s+NT_PRSTATUS/);

    const out = gdb(file, 'info registers eip esp ebp eax ebx cs eflags', 'x/s 0xc0100000', 'x/s 0x08049000');
    assert.match(out, /eip\s+0xc0123456/);
    assert.match(out, /esp\s+0xc0ff1234/);
    assert.match(out, /ebp\s+0xc0ff0000/);
    assert.match(out, /eax\s+0x1\s/);
    assert.match(out, /ebx\s+0x2\s/);
    assert.match(out, /cs\s+0x60/);
    assert.match(out, /eflags\s+0x246/);
    assert.match(out, /0xc0100000:\s+"Linux version 6.1.0-test \(made up\)"/);
    assert.match(out, /0x8049000:\s+"user page"/);
  });
}

test('without paging, RAM is one segment at its physical address; an abort leaves no file', async () => {
  const src = { ...machine(false), cr0: 0x11 };
  assert.deepEqual(mappedSegments(src, src.ram()), [{ vaddr: 0, paddr: 0, size: 16 * MiB }]);
  const file = path.join(dir, 'aborted');
  const abort = new AbortController();
  await assert.rejects(
    writeCoreFile(file, src, { signal: abort.signal, onProgress: (done) => done > 4 * MiB && abort.abort() }),
    /dump aborted/,
  );
  assert.equal(fs.existsSync(file), false);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.aborted')), []);
  await assert.rejects(writeCoreFile(path.join(dir, 'no-such-dir', 'core'), src), /cannot write dump file '.*no-such-dir\/core': No such file or directory/);
});
