import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAUSE, keyFromKeysym, keyFromQemuKeycode, scancodeBytes, textToScancodes } from './keymap.js';

test('make and break bytes: plain, 0xE0-extended, Pause', () => {
  assert.deepEqual(scancodeBytes(0x1e, true), [0x1e]);
  assert.deepEqual(scancodeBytes(0x1e, false), [0x9e]);
  assert.deepEqual(scancodeBytes(0xe048, true), [0xe0, 0x48]);
  assert.deepEqual(scancodeBytes(0xe048, false), [0xe0, 0xc8]);
  assert.deepEqual(scancodeBytes(PAUSE, true), [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
  assert.deepEqual(scancodeBytes(PAUSE, false), []);
});

test('QEMU keycodes: XT codes with the 0xE0 prefix folded into bit 7 (also accepted unfolded)', () => {
  assert.equal(keyFromQemuKeycode(0x1e), 0x1e); // A
  assert.equal(keyFromQemuKeycode(0xc8), 0xe048); // ArrowUp, as noVNC sends 0xE048
  assert.equal(keyFromQemuKeycode(0x9c), 0xe01c); // NumpadEnter
  assert.equal(keyFromQemuKeycode(0xb8), 0xe038); // AltRight
  assert.equal(keyFromQemuKeycode(0xe05b), 0xe05b); // MetaLeft, unfolded
  assert.equal(keyFromQemuKeycode(0xc6), PAUSE);
  assert.equal(keyFromQemuKeycode(0), undefined);
  assert.equal(keyFromQemuKeycode(0x1234), undefined);
});

test('keysyms on a US layout', () => {
  assert.deepEqual(keyFromKeysym('a'.charCodeAt(0)), { key: 0x1e });
  assert.deepEqual(keyFromKeysym('A'.charCodeAt(0)), { key: 0x1e });
  assert.deepEqual(keyFromKeysym('1'.charCodeAt(0)), { key: 0x02, shift: false });
  assert.deepEqual(keyFromKeysym('!'.charCodeAt(0)), { key: 0x02, shift: true });
  assert.deepEqual(keyFromKeysym('"'.charCodeAt(0)), { key: 0x28, shift: true });
  assert.deepEqual(keyFromKeysym(0xff0d), { key: 0x1c }); // Return
  assert.deepEqual(keyFromKeysym(0xff52), { key: 0xe048 }); // Up
  assert.deepEqual(keyFromKeysym(0xffff), { key: 0xe053 }); // Delete
  assert.deepEqual(keyFromKeysym(0xffc9), { key: 0x58 }); // F12
  assert.deepEqual(keyFromKeysym(0xff8d), { key: 0xe01c }); // KP_Enter
  assert.deepEqual(keyFromKeysym(0xffb7), { key: 0x47 }); // KP_7
  assert.deepEqual(keyFromKeysym(0xffe4), { key: 0xe01d }); // Control_R
  assert.equal(keyFromKeysym(0xe9), undefined); // eacute: not on a US keyboard
});

test('text to scancodes adds Shift where needed and rejects what a US keyboard cannot type', () => {
  assert.deepEqual(textToScancodes('aB!\n'), [0x1e, 0x9e, 0x2a, 0x30, 0xb0, 0xaa, 0x2a, 0x02, 0x82, 0xaa, 0x1c, 0x9c]);
  assert.throws(() => textToScancodes('ok é'), /cannot type U\+00E9 "é" on a US keyboard/);
  assert.throws(() => textToScancodes('\x07'), /U\+0007/);
});
