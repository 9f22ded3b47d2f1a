// The network's DHCP server (RFC 2131/2132): DISCOVER/OFFER, REQUEST/ACK/NAK, RELEASE, DECLINE and
// INFORM, addresses from one range plus static host entries. It only computes answers and lease
// changes; the gateway puts them on the wire and the switch persists the leases.
import { ipNumber, ipText, macText, prefixMask } from './packets.js';
import type { Lease, SwitchConfig } from './protocol.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
const MAGIC = 0x63825363;
const FIXED = 236;

export const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;
export const DHCP_OPTION = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN: 15,
  BROADCAST: 28,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  MESSAGE: 56,
  T1: 58,
  T2: 59,
  CLIENT_ID: 61,
  END: 255,
} as const;

export interface DhcpMessage {
  op: number;
  xid: number;
  flags: number;
  ciaddr: number;
  giaddr: number;
  /** Client hardware address (Ethernet: 6 bytes). */
  chaddr: Buffer;
  type: number;
  options: Map<number, Buffer>;
}

/** A BOOTREQUEST from an Ethernet client, or undefined when it is not one or is malformed. */
export function parseDhcp(p: Buffer): DhcpMessage | undefined {
  if (p.length < FIXED + 4 || p[0] !== 1 || p[1] !== 1 || p[2] !== 6) return undefined;
  if (p.readUInt32BE(FIXED) !== MAGIC) return undefined;
  const options = new Map<number, Buffer>();
  let at = FIXED + 4;
  while (at < p.length) {
    const code = p[at]!;
    if (code === DHCP_OPTION.END) break;
    if (code === DHCP_OPTION.PAD) {
      at++;
      continue;
    }
    if (at + 1 >= p.length) return undefined;
    const len = p[at + 1]!;
    if (at + 2 + len > p.length) return undefined;
    const value = p.subarray(at + 2, at + 2 + len);
    // RFC 3396: a repeated option continues the first.
    options.set(code, options.has(code) ? Buffer.concat([options.get(code)!, value]) : value);
    at += 2 + len;
  }
  const type = options.get(DHCP_OPTION.MESSAGE_TYPE);
  if (!type || type.length !== 1) return undefined;
  return { op: 1, xid: p.readUInt32BE(4), flags: p.readUInt16BE(10), ciaddr: p.readUInt32BE(12), giaddr: p.readUInt32BE(24), chaddr: p.subarray(28, 34), type: type[0]!, options };
}

function ipOption(m: DhcpMessage, code: number): number | undefined {
  const v = m.options.get(code);
  return v && v.length === 4 ? v.readUInt32BE(0) : undefined;
}

/** Printable text of a client-sent string option (hostname), or undefined when it is not a plain name. */
function nameOption(m: DhcpMessage, code: number): string | undefined {
  const v = m.options.get(code);
  if (!v || v.length === 0 || v.length > 63) return undefined;
  const text = v.toString('latin1').replace(/\0+$/, '');
  return /^[A-Za-z0-9][A-Za-z0-9-]*$/.test(text) ? text : undefined;
}

export interface DhcpReply {
  type: number;
  /** The address the reply is for (0 for NAK and INFORM). */
  yiaddr: number;
  /** Where the gateway sends it: broadcast, or unicast to this address and the client's MAC. */
  unicastTo?: number;
  payload: Buffer;
}

interface LeaseRecord {
  mac: string;
  ip: number;
  hostname?: string;
  clientId?: string;
  /** Epoch ms. */
  expires: number;
  /** Offered, not yet requested: held briefly, not persisted. */
  offered: boolean;
}

const OFFER_HOLD_MS = 60_000;
/** An address a client declined (in use by someone else) is kept out of the pool this long. */
const DECLINE_HOLD_MS = 10 * 60_000;

export class DhcpServer {
  private readonly server: number;
  private readonly mask: number;
  private readonly start: number;
  private readonly end: number;
  private readonly leaseMs: number;
  private readonly statics = new Map<string, { ip: number; name?: string }>();
  private readonly staticIps = new Set<number>();
  private readonly leases = new Map<string, LeaseRecord>();
  private readonly declined = new Map<number, number>();

  constructor(
    private readonly config: SwitchConfig & { dhcp: NonNullable<SwitchConfig['dhcp']> },
    private readonly now: () => number = Date.now,
  ) {
    this.server = ipNumber(config.address);
    this.mask = prefixMask(config.prefix);
    this.start = ipNumber(config.dhcp.start);
    this.end = ipNumber(config.dhcp.end);
    this.leaseMs = config.dhcp.leaseTime * 1000;
    for (const h of config.dhcp.hosts) {
      this.statics.set(h.mac.toLowerCase(), { ip: ipNumber(h.ip), name: h.name });
      this.staticIps.add(ipNumber(h.ip));
    }
  }

  /** Leases from an earlier run of the switch (expired ones are dropped). */
  restore(saved: Lease[]): void {
    for (const l of saved) {
      try {
        const expires = l['expiry-time'] * 1000;
        if (expires <= this.now()) continue;
        const mac = l['mac-address'].toLowerCase();
        this.leases.set(mac, { mac, ip: ipNumber(l['ip-address']), hostname: l.hostname, clientId: l['client-id'], expires, offered: false });
      } catch {
        // A malformed entry is skipped; the client asks again.
      }
    }
  }

  /** Bound, unexpired leases. */
  list(): Lease[] {
    const now = this.now();
    return [...this.leases.values()]
      .filter((l) => !l.offered && l.expires > now)
      .sort((a, b) => a.ip - b.ip)
      .map((l) => ({
        'ip-address': ipText(l.ip),
        'mac-address': l.mac,
        ...(l.hostname && { hostname: l.hostname }),
        ...(l.clientId && { 'client-id': l.clientId }),
        'expiry-time': Math.floor(l.expires / 1000),
      }));
  }

  /** Hostnames with addresses, for DNS: static hosts with a name and leases whose client sent one. */
  names(): Map<string, number> {
    const out = new Map<string, number>();
    const now = this.now();
    for (const l of this.leases.values()) if (l.hostname && !l.offered && l.expires > now) out.set(l.hostname.toLowerCase(), l.ip);
    for (const h of this.statics.values()) if (h.name) out.set(h.name.toLowerCase(), h.ip);
    return out;
  }

  /**
   * The reply to one client message, or undefined when none is due; `changed` is set when the
   * persisted leases changed.
   */
  handle(m: DhcpMessage): { reply?: DhcpReply; changed: boolean } {
    const mac = macText(m.chaddr);
    const now = this.now();
    switch (m.type) {
      case DHCP.DISCOVER: {
        const ip = this.choose(mac, ipOption(m, DHCP_OPTION.REQUESTED_IP));
        if (ip === undefined) return { changed: false };
        const existing = this.leases.get(mac);
        const bound = existing && !existing.offered && existing.ip === ip && existing.expires > now;
        if (!bound) this.leases.set(mac, { mac, ip, expires: now + OFFER_HOLD_MS, offered: true, hostname: nameOption(m, DHCP_OPTION.HOSTNAME) });
        return { reply: this.reply(m, DHCP.OFFER, ip), changed: false };
      }
      case DHCP.REQUEST: {
        const serverId = ipOption(m, DHCP_OPTION.SERVER_ID);
        if (serverId !== undefined && serverId !== this.server) {
          // The client took another server's offer.
          const l = this.leases.get(mac);
          if (l?.offered) this.leases.delete(mac);
          return { changed: false };
        }
        const wanted = ipOption(m, DHCP_OPTION.REQUESTED_IP) ?? m.ciaddr;
        if (!wanted || !this.allowed(mac, wanted)) {
          return { reply: this.nak(m, wanted ? `${ipText(wanted)} is not available to this client` : 'no address requested'), changed: this.drop(mac) };
        }
        const client = m.options.get(DHCP_OPTION.CLIENT_ID);
        this.leases.set(mac, {
          mac,
          ip: wanted,
          hostname: nameOption(m, DHCP_OPTION.HOSTNAME) ?? this.statics.get(mac)?.name ?? this.leases.get(mac)?.hostname,
          clientId: client ? [...client].map((b) => b.toString(16).padStart(2, '0')).join(':') : undefined,
          expires: now + this.leaseMs,
          offered: false,
        });
        return { reply: this.reply(m, DHCP.ACK, wanted, m.ciaddr || undefined), changed: true };
      }
      case DHCP.RELEASE: {
        const l = this.leases.get(mac);
        if (!l || l.ip !== m.ciaddr) return { changed: false };
        return { changed: this.drop(mac) };
      }
      case DHCP.DECLINE: {
        const ip = ipOption(m, DHCP_OPTION.REQUESTED_IP);
        if (ip !== undefined) this.declined.set(ip, now + DECLINE_HOLD_MS);
        return { changed: this.drop(mac) };
      }
      case DHCP.INFORM:
        return m.ciaddr ? { reply: this.reply(m, DHCP.ACK, 0, m.ciaddr, false), changed: false } : { changed: false };
      default:
        return { changed: false };
    }
  }

  private drop(mac: string): boolean {
    const l = this.leases.get(mac);
    this.leases.delete(mac);
    return Boolean(l && !l.offered);
  }

  private inSubnet(ip: number): boolean {
    return ((ip & this.mask) >>> 0) === ((this.server & this.mask) >>> 0) && ip !== this.server;
  }

  /** Whether `ip` may be leased to `mac` now. */
  private allowed(mac: string, ip: number): boolean {
    const fixed = this.statics.get(mac);
    if (fixed) return fixed.ip === ip;
    if (ip < this.start || ip > this.end || !this.inSubnet(ip) || this.staticIps.has(ip)) return false;
    if ((this.declined.get(ip) ?? 0) > this.now()) return false;
    for (const l of this.leases.values()) if (l.ip === ip && l.mac !== mac && l.expires > this.now()) return false;
    return true;
  }

  /** The address to offer: the static one, the client's current one, the one it asks for, or the lowest free. */
  private choose(mac: string, requested: number | undefined): number | undefined {
    const fixed = this.statics.get(mac);
    if (fixed) return fixed.ip;
    const current = this.leases.get(mac);
    if (current && this.allowed(mac, current.ip)) return current.ip;
    if (requested !== undefined && this.allowed(mac, requested)) return requested;
    for (let ip = this.start; ip <= this.end; ip++) if (this.allowed(mac, ip)) return ip;
    return undefined;
  }

  private nak(m: DhcpMessage, message: string): DhcpReply {
    const opts: [number, Buffer][] = [
      [DHCP_OPTION.MESSAGE_TYPE, Buffer.from([DHCP.NAK])],
      [DHCP_OPTION.SERVER_ID, ip4(this.server)],
      [DHCP_OPTION.MESSAGE, Buffer.from(message, 'latin1')],
    ];
    return { type: DHCP.NAK, yiaddr: 0, payload: this.encode(m, 0, opts) };
  }

  private reply(m: DhcpMessage, type: number, yiaddr: number, unicastTo?: number, withLease = true): DhcpReply {
    const broadcast = (this.server | ~this.mask) >>> 0;
    const leaseSec = Math.floor(this.leaseMs / 1000);
    const opts: [number, Buffer][] = [
      [DHCP_OPTION.MESSAGE_TYPE, Buffer.from([type])],
      [DHCP_OPTION.SERVER_ID, ip4(this.server)],
      ...(withLease ? ([[DHCP_OPTION.LEASE_TIME, u32(leaseSec)], [DHCP_OPTION.T1, u32(Math.floor(leaseSec / 2))], [DHCP_OPTION.T2, u32(Math.floor((leaseSec * 7) / 8))]] as [number, Buffer][]) : []),
      [DHCP_OPTION.SUBNET_MASK, ip4(this.mask)],
      [DHCP_OPTION.BROADCAST, ip4(broadcast)],
      [DHCP_OPTION.ROUTER, ip4(this.server)],
      [DHCP_OPTION.DNS, ip4(this.server)],
    ];
    if (this.config.domain) opts.push([DHCP_OPTION.DOMAIN, Buffer.from(this.config.domain, 'latin1')]);
    const name = this.statics.get(macText(m.chaddr))?.name;
    if (name && withLease) opts.push([DHCP_OPTION.HOSTNAME, Buffer.from(name, 'latin1')]);
    // RFC 2131 4.1: unicast to the client's address when it has one, or when it does not ask for broadcast.
    const to = unicastTo ?? ((m.flags & 0x8000) === 0 && yiaddr ? yiaddr : undefined);
    return { type, yiaddr, unicastTo: to, payload: this.encode(m, yiaddr, opts) };
  }

  private encode(m: DhcpMessage, yiaddr: number, opts: [number, Buffer][]): Buffer {
    const optBytes = opts.flatMap(([code, value]) => [code, value.length, ...value]);
    const out = Buffer.alloc(Math.max(300, FIXED + 4 + optBytes.length + 1));
    out[0] = 2; // BOOTREPLY
    out[1] = 1;
    out[2] = 6;
    out.writeUInt32BE(m.xid, 4);
    out.writeUInt16BE(m.flags & 0x8000, 10);
    out.writeUInt32BE(m.ciaddr, 12);
    out.writeUInt32BE(yiaddr, 16);
    out.writeUInt32BE(this.server, 20);
    out.writeUInt32BE(m.giaddr, 24);
    out.set(m.chaddr, 28);
    out.writeUInt32BE(MAGIC, FIXED);
    out.set(optBytes, FIXED + 4);
    out[FIXED + 4 + optBytes.length] = DHCP_OPTION.END;
    return out;
  }
}

export function ip4(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function u32(n: number): Buffer {
  return ip4(n);
}
