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
