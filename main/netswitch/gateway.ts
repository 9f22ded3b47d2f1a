// The network's gateway: an endpoint on the switch with the network's MAC and address (libvirt's
// bridge address). It answers ARP for its address, ICMP echo, DHCP and DNS. It routes nothing:
// outbound NAT to the host's sockets is a later part of the network, so a guest reaches only its
// network's other guests and this endpoint for now.
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpServer, parseDhcp } from './dhcp.js';
import { answerDns, DNS_PORT } from './dns.js';
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
  IP_PROTO_UDP,
  ipNumber,
  macBytes,
  parseArp,
  parseEthernet,
  parseIpv4,
  parseUdp,
  prefixMask,
} from './packets.js';
import type { Lease, SwitchConfig } from './protocol.js';

export class Gateway {
  readonly mac: Buffer;
  readonly ip: number;
  private readonly broadcastIp: number;
  readonly dhcp: DhcpServer | undefined;
  private readonly dnsHosts = new Map<string, number>();

  constructor(
    private readonly config: SwitchConfig,
    /** Called when the bound leases change (to persist them). */
    private readonly onLeases: (leases: Lease[]) => void = () => undefined,
    now: () => number = Date.now,
  ) {
    this.mac = macBytes(config.mac);
    this.ip = ipNumber(config.address);
    this.broadcastIp = (this.ip | ~prefixMask(config.prefix)) >>> 0;
    this.dhcp = config.dhcp ? new DhcpServer({ ...config, dhcp: config.dhcp }, now) : undefined;
    for (const h of config.dnsHosts) for (const n of h.names) this.dnsHosts.set(n.toLowerCase(), ipNumber(h.ip));
  }

  /** The frames to send back for one frame the switch delivered here (none for most). */
  receive(frame: Buffer): Buffer[] {
    const eth = parseEthernet(frame);
    if (!eth) return [];
    if (eth.type === ETHERTYPE_ARP) {
      const arp = parseArp(eth.payload);
      if (!arp || arp.op !== ARP_REQUEST || arp.targetIp !== this.ip) return [];
      const reply = buildArp({ op: ARP_REPLY, senderMac: this.mac, senderIp: this.ip, targetMac: arp.senderMac, targetIp: arp.senderIp });
      return [buildEthernet(eth.src, this.mac, ETHERTYPE_ARP, reply)];
    }
    if (eth.type !== ETHERTYPE_IPV4) return [];
    const ip = parseIpv4(eth.payload);
    if (!ip) return [];
    const toUs = ip.dst === this.ip;
    const broadcast = ip.dst === 0xffffffff || ip.dst === this.broadcastIp;
    if (!toUs && !broadcast) return [];
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
      const answer = answerDns(udp.payload, { domain: this.config.domain?.toLowerCase(), lookup: (name) => this.lookup(name) });
      if (!answer) return [];
      const datagram = buildUdp(this.ip, ip.src, DNS_PORT, udp.srcPort, answer);
      return [buildEthernet(eth.src, this.mac, ETHERTYPE_IPV4, buildIpv4(this.ip, ip.src, IP_PROTO_UDP, datagram))];
    }
    return [];
  }

  private lookup(name: string): number | undefined {
    return this.dnsHosts.get(name) ?? this.dhcp?.names().get(name);
  }
}
