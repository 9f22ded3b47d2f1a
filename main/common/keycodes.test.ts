// send-key's codesets and names against the set-1 scancodes a PC keyboard sends for the same keys.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeycodeError, keyFromCode, sendKeySequence } from './keycodes.js';
import { PAUSE } from './keymap.js';

test('Linux names and numbers map to set-1 keys (0xE0xx for extended keys)', () => {
  const cases: [string | number, number][] = [
    ['KEY_LEFTCTRL', 0x1d], ['KEY_LEFTALT', 0x38], ['KEY_DELETE', 0xe053], ['KEY_F1', 0x3b], ['KEY_F12', 0x58],
    ['KEY_SYSRQ', 0x54], ['KEY_RIGHTCTRL', 0xe01d], ['KEY_UP', 0xe048], ['KEY_KPENTER', 0xe01c], ['KEY_PAUSE', PAUSE],
    ['KEY_LEFTMETA', 0xe05b], ['KEY_A', 0x1e], ['KEY_102ND', 0x56], [29, 0x1d], ['111', 0xe053], ['0x1c', 0x1c],
  ];
  for (const [code, key] of cases) assert.equal(keyFromCode('linux', code), key, String(code));
});

test('xt, atset1, qnum and usb codesets', () => {
  assert.equal(keyFromCode('xt', 0x1d), 0x1d);
  assert.throws(() => keyFromCode('xt', 0xe053), /has no PC key in the xt codeset/);
  assert.equal(keyFromCode('atset1', 0xe053), 0xe053);
  assert.equal(keyFromCode('qnum', 0xd3), 0xe053);
  assert.equal(keyFromCode('qnum', 0xc6), PAUSE);
  assert.equal(keyFromCode('usb', 0x04), 0x1e); // a
  assert.equal(keyFromCode('usb', 0x4c), 0xe053); // Delete
  assert.equal(keyFromCode('usb', 0xe4), 0xe01d); // right Ctrl
});

test('unknown names and numbers are refused with the key in the message', () => {
  assert.throws(() => keyFromCode('linux', 'KEY_NOSUCH'), (e: Error) => e instanceof KeycodeError && /'KEY_NOSUCH'/.test(e.message));
  assert.throws(() => keyFromCode('linux', 'LEFTCTRL'), /'LEFTCTRL'/);
  assert.throws(() => keyFromCode('usb', 'KEY_A'), /only known in the linux codeset/);
  assert.throws(() => keyFromCode('linux', 600), /600 has no PC key in the linux codeset/);
});

test('keys are pressed in order and released in reverse order', () => {
  const keys = ['KEY_LEFTCTRL', 'KEY_LEFTALT', 'KEY_DELETE'].map((k) => keyFromCode('linux', k));
  assert.deepEqual(sendKeySequence(keys), { press: [0x1d, 0x38, 0xe0, 0x53], release: [0xe0, 0xd3, 0xb8, 0x9d] });
});
