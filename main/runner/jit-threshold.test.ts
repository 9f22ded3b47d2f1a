// The runner's JIT threshold (jit-threshold.ts) against the installed v86: the constant is still
// there to patch, and the patched module compiles guest code that v86's own would still interpret.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { V86 } from 'v86';
import { JIT_THRESHOLD, V86_JIT_THRESHOLD, setJitThreshold } from './jit-threshold.js';

const v86Wasm = path.join(path.dirname(createRequire(import.meta.url).resolve('v86')), 'v86.wasm');
const BIOS = '/usr/share/seabios/bios.bin';

test("the installed v86.wasm has its JIT threshold once, and patching it changes only the constant's bytes", () => {
  const stock = fs.readFileSync(v86Wasm);
  const patched = setJitThreshold(Buffer.from(stock));
  const changed = [...patched.keys()].filter((i) => patched[i] !== stock[i]);
  assert.equal(changed.length, 3, `${changed.length} bytes changed`);
  assert.ok(changed[2]! - changed[0]! === 2, 'the changed bytes are not one constant');
  assert.ok(WebAssembly.validate(patched), 'the patched module does not validate');
  // Patching twice finds nothing: the site is v86's constant, not anything else that looks like it.
  assert.throws(() => setJitThreshold(patched), /its JIT threshold moved/);
  // 2^20 fits 3 bytes of unsigned LEB128 but not of signed, which wasm's i32.const is: it would read as negative.
  assert.throws(() => setJitThreshold(Buffer.from(stock), 1 << 20), /does not encode in 3 bytes/);
  assert.doesNotThrow(() => setJitThreshold(Buffer.from(stock), (1 << 20) - 1));
});

/**
 * Boots a sector that runs `dec ecx; jnz` `iterations` times and reports on the serial port; the
 * pages v86 compiled. It first waits 20 timer ticks (~1 s): v86 compiles one block at a time, in the
 * background, and one of the BIOS's still compiling would hold the loop's back until it has ended.
 */
async function compiledPages(wasm: Uint8Array<ArrayBuffer>, iterations: number): Promise<number[]> {
  const sector = new Uint8Array(1 << 20);
  const n = [iterations & 0xff, (iterations >> 8) & 0xff, (iterations >> 16) & 0xff, 0];
  sector.set([
    ...[0xfb, 0xb9, 20, 0, 0xf4, 0xe2, 0xfd], // sti; mov cx, 20; w: hlt; loop w
    ...[0xfa, 0x66, 0xb9, ...n, 0x66, 0x49, 0x75, 0xfc], // cli; mov ecx, iterations; l: dec ecx; jnz l
    ...[0xb0, 0x44, 0xba, 0xf8, 0x03, 0xee, 0xf4, 0xeb, 0xfd], // mov al, 'D'; mov dx, 0x3f8; out dx, al; hlt; jmp $-1
  ]);
  sector.set([0x55, 0xaa], 510);
  const module = await WebAssembly.compile(wasm);
  const pages: number[] = [];
  const bios = fs.readFileSync(BIOS);
  const emu = new V86({
    wasm_fn: async (imports: { env: Record<string, (...args: number[]) => void> }) => {
      const finalize = imports.env.codegen_finalize!;
      // (wasm table index, physical address of the page, state flags, code pointer, length)
      imports.env.codegen_finalize = (...args) => (pages.push(args[1]!), finalize(...args));
      return (await WebAssembly.instantiate(module, imports)).exports;
    },
    memory_size: 32 << 20,
    bios: { buffer: bios.buffer.slice(bios.byteOffset, bios.byteOffset + bios.byteLength) },
    hda: { buffer: sector.buffer },
    autostart: true,
    disable_speaker: true,
  } as ConstructorParameters<typeof V86>[0]);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the boot sector never reported')), 30_000);
      emu.add_listener('serial0-output-byte', (byte: number) => byte === 0x44 && (clearTimeout(timer), resolve()));
    });
    return pages;
  } finally {
    await emu.destroy();
  }
}

test('the patched v86 compiles a page of guest code run to 80,000 instructions; v86 as installed does not', { skip: fs.existsSync(BIOS) ? false : `${BIOS} missing` }, async () => {
  // Two instructions an iteration: 80,000 lies between the two thresholds.
  const iterations = 40_000;
  assert.ok(JIT_THRESHOLD < 2 * iterations && 2 * iterations < V86_JIT_THRESHOLD);
  const SECTOR_PAGE = 0x7000;
  const stock = fs.readFileSync(v86Wasm);
  assert.ok(!(await compiledPages(stock, iterations)).includes(SECTOR_PAGE), 'v86 as installed compiled the boot sector: its threshold is lower than this test assumes');
  assert.ok((await compiledPages(setJitThreshold(Buffer.from(stock)), iterations)).includes(SECTOR_PAGE), 'the patched v86 did not compile the boot sector');
});
