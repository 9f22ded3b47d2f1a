// The gateway's NAT against a scripted guest: the test writes the guest's Ethernet frames by hand
// and reads what the gateway sends back, while the host side is real sockets on 127.0.0.1. TCP:
// handshake and MSS, data both ways in order, a dropped segment retransmitted, out-of-order data,
// the receive window closing under host backpressure and opening again, the guest's window honoured,
// FIN both ways with half-close, RST both ways, a refused port, the connection limit. UDP both ways,
// port forwards (TCP and UDP, a taken port reported), DNS through an injected resolver.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { Gateway, type GatewayOptions } from './gateway.js';
import {
  ARP_REPLY,
  ARP_REQUEST,
  buildArp,
  buildEthernet,
  buildIpv4,
  buildTcp,
  buildUdp,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  ipNumber,
  macBytes,
  parseArp,
  parseEthernet,
  parseIpv4,
  parseTcp,
  parseUdp,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type TcpSegment,
} from './packets.js';
import type { PortForward, SwitchConfig } from './protocol.js';
import { SEND_BUFFER_BYTES } from './tcp.js';
import { freePort } from '../testing/libvirtd.js';
import { NAT_LIMITS } from './nat.js';

const CONFIG: SwitchConfig = {
  name: 'nat',
  mac: '52:54:00:00:00:01',
  address: '192.168.122.1',
  prefix: 24,
  domain: 'domus.test',
  dnsHosts: [{ ip: '192.168.122.200', names: ['printer'] }],
  forward: 'nat',
  portForwards: [],
};
const GW = ipNumber(CONFIG.address);
const GW_MAC = macBytes(CONFIG.mac);
const GUEST = ipNumber('192.168.122.50');
const GUEST_MAC = macBytes('52:54:00:aa:00:50');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Seen {
  src: number;
  dst: number;
  seg: TcpSegment;
}

/** The guest's side, written by hand: frames into the gateway, and everything the gateway sends collected. */
class ScriptedGuest {
  readonly tcp: Seen[] = [];
  readonly udp: { src: number; srcPort: number; dstPort: number; payload: Buffer }[] = [];
  readonly arps: number[] = [];
  readonly gw: Gateway;
  /** Answer the gateway's ARP requests for our address. */
  answerArp = true;

  constructor(config: SwitchConfig = CONFIG, options: GatewayOptions = {}) {
    this.gw = new Gateway(config, { minRtoMs: 50, ...options });
    this.gw.attach((f) => this.take(f));
  }

  private take(frame: Buffer): void {
    const eth = parseEthernet(frame)!;
    if (eth.type === ETHERTYPE_ARP) {
      const arp = parseArp(eth.payload)!;
      if (arp.op === ARP_REQUEST) {
        this.arps.push(arp.targetIp);
        if (this.answerArp && arp.targetIp === GUEST) this.in(buildEthernet(GW_MAC, GUEST_MAC, ETHERTYPE_ARP, buildArp({ op: ARP_REPLY, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: GW_MAC, targetIp: GW })));
      }
      return;
    }
    assert.ok(eth.dst.equals(GUEST_MAC), 'addressed to the guest');
    const ip = parseIpv4(eth.payload)!;
    assert.equal(ip.dst, GUEST);
    if (ip.protocol === IP_PROTO_TCP) {
      const seg = parseTcp(ip.payload, ip.src, ip.dst);
      assert.ok(seg, 'a TCP segment with a good checksum');
      this.tcp.push({ src: ip.src, dst: ip.dst, seg });
    } else if (ip.protocol === IP_PROTO_UDP) {
      const udp = parseUdp(ip.payload)!;
      this.udp.push({ src: ip.src, srcPort: udp.srcPort, dstPort: udp.dstPort, payload: udp.payload });
    }
  }

  in(frame: Buffer): void {
    for (const reply of this.gw.receive(frame)) this.take(reply);
  }

  sendTcp(dst: number, s: Partial<TcpSegment> & { srcPort: number; dstPort: number; seq: number; flags: number }): void {
    const seg: TcpSegment = { ack: 0, window: 0xffff, payload: Buffer.alloc(0), ...s };
    this.in(buildEthernet(GW_MAC, GUEST_MAC, ETHERTYPE_IPV4, buildIpv4(GUEST, dst, IP_PROTO_TCP, buildTcp(GUEST, dst, seg))));
  }

  sendUdp(dst: number, srcPort: number, dstPort: number, payload: Buffer): void {
    this.in(buildEthernet(GW_MAC, GUEST_MAC, ETHERTYPE_IPV4, buildIpv4(GUEST, dst, IP_PROTO_UDP, buildUdp(GUEST, dst, srcPort, dstPort, payload))));
  }

  /** The first segment at or after `from` in what was received that matches. */
  async next(what: string, pred: (s: TcpSegment) => boolean, from = 0, ms = 5000): Promise<{ seg: TcpSegment; at: number }> {
    return waitFor(what, () => {
      for (let i = from; i < this.tcp.length; i++) if (pred(this.tcp[i]!.seg)) return { seg: this.tcp[i]!.seg, at: i };
      return undefined;
    }, ms);
  }
}

/** A host server on 127.0.0.1 that hands each accepted socket to the test. */
async function hostServer(): Promise<{ port: number; sockets: net.Socket[]; server: net.Server }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, sockets, server };
}

/** A guest connection through the handshake; returns what the guest needs to go on. */
async function open(g: ScriptedGuest, dst: number, port: number, srcPort: number, window = 0xffff) {
  const iss = 1000;
  g.sendTcp(dst, { srcPort, dstPort: port, seq: iss, flags: TCP_SYN, window, mss: 1460 });
  const { seg: synAck, at } = await g.next('SYN-ACK', (s) => s.dstPort === srcPort && (s.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK));
  g.sendTcp(dst, { srcPort, dstPort: port, seq: iss + 1, ack: (synAck.seq + 1) >>> 0, flags: TCP_ACK, window });
  return { synAck, at, seq: iss + 1, rcv: (synAck.seq + 1) >>> 0 };
}

const gateways: Gateway[] = [];
after(() => {
  for (const g of gateways) g.nat?.close();
});
function guest(config?: SwitchConfig, options?: GatewayOptions): ScriptedGuest {
  const g = new ScriptedGuest(config, options);
  gateways.push(g.gw);
  return g;
}

describe('NAT: TCP', () => {
  test('handshake with MSS, data both ways in order; the gateway address is the host loopback', async () => {
    const host = await hostServer();
    const g = guest();
    const c = await open(g, GW, host.port, 40000);
    assert.equal(c.synAck.mss, 1460);
    assert.equal(c.synAck.ack, 1001);
    const sock = await waitFor('the host connection', () => host.sockets[0]);
    assert.equal(sock.remoteAddress, '127.0.0.1');
    let got = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    g.sendTcp(GW, { srcPort: 40000, dstPort: host.port, seq: c.seq, ack: c.rcv, flags: TCP_ACK | TCP_PSH, payload: Buffer.from('hello ') });
    g.sendTcp(GW, { srcPort: 40000, dstPort: host.port, seq: c.seq + 6, ack: c.rcv, flags: TCP_ACK | TCP_PSH, payload: Buffer.from('host') });
    await waitFor('the guest data at the host', () => (got.toString() === 'hello host' ? true : undefined));
    const ack = await g.next('the ACK of 10 bytes', (s) => s.ack === c.seq + 10, c.at);
    assert.equal(ack.seg.flags & TCP_ACK, TCP_ACK);
    // 300 KiB from the host, acknowledged as it arrives: in order, whole, never more than the MSS per segment.
    const data = Buffer.alloc(300 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 255;
    sock.write(data);
    let received = Buffer.alloc(0);
    let next = c.rcv;
    let scanned = ack.at + 1;
    await waitFor('300 KiB at the guest', () => {
      for (; scanned < g.tcp.length; scanned++) {
        const s = g.tcp[scanned]!.seg;
        assert.ok(s.payload.length <= 1460, `segment of ${s.payload.length} bytes`);
        if (s.payload.length && s.seq === next) {
          received = Buffer.concat([received, s.payload]);
          next = (next + s.payload.length) >>> 0;
          g.sendTcp(GW, { srcPort: 40000, dstPort: host.port, seq: c.seq + 10, ack: next, flags: TCP_ACK });
        }
      }
      return received.length >= data.length ? true : undefined;
    }, 20_000);
    assert.ok(received.equals(data), 'the same bytes in the same order');
    sock.destroy();
    host.server.close();
  });

  test('a segment the guest never acknowledges is retransmitted; out-of-order guest data waits for the hole', async () => {
    const host = await hostServer();
    const g = guest();
    const c = await open(g, GW, host.port, 40001);
    const sock = await waitFor('the host connection', () => host.sockets[0]);
    sock.write('lost-once');
    const first = await g.next('the data', (s) => s.payload.length > 0, c.at);
    // Not acknowledged: the same bytes come again after the retransmission timeout.
    const again = await g.next('the retransmission', (s) => s.payload.length > 0, first.at + 1, 5000);
    assert.equal(again.seg.seq, first.seg.seq);
    assert.equal(again.seg.payload.toString(), 'lost-once');
    g.sendTcp(GW, { srcPort: 40001, dstPort: host.port, seq: c.seq, ack: (c.rcv + 9) >>> 0, flags: TCP_ACK });
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString()));
    // The second half first: dropped and answered with a duplicate ACK for the hole.
    const mark = g.tcp.length;
    g.sendTcp(GW, { srcPort: 40001, dstPort: host.port, seq: c.seq + 3, ack: (c.rcv + 9) >>> 0, flags: TCP_ACK, payload: Buffer.from('def') });
    const dup = await g.next('the duplicate ACK', (s) => s.payload.length === 0, mark);
    assert.equal(dup.seg.ack, c.seq);
    g.sendTcp(GW, { srcPort: 40001, dstPort: host.port, seq: c.seq, ack: (c.rcv + 9) >>> 0, flags: TCP_ACK, payload: Buffer.from('abc') });
    g.sendTcp(GW, { srcPort: 40001, dstPort: host.port, seq: c.seq + 3, ack: (c.rcv + 9) >>> 0, flags: TCP_ACK, payload: Buffer.from('def') });
    await waitFor('abcdef at the host', () => (got === 'abcdef' ? true : undefined));
    sock.destroy();
    host.server.close();
  });

  test('host backpressure closes the receive window; the guest window limits what is in flight', async () => {
    const host = await hostServer();
    const g = guest();
    const GUEST_WINDOW = 3000;
    const c = await open(g, GW, host.port, 40002, GUEST_WINDOW);
    const sock = await waitFor('the host connection', () => host.sockets[0]);
    sock.pause();
    // The guest sends as long as the gateway's window lets it; the host is not reading.
    let seq = c.seq;
    let window = 0xffff;
    // The kernel's socket buffers fill first (a few MiB on loopback); then the gateway's own buffer, which the window reflects.
    for (let round = 0; round < 40_000 && window > 0; round++) {
      const n = Math.min(1460, window);
      const mark = g.tcp.length;
      g.sendTcp(GW, { srcPort: 40002, dstPort: host.port, seq, ack: c.rcv, flags: TCP_ACK, window: GUEST_WINDOW, payload: Buffer.alloc(n, 0x61) });
      const a = await g.next('an ACK', (s) => s.payload.length === 0 && s.ack !== c.seq, mark);
      seq = a.seg.ack;
      window = a.seg.window;
    }
    assert.equal(window, 0, 'the window closed');
    const accepted = seq - c.seq;
    assert.ok(accepted < 40_000 * 1460, `accepted ${accepted} bytes`);
    // Reading again opens the window: an update comes without the guest asking.
    const mark = g.tcp.length;
    let read = 0;
    sock.on('data', (d: Buffer) => (read += d.length));
    sock.resume();
    const update = await g.next('the window update', (s) => s.window > 0, mark);
    assert.equal(update.seg.ack, seq);
    await waitFor('everything at the host', () => (read === accepted ? true : undefined));

    // The other way: never more unacknowledged than the guest's window.
    sock.write(Buffer.alloc(64 * 1024, 0x62));
    const dataSince = () => g.tcp.slice(mark).filter((s) => s.seg.payload.length > 0);
    await waitFor('data from the gateway', () => (dataSince().length ? true : undefined));
    // Time to send more, were it to overrun the window.
    await sleep(300);
    const data = dataSince();
    const inFlight = data.reduce((n, s) => n + s.seg.payload.length, 0);
    assert.ok(inFlight > 0 && inFlight <= GUEST_WINDOW, `in flight ${inFlight}`);
    // A zero window: the gateway probes it instead of sending data; the host is paused at the buffer's size.
    const lastData = data.at(-1)!.seg;
    const acked = (lastData.seq + lastData.payload.length) >>> 0;
    const zeroMark = g.tcp.length;
    g.sendTcp(GW, { srcPort: 40002, dstPort: host.port, seq, ack: acked, flags: TCP_ACK, window: 0 });
    sock.write(Buffer.alloc(4 * SEND_BUFFER_BYTES, 0x63));
    const probe = await g.next('a window probe', (s) => s.seq === ((acked - 1) >>> 0), zeroMark, 5000);
    assert.equal(probe.seg.payload.length, 0);
    assert.equal(g.tcp.slice(zeroMark).filter((s) => s.seg.payload.length > 0).length, 0, 'no data into a zero window');
    assert.ok(sock.writableLength > 0 || sock.bytesWritten > 0);
    sock.destroy();
    host.server.close();
  });

  test("the guest's window scale applies to its windows after the handshake", async () => {
    const host = await hostServer();
    const g = guest();
    g.sendTcp(GW, { srcPort: 40020, dstPort: host.port, seq: 1000, flags: TCP_SYN, window: 0xffff, mss: 1460, wscale: 7 });
    const { seg: synAck, at } = await g.next('SYN-ACK', (s) => s.dstPort === 40020 && (s.flags & TCP_SYN) !== 0);
    assert.equal(synAck.wscale, 0, 'the gateway offers a scale of 0');
    // 100 << 7 = 12800 bytes.
    g.sendTcp(GW, { srcPort: 40020, dstPort: host.port, seq: 1001, ack: (synAck.seq + 1) >>> 0, flags: TCP_ACK, window: 100 });
    const sock = await waitFor('the host connection', () => host.sockets[0]);
    sock.write(Buffer.alloc(64 * 1024, 0x64));
    const sent = () => g.tcp.slice(at).reduce((n, s) => n + s.seg.payload.length, 0);
    await waitFor('more than 100 bytes from the gateway', () => (sent() > 100 ? true : undefined));
    // Time to send more, were it to overrun the scaled window.
    await sleep(300);
    const inFlight = sent();
    assert.ok(inFlight > 100 && inFlight <= 12800, `in flight ${inFlight}`);
    sock.destroy();
    host.server.close();
  });

  test('FIN both ways with a half-close, then the connection is gone', async () => {
    const host = await hostServer();
    const g = guest();
    const c = await open(g, GW, host.port, 40003);
    const sock = await waitFor('the host connection', () => host.sockets[0]);
    let ended = false;
    sock.on('end', () => (ended = true));
    sock.resume();
    g.sendTcp(GW, { srcPort: 40003, dstPort: host.port, seq: c.seq, ack: c.rcv, flags: TCP_ACK | TCP_FIN });
    await waitFor('the host to see the guest end', () => (ended ? true : undefined));
    const finAck = await g.next('the ACK of the FIN', (s) => s.ack === c.seq + 1, c.at);
    // Half-closed: the host still sends, then ends.
    sock.end('after your FIN');
    const dataSeg = await g.next('data after the half-close', (s) => s.payload.length > 0, finAck.at);
    assert.equal(dataSeg.seg.payload.toString(), 'after your FIN');
    const fin = await g.next('the host FIN', (s) => (s.flags & TCP_FIN) !== 0, finAck.at);
    g.sendTcp(GW, { srcPort: 40003, dstPort: host.port, seq: c.seq + 1, ack: (fin.seg.seq + 1) >>> 0, flags: TCP_ACK });
    await waitFor('the connection to leave the table', () => (g.gw.nat!.status().tcp === 0 ? true : undefined), 5000);
    host.server.close();
  });

  test('RST both ways, a refused port gets a RST, a stray segment a RST, and the table has a limit', async () => {
    const host = await hostServer();
    const g = guest(CONFIG, { natLimits: { ...NAT_LIMITS, tcp: 2 } });
    const a = await open(g, GW, host.port, 40004);
    const sa = await waitFor('the host connection', () => host.sockets[0]);
    let closed = false;
    sa.on('close', () => (closed = true));
    sa.on('error', () => undefined);
    g.sendTcp(GW, { srcPort: 40004, dstPort: host.port, seq: a.seq, flags: TCP_RST });
    await waitFor('the host socket to close on the guest RST', () => (closed ? true : undefined));
    assert.equal(g.gw.nat!.status().tcp, 0);

    const b = await open(g, GW, host.port, 40005);
    const sb = await waitFor('the second host connection', () => host.sockets[1]);
    sb.resetAndDestroy();
    const rst = await g.next('the RST of the host reset', (s) => (s.flags & TCP_RST) !== 0, b.at);
    assert.equal(rst.seg.seq, b.rcv);

    const closedPort = await freePort();
    const mark = g.tcp.length;
    g.sendTcp(GW, { srcPort: 40006, dstPort: closedPort, seq: 5000, flags: TCP_SYN, mss: 1460 });
    const refused = await g.next('the RST for a refused port', (s) => s.dstPort === 40006, mark);
    assert.equal(refused.seg.flags, TCP_RST | TCP_ACK);
    assert.equal(refused.seg.ack, 5001);

    const strayMark = g.tcp.length;
    g.sendTcp(GW, { srcPort: 40007, dstPort: host.port, seq: 7, ack: 1234, flags: TCP_ACK, payload: Buffer.from('x') });
    const stray = await g.next('the RST for no connection', (s) => s.dstPort === 40007, strayMark);
    assert.equal(stray.seg.flags, TCP_RST);
    assert.equal(stray.seg.seq, 1234);

    await open(g, GW, host.port, 40008);
    await open(g, GW, host.port, 40009);
    const fullMark = g.tcp.length;
    g.sendTcp(GW, { srcPort: 40010, dstPort: host.port, seq: 1, flags: TCP_SYN });
    const full = await g.next('the RST past the limit', (s) => s.dstPort === 40010, fullMark);
    assert.equal(full.seg.flags & TCP_RST, TCP_RST);
    for (const s of host.sockets) s.destroy();
    host.server.close();
  });

  test('an isolated network has no NAT: nothing reaches the host', async () => {
    const host = await hostServer();
    const g = guest({ ...CONFIG, forward: 'none' });
    assert.equal(g.gw.nat, undefined);
    g.sendTcp(GW, { srcPort: 40011, dstPort: host.port, seq: 1, flags: TCP_SYN });
    await sleep(200);
    assert.equal(host.sockets.length, 0);
    assert.equal(g.tcp.length, 0);
    host.server.close();
  });
});

describe('NAT: UDP, port forwards, DNS', () => {
  test('UDP to the gateway reaches the host loopback and the answer comes back from the gateway', async () => {
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
    const port = echo.address().port;
    const g = guest();
    g.sendUdp(GW, 41000, port, Buffer.from('ping'));
    const reply = await waitFor('the echo', () => g.udp[0]);
    assert.equal(reply.payload.toString(), 'echo:ping');
    assert.equal(reply.src, GW);
    assert.equal(reply.srcPort, port);
    assert.equal(reply.dstPort, 41000);
    assert.equal(g.gw.nat!.status().udp, 1);
    echo.close();
  });

  test('forwarded TCP and UDP host ports reach the guest (ARP first); a taken port is reported', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const takenPort = (taken.address() as net.AddressInfo).port;
    const tcpPort = await freePort();
    const forwards: PortForward[] = [
      { proto: 'tcp', address: '127.0.0.1', port: tcpPort, guest: '192.168.122.50', guestPort: 80 },
      { proto: 'udp', address: '127.0.0.1', port: tcpPort, guest: '192.168.122.50', guestPort: 53 },
      { proto: 'tcp', address: '127.0.0.1', port: takenPort, guest: '192.168.122.50', guestPort: 22 },
    ];
    const g = guest({ ...CONFIG, portForwards: forwards });
    const status = await g.gw.nat!.listen(forwards);
    assert.deepEqual(status.map((f) => f.listening), [true, true, false]);
    assert.equal(status[2]!.error, `127.0.0.1:${takenPort}/tcp is already in use on the host`);

    const client = net.connect(tcpPort, '127.0.0.1');
    let got = '';
    client.on('data', (d: Buffer) => (got += d.toString()));
    const syn = await g.next('the SYN to the guest', (s) => s.flags === TCP_SYN);
    assert.ok(g.arps.includes(GUEST), 'the gateway asked for the guest by ARP');
    assert.equal(syn.seg.dstPort, 80);
    assert.equal(g.tcp[syn.at]!.src, GW, 'from the gateway address');
    const gwPort = syn.seg.srcPort;
    g.sendTcp(GW, { srcPort: 80, dstPort: gwPort, seq: 9000, ack: (syn.seg.seq + 1) >>> 0, flags: TCP_SYN | TCP_ACK, mss: 1460 });
    await g.next('the ACK of the handshake', (s) => s.ack === 9001 && s.flags === TCP_ACK, syn.at);
    client.write('GET /');
    const req = await g.next('the request at the guest', (s) => s.payload.length > 0, syn.at);
    assert.equal(req.seg.payload.toString(), 'GET /');
    g.sendTcp(GW, { srcPort: 80, dstPort: gwPort, seq: 9001, ack: (req.seg.seq + 5) >>> 0, flags: TCP_ACK | TCP_PSH, payload: Buffer.from('200 OK') });
    await waitFor('the answer at the host client', () => (got === '200 OK' ? true : undefined));
    client.destroy();

    const u = dgram.createSocket('udp4');
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
    const answers: string[] = [];
    u.on('message', (m) => answers.push(m.toString()));
    u.send('query', tcpPort, '127.0.0.1');
    const dg = await waitFor('the datagram at the guest', () => g.udp.find((d) => d.dstPort === 53));
    assert.equal(dg.payload.toString(), 'query');
    assert.equal(dg.src, GW);
    g.sendUdp(GW, 53, dg.srcPort, Buffer.from('answer'));
    await waitFor('the answer at the host peer', () => (answers[0] === 'answer' ? true : undefined));
    u.close();
    taken.close();
  });

  test('DNS: the network names answered here, others through the resolver, failures SERVFAIL; isolated REFUSED', async () => {
    const asked: string[] = [];
    const g = guest(CONFIG, {
      resolve: async (name) => {
        asked.push(name);
        if (name === 'broken.example') throw new Error('no server');
        return name === 'www.example' ? [ipNumber('203.0.113.7'), ipNumber('203.0.113.8')] : [];
      },
    });
    const query = (id: number, name: string, type = 1): Buffer => {
      const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
      const header = Buffer.alloc(12);
      header.writeUInt16BE(id, 0);
      header.writeUInt16BE(0x0100, 2);
      header.writeUInt16BE(1, 4);
      return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
    };
    const answer = (id: number) => waitFor(`answer ${id}`, () => g.udp.find((d) => d.srcPort === 53 && d.payload.readUInt16BE(0) === id)?.payload);
    g.sendUdp(GW, 5353, 53, query(1, 'printer'));
    g.sendUdp(GW, 5353, 53, query(2, 'www.example'));
    g.sendUdp(GW, 5353, 53, query(3, 'nothing.example'));
    g.sendUdp(GW, 5353, 53, query(4, 'broken.example'));
    g.sendUdp(GW, 5353, 53, query(5, 'www.example', 28));
    g.sendUdp(GW, 5353, 53, query(6, 'missing.domus.test'));
    const own = await answer(1);
    assert.equal(own.readUInt16BE(2) & 0xf, 0);
    assert.equal(own.readUInt16BE(6), 1);
    const www = await answer(2);
    assert.equal(www.readUInt16BE(2) & 0x0f, 0, 'NOERROR');
    assert.equal(www.readUInt16BE(2) & 0x0080, 0x0080, 'recursion available');
    assert.equal(www.readUInt16BE(6), 2, 'two A records');
    assert.equal(www.subarray(-4).join('.'), '203.0.113.8');
    assert.equal((await answer(3)).readUInt16BE(2) & 0xf, 3, 'NXDOMAIN');
    assert.equal((await answer(4)).readUInt16BE(2) & 0xf, 2, 'SERVFAIL');
    const aaaa = await answer(5);
    assert.equal(aaaa.readUInt16BE(2) & 0xf, 0);
    assert.equal(aaaa.readUInt16BE(6), 0, 'no AAAA records: IPv4 only');
    assert.equal((await answer(6)).readUInt16BE(2) & 0xf, 3, "the network's own domain is not forwarded");
    assert.ok(!asked.includes('printer') && !asked.some((n) => n.endsWith('domus.test')), asked.join(' '));

    const iso = guest({ ...CONFIG, forward: 'none' }, { resolve: async () => [1] });
    iso.sendUdp(GW, 5353, 53, query(7, 'www.example'));
    const refused = iso.udp.find((d) => d.payload.readUInt16BE(0) === 7)!.payload;
    assert.equal(refused.readUInt16BE(2) & 0xf, 5, 'REFUSED');
  });
});

test('hostile guest: random TCP segments and UDP datagrams to the gateway break nothing and stay within the limits', async () => {
  const host = await hostServer();
  host.server.on('connection', (sock) => sock.on('error', () => undefined));
  const closedPort = await freePort();
  const g = guest(CONFIG, { natLimits: { ...NAT_LIMITS, tcp: 40, udp: 8 } });
  const pick = <T,>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
  for (let i = 0; i < 5000; i++) {
    // Only to the gateway (the host's loopback), to the test's own two ports.
    const dstPort = pick([host.port, closedPort]);
    if (i % 5 === 0) g.sendUdp(GW, 30000 + (i % 50), dstPort, randomBytes(Math.floor(Math.random() * 200)));
    else {
      g.sendTcp(GW, {
        // 32 connections at most, under the limit, so that a proper one still fits afterwards.
        srcPort: 30000 + (i % 16),
        dstPort,
        seq: randomBytes(4).readUInt32BE(0),
        ack: randomBytes(4).readUInt32BE(0),
        flags: randomBytes(1)[0]! & 0x3f,
        window: randomBytes(2).readUInt16BE(0),
        payload: randomBytes(Math.floor(Math.random() * 100)),
        ...(i % 7 === 0 && { mss: randomBytes(2).readUInt16BE(0) }),
      });
    }
    if (i % 500 === 0) await sleep(10);
    const status = g.gw.nat!.status();
    assert.ok(status.tcp <= 40 && status.udp <= 8, JSON.stringify(status));
  }
  await sleep(200);
  // Still serving: a proper connection goes through.
  const c = await open(g, GW, host.port, 45000);
  assert.equal(c.synAck.ack, 1001);
  g.gw.nat!.close();
  for (const s of host.sockets) s.destroy();
  host.server.close();
});

