// The NAT side of a network: guests' TCP and UDP to addresses off the network leave through the
// switch process's own sockets (a user-space stack, as slirp and passt do it, but serving every
// guest on the switch), the gateway's own address standing for the host's 127.0.0.1; and host ports
// forwarded to guests (the network's port forwards) come in the same way, the gateway opening the
// connection to the guest. IPv4 TCP and UDP only: ICMP and other protocols do not leave the network.
import dgram from 'node:dgram';
import net from 'node:net';
import { buildEthernet, buildIpv4, buildTcp, buildUdp, ETHERTYPE_IPV4, IP_PROTO_TCP, IP_PROTO_UDP, ipNumber, ipText, parseTcp, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type Ipv4Packet, type TcpSegment, type UdpDatagram } from './packets.js';
import type { ForwardStatus, NatStatus, PortForward } from './protocol.js';
import { TcpEndpoint, type TcpOptions } from './tcp.js';

export interface NatLimits {
  /** TCP connections at once (each holds under 400 KiB of buffers: send buffer, one more host read, receive window). */
  tcp: number;
  /** UDP flows at once; past it the least recently used one is closed. */
  udp: number;
  connectMs: number;
  /** An established TCP connection with no traffic either way is reset after this. */
  tcpIdleMs: number;
  /** A half-closed or closing TCP connection with no traffic is reset after this. */
  tcpClosingMs: number;
  udpIdleMs: number;
}

export const NAT_LIMITS: NatLimits = {
  tcp: 256,
  udp: 256,
  connectMs: 30_000,
  tcpIdleMs: 3_600_000,
  tcpClosingMs: 120_000,
  udpIdleMs: 60_000,
};

/** Guest data waiting for the host socket to take it: the receive window advertised to the guest. */
export const RECEIVE_BUFFER_BYTES = 64 * 1024;
/** The largest UDP payload that fits an unfragmented datagram in a 1500-byte MTU. */
const MAX_UDP_PAYLOAD = 1500 - 20 - 8;
/** Source ports the gateway uses for forwarded connections it opens to guests. */
const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_FIRST;

export interface NatLink {
  gatewayIp: number;
  gatewayMac: Buffer;
  prefix: number;
  /** Puts a frame from the gateway on the switch. */
  emit(frame: Buffer): void;
  /** A guest address's MAC when known; asks for it by ARP otherwise. */
  macOf(ip: number): Buffer | undefined;
  log(level: 'info' | 'warn', message: string): void;
}

interface Flow {
  guestIp: number;
  guestPort: number;
  /** The address and port the guest sees on the other side. */
  remoteIp: number;
  remotePort: number;
  /** The guest's MAC as its first frame showed it; undefined for flows the gateway opened. */
  guestMac: Buffer | undefined;
  lastActive: number;
}

interface TcpFlow extends Flow {
  ep: TcpEndpoint;
  socket: net.Socket;
  connected: boolean;
  openedAt: number;
}

interface UdpFlow extends Flow {
  toHost(payload: Buffer): void;
  close(): void;
}

const flowKey = (guestIp: number, guestPort: number, remoteIp: number, remotePort: number): string => `${guestIp}:${guestPort}>${remoteIp}:${remotePort}`;

export class Nat {
  private readonly tcp = new Map<string, TcpFlow>();
  private readonly udp = new Map<string, UdpFlow>();
  private readonly forwards: ForwardStatus[] = [];
  private readonly servers: (net.Server | dgram.Socket)[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private readonly mask: number;
  private nextPort = 0;

  constructor(
    private readonly link: NatLink,
    private readonly limits: NatLimits = NAT_LIMITS,
    private readonly tcpOptions: TcpOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.mask = (0xffffffff << (32 - link.prefix)) >>> 0;
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
  }

  /** The host address a guest's destination stands for, or undefined when it is not one the NAT serves. */
  private hostAddress(dst: number): string | undefined {
    if (dst === this.link.gatewayIp) return '127.0.0.1';
    // The network itself (its guests talk directly), "this network", loopback, multicast and broadcast do not leave.
    if (((dst & this.mask) >>> 0) === ((this.link.gatewayIp & this.mask) >>> 0)) return undefined;
    const first = dst >>> 24;
    if (first === 0 || first === 127 || first >= 224) return undefined;
    return ipText(dst);
  }

  private send(flow: Flow, protocol: number, payload: Buffer): void {
    // A guest's own flow goes back where it came from (another guest claiming its address cannot divert it).
    const mac = flow.guestMac ?? this.link.macOf(flow.guestIp);
    // Unknown yet: the ARP request is out; TCP retransmits, UDP is allowed to lose it.
    if (!mac) return;
    this.link.emit(buildEthernet(mac, this.link.gatewayMac, ETHERTYPE_IPV4, buildIpv4(flow.remoteIp, flow.guestIp, protocol, payload)));
  }

  private sendTcp(flow: Flow, s: Omit<TcpSegment, 'srcPort' | 'dstPort'>): void {
    this.send(flow, IP_PROTO_TCP, buildTcp(flow.remoteIp, flow.guestIp, { ...s, srcPort: flow.remotePort, dstPort: flow.guestPort }));
  }

  /** A TCP segment a guest sent to an address off the network or to the gateway. */
  tcpInput(ip: Ipv4Packet, srcMac: Buffer): void {
    const seg = parseTcp(ip.payload, ip.src, ip.dst);
    if (!seg) return;
    const key = flowKey(ip.src, seg.srcPort, ip.dst, seg.dstPort);
    const flow = this.tcp.get(key);
    if (flow) {
      flow.lastActive = this.now();
      flow.ep.input(seg);
      return;
    }
    if (seg.flags & TCP_RST) return;
    const host = this.hostAddress(ip.dst);
    if (host === undefined) return;
    if ((seg.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN && this.tcp.size < this.limits.tcp) {
      this.connect(key, ip, seg, srcMac, host);
      return;
    }
    // No such connection (or no room for one): RST, as a host with nothing on that port answers.
    const stray: Flow = { guestIp: ip.src, guestPort: seg.srcPort, remoteIp: ip.dst, remotePort: seg.dstPort, guestMac: Buffer.from(srcMac), lastActive: 0 };
    const len = seg.payload.length + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0);
    if (seg.flags & TCP_ACK) this.sendTcp(stray, { seq: seg.ack, ack: 0, flags: TCP_RST, window: 0, payload: Buffer.alloc(0) });
    else this.sendTcp(stray, { seq: 0, ack: (seg.seq + len) >>> 0, flags: TCP_RST | TCP_ACK, window: 0, payload: Buffer.alloc(0) });
  }

  /** A guest's SYN: the host socket connects first, so that a refused port is a RST to the guest. */
  private connect(key: string, ip: Ipv4Packet, syn: TcpSegment, srcMac: Buffer, host: string): void {
    const socket = net.connect({ host, port: syn.dstPort, allowHalfOpen: true });
    const flow = this.tcpFlow(key, { guestIp: ip.src, guestPort: syn.srcPort, remoteIp: ip.dst, remotePort: syn.dstPort, guestMac: Buffer.from(srcMac) }, socket, (hooks) => TcpEndpoint.passive(syn, hooks, this.tcpOptions));
    socket.once('connect', () => {
      flow.connected = true;
      socket.setNoDelay(true);
      flow.ep.accept();
    });
  }

  /** A host connection to a forwarded port: the gateway opens a connection to the guest's port. */
  private forwardTcp(fwd: PortForward, socket: net.Socket): void {
    if (this.tcp.size >= this.limits.tcp) {
      this.link.log('warn', `forward ${fwd.address}:${fwd.port}: ${this.limits.tcp} connections already, refusing one from ${socket.remoteAddress}`);
      socket.destroy();
      return;
    }
    const guestIp = ipNumber(fwd.guest);
    const port = this.freePort(guestIp, fwd.guestPort);
    const key = flowKey(guestIp, fwd.guestPort, this.link.gatewayIp, port);
    const flow = this.tcpFlow(key, { guestIp, guestPort: fwd.guestPort, remoteIp: this.link.gatewayIp, remotePort: port, guestMac: undefined }, socket, (hooks) => TcpEndpoint.active(hooks, this.tcpOptions));
    flow.connected = true;
    socket.setNoDelay(true);
  }

  private tcpFlow(key: string, ends: Omit<Flow, 'lastActive'>, socket: net.Socket, open: (hooks: Parameters<typeof TcpEndpoint.active>[0]) => TcpEndpoint): TcpFlow {
    const flow = { ...ends, socket, connected: false, openedAt: this.now(), lastActive: this.now() } as TcpFlow;
    this.tcp.set(key, flow);
    flow.ep = open({
      output: (s) => this.sendTcp(flow, s),
      // A forwarded connection's host socket was paused on accept until the guest answered.
      established: () => socket.resume(),
      data: (chunk) => {
        socket.write(chunk);
      },
      end: () => socket.end(),
      room: () => RECEIVE_BUFFER_BYTES - socket.writableLength,
      drained: () => socket.resume(),
      closed: (reason) => {
        this.tcp.delete(key);
        if (reason === 'done') socket.end();
        // The guest's RST (or its silence) reaches the host peer as a RST too.
        else if (!socket.destroyed) {
          if (socket.connecting) socket.destroy();
          else socket.resetAndDestroy();
        }
      },
    });
    socket.on('data', (chunk: Buffer) => {
      flow.lastActive = this.now();
      if (!flow.ep.write(chunk)) socket.pause();
    });
    socket.on('end', () => flow.ep.end());
    socket.on('drain', () => flow.ep.windowChanged());
    socket.on('error', () => undefined);
    socket.on('close', (hadError) => {
      // A clean close means both directions ended; the endpoint finishes its FIN exchange alone.
      if (hadError || !flow.connected) flow.ep.abort();
    });
    return flow;
  }

  /** A UDP datagram a guest sent off the network or to the gateway (other than DHCP and DNS). */
  udpInput(ip: Ipv4Packet, udp: UdpDatagram, srcMac: Buffer): void {
    const key = flowKey(ip.src, udp.srcPort, ip.dst, udp.dstPort);
    let flow = this.udp.get(key);
    if (!flow) {
      const host = this.hostAddress(ip.dst);
      if (host === undefined) return;
      flow = this.outboundUdp(key, { guestIp: ip.src, guestPort: udp.srcPort, remoteIp: ip.dst, remotePort: udp.dstPort, guestMac: Buffer.from(srcMac) }, host);
    }
    flow.lastActive = this.now();
    flow.toHost(udp.payload);
  }

  private sendUdp(flow: Flow, payload: Buffer): void {
    if (payload.length > MAX_UDP_PAYLOAD) return;
    flow.lastActive = this.now();
    this.send(flow, IP_PROTO_UDP, buildUdp(flow.remoteIp, flow.guestIp, flow.remotePort, flow.guestPort, payload));
  }

  private addUdp(key: string, flow: UdpFlow): void {
    if (this.udp.size >= this.limits.udp) {
      let oldest: string | undefined;
      for (const [k, f] of this.udp) if (oldest === undefined || f.lastActive < this.udp.get(oldest)!.lastActive) oldest = k;
      this.closeUdp(oldest!);
    }
    this.udp.set(key, flow);
  }

  private closeUdp(key: string): void {
    this.udp.get(key)?.close();
    this.udp.delete(key);
  }

  /** A guest's UDP flow to the host: its own host socket, which takes answers only from where the guest sent. */
  private outboundUdp(key: string, ends: Omit<Flow, 'lastActive'>, host: string): UdpFlow {
    const socket = dgram.createSocket('udp4');
    const flow: UdpFlow = {
      ...ends,
      lastActive: this.now(),
      toHost: (payload) => socket.send(payload, ends.remotePort, host),
      close: () => socket.close(),
    };
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address === host && rinfo.port === ends.remotePort) this.sendUdp(flow, msg);
    });
    // An unreachable port or address ends the flow; the guest's next datagram opens a new one.
    socket.on('error', () => {
      if (this.udp.get(key) === flow) this.closeUdp(key);
    });
    this.addUdp(key, flow);
    return flow;
  }

  /** A gateway port no flow to this guest port uses. */
  private freePort(guestIp: number, guestPort: number): number {
    for (let i = 0; i < EPHEMERAL_COUNT; i++) {
      const port = EPHEMERAL_FIRST + ((this.nextPort + i) % EPHEMERAL_COUNT);
      const key = flowKey(guestIp, guestPort, this.link.gatewayIp, port);
      if (!this.tcp.has(key) && !this.udp.has(key)) {
        this.nextPort = (this.nextPort + i + 1) % EPHEMERAL_COUNT;
        return port;
      }
    }
    throw new Error('no free gateway port');
  }

  /** Listens on the network's forwarded host ports; a port that cannot be listened on is reported, not fatal. */
  async listen(forwards: PortForward[]): Promise<ForwardStatus[]> {
    for (const fwd of forwards) {
      const what = `${fwd.address}:${fwd.port}/${fwd.proto} → ${fwd.guest}:${fwd.guestPort}`;
      try {
        if (fwd.proto === 'tcp') await this.listenTcp(fwd);
        else await this.listenUdp(fwd);
        this.forwards.push({ ...fwd, listening: true });
        this.link.log('info', `port forward ${what}: listening`);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const error = e.code === 'EADDRINUSE' ? `${fwd.address}:${fwd.port}/${fwd.proto} is already in use on the host` : e.code === 'EADDRNOTAVAIL' ? `${fwd.address} is not an address of the host` : e.code === 'EACCES' ? `no permission to listen on ${fwd.address}:${fwd.port}/${fwd.proto}` : e.message;
        this.forwards.push({ ...fwd, listening: false, error });
        this.link.log('warn', `port forward ${what}: cannot listen: ${error}`);
      }
    }
    return this.forwards;
  }

  private listenTcp(fwd: PortForward): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.forwardTcp(fwd, socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: fwd.address, port: fwd.port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.link.log('warn', `port forward ${fwd.address}:${fwd.port}/tcp: ${err.message}`));
        this.servers.push(server);
        resolve();
      });
    });
  }

  private listenUdp(fwd: PortForward): Promise<void> {
    const socket = dgram.createSocket('udp4');
    const guestIp = ipNumber(fwd.guest);
    /** The flow key of each host peer sending to this port. */
    const peers = new Map<string, string>();
    socket.on('message', (msg, rinfo) => {
      const peer = `${rinfo.address}:${rinfo.port}`;
      let key = peers.get(peer);
      let flow = key === undefined ? undefined : this.udp.get(key);
      if (!flow) {
        const port = this.freePort(guestIp, fwd.guestPort);
        const newKey = flowKey(guestIp, fwd.guestPort, this.link.gatewayIp, port);
        flow = {
          guestIp,
          guestPort: fwd.guestPort,
          remoteIp: this.link.gatewayIp,
          remotePort: port,
          guestMac: undefined,
          lastActive: this.now(),
          toHost: (payload) => socket.send(payload, rinfo.port, rinfo.address),
          close: () => peers.delete(peer),
        };
        key = newKey;
        peers.set(peer, key);
        this.addUdp(key, flow);
      }
      this.sendUdp(flow, msg);
    });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: fwd.address, port: fwd.port, exclusive: true }, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.link.log('warn', `port forward ${fwd.address}:${fwd.port}/udp: ${err.message}`));
        this.servers.push(socket);
        resolve();
      });
    });
  }

  /** Connections that never connected, went idle, or linger half-closed are reset; idle UDP flows closed. */
  private sweep(): void {
    const now = this.now();
    for (const flow of [...this.tcp.values()]) {
      const idle = now - flow.lastActive;
      const state = flow.ep.state;
      const stale = !flow.connected ? now - flow.openedAt > this.limits.connectMs : state === 'established' ? idle > this.limits.tcpIdleMs : state !== 'time-wait' && idle > this.limits.tcpClosingMs;
      if (stale) flow.ep.abort();
    }
    for (const [key, flow] of [...this.udp]) if (now - flow.lastActive > this.limits.udpIdleMs) this.closeUdp(key);
  }

  status(): NatStatus {
    return { tcp: this.tcp.size, udp: this.udp.size, forwards: this.forwards.map((f) => ({ ...f })) };
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const flow of [...this.tcp.values()]) flow.ep.abort();
    for (const key of [...this.udp.keys()]) this.closeUdp(key);
    for (const server of this.servers) server.close();
  }
}
