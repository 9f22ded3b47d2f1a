// The v86 state payload (state-payload.ts) without a runner: a round trip through a file's bytes into
// memory that is not clean, hostile payloads refused by name, and the installed v86 held to what
// clearFreshMemory assumes of a fresh machine.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { Emulator } from './emulator.js';
import { clearFreshMemory, FIRMWARE_AREA_END, nonZeroPages, PAGE, type GuestMemory } from './guest-pages.js';
import { loadBootImages } from './config.js';
import { applyPayload, encodePayload } from './state-payload.js';
import { baseConfig } from '../testing/runner-harness.js';

const RAM = 2 << 20;
const VRAM = 64 << 10;

function memory(): GuestMemory {
  return { ram: new Uint8Array(RAM), vram: new Uint8Array(VRAM) };
}

/** A guest's memory: runs of pages, one ending at the last RAM page and one at the first VRAM page, and zero pages between. */
function guestMemory(): GuestMemory {
  const m = memory();
  const fill = (area: Uint8Array, firstPage: number, pages: number) => crypto.randomFillSync(area.subarray(firstPage * PAGE, (firstPage + pages) * PAGE));
  fill(m.ram, 0, 3);
  fill(m.ram, 10, 1);
  fill(m.ram, 300, 12);
  fill(m.ram, RAM / PAGE - 2, 2);
  fill(m.vram, 0, 1);
  fill(m.vram, 5, 2);
  m.ram[7 * PAGE + 100] = 1; // one byte makes a page
  return m;
}

/** The payload's bytes as the state file holds them. */
function bytesOf(deviceState: Uint8Array, m: GuestMemory): Buffer {
  const encoded = encodePayload(deviceState, m, nonZeroPages(m));
  const pieces = [...encoded.batches].flat();
  const bytes = Buffer.concat(pieces);
  assert.equal(bytes.length, encoded.bytes);
  return bytes;
}

describe('v86 state payload', () => {
  // v86's own state starts with its magic word; the rest is opaque here.
  const device = crypto.randomBytes(3000);
  device.writeUInt32LE(0x86768676, 0);

  test('round trip: the pages land where they were, every other page ends zero, the device state comes back', () => {
    const source = guestMemory();
    const bytes = bytesOf(device, source);
    assert.equal(nonZeroPages(source).length, 3 + 1 + 12 + 2 + 1 + 2 + 1);
    assert.equal(bytes.length, 28 + device.length + Math.ceil((RAM + VRAM) / PAGE / 8) + 22 * PAGE, 'zero pages cost nothing');
    const target = memory();
    // What a fresh machine has: firmware below FIRMWARE_AREA_END, including where the guest had
    // zeros, and a few pages of VRAM.
    crypto.randomFillSync(target.ram.subarray(0, Math.min(FIRMWARE_AREA_END, RAM)));
    crypto.randomFillSync(target.vram.subarray(3 * PAGE, 4 * PAGE));
    const state = applyPayload(bytes, target);
    assert.ok(Buffer.from(state).equals(device));
    assert.ok(Buffer.from(target.ram).equals(Buffer.from(source.ram)), 'RAM');
    assert.ok(Buffer.from(target.vram).equals(Buffer.from(source.vram)), 'VRAM');
  });

  test('a payload whose lengths or counts do not fit is refused by name, before any page is written', () => {
    const good = bytesOf(device, guestMemory());
    const damaged = (edit: (b: Buffer) => Buffer | void) => {
      const b = Buffer.from(good);
      return edit(b) ?? b;
    };
    const cases: [string, Buffer, RegExp][] = [
      ['magic', damaged((b) => void b.writeUInt32LE(0x86768676, 0)), /is not in Domus's v86 page layout$/],
      ['layout version', damaged((b) => void b.writeUInt32LE(7, 4)), /has page layout 7; this Domus reads 1$/],
      ['page size', damaged((b) => void b.writeUInt32LE(8192, 8)), /has pages of 8192 bytes$/],
      ['RAM size', damaged((b) => void b.writeUInt32LE(RAM * 2, 12)), new RegExp(`has ${RAM * 2} bytes of RAM, this machine ${RAM}$`)],
      ['VRAM size', damaged((b) => void b.writeUInt32LE(0, 16)), new RegExp(`has 0 bytes of VRAM, this machine ${VRAM}$`)],
      ['huge device state', damaged((b) => void b.writeUInt32LE(0xffffffff, 20)), /has a device state of 4294967295 bytes$/],
      ['page count', damaged((b) => void b.writeUInt32LE(21, 24)), /is \d+ bytes where its counts make \d+$/],
      ['bitmap', damaged((b) => void (b[28 + device.length + 1] ^= 0x80)), /lists 23 pages in its bitmap but holds 22$/],
      ['device state not v86\'s (zstd)', damaged((b) => void b.writeUInt32LE(0xfd2fb528, 28)), /has no v86 device state$/],
      ['truncated', good.subarray(0, good.length - 1), /is \d+ bytes where its counts make \d+$/],
      ['head only', good.subarray(0, 20), /is truncated$/],
    ];
    for (const [what, bytes, message] of cases) {
      const target = memory();
      target.ram[50 * PAGE] = 0xaa;
      assert.throws(() => applyPayload(bytes, target), { name: 'PayloadError', message }, what);
      assert.equal(target.ram[50 * PAGE], 0xaa, `${what}: memory untouched`);
    }
  });

  test('a bitmap that lists pages beyond the end of memory is refused', () => {
    // 2 MiB + 64 KiB is 528 pages, a whole number of bitmap bytes: a machine whose page count is not.
    const m = { ram: new Uint8Array(RAM), vram: new Uint8Array(3 * PAGE) };
    m.ram[0] = 1;
    const bytes = Buffer.from(bytesOf(device, m));
    const last = 28 + device.length + Math.ceil((RAM / PAGE + 3) / 8) - 1;
    bytes[last] |= 0x80;
    bytes[28 + device.length] &= ~1; // the count still matches
    assert.throws(() => applyPayload(bytes, { ram: new Uint8Array(RAM), vram: new Uint8Array(3 * PAGE) }), { name: 'PayloadError', message: /lists pages beyond the end of its memory$/ });
  });

  const bios = baseConfig().bios;
  test('a fresh empty v86 machine as the runner builds it holds nothing in RAM above the firmware area', { skip: fs.existsSync(bios) ? false : `${bios} missing` }, async () => {
    const config = baseConfig({ nic: undefined });
    const emulator = new Emulator(config, loadBootImages(config), 'incoming');
    try {
      await emulator.loaded;
      const m = await emulator.memory();
      const ramPages = m.ram.length / PAGE;
      const pages = nonZeroPages(m);
      assert.ok(pages.length > 0, 'v86 loaded its firmware into RAM');
      assert.deepEqual(pages.filter((p) => p >= FIRMWARE_AREA_END / PAGE && p < ramPages), [], 'clearFreshMemory would leave these RAM pages as v86 wrote them');
      clearFreshMemory(m);
      assert.deepEqual(nonZeroPages(m), []);
    } finally {
      await emulator.destroy();
    }
  });

  test("a device state from a machine with other RAM is refused once v86 read it (it only warns)", { skip: fs.existsSync(bios) ? false : `${bios} missing` }, async () => {
    const small = baseConfig({ memoryBytes: 64 << 20 });
    const big = baseConfig();
    const source = new Emulator(small, loadBootImages(small), 'incoming');
    const target = new Emulator(big, loadBootImages(big), 'incoming');
    try {
      await Promise.all([source.loaded, target.loaded]);
      await assert.rejects(target.adoptState(await source.deviceState()), {
        name: 'PayloadError',
        message: `the saved guest's device state has ${64 << 20} bytes of RAM and ${8 << 20} of VRAM, this machine ${128 << 20} and ${8 << 20}`,
      });
    } finally {
      await Promise.all([source.destroy(), target.destroy()]);
    }
  });
});
