// RFB security type 2 ("VNC Authentication"): the server sends a 16-byte challenge, the client
// returns it DES-encrypted with the password as key, each key byte bit-reversed (RFB 3.8 §7.2.2).
import crypto from 'node:crypto';

export const VNC_CHALLENGE_BYTES = 16;

function reverseBits(b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 0x80 >> i;
  return r;
}

/** Single DES in ECB mode. OpenSSL 3 hides plain DES in its legacy provider; 3DES with K1=K2=K3 is DES. */
export function desEncrypt(key8: Buffer, data: Buffer): Buffer {
  const cipher = crypto.createCipheriv('des-ede3-ecb', Buffer.concat([key8, key8, key8]), null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** Only this many bytes of a password count: DES takes an 8-byte key. */
export const VNC_PASSWORD_BYTES = 8;

/**
 * The response a client computes for `challenge`. The key is the first 8 bytes of the password's
 * UTF-8, as QEMU takes them (from the UTF-8 the password arrives in), so a password that is not
 * ASCII works with the same clients on both engines.
 */
export function vncAuthResponse(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(VNC_PASSWORD_BYTES);
  Buffer.from(password, 'utf8').copy(key, 0, 0, VNC_PASSWORD_BYTES);
  for (let i = 0; i < 8; i++) key[i] = reverseBits(key[i]);
  return desEncrypt(key, challenge);
}

export function vncAuthCheck(password: string, challenge: Buffer, response: Buffer): boolean {
  const expected = vncAuthResponse(password, challenge);
  return response.length === expected.length && crypto.timingSafeEqual(response, expected);
}
