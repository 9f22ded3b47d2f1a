// The network's gateway: an endpoint on the switch with the network's MAC and address (libvirt's
// bridge address). It answers ARP for its address, ICMP echo, DHCP and DNS. On a NAT network it is
// also the guests' way out: TCP and UDP sent to its MAC for addresses off the network, or to its own
// address, go to the NAT (nat.ts), and DNS names that are not the network's go to the host's
// resolver. An isolated network routes nothing.
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpServer, parseDhcp } from './dhcp.js';
import { answerDns, DNS_PORT } from './dns.js';
import { Nat, type NatLimits } from './nat.js';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildEthernet,
  buildIpv4,
  buildUdp,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  icmpEchoReply,
  IP_PROTO_ICMP,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  ipNumber,
  ipText,
  macBytes,
  parseArp,
  parseEthernet,
  parseIpv4,
  parseUdp,
  prefixMask,
  type Ipv4Packet,
} from './packets.js';
import type { Lease, SwitchConfig } from './protocol.js';

/** IPv4 addresses of the host's resolver's answer for a name ([] when it does not exist); throws when the lookup fails. */
export type Resolver = (name: string) => Promise<number[]>;

export interface GatewayOptions {
  /** Called when the bound leases change (to persist them). */
  onLeases?: (leases: Lease[]) => void;
  now?: () => number;
  /** The host's resolver, for names that are not the network's on a NAT network. */
  resolve?: Resolver;
  natLimits?: NatLimits;
  /** Minimum TCP retransmission timeout (tests shorten it). */
  minRtoMs?: number;
  log?: (level: 'info' | 'warn', message: string) => void;
}

/** A forwarded DNS query gets SERVFAIL when the host's resolver has not answered by then. */
export const DNS_FORWARD_TIMEOUT_MS = 5000;
/** Forwarded queries waiting at once; more get SERVFAIL at once (a guest must not pile them up). */
const DNS_FORWARD_MAX = 32;
/** Guest addresses whose MAC the gateway remembers (for the connections it opens to them). */
const NEIGHBOURS_MAX = 4096;
/** How often the gateway asks by ARP for one address it needs. */
const ARP_RETRY_MS = 1000;

export class Gateway {
  readonly mac: Buffer;
  readonly ip: number;
  private readonly broadcastIp: number;
  private readonly mask: number;
  readonly dhcp: DhcpServer | undefined;
  readonly nat: Nat | undefined;
  private readonly dnsHosts = new Map<string, number>();
  private readonly neighbours = new Map<number, Buffer>();
  private readonly arpAsked = new Map<number, number>();
  private readonly onLeases: (leases: Lease[]) => void;
  private readonly now: () => number;
  private readonly resolve: Resolver | undefined;
  private emit: (frame: Buffer) => void = () => undefined;
  private dnsPending = 0;

  constructor(
    private readonly config: SwitchConfig,
    options: GatewayOptions = {},
  ) {
    this.mac = macBytes(config.mac);
    this.ip = ipNumber(config.address);
    this.mask = prefixMask(config.prefix);
    this.broadcastIp = (this.ip | ~this.mask) >>> 0;
    this.onLeases = options.onLeases ?? (() => undefined);
    this.now = options.now ?? Date.now;
    this.dhcp = config.dhcp ? new DhcpServer({ ...config, dhcp: config.dhcp }, this.now) : undefined;
    for (const h of config.dnsHosts) for (const n of h.names) this.dnsHosts.set(n.toLowerCase(), ipNumber(h.ip));
    if (config.forward === 'nat') {
      this.resolve = options.resolve;
      const log = options.log ?? (() => undefined);
      this.nat = new Nat({ gatewayIp: this.ip, gatewayMac: this.mac, prefix: config.prefix, emit: (f) => this.emit(f), macOf: (ip) => this.macOf(ip), log }, options.natLimits, { minRtoMs: options.minRtoMs });
    }
  }

  /** Where frames the gateway sends on its own (NAT traffic, forwarded DNS answers) go: the switch. */
  attach(emit: (frame: Buffer) => void): void {
    this.emit = emit;
  }

  private onNetwork(ip: number): boolean {
    return ip !== this.ip && ip !== this.broadcastIp && ((ip & this.mask) >>> 0) === ((this.ip & this.mask) >>> 0);
  }

  private learn(ip: number, mac: Buffer): void {
    if (!this.onNetwork(ip) || (mac[0]! & 1) === 1) return;
    if (!this.neighbours.has(ip) && this.neighbours.size >= NEIGHBOURS_MAX) this.neighbours.delete(this.neighbours.keys().next().value!);
    const known = this.neighbours.get(ip);
    if (!known?.equals(mac)) this.neighbours.set(ip, Buffer.from(mac));
  }

  /** A guest's MAC: seen in its frames, or its DHCP lease's; else an ARP request goes out and it is undefined for now. */
  private macOf(ip: number): Buffer | undefined {
    const known = this.neighbours.get(ip);
    if (known) return known;
    const leased = this.dhcp?.list().find((l) => l['ip-address'] === ipText(ip));
    if (leased) return macBytes(leased['mac-address']);
    const asked = this.arpAsked.get(ip);
    if (asked === undefined || this.now() - asked >= ARP_RETRY_MS) {
      if (this.arpAsked.size >= NEIGHBOURS_MAX) this.arpAsked.clear();
      this.arpAsked.set(ip, this.now());
      const request = buildArp({ op: ARP_REQUEST, senderMac: this.mac, senderIp: this.ip, targetMac: Buffer.alloc(6), targetIp: ip });
      this.emit(buildEthernet(BROADCAST_MAC, this.mac, ETHERTYPE_ARP, request));
    }
    return undefined;
  }

  /** The frames to send back for one frame the switch delivered here (none for most). */
  receive(frame: Buffer): Buffer[] {
    const eth = parseEthernet(frame);
    if (!eth) return [];
    if (eth.type === ETHERTYPE_ARP) {
      const arp = parseArp(eth.payload);
      if (arp && arp.senderMac.equals(eth.src)) this.learn(arp.senderIp, arp.senderMac);
      if (!arp || arp.op !== ARP_REQUEST || arp.targetIp !== this.ip) return [];
      const reply = buildArp({ op: ARP_REPLY, senderMac: this.mac, senderIp: this.ip, targetMac: arp.senderMac, targetIp: arp.senderIp });
      return [buildEthernet(eth.src, this.mac, ETHERTYPE_ARP, reply)];
    }
    if (eth.type !== ETHERTYPE_IPV4) return [];
    const ip = parseIpv4(eth.payload);
    if (!ip) return [];
    const toUs = ip.dst === this.ip;
    const broadcast = ip.dst === 0xffffffff || ip.dst === this.broadcastIp;
    const viaUs = eth.dst.equals(this.mac);
    if (viaUs) this.learn(ip.src, eth.src);
    if (!toUs && !broadcast) {
      if (viaUs && this.nat && this.onNetwork(ip.src)) this.toNat(ip, eth.src);
      return [];
    }
    if (ip.protocol === IP_PROTO_TCP && toUs) {
      if (this.nat && this.onNetwork(ip.src)) this.nat.tcpInput(ip, eth.src);
      return [];
    }
    if (ip.protocol === IP_PROTO_ICMP && toUs) {
      const reply = icmpEchoReply(ip.payload);
      return reply ? [buildEthernet(eth.src, this.mac, ETHERTYPE_IPV4, buildIpv4(this.ip, ip.src, IP_PROTO_ICMP, reply))] : [];
    }
    if (ip.protocol !== IP_PROTO_UDP) return [];
    const udp = parseUdp(ip.payload);
    if (!udp) return [];
    if (udp.dstPort === DHCP_SERVER_PORT && this.dhcp) {
      const message = parseDhcp(udp.payload);
      // A client asks for itself: a guest must not take leases in other MACs' names (pool exhaustion).
      if (!message || !message.chaddr.equals(eth.src)) return [];
      const { reply, changed } = this.dhcp.handle(message);
      if (changed) this.onLeases(this.dhcp.list());
      if (!reply) return [];
      const dstIp = reply.unicastTo ?? 0xffffffff;
      const dstMac = reply.unicastTo !== undefined ? message.chaddr : BROADCAST_MAC;
      const datagram = buildUdp(this.ip, dstIp, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, reply.payload);
      return [buildEthernet(dstMac, this.mac, ETHERTYPE_IPV4, buildIpv4(this.ip, dstIp, IP_PROTO_UDP, datagram))];
    }
    if (udp.dstPort === DNS_PORT && toUs) {
      const answer = answerDns(udp.payload, { domain: this.config.domain?.toLowerCase(), lookup: (name) => this.lookup(name), forward: this.nat !== undefined && this.resolve !== undefined });
      if (!answer) return [];
      const frameOf = (payload: Buffer): Buffer => buildEthernet(eth.src, this.mac, ETHERTYPE_IPV4, buildIpv4(this.ip, ip.src, IP_PROTO_UDP, buildUdp(this.ip, ip.src, DNS_PORT, udp.srcPort, payload)));
      if (Buffer.isBuffer(answer)) return [frameOf(answer)];
      if (this.dnsPending >= DNS_FORWARD_MAX) return [frameOf(answer.reply(undefined))];
      this.dnsPending++;
      const src = Buffer.from(eth.src);
      void this.forwardDns(answer.name).then((addresses) => {
        this.dnsPending--;
        this.emit(buildEthernet(src, this.mac, ETHERTYPE_IPV4, buildIpv4(this.ip, ip.src, IP_PROTO_UDP, buildUdp(this.ip, ip.src, DNS_PORT, udp.srcPort, answer.reply(addresses)))));
      });
      return [];
    }
    if (toUs && this.nat && this.onNetwork(ip.src)) this.nat.udpInput(ip, udp, eth.src);
    return [];
  }

  private toNat(ip: Ipv4Packet, src: Buffer): void {
    if (ip.protocol === IP_PROTO_TCP) this.nat!.tcpInput(ip, src);
    else if (ip.protocol === IP_PROTO_UDP) {
      const udp = parseUdp(ip.payload);
      if (udp) this.nat!.udpInput(ip, udp, src);
    }
  }

  /** The host resolver's addresses for a name, [] when it has none, undefined when it failed or timed out. */
  private async forwardDns(name: string): Promise<number[] | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), DNS_FORWARD_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.resolve!(name).catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private lookup(name: string): number | undefined {
    return this.dnsHosts.get(name) ?? this.dhcp?.names().get(name);
  }
}
