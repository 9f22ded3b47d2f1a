import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePacket, PacketDecoder } from './packet.js';
import { REMOTE_PROC_DOMAIN_GET_INFO, REMOTE_PROGRAM, remote_domain_get_info_ret, remote_error, remote_typed_param, remote_connect_list_all_domains_ret, remote_nonnull_string } from './protocol/remote.js';
import { VIR_NET_CALL, VIR_NET_MESSAGE_MAX, VIR_NET_OK } from './protocol/virnet.js';
import * as x from './xdr.js';

const u32 = (...v: number[]): Buffer => Buffer.concat(v.map((n) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])));

test('round trips of libvirt types, byte for byte as rpcgen lays them out', () => {
  const info = { state: 1, maxMem: 131072n, memory: 65536n, nrVirtCpu: 2, cpuTime: 123456789012n };
  const bytes = x.encode(remote_domain_get_info_ret, info);
  // unsigned char and unsigned short take a full word each, as xdr_u_char/xdr_u_short write them
  assert.equal(bytes.length, 4 + 8 + 8 + 4 + 8);
  assert.deepEqual(bytes.subarray(0, 4), u32(1));
  assert.deepEqual(x.decode(remote_domain_get_info_ret, bytes), info);

  const params = [
    { field: 'i', value: { type: 1, i: -5 } },
    { field: 'ul', value: { type: 4, ul: 2n ** 64n - 1n } },
    { field: 'd', value: { type: 5, d: 0.5 } },
    { field: 's', value: { type: 7, s: 'héllo' } },
  ] as const;
  for (const p of params) assert.deepEqual(x.decode(remote_typed_param, x.encode(remote_typed_param, p)), p);

  const err = { code: 42, domain: 10, message: 'Domain not found', level: 2, dom: null, str1: 'a', str2: null, str3: null, int1: -1, int2: 0, net: null };
  assert.deepEqual(x.decode(remote_error, x.encode(remote_error, err)), err);

  const uuid = Buffer.alloc(16, 0xab);
  const list = { domains: [{ name: 'vm1', uuid, id: -1 }], ret: 1 };
  const enc = x.encode(remote_connect_list_all_domains_ret, list);
  // count, name length, "vm1" padded to 4, 16 uuid bytes, id, ret
  assert.deepEqual(enc, Buffer.concat([u32(1, 3), Buffer.from('vm1\0'), uuid, u32(0xffffffff, 1)]));
  assert.deepEqual(x.decode(remote_connect_list_all_domains_ret, enc), list);
});

test('a value that grows the writer past its first buffer at a number, not at a string', () => {
  // 63 one-word fields fill 252 bytes; the 64-bit one after them is the write that grows the buffer.
  const w = new x.XdrWriter();
  for (let i = 0; i < 63; i++) w.uint(i);
  w.uhyper(2n ** 40n + 7n);
  w.int(-3);
  const r = new x.XdrReader(w.result());
  for (let i = 0; i < 63; i++) assert.equal(r.uint(), i);
  assert.equal(r.uhyper(), 2n ** 40n + 7n);
  assert.equal(r.int(), -3);
  assert.equal(r.remaining, 0);
});

test('decoding untrusted bytes: truncation, lengths over the maximum or over what is left, junk', () => {
  const info = x.encode(remote_domain_get_info_ret, { state: 1, maxMem: 1n, memory: 1n, nrVirtCpu: 1, cpuTime: 1n });
  assert.throws(() => x.decode(remote_domain_get_info_ret, info.subarray(0, 10)), /remote_domain_get_info_ret\.maxMem: truncated: unsigned hyper needs 8 bytes at offset 4, 6 left/);
  assert.throws(() => x.decode(remote_domain_get_info_ret, Buffer.concat([info, u32(0)])), /4 bytes left over/);
  assert.throws(() => x.decode(remote_domain_get_info_ret, Buffer.concat([u32(256), info.subarray(4)])), /state: 256 is out of range for unsigned char/);
  // A string longer than REMOTE_STRING_MAX is refused before anything is read or allocated.
  assert.throws(() => x.decode(remote_nonnull_string, u32(4194305)), /string length 4194305 exceeds the maximum 4194304/);
  assert.throws(() => x.decode(remote_nonnull_string, u32(100, 0x41414141)), /truncated: string of 100 needs 100 bytes, 4 left/);
  assert.throws(() => x.decode(remote_nonnull_string, u32(2, 0x41004100)), /NUL byte/);
  // An array count within REMOTE_DOMAIN_LIST_MAX but far beyond the bytes present.
  assert.throws(() => x.decode(remote_connect_list_all_domains_ret, u32(16384)), /domains: truncated: array of 16384 needs 65536 bytes, 0 left/);
  assert.throws(() => x.decode(remote_connect_list_all_domains_ret, u32(16385)), /array length 16385 exceeds the maximum 16384/);
  assert.throws(() => x.decode(remote_error, u32(42, 10, 2)), /remote_error\.message: optional-data flag must be 0 or 1, got 2/);
  assert.throws(() => x.decode(remote_typed_param, Buffer.concat([u32(1, 0x61000000, 9)])), /remote_typed_param\.value: remote_typed_param_value: 9 is not a case of the union/);
  assert.throws(() => x.decode(remote_connect_list_all_domains_ret, Buffer.concat([u32(1, 1, 0x61000000), Buffer.alloc(8)])), /domains: \[0\]: remote_nonnull_domain\.uuid: truncated/);
});

test('encoding refuses values that do not fit their type', () => {
  assert.throws(() => x.encode(remote_domain_get_info_ret, { state: 1, maxMem: -1n, memory: 1n, nrVirtCpu: 1, cpuTime: 1n }), /maxMem: -1 is not a valid unsigned hyper/);
  assert.throws(() => x.encode(remote_domain_get_info_ret, { state: 1.5, maxMem: 1n, memory: 1n, nrVirtCpu: 1, cpuTime: 1n }), /state: 1.5 is not a valid unsigned char/);
  assert.throws(() => x.encode(remote_connect_list_all_domains_ret, { domains: [{ name: 'a', uuid: Buffer.alloc(15), id: 1 }], ret: 1 }), /uuid: expected exactly 16 bytes/);
  assert.throws(() => x.encode(x.int, 2 ** 31), /2147483648 is not a valid int/);
  assert.throws(() => x.encode(x.array(x.int, 2), [1, 2, 3]), /array of 3 exceeds the maximum 2/);
});

test('packets: framing across chunks, several per chunk, lengths out of bounds refused up front', () => {
  const header = { prog: REMOTE_PROGRAM, vers: 1, proc: REMOTE_PROC_DOMAIN_GET_INFO, type: VIR_NET_CALL, serial: 7, status: VIR_NET_OK } as const;
  const a = encodePacket(header, Buffer.from('abcd'));
  assert.equal(a.readUInt32BE(0), 4 + 24 + 4);
  const b = encodePacket({ ...header, serial: 8 });
  const d = new PacketDecoder();
  const stream = Buffer.concat([a, b]);
  const got = [...stream].flatMap((byte) => d.push(Buffer.from([byte])));
  assert.deepEqual(got.map((p) => [p.header.serial, p.payload.toString()]), [[7, 'abcd'], [8, '']]);
  assert.deepEqual(new PacketDecoder().push(stream).map((p) => p.header.serial), [7, 8]);

  assert.throws(() => new PacketDecoder().push(u32(27)), /packet length 27 is outside 28\.\.33554436/);
  assert.throws(() => new PacketDecoder(1000).push(u32(2000)), /packet length 2000 is outside 28\.\.1004/);
  const badType = Buffer.from(a);
  badType.writeUInt32BE(9, 16);
  assert.throws(() => new PacketDecoder().push(badType), /virNetMessageHeader\.type: 9 is not a value of enum virNetMessageType/);
  assert.equal(encodePacket(header, Buffer.alloc(VIR_NET_MESSAGE_MAX - 24)).length, VIR_NET_MESSAGE_MAX + 4);
  assert.throws(() => encodePacket(header, Buffer.alloc(VIR_NET_MESSAGE_MAX - 23)), /exceeds libvirt's maximum/);
});
