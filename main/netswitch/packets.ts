// Ethernet, ARP, IPv4, ICMP and UDP as the switch's gateway reads and writes them. Every reader
// checks lengths against the bytes it was given and returns undefined for anything malformed: the
// frames come from guests, which may send anything.

export const ETH_HEADER = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
export const BROADCAST_MAC = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** "52:54:00:12:34:56" (lower case) from 6 bytes at `offset`. */
export function macText(buf: Uint8Array, offset = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push((buf[offset + i] ?? 0).toString(16).padStart(2, '0'));
  return parts.join(':');
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function isMacText(text: string): boolean {
  return MAC_RE.test(text);
}

export function macBytes(text: string): Buffer {
  if (!isMacText(text)) throw new Error(`'${text}' is not a MAC address (six hex pairs separated by colons)`);
  return Buffer.from(text.split(':').map((h) => Number.parseInt(h, 16)));
}

/** Group bit: broadcast and multicast destinations. */
export function isMulticast(buf: Uint8Array, offset = 0): boolean {
  return ((buf[offset] ?? 0) & 1) === 1;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A dotted quad as an unsigned 32-bit number. */
export function ipNumber(text: string): number {
  if (!IPV4_RE.test(text)) throw new Error(`'${text}' is not an IPv4 address`);
  return text.split('.').reduce((n, part) => n * 256 + Number(part), 0) >>> 0;
}

export function ipText(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The Internet checksum (RFC 1071) of `buf[start, end)`, plus `initial` (a pseudo-header sum). */
export function checksum(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface EthernetFrame {
  dst: Buffer;
  src: Buffer;
  type: number;
  payload: Buffer;
}

export function parseEthernet(frame: Buffer): EthernetFrame | undefined {
  if (frame.length < ETH_HEADER) return undefined;
  return { dst: frame.subarray(0, 6), src: frame.subarray(6, 12), type: frame.readUInt16BE(12), payload: frame.subarray(ETH_HEADER) };
}

export function buildEthernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(ETH_HEADER + payload.length);
  out.set(dst, 0);
  out.set(src, 6);
  out.writeUInt16BE(type, 12);
  out.set(payload, ETH_HEADER);
  return out;
}

export interface ArpPacket {
  op: number;
  senderMac: Buffer;
  senderIp: number;
  targetMac: Buffer;
  targetIp: number;
}

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

/** Ethernet/IPv4 ARP only. */
export function parseArp(p: Buffer): ArpPacket | undefined {
  if (p.length < 28) return undefined;
  if (p.readUInt16BE(0) !== 1 || p.readUInt16BE(2) !== ETHERTYPE_IPV4 || p[4] !== 6 || p[5] !== 4) return undefined;
  return { op: p.readUInt16BE(6), senderMac: p.subarray(8, 14), senderIp: p.readUInt32BE(14), targetMac: p.subarray(18, 24), targetIp: p.readUInt32BE(24) };
}

export function buildArp(a: ArpPacket): Buffer {
  const p = Buffer.alloc(28);
  p.writeUInt16BE(1, 0);
  p.writeUInt16BE(ETHERTYPE_IPV4, 2);
  p[4] = 6;
  p[5] = 4;
  p.writeUInt16BE(a.op, 6);
  p.set(a.senderMac, 8);
  p.writeUInt32BE(a.senderIp, 14);
  p.set(a.targetMac, 18);
  p.writeUInt32BE(a.targetIp, 24);
  return p;
}

export interface Ipv4Packet {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** The datagram's payload, cut to its total length (link padding removed). */
  payload: Buffer;
}

/** An unfragmented IPv4 datagram with a valid header checksum; fragments are not reassembled. */
export function parseIpv4(p: Buffer): Ipv4Packet | undefined {
  if (p.length < 20 || p[0]! >> 4 !== 4) return undefined;
  const ihl = (p[0]! & 0x0f) * 4;
  const total = p.readUInt16BE(2);
  if (ihl < 20 || total < ihl || total > p.length) return undefined;
  if (checksum(p, 0, ihl) !== 0) return undefined;
  const fragment = p.readUInt16BE(6);
  if (fragment & 0x2000 || fragment & 0x1fff) return undefined;
  return { src: p.readUInt32BE(12), dst: p.readUInt32BE(16), protocol: p[9]!, ttl: p[8]!, payload: p.subarray(ihl, total) };
}

export function buildIpv4(src: number, dst: number, protocol: number, payload: Uint8Array, ttl = 64): Buffer {
  const p = Buffer.alloc(20 + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(0x4000, 6); // don't fragment
  p[8] = ttl;
  p[9] = protocol;
  p.writeUInt32BE(src, 12);
  p.writeUInt32BE(dst, 16);
  p.writeUInt16BE(checksum(p, 0, 20), 10);
  p.set(payload, 20);
  return p;
}

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export function parseUdp(p: Buffer): UdpDatagram | undefined {
  if (p.length < 8) return undefined;
  const len = p.readUInt16BE(4);
  if (len < 8 || len > p.length) return undefined;
  return { srcPort: p.readUInt16BE(0), dstPort: p.readUInt16BE(2), payload: p.subarray(8, len) };
}

export function buildUdp(src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const u = Buffer.alloc(8 + payload.length);
  u.writeUInt16BE(srcPort, 0);
  u.writeUInt16BE(dstPort, 2);
  u.writeUInt16BE(u.length, 4);
  u.set(payload, 8);
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + IP_PROTO_UDP + u.length;
  // A computed 0 is sent as 0xffff: 0 means "no checksum" in UDP over IPv4.
  u.writeUInt16BE(checksum(u, 0, u.length, pseudo) || 0xffff, 6);
  return u;
}

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

/** The echo reply to an ICMP echo request (same identifier, sequence and data); undefined for anything else. */
export function icmpEchoReply(p: Buffer): Buffer | undefined {
  if (p.length < 8 || p[0] !== ICMP_ECHO_REQUEST || p[1] !== 0 || checksum(p) !== 0) return undefined;
  const reply = Buffer.from(p);
  reply[0] = ICMP_ECHO_REPLY;
  reply.writeUInt16BE(0, 2);
  reply.writeUInt16BE(checksum(reply), 2);
  return reply;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
const TCP_OPTION_END = 0;
const TCP_OPTION_NOP = 1;
const TCP_OPTION_MSS = 2;
const TCP_OPTION_WSCALE = 3;

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** The MSS option, when the segment carries one (SYNs). */
  mss?: number;
  /** The window scale option (RFC 7323), when the segment carries one (SYNs). */
  wscale?: number;
  payload: Buffer;
}

/** A TCP segment whose checksum (over the IPv4 pseudo-header) holds; options other than MSS and window scale are skipped. */
export function parseTcp(p: Buffer, src: number, dst: number): TcpSegment | undefined {
  if (p.length < 20) return undefined;
  const offset = (p[12]! >> 4) * 4;
  if (offset < 20 || offset > p.length) return undefined;
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + IP_PROTO_TCP + p.length;
  if (checksum(p, 0, p.length, pseudo) !== 0) return undefined;
  let mss: number | undefined;
  let wscale: number | undefined;
  for (let at = 20; at < offset; ) {
    const kind = p[at]!;
    if (kind === TCP_OPTION_END) break;
    if (kind === TCP_OPTION_NOP) {
      at++;
      continue;
    }
    const len = p[at + 1];
    if (len === undefined || len < 2 || at + len > offset) return undefined;
    if (kind === TCP_OPTION_MSS && len === 4) mss = p.readUInt16BE(at + 2);
    if (kind === TCP_OPTION_WSCALE && len === 3) wscale = p[at + 2]!;
    at += len;
  }
  return {
    srcPort: p.readUInt16BE(0),
    dstPort: p.readUInt16BE(2),
    seq: p.readUInt32BE(4),
    ack: p.readUInt32BE(8),
    flags: p[13]! & 0x3f,
    window: p.readUInt16BE(14),
    ...(mss !== undefined && { mss }),
    ...(wscale !== undefined && { wscale }),
    payload: p.subarray(offset),
  };
}

export function buildTcp(src: number, dst: number, s: TcpSegment): Buffer {
  const header = 20 + (s.mss !== undefined ? 4 : 0) + (s.wscale !== undefined ? 4 : 0);
  const t = Buffer.alloc(header + s.payload.length);
  t.writeUInt16BE(s.srcPort, 0);
  t.writeUInt16BE(s.dstPort, 2);
  t.writeUInt32BE(s.seq >>> 0, 4);
  t.writeUInt32BE(s.ack >>> 0, 8);
  t[12] = (header / 4) << 4;
  t[13] = s.flags;
  t.writeUInt16BE(s.window, 14);
  let at = 20;
  if (s.mss !== undefined) {
    t[at] = TCP_OPTION_MSS;
    t[at + 1] = 4;
    t.writeUInt16BE(s.mss, at + 2);
    at += 4;
  }
  if (s.wscale !== undefined) {
    t[at] = TCP_OPTION_NOP;
    t[at + 1] = TCP_OPTION_WSCALE;
    t[at + 2] = 3;
    t[at + 3] = s.wscale;
  }
  t.set(s.payload, header);
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + IP_PROTO_TCP + t.length;
  t.writeUInt16BE(checksum(t, 0, t.length, pseudo), 16);
  return t;
}
