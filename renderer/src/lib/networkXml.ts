// The Create a Virtual Network form's arithmetic and XML, as virt-manager's createnet does it: an
// IPv4 network in CIDR (the next free 192.168.1xx.0/24 by default), the gateway at its first
// address, DHCP over its upper half, NAT or isolated. The host parses and validates what this builds.
import type { NetworkInfo } from '@shared/api';

export interface NewNetworkFields {
  name: string;
  /** The IPv4 network in CIDR notation, e.g. 192.168.100.0/24. */
  cidr: string;
  dhcp: boolean;
  dhcpStart: string;
  dhcpEnd: string;
  forward: 'nat' | 'none';
}

export interface Subnet {
  /** The network address (host bits zero). */
  network: number;
  prefix: number;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

export function ipToNumber(text: string): number | undefined {
  if (!IPV4.test(text)) return undefined;
  return text.split('.').reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

export function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/N" into its network; a message saying what is wrong otherwise. */
export function parseCidr(text: string): Subnet | string {
  const m = /^\s*([\d.]+)\/(\d{1,2})\s*$/.exec(text);
  if (!m) return 'Write the network as an address and a prefix length, like 192.168.100.0/24.';
  const address = ipToNumber(m[1]);
  if (address === undefined) return `${m[1]} is not an IPv4 address.`;
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) return 'The prefix length must be from 8 to 30.';
  const network = (address & maskOf(prefix)) >>> 0;
  if (network !== address) return `${m[1]} has host bits set for /${prefix}: the network is ${numberToIp(network)}/${prefix}.`;
  return { network, prefix };
}

/** The gateway's address: the first in the network, as libvirt's and virt-manager's defaults. */
export function gatewayOf(subnet: Subnet): number {
  return subnet.network + 1;
}

/** virt-manager's DHCP range: the upper half of the network, up to the address before broadcast. */
export function defaultDhcpRange(subnet: Subnet): { start: string; end: string } {
  const size = 2 ** (32 - subnet.prefix);
  return { start: numberToIp(subnet.network + size / 2), end: numberToIp(subnet.network + size - 2) };
}

function overlaps(a: Subnet, b: Subnet): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.network & maskOf(prefix)) >>> 0) === ((b.network & maskOf(prefix)) >>> 0);
}

/** The subnets the networks already use. */
function subnetsOf(networks: readonly NetworkInfo[]): Subnet[] {
  const out: Subnet[] = [];
  for (const n of networks) {
    const address = n.address === undefined ? undefined : ipToNumber(n.address);
    if (address !== undefined && n.prefix !== undefined) out.push({ network: (address & maskOf(n.prefix)) >>> 0, prefix: n.prefix });
  }
  return out;
}

/** The first 192.168.100.0/24 … 192.168.254.0/24 no network uses, as virt-manager suggests one. */
export function suggestCidr(networks: readonly NetworkInfo[]): string {
  const used = subnetsOf(networks);
  for (let third = 100; third <= 254; third++) {
    const candidate = { network: ((192 << 24) | (168 << 16) | (third << 8)) >>> 0, prefix: 24 };
    if (!used.some((u) => overlaps(u, candidate))) return `${numberToIp(candidate.network)}/24`;
  }
  return '10.0.100.0/24';
}

/** The first `base`, `base1`, `base2`… no network has, for the form's name. */
export function suggestName(networks: readonly NetworkInfo[], base = 'network'): string {
  const names = new Set(networks.map((n) => n.name));
  for (let i = 0; ; i++) if (!names.has(i ? `${base}${i}` : base)) return i ? `${base}${i}` : base;
}

export const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

/** What is wrong with the form, field by field ('' when nothing). */
export function checkNewNetwork(f: NewNetworkFields, networks: readonly NetworkInfo[]): { name: string; cidr: string; dhcp: string } {
  const name = !f.name
    ? 'A network needs a name.'
    : !NETWORK_NAME.test(f.name) || f.name.length > 64
      ? 'The name may hold letters, digits and _ . + - (up to 64), starting with a letter or digit.'
      : networks.some((n) => n.name === f.name)
        ? `A network named ${f.name} exists.`
        : '';
  const subnet = parseCidr(f.cidr);
  let cidr = typeof subnet === 'string' ? subnet : '';
  if (typeof subnet !== 'string') {
    const clash = networks.find((n) => subnetsOf([n]).some((u) => overlaps(u, subnet)));
    if (clash) cidr = `The network ${clash.name} uses ${clash.address}/${clash.prefix}, which overlaps.`;
  }
  let dhcp = '';
  if (f.dhcp && typeof subnet !== 'string') {
    const start = ipToNumber(f.dhcpStart);
    const end = ipToNumber(f.dhcpEnd);
    const inside = (n: number | undefined) => n !== undefined && ((n & maskOf(subnet.prefix)) >>> 0) === subnet.network && n > gatewayOf(subnet) && n < subnet.network + 2 ** (32 - subnet.prefix) - 1;
    if (!inside(start) || !inside(end)) dhcp = `The DHCP range must lie inside ${f.cidr}, above the gateway ${numberToIp(gatewayOf(subnet))} and below the broadcast address.`;
    else if (start! > end!) dhcp = 'The DHCP range starts after it ends.';
  }
  return { name, cidr, dhcp };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');

/** libvirt network XML for the form (checked with checkNewNetwork first); the host adds the <uuid> and <mac>, as libvirt does. */
export function buildNetworkXml(f: NewNetworkFields): string {
  const subnet = parseCidr(f.cidr);
  if (typeof subnet === 'string') throw new Error(subnet);
  const lines = ['<network>', `  <name>${esc(f.name)}</name>`];
  if (f.forward === 'nat') lines.push("  <forward mode='nat'/>");
  lines.push(`  <ip address='${numberToIp(gatewayOf(subnet))}' prefix='${subnet.prefix}'>`);
  if (f.dhcp) lines.push('    <dhcp>', `      <range start='${f.dhcpStart}' end='${f.dhcpEnd}'/>`, '    </dhcp>');
  lines.push('  </ip>', '</network>', '');
  return lines.join('\n');
}

/** "NAT" or "Isolated", as virt-manager's list says; other libvirt modes by name. */
export function forwardLabel(forward: string): string {
  if (forward === 'nat') return 'NAT';
  if (forward === 'none' || forward === '') return 'Isolated';
  return forward.charAt(0).toUpperCase() + forward.slice(1);
}

/** A network as virt-manager's "Network source" lists it: Virtual network 'default' : NAT. */
export function networkSourceLabel(n: NetworkInfo): string {
  return `Virtual network '${n.name}' : ${forwardLabel(n.forward)}${n.active ? '' : ' (inactive)'}`;
}
