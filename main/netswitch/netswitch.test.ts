// The virtual switch's parts without guests: framing, learning and flooding, link state, the
// gateway's ARP/ICMP/DNS, the DHCP server's exchanges, and random/malformed frames thrown at all of it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { encodeFrame, FrameDecoder } from '../common/frame-stream.js';
import { DHCP, DHCP_CLIENT_PORT, DHCP_OPTION, DHCP_SERVER_PORT, ip4 } from './dhcp.js';
import { Gateway } from './gateway.js';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildEthernet,
  buildIpv4,
  buildUdp,
  checksum,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ICMP_ECHO_REQUEST,
  IP_PROTO_ICMP,
  IP_PROTO_UDP,
  ipNumber,
  ipText,
  macBytes,
  parseArp,
  parseEthernet,
  parseIpv4,
  parseUdp,
} from './packets.js';
import type { Lease, SwitchConfig } from './protocol.js';
import { MAC_AGEING_MS, MAC_TABLE_MAX, Switch, type Port } from './switch.js';

const CONFIG: SwitchConfig = {
  name: 'default',
  mac: '52:54:00:00:00:01',
  address: '192.168.122.1',
  prefix: 24,
  domain: 'domus.test',
  dhcp: { start: '192.168.122.2', end: '192.168.122.254', leaseTime: 3600, hosts: [{ mac: '52:54:00:aa:00:09', ip: '192.168.122.9', name: 'fixed' }] },
  dnsHosts: [{ ip: '192.168.122.200', names: ['printer'] }],
  forward: 'none',
  portForwards: [],
};
const GW = ipNumber(CONFIG.address);
const A = macBytes('52:54:00:aa:00:01');
const B = macBytes('52:54:00:aa:00:02');
const FIXED_MAC = macBytes('52:54:00:aa:00:09');

function dhcpRequest(opts: { xid: number; mac: Uint8Array; type: number; ciaddr?: number; options?: [number, Uint8Array][] }): Buffer {
  const list: [number, Uint8Array][] = [[DHCP_OPTION.MESSAGE_TYPE, Buffer.from([opts.type])], ...(opts.options ?? [])];
  const optBytes = list.flatMap(([code, value]) => [code, value.length, ...value]);
  const out = Buffer.alloc(240 + optBytes.length + 1);
  out[0] = 1;
  out[1] = 1;
  out[2] = 6;
  out.writeUInt32BE(opts.xid, 4);
  out.writeUInt32BE(opts.ciaddr ?? 0, 12);
  out.set(opts.mac, 28);
  out.writeUInt32BE(0x63825363, 236);
  out.set(optBytes, 240);
  out[out.length - 1] = 255;
  return out;
}

/** The DHCP frame a client sends (from 0.0.0.0 to broadcast, or from its address when it has one). */
function dhcpFrame(mac: Uint8Array, payload: Buffer, from = 0): Buffer {
  const udp = buildUdp(from, 0xffffffff, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, payload);
  return buildEthernet(BROADCAST_MAC, mac, ETHERTYPE_IPV4, buildIpv4(from, 0xffffffff, IP_PROTO_UDP, udp));
}

interface DhcpAnswer {
  type: number;
  yiaddr: string;
  dstMac: string;
  options: Map<number, Buffer>;
}

function readDhcpReply(frame: Buffer): DhcpAnswer {
  const eth = parseEthernet(frame)!;
  const ip = parseIpv4(eth.payload)!;
  const udp = parseUdp(ip.payload)!;
  assert.equal(udp.dstPort, DHCP_CLIENT_PORT);
  const p = udp.payload;
  const options = new Map<number, Buffer>();
  let at = 240;
  while (at + 1 < p.length && p[at] !== 255) {
    options.set(p[at]!, p.subarray(at + 2, at + 2 + p[at + 1]!));
    at += 2 + p[at + 1]!;
  }
  return { type: options.get(DHCP_OPTION.MESSAGE_TYPE)![0]!, yiaddr: ipText(p.readUInt32BE(16)), dstMac: [...eth.dst].map((b) => b.toString(16).padStart(2, '0')).join(':'), options };
}

/** DISCOVER → OFFER → REQUEST → ACK; returns the ACKed address. */
function lease(gw: Gateway, mac: Uint8Array, hostname?: string): string {
  const extra: [number, Uint8Array][] = hostname ? [[DHCP_OPTION.HOSTNAME, Buffer.from(hostname)]] : [];
  const [offerFrame] = gw.receive(dhcpFrame(mac, dhcpRequest({ xid: 1, mac, type: DHCP.DISCOVER, options: extra })));
  const offer = readDhcpReply(offerFrame!);
  assert.equal(offer.type, DHCP.OFFER);
  const [ackFrame] = gw.receive(
    dhcpFrame(mac, dhcpRequest({ xid: 2, mac, type: DHCP.REQUEST, options: [[DHCP_OPTION.REQUESTED_IP, ip4(ipNumber(offer.yiaddr))], [DHCP_OPTION.SERVER_ID, ip4(GW)], ...extra] })),
  );
  const ack = readDhcpReply(ackFrame!);
  assert.equal(ack.type, DHCP.ACK);
  assert.equal(ack.yiaddr, offer.yiaddr);
  return ack.yiaddr;
}

function recorder(): { frames: Buffer[]; send: (f: Buffer) => boolean } {
  const frames: Buffer[] = [];
  return { frames, send: (f) => (frames.push(f), true) };
}

function frame(dst: Uint8Array, src: Uint8Array, body = 'hello'): Buffer {
  return buildEthernet(dst, src, 0x88b5, Buffer.from(body.padEnd(46, '.')));
}

describe('frame stream', () => {
  test('frames split across and joined in chunks come out whole', () => {
    const got: Buffer[] = [];
    const d = new FrameDecoder((f) => got.push(f), () => assert.fail('bad'));
    const stream = Buffer.concat([encodeFrame(Buffer.from('first frame')), encodeFrame(Buffer.alloc(1500, 7)), encodeFrame(Buffer.from('x'))]);
    for (let i = 0; i < stream.length; i += 7) d.push(stream.subarray(i, i + 7));
    assert.deepEqual(got.map((f) => f.length), [11, 1500, 1]);
    assert.equal(got[0]!.toString(), 'first frame');
  });

  test('an impossible length stops decoding and is reported once', () => {
    const bad: string[] = [];
    const d = new FrameDecoder(() => assert.fail('no frame expected'), (r) => bad.push(r));
    d.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    d.push(encodeFrame(Buffer.from('later')));
    assert.equal(bad.length, 1);
    assert.match(bad[0]!, /exceeds/);
  });
});

describe('switch', () => {
  test('learns, forwards unicast to one port, floods broadcast and unknown destinations', () => {
    const sw = new Switch(new Gateway(CONFIG));
    const [ra, rb, rc] = [recorder(), recorder(), recorder()];
    const [pa, pb] = [sw.addPort(ra), sw.addPort(rb)];
    sw.addPort(rc);
    sw.input(pa, frame(B, A)); // B unknown: flooded
    assert.equal(rb.frames.length, 1);
    assert.equal(rc.frames.length, 1);
    assert.equal(ra.frames.length, 0, 'never back to the sender');
    sw.input(pb, frame(A, B)); // A learned on pa
    assert.equal(ra.frames.length, 1);
    assert.equal(rc.frames.length, 1, 'known unicast is not flooded');
    sw.input(pa, frame(BROADCAST_MAC, A));
    assert.equal(rb.frames.length, 2);
    assert.equal(rc.frames.length, 2);
    assert.deepEqual(
      sw.portList().map((p) => [p.id, p.mac, p.txPackets, p.rxPackets]),
      [
        [1, '52:54:00:aa:00:01', 2, 1],
        [2, '52:54:00:aa:00:02', 1, 2],
        [3, undefined, 0, 2],
      ],
    );
  });

  test('entries age out, and a removed port is forgotten', () => {
    let now = 1_000_000;
    const sw = new Switch(new Gateway(CONFIG), () => now);
    const [ra, rb, rc] = [recorder(), recorder(), recorder()];
    const [pa, pb, pc] = [sw.addPort(ra), sw.addPort(rb), sw.addPort(rc)];
    sw.input(pb, frame(A, B));
    sw.input(pa, frame(B, A));
    assert.equal(rc.frames.length, 1, 'only the first frame (to the unknown A) was flooded');
    now += MAC_AGEING_MS;
    sw.age();
    assert.deepEqual(sw.macTable(), []);
    sw.input(pc, frame(B, macBytes('52:54:00:aa:00:03')));
    assert.equal(rb.frames.length, 2, 'B is unknown again: flooded');
    sw.input(pb, frame(A, B));
    sw.removePort(pb);
    assert.ok(!sw.macTable().some((e) => e.port === pb.id));
  });

  test('link down by MAC cuts both directions and holds for a reconnecting port; up restores', () => {
    const sw = new Switch(new Gateway(CONFIG));
    const [ra, rb] = [recorder(), recorder()];
    const pa = sw.addPort(ra);
    let pb: Port = sw.addPort(rb);
    sw.input(pa, frame(B, A));
    sw.input(pb, frame(A, B));
    assert.deepEqual(sw.setLink({ mac: '52:54:00:AA:00:02' }, false).map((p) => p.id), [pb.id]);
    sw.input(pa, frame(B, A));
    sw.input(pb, frame(A, B));
    assert.equal(rb.frames.length, 1, 'nothing reaches the downed port');
    assert.equal(ra.frames.length, 1, 'nothing leaves it');
    assert.equal(pb.status().link, 'down');
    sw.removePort(pb);
    const rb2 = recorder();
    pb = sw.addPort(rb2);
    sw.input(pb, frame(A, B));
    assert.equal(ra.frames.length, 1, 'the MAC stays down after a reconnect');
    sw.setLink({ mac: '52:54:00:aa:00:02' }, true);
    sw.input(pb, frame(A, B));
    sw.input(pa, frame(B, A));
    assert.equal(ra.frames.length, 2);
    assert.equal(rb2.frames.length, 1);
    assert.deepEqual(sw.linkDownMacs(), []);
  });

  test('made-up source MACs beyond the table size are not learned; known ones still move', () => {
    const sw = new Switch(new Gateway(CONFIG));
    const pa = sw.addPort(recorder());
    const pb = sw.addPort(recorder());
    for (let i = 0; i < MAC_TABLE_MAX + 100; i++) {
      const mac = Buffer.from([0x52, 0x54, 0x01, i >> 16, (i >> 8) & 255, i & 255]);
      sw.input(pa, frame(B, mac));
    }
    assert.equal(sw.macTable().length, MAC_TABLE_MAX);
    sw.input(pb, frame(BROADCAST_MAC, Buffer.from([0x52, 0x54, 0x01, 0, 0, 0])));
    assert.equal(sw.macTable().find((e) => e.mac === '52:54:01:00:00:00')?.port, pb.id, 'a known MAC moves to the port it is now seen on');
  });

  test('a guest that stops reading has frames dropped and counted, not queued', () => {
    const sw = new Switch(new Gateway(CONFIG));
    const pa = sw.addPort(recorder());
    const pb = sw.addPort({ send: () => false });
    sw.input(pa, frame(B, A));
    assert.equal(pb.status().dropped, 1);
    assert.equal(pb.status().rxPackets, 0);
  });
});

describe('gateway', () => {
  test('answers ARP for its address only', () => {
    const gw = new Gateway(CONFIG);
    const ask = (target: string) =>
      gw.receive(buildEthernet(BROADCAST_MAC, A, ETHERTYPE_ARP, buildArp({ op: ARP_REQUEST, senderMac: A, senderIp: ipNumber('192.168.122.50'), targetMac: Buffer.alloc(6), targetIp: ipNumber(target) })));
    const [reply] = ask('192.168.122.1');
    const arp = parseArp(parseEthernet(reply!)!.payload)!;
    assert.equal(arp.op, ARP_REPLY);
    assert.ok(arp.senderMac.equals(gw.mac));
    assert.equal(ipText(arp.targetIp), '192.168.122.50');
    assert.deepEqual(ask('192.168.122.77'), []);
  });

  test('answers ICMP echo with the same identifier, sequence and data', () => {
    const gw = new Gateway(CONFIG);
    const echo = Buffer.alloc(8 + 32, 0x61);
    echo[0] = ICMP_ECHO_REQUEST;
    echo[1] = 0;
    echo.writeUInt16BE(0, 2);
    echo.writeUInt32BE(0x12340007, 4);
    echo.writeUInt16BE(checksum(echo), 2);
    const [reply] = gw.receive(buildEthernet(gw.mac, A, ETHERTYPE_IPV4, buildIpv4(ipNumber('192.168.122.50'), GW, IP_PROTO_ICMP, echo)));
    const ip = parseIpv4(parseEthernet(reply!)!.payload)!;
    assert.equal(ipText(ip.dst), '192.168.122.50');
    assert.equal(ip.payload[0], 0);
    assert.equal(checksum(ip.payload), 0);
    assert.ok(ip.payload.subarray(4).equals(echo.subarray(4)));
  });

  test('DNS: A records for static, leased and <dns> hosts; NXDOMAIN in its domain; REFUSED elsewhere', () => {
    const gw = new Gateway(CONFIG);
    const leased = lease(gw, A, 'alpha');
    const ask = (name: string, type = 1) => {
      const q = Buffer.concat([
        Buffer.from([0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
        ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
        Buffer.from([0, 0, type, 0, 1]),
      ]);
      const udp = buildUdp(ipNumber(leased), GW, 40000, 53, q);
      const [reply] = gw.receive(buildEthernet(gw.mac, A, ETHERTYPE_IPV4, buildIpv4(ipNumber(leased), GW, IP_PROTO_UDP, udp)));
      const r = parseUdp(parseIpv4(parseEthernet(reply!)!.payload)!.payload)!.payload;
      assert.equal(r.readUInt16BE(0), 0xbeef);
      return { rcode: r[3]! & 15, answers: r.readUInt16BE(6), ip: r.readUInt16BE(6) ? ipText(r.readUInt32BE(r.length - 4)) : undefined };
    };
    assert.deepEqual(ask('alpha'), { rcode: 0, answers: 1, ip: leased });
    assert.deepEqual(ask('ALPHA.domus.test'), { rcode: 0, answers: 1, ip: leased });
    assert.deepEqual(ask('fixed.domus.test'), { rcode: 0, answers: 1, ip: '192.168.122.9' });
    assert.deepEqual(ask('printer'), { rcode: 0, answers: 1, ip: '192.168.122.200' });
    assert.deepEqual(ask('alpha', 28), { rcode: 0, answers: 0, ip: undefined });
    assert.deepEqual(ask('nobody.domus.test'), { rcode: 3, answers: 0, ip: undefined });
    assert.deepEqual(ask('example.org'), { rcode: 5, answers: 0, ip: undefined });
  });
});

describe('DHCP server', () => {
  test('leases from the range with router, DNS, domain and lease time; keeps a client on its address', () => {
    const saved: Lease[][] = [];
    const gw = new Gateway(CONFIG, { onLeases: (l) => saved.push(l) });
    const a = lease(gw, A, 'alpha');
    const b = lease(gw, B);
    assert.equal(a, '192.168.122.2');
    assert.equal(b, '192.168.122.3');
    assert.equal(lease(gw, A), a, 'the same client gets the same address again');
    const [offer] = gw.receive(dhcpFrame(B, dhcpRequest({ xid: 9, mac: B, type: DHCP.DISCOVER })));
    const o = readDhcpReply(offer!);
    assert.equal(ipText(o.options.get(DHCP_OPTION.ROUTER)!.readUInt32BE(0)), '192.168.122.1');
    assert.equal(ipText(o.options.get(DHCP_OPTION.DNS)!.readUInt32BE(0)), '192.168.122.1');
    assert.equal(ipText(o.options.get(DHCP_OPTION.SUBNET_MASK)!.readUInt32BE(0)), '255.255.255.0');
    assert.equal(o.options.get(DHCP_OPTION.LEASE_TIME)!.readUInt32BE(0), 3600);
    assert.equal(o.options.get(DHCP_OPTION.DOMAIN)!.toString(), 'domus.test');
    assert.equal(o.dstMac, '52:54:00:aa:00:02', 'unicast to the client without the broadcast flag');
    const last = saved.at(-1)!;
    assert.deepEqual(last.map((l) => [l['ip-address'], l['mac-address'], l.hostname]), [
      ['192.168.122.2', '52:54:00:aa:00:01', 'alpha'],
      ['192.168.122.3', '52:54:00:aa:00:02', undefined],
    ]);
  });

  test('a request in another MAC\'s name than the frame\'s source is ignored', () => {
    const gw = new Gateway(CONFIG);
    assert.deepEqual(gw.receive(dhcpFrame(A, dhcpRequest({ xid: 1, mac: B, type: DHCP.DISCOVER }))), []);
  });

  test('a static host gets its address and name, and nobody else gets that address', () => {
    const gw = new Gateway(CONFIG);
    assert.equal(lease(gw, FIXED_MAC), '192.168.122.9');
    const [nak] = gw.receive(dhcpFrame(A, dhcpRequest({ xid: 3, mac: A, type: DHCP.REQUEST, options: [[DHCP_OPTION.REQUESTED_IP, ip4(ipNumber('192.168.122.9'))]] })));
    assert.equal(readDhcpReply(nak!).type, DHCP.NAK);
    assert.equal(gw.dhcp!.names().get('fixed'), ipNumber('192.168.122.9'));
  });

  test('init-reboot for a foreign address is NAKed; renewing and releasing work', () => {
    let now = 5_000_000;
    const saved: Lease[][] = [];
    const gw = new Gateway(CONFIG, { onLeases: (l) => saved.push(l), now: () => now });
    const [nak] = gw.receive(dhcpFrame(A, dhcpRequest({ xid: 3, mac: A, type: DHCP.REQUEST, options: [[DHCP_OPTION.REQUESTED_IP, ip4(ipNumber('10.0.0.5'))]] })));
    assert.equal(readDhcpReply(nak!).type, DHCP.NAK);
    const a = ipNumber(lease(gw, A));
    now += 1000 * 1000;
    const [renew] = gw.receive(dhcpFrame(A, dhcpRequest({ xid: 4, mac: A, type: DHCP.REQUEST, ciaddr: a }), a));
    const r = readDhcpReply(renew!);
    assert.equal(r.type, DHCP.ACK);
    assert.equal(r.yiaddr, ipText(a));
    assert.equal(saved.at(-1)![0]!['expiry-time'], Math.floor((now + 3600_000) / 1000));
    gw.receive(dhcpFrame(A, dhcpRequest({ xid: 5, mac: A, type: DHCP.RELEASE, ciaddr: a, options: [[DHCP_OPTION.SERVER_ID, ip4(GW)]] }), a));
    assert.deepEqual(saved.at(-1), []);
    assert.deepEqual(gw.dhcp!.list(), []);
  });

  test('a full range offers nothing; expired leases are given out again', () => {
    let now = 1_000_000;
    const small: SwitchConfig = { ...CONFIG, dhcp: { ...CONFIG.dhcp!, start: '192.168.122.10', end: '192.168.122.10' } };
    const gw = new Gateway(small, { now: () => now });
    assert.equal(lease(gw, A), '192.168.122.10');
    assert.deepEqual(gw.receive(dhcpFrame(B, dhcpRequest({ xid: 1, mac: B, type: DHCP.DISCOVER }))), []);
    now += 3600_000;
    assert.equal(lease(gw, B), '192.168.122.10');
  });

  test('saved leases are restored, expired ones dropped', () => {
    const gw = new Gateway(CONFIG);
    const future = Math.floor(Date.now() / 1000) + 100;
    gw.dhcp!.restore([
      { 'ip-address': '192.168.122.40', 'mac-address': '52:54:00:aa:00:01', hostname: 'alpha', 'expiry-time': future },
      { 'ip-address': '192.168.122.41', 'mac-address': '52:54:00:aa:00:02', 'expiry-time': 5 },
      { 'ip-address': 'garbage', 'mac-address': 'x', 'expiry-time': future } as Lease,
    ]);
    assert.deepEqual(gw.dhcp!.list().map((l) => l['ip-address']), ['192.168.122.40']);
    assert.equal(lease(gw, A), '192.168.122.40');
  });
});

describe('hostile input', () => {
  test('random and mangled frames never throw, and the switch keeps working', () => {
    const saved: Lease[][] = [];
    const gw = new Gateway(CONFIG, { onLeases: (l) => saved.push(l) });
    const sw = new Switch(gw);
    const [ra, rb] = [recorder(), recorder()];
    const [pa, pb] = [sw.addPort(ra), sw.addPort(rb)];
    // Valid frames of every kind the gateway reads, to mangle.
    const seeds = [
      dhcpFrame(A, dhcpRequest({ xid: 1, mac: A, type: DHCP.DISCOVER, options: [[DHCP_OPTION.HOSTNAME, Buffer.from('x')]] })),
      dhcpFrame(A, dhcpRequest({ xid: 2, mac: A, type: DHCP.REQUEST, options: [[DHCP_OPTION.REQUESTED_IP, ip4(ipNumber('192.168.122.2'))]] })),
      buildEthernet(BROADCAST_MAC, A, ETHERTYPE_ARP, buildArp({ op: ARP_REQUEST, senderMac: A, senderIp: 1, targetMac: Buffer.alloc(6), targetIp: GW })),
      buildEthernet(gw.mac, A, ETHERTYPE_IPV4, buildIpv4(2, GW, IP_PROTO_UDP, buildUdp(2, GW, 1000, 53, Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0x63, 0, 0, 1, 0, 1])))),
      buildEthernet(gw.mac, A, ETHERTYPE_IPV4, buildIpv4(2, GW, IP_PROTO_ICMP, Buffer.from([8, 0, 0xf7, 0xff, 0, 0, 0, 0]))),
    ];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      let f: Buffer;
      if (i % 4 === 0) {
        f = randomBytes(rand(400));
      } else {
        f = Buffer.from(seeds[rand(seeds.length)]!);
        const flips = 1 + rand(6);
        for (let k = 0; k < flips; k++) f[14 + rand(Math.max(1, f.length - 14))] = rand(256);
        if (rand(3) === 0) f = f.subarray(0, rand(f.length + 1));
      }
      sw.input(rand(2) ? pa : pb, f);
    }
    // Still a switch, still a gateway.
    const before = rb.frames.length;
    sw.input(pa, frame(BROADCAST_MAC, A));
    assert.equal(rb.frames.length, before + 1);
    const [arp] = gw.receive(buildEthernet(BROADCAST_MAC, A, ETHERTYPE_ARP, buildArp({ op: ARP_REQUEST, senderMac: A, senderIp: 1, targetMac: Buffer.alloc(6), targetIp: GW })));
    assert.ok(arp);
    for (const list of saved) for (const l of list) assert.match(l['ip-address'], /^192\.168\.122\./);
  });
});
