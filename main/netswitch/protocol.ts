// The contract between the management host and a virtual network's switch process: the files in the
// switch's directory, network.json (what the switch serves), the data socket's framing (QEMU's
// `-netdev stream`, see main/common/frame-stream.ts) and the JSON-lines control socket. The host
// imports only this file of main/netswitch.
import path from 'node:path';
import { z } from 'zod';

export const SWITCH_FILES = {
  config: 'network.json',
  /** flock-held by the switch for as long as it runs; holds its pid. */
  pid: 'switch.pid',
  log: 'switch.log',
  /** Guests' NICs connect here, one connection per port. */
  ports: 'ports.sock',
  control: 'control.sock',
  /** DHCP leases, written atomically on every change (libvirt's lease status fields). */
  leases: 'leases.json',
} as const;

export type SwitchPaths = { [K in keyof typeof SWITCH_FILES]: string };

export function switchPaths(dir: string): SwitchPaths {
  const f = SWITCH_FILES;
  return {
    config: path.join(dir, f.config),
    pid: path.join(dir, f.pid),
    log: path.join(dir, f.log),
    ports: path.join(dir, f.ports),
    control: path.join(dir, f.control),
    leases: path.join(dir, f.leases),
  };
}

const mac = z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i, 'must be a MAC address');
const ipv4 = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'must be an IPv4 address');

/** What one network's switch serves. The host writes it from the network's definition. */
export interface SwitchConfig {
  name: string;
  /** The gateway endpoint's MAC (libvirt's <mac address> of the network's bridge). */
  mac: string;
  /** The gateway's address and the network's prefix (libvirt's <ip address prefix>). */
  address: string;
  prefix: number;
  /** DNS domain handed out by DHCP, and the suffix DNS answers for (libvirt's <domain name>). */
  domain?: string;
  dhcp?: {
    start: string;
    end: string;
    /** Seconds. */
    leaseTime: number;
    hosts: { mac: string; ip: string; name?: string }[];
  };
  /** DNS A records besides the leased and static hosts (libvirt's <dns><host>). */
  dnsHosts: { ip: string; names: string[] }[];
  /**
   * 'nat': guests reach the host's sockets through the gateway (outbound TCP/UDP from the switch
   * process; the gateway's own address maps to the host's 127.0.0.1). 'none': isolated.
   */
  forward: 'nat' | 'none';
  /** Host ports forwarded to a guest (NAT networks): listen on address:port, connect to guest:guestPort. */
  portForwards: PortForward[];
}

export interface PortForward {
  proto: 'tcp' | 'udp';
  /** The host address to listen on: 127.0.0.1 unless the network says otherwise. */
  address: string;
  port: number;
  guest: string;
  guestPort: number;
}

export const switchConfigSchema: z.ZodType<SwitchConfig> = z.strictObject({
  name: z.string().min(1),
  mac,
  address: ipv4,
  prefix: z.number().int().min(8).max(30),
  domain: z.string().min(1).optional(),
  dhcp: z
    .strictObject({
      start: ipv4,
      end: ipv4,
      leaseTime: z.number().int().min(60),
      hosts: z.array(z.strictObject({ mac, ip: ipv4, name: z.string().min(1).optional() })),
    })
    .optional(),
  dnsHosts: z.array(z.strictObject({ ip: ipv4, names: z.array(z.string().min(1)) })),
  forward: z.enum(['nat', 'none']),
  portForwards: z.array(
    z.strictObject({
      proto: z.enum(['tcp', 'udp']),
      address: ipv4,
      port: z.number().int().min(1).max(65535),
      guest: ipv4,
      guestPort: z.number().int().min(1).max(65535),
    }),
  ),
});

/** One DHCP lease, in the field names of libvirt's lease status file. */
export interface Lease {
  'ip-address': string;
  'mac-address': string;
  hostname?: string;
  'client-id'?: string;
  /** Epoch seconds. */
  'expiry-time': number;
}

export interface PortStatus {
  id: number;
  /** The first source MAC the port sent from (the guest NIC's), once it has sent a frame. */
  mac?: string;
  link: 'up' | 'down';
  /** Counted from the guest's side, as domifstat does: rx = delivered to the guest, tx = sent by it. */
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
  /** Frames for this port dropped (link down, or the guest not reading). */
  dropped: number;
  connectedAt: number;
}

export interface SwitchStatus {
  name: string;
  pid: number;
  mac: string;
  address: string;
  startedAt: number;
  ports: PortStatus[];
  /** MAC addresses set link-down, kept for ports that (re)connect later. */
  linkDown: string[];
  macTable: { mac: string; port: number }[];
  /** NAT networks only: connections through the gateway and the forwarded host ports. */
  nat?: NatStatus;
}

export interface ForwardStatus extends PortForward {
  listening: boolean;
  /** Why the host port could not be listened on, e.g. "127.0.0.1:8080/tcp is already in use on the host". */
  error?: string;
}

export interface NatStatus {
  /** TCP connections and UDP flows through the gateway now. */
  tcp: number;
  udp: number;
  forwards: ForwardStatus[];
}

/** Control requests, one JSON object a line; each answer carries the request's id. */
export type SwitchRequest =
  | { id: number; op: 'status' }
  | { id: number; op: 'leases' }
  | { id: number; op: 'link'; state: 'up' | 'down'; mac?: string; port?: number }
  | { id: number; op: 'stop' };

export type SwitchResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export const switchRequestSchema: z.ZodType<SwitchRequest> = z.union([
  z.strictObject({ id: z.number().int(), op: z.literal('status') }),
  z.strictObject({ id: z.number().int(), op: z.literal('leases') }),
  z.strictObject({ id: z.number().int(), op: z.literal('link'), state: z.enum(['up', 'down']), mac: mac.optional(), port: z.number().int().optional() }),
  z.strictObject({ id: z.number().int(), op: z.literal('stop') }),
]);
