// v86 compiles a page of guest code to wasm once the interpreter has run code in it to a "hotness" of
// JIT_THRESHOLD, 200,000 (src/rust/jit.rs). An idle guest's timer-tick path is run 250 times a second
// but in many small pieces, and stays interpreted for tens of seconds; at 50,000 it is compiled
// sooner: idle CPU of the sample guest 10–60 s after boot 4.6 -> 3.8 % of a core, 60–120 s 3.8 ->
// 3.6 % (two runs each, 2026-12-05), for ~30 MiB more RSS (more compiled code; docs/benchmarks.md). The constant is
// compiled into v86.wasm, so the module's bytes are patched as the runner loads them: the one
// `i32.const 200000; i32.lt_u; br_if` (`if hotness < JIT_THRESHOLD`), same length, nothing else
// moves. The installed file is untouched; jit-threshold.test fails if a v86 upgrade no longer has it.

/** v86's own threshold. */
export const V86_JIT_THRESHOLD = 200_000;
/** The runner's. */
export const JIT_THRESHOLD = 50_000;

const I32_CONST = 0x41;
const I32_LT_U = 0x49;
const BR_IF = 0x0d;

/** Signed LEB128, as wasm encodes an i32.const. */
function leb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && !(byte & 0x40)) || (value === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/** `wasm` (v86.wasm's bytes) with the JIT threshold set to `threshold`, in place; throws if it is not found exactly once. */
export function setJitThreshold<T extends Uint8Array>(wasm: T, threshold = JIT_THRESHOLD): T {
  const from = leb(V86_JIT_THRESHOLD);
  const to = leb(threshold);
  // Same length: a longer constant would shift the code section and its sizes.
  if (to.length !== from.length) throw new Error(`JIT threshold ${threshold} does not encode in ${from.length} bytes`);
  const site = Buffer.from([I32_CONST, ...from, I32_LT_U, BR_IF]);
  const bytes = Buffer.from(wasm.buffer, wasm.byteOffset, wasm.byteLength);
  const at = bytes.indexOf(site);
  if (at < 0) throw new Error(`v86.wasm has no 'i32.const ${V86_JIT_THRESHOLD}; i32.lt_u; br_if': its JIT threshold moved`);
  if (bytes.indexOf(site, at + 1) >= 0) throw new Error(`v86.wasm has 'i32.const ${V86_JIT_THRESHOLD}; i32.lt_u; br_if' more than once`);
  bytes.set(to, at + 1);
  return wasm;
}
