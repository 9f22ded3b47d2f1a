import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vidModeFromCmdline } from './config.js';
import { bootOrderValue, runnerConfigSchema } from './protocol.js';

test('bootOrderValue: one nibble per device, first device lowest (SeaBIOS CMOS encoding)', () => {
  assert.equal(bootOrderValue(['cdrom', 'hd', 'fd']), 0x123);
  assert.equal(bootOrderValue(['hd', 'cdrom', 'fd']), 0x132);
  assert.equal(bootOrderValue(['fd', 'hd', 'cdrom']), 0x321);
  assert.equal(bootOrderValue(['hd']), 0x2);
  assert.equal(bootOrderValue(['hd', 'hd', 'cdrom']), 0x32);
  assert.equal(bootOrderValue([]), 0);
});

test('vga= on the kernel command line, as a bootloader reads it', () => {
  assert.equal(vidModeFromCmdline('console=ttyS0 vga=791 quiet'), 791);
  assert.equal(vidModeFromCmdline('vga=0x317'), 0x317);
  assert.equal(vidModeFromCmdline('vga=normal'), 0xffff);
  assert.equal(vidModeFromCmdline('vga=ext vga=788'), 788);
  assert.equal(vidModeFromCmdline('vga=bogus'), undefined);
  assert.equal(vidModeFromCmdline('console=tty0'), undefined);
});

test('runner.json schema: defaults and strictness', () => {
  const base = { name: 'a', uuid: 'u', memoryBytes: 128 << 20, bios: '/b', balloon: false };
  const ok = runnerConfigSchema.parse(base);
  assert.equal(ok.vgaMemoryBytes, 8 << 20);
  assert.ok(!runnerConfigSchema.safeParse({ ...base, vgaMemoryBytes: 3 << 20 }).success, 'power of two');
  assert.ok(!runnerConfigSchema.safeParse({ ...base, kernal: '/k' }).success, 'unknown keys are errors');
  assert.ok(!runnerConfigSchema.safeParse({ ...base, memoryBytes: 4096 << 20 }).success);
});
