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

/** The response a client computes for `challenge`; only the first 8 bytes of the password count. */
export function vncAuthResponse(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) key[i] = reverseBits(key[i]);
  return desEncrypt(key, challenge);
}

export function vncAuthCheck(password: string, challenge: Buffer, response: Buffer): boolean {
  const expected = vncAuthResponse(password, challenge);
  return response.length === expected.length && crypto.timingSafeEqual(response, expected);
}
