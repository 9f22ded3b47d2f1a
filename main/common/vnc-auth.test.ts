import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desEncrypt, vncAuthCheck, vncAuthResponse } from './vnc-auth.js';

test('DES-ECB matches the FIPS 81 / classic test vector', () => {
  const out = desEncrypt(Buffer.from('133457799BBCDFF1', 'hex'), Buffer.from('0123456789ABCDEF', 'hex'));
  assert.equal(out.toString('hex'), '85e813540f0ab405');
});

test('VNC response uses the bit-reversed, zero-padded password as key (checked with openssl enc -des-ecb)', () => {
  const challenge = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  assert.equal(vncAuthResponse('secret', challenge).toString('hex'), 'ee22539f33a5983ec12f9c2edbc995dd');
  // Only the first 8 characters count.
  assert.ok(vncAuthResponse('secret12', challenge).equals(vncAuthResponse('secret12-and-more', challenge)));
  assert.ok(vncAuthCheck('secret', challenge, vncAuthResponse('secret', challenge)));
  assert.ok(!vncAuthCheck('secret', challenge, vncAuthResponse('Secret', challenge)));
  assert.ok(!vncAuthCheck('secret', challenge, Buffer.alloc(3)));
});

test('the key is the first 8 bytes of the UTF-8 password, as QEMU takes it', () => {
  const challenge = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  // 'pässwö' is 8 bytes of UTF-8: p, ä (2), s, s, w, ö (2).
  const key = Buffer.from([0x70, 0xc3, 0xa4, 0x73, 0x73, 0x77, 0xc3, 0xb6]).map((b) => parseInt(b.toString(2).padStart(8, '0').split('').reverse().join(''), 2));
  assert.ok(vncAuthResponse('pässwö', challenge).equals(desEncrypt(Buffer.from(key), challenge)));
  assert.ok(vncAuthResponse('pässwö', challenge).equals(vncAuthResponse('pässwörter', challenge)));
  assert.ok(!vncAuthResponse('pässwö', challenge).equals(vncAuthResponse('pässw', challenge)));
});
