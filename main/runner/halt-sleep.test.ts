// The idle main-loop change (halt-sleep.ts) against the installed v86: its Node yield still spins
// with setImmediate below 1 ms (what the change replaces), and a real machine waiting in HLT with the
// change wakes its main loop only about as often as its timers fire.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { V86 } from 'v86';
import { sleepDelay, sleepWhenHalted, type V86MainLoop } from './halt-sleep.js';

const v86Main = createRequire(import.meta.url).resolve('v86');
const BIOS = '/usr/share/seabios/bios.bin';

test("v86's Node main loop still yields with setImmediate below 1 ms (the case sleepWhenHalted replaces)", () => {
  const source = fs.readFileSync(v86Main, 'utf8');
  assert.match(source, /prototype\.yield=function\((\w+),(\w+)\)\{1>\1\?global\.setImmediate\(\w+=>this\.yield_callback\(\w+\),\2\):setTimeout\(/);
  assert.match(source, /prototype\.yield_callback=function\((\w+)\)\{\1===this\.tick_counter&&this\.do_tick\(\)\}/);
});

test('a sleeping main loop never wakes before the time its CPU asked for, and asks for at most 2 ms more', async () => {
  // An early wake finds the guest's timer not yet due and costs a second wakeup for the same tick.
  let early = 0;
  for (let i = 0; i < 60; i++) {
    const t = 0.05 + (i % 20) * 0.25 + Math.random() * 0.2;
    const elapsed = await new Promise<number>((resolve) => {
      let from = 0;
      const loop: V86MainLoop = { yield: () => undefined, yield_callback: () => resolve(performance.now() - from) };
      sleepWhenHalted(loop);
      from = performance.now();
      loop.yield(t, 1);
    });
    if (elapsed < t) early++;
    // How late it then runs is the machine's business; what it asks for is bounded.
    assert.ok(sleepDelay(t) - t > 1 && sleepDelay(t) - t <= 2, `sleepDelay(${t}) = ${sleepDelay(t)}`);
  }
  assert.equal(early, 0, `${early} of 60 sleeps woke before their time`);
  assert.equal(sleepDelay(3), 4);
  assert.equal(sleepDelay(3.01), 5);
});

test('a halted machine with sleepWhenHalted wakes its main loop about as often as its timers fire', { skip: fs.existsSync(BIOS) ? false : `${BIOS} missing` }, async () => {
  const bios = fs.readFileSync(BIOS);
  // SeaBIOS with nothing to boot: it ends waiting in HLT for the PIT (18.2 Hz) and the keyboard.
  const emu = new V86({
    wasm_path: path.join(path.dirname(v86Main), 'v86.wasm'),
    memory_size: 32 << 20,
    bios: { buffer: bios.buffer.slice(bios.byteOffset, bios.byteOffset + bios.byteLength) },
    autostart: true,
    disable_speaker: true,
  });
  try {
    const loop = await new Promise<V86MainLoop & { cpu: { in_hlt: Uint8Array } }>((resolve) =>
      emu.add_listener('emulator-ready', () => resolve((emu as unknown as { v86: V86MainLoop & { cpu: { in_hlt: Uint8Array } } }).v86)),
    );
    sleepWhenHalted(loop);
    let wakeups = 0;
    const callback = loop.yield_callback.bind(loop);
    loop.yield_callback = (tick) => {
      wakeups++;
      callback(tick);
    };
    // Wait for the BIOS to give up and halt for good (the CPU halted at two samples 1 s apart).
    const deadline = Date.now() + 60_000;
    let halted = 0;
    while (halted < 2) {
      assert.ok(Date.now() < deadline, 'SeaBIOS never settled in HLT');
      await new Promise((r) => setTimeout(r, 1000));
      halted = loop.cpu.in_hlt[0] ? halted + 1 : 0;
    }
    const start = Date.now();
    wakeups = 0;
    await new Promise((r) => setTimeout(r, 3000));
    const perSecond = (wakeups * 1000) / (Date.now() - start);
    // The PIT at 18.2 Hz needs one wakeup per tick; v86's own yield polls thousands of times a second,
    // and a sleep that ends early would add a second wakeup per tick.
    assert.ok(perSecond < 26, `${perSecond.toFixed(0)} main-loop wakeups/s while halted`);
  } finally {
    await emu.destroy();
  }
});
