// The part of libvirt's network XML the switch serves: <name>, <mac address>, <domain name>, one
// IPv4 <ip address prefix|netmask> with <dhcp> (<range start end>, <host mac ip name>), and <dns>
// <host ip><hostname>. <forward mode='nat'> makes a NAT network (no <forward>: isolated), with
// Domus's <portForward proto address port guest guestPort/> children for forwarded host ports.
import type { SwitchConfig } from '../../netswitch/protocol.js';
import { childElements, firstChild, parseXmlTree, textContent, type XmlElement } from '../domain/xml-tree.js';

/** libvirt's default DHCP lease time (dnsmasq's 1 h). */
const DEFAULT_LEASE_SECONDS = 3600;

export class NetworkXmlError extends Error {
  override name = 'NetworkXmlError';
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function ipNum(text: string): number {
  return text.split('.').reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

function netmaskPrefix(mask: string): number | undefined {
  const n = ipNum(mask);
  const prefix = 32 - Math.log2((~n >>> 0) + 1);
  return Number.isInteger(prefix) ? prefix : undefined;
}

export function parseNetworkXml(xml: string, where: string): SwitchConfig {
  const bad = (problem: string) => new NetworkXmlError(`invalid network XML in ${where}: ${problem}`);
  let root: XmlElement | undefined;
  try {
    root = parseXmlTree(xml).find((n): n is XmlElement => n.type === 'element');
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (!root || root.name !== 'network') throw bad(`root element is <${root?.name}>, expected <network>`);
  const name = textContent(firstChild(root, 'name') ?? root).trim();
  if (!firstChild(root, 'name') || !name) throw bad('<name> is missing');
  const mac = firstChild(root, 'mac')?.attributes.address;
  if (!mac || !MAC.test(mac)) throw bad(`<mac address='${mac ?? ''}'> is not a MAC address`);
  const ips = childElements(root, 'ip').filter((ip) => (ip.attributes.family ?? 'ipv4') === 'ipv4');
  if (ips.length !== 1) throw bad(`expected one IPv4 <ip>, found ${ips.length}`);
  const ip = ips[0]!;
  const address = ip.attributes.address ?? '';
  if (!IPV4.test(address)) throw bad(`<ip address='${address}'> is not an IPv4 address`);
  const prefix = ip.attributes.prefix !== undefined ? Number(ip.attributes.prefix) : ip.attributes.netmask !== undefined && IPV4.test(ip.attributes.netmask) ? netmaskPrefix(ip.attributes.netmask) : undefined;
  if (prefix === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw bad(`<ip> needs a prefix from 8 to 30 or the matching netmask`);
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const inNet = (a: string) => IPV4.test(a) && ((ipNum(a) & mask) >>> 0) === ((ipNum(address) & mask) >>> 0);
  const forward = firstChild(root, 'forward');
  const mode = forward?.attributes.mode ?? 'nat';
  if (forward && mode !== 'nat') throw bad(`<forward mode='${mode}'> is not supported (only 'nat', or no <forward> for an isolated network)`);
  const config: SwitchConfig = { name, mac: mac.toLowerCase(), address, prefix, dnsHosts: [], forward: forward ? 'nat' : 'none', portForwards: [] };
  for (const pf of forward ? childElements(forward, 'portForward') : []) {
    const { proto = 'tcp', address: listen = '127.0.0.1', port = '', guest = '', guestPort = port } = pf.attributes;
    const portOk = (p: string) => /^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= 65535;
    if ((proto !== 'tcp' && proto !== 'udp') || !IPV4.test(listen) || !portOk(port) || !inNet(guest) || !portOk(guestPort)) {
      throw bad(`<portForward proto='${proto}' address='${listen}' port='${port}' guest='${guest}' guestPort='${guestPort}'> needs proto tcp or udp, a host IPv4 address, ports from 1 to 65535 and a guest address inside ${address}/${prefix}`);
    }
    config.portForwards.push({ proto, address: listen, port: Number(port), guest, guestPort: Number(guestPort) });
  }
  const domain = firstChild(root, 'domain')?.attributes.name;
  if (domain) config.domain = domain;
  const dhcp = firstChild(ip, 'dhcp');
  if (dhcp) {
    const range = firstChild(dhcp, 'range');
    if (!range) throw bad('<dhcp> has no <range>');
    const { start = '', end = '' } = range.attributes;
    if (!inNet(start) || !inNet(end) || ipNum(start) > ipNum(end)) throw bad(`<range start='${start}' end='${end}'> is not a range inside ${address}/${prefix}`);
    const hosts = childElements(dhcp, 'host').map((h) => {
      const { mac: hostMac = '', ip: hostIp = '', name: hostName } = h.attributes;
      if (!MAC.test(hostMac)) throw bad(`<host mac='${hostMac}'> is not a MAC address`);
      if (!inNet(hostIp)) throw bad(`<host ip='${hostIp}'> is not inside ${address}/${prefix}`);
      return { mac: hostMac.toLowerCase(), ip: hostIp, ...(hostName && { name: hostName }) };
    });
    config.dhcp = { start, end, leaseTime: DEFAULT_LEASE_SECONDS, hosts };
  }
  const dns = firstChild(root, 'dns');
  for (const h of dns ? childElements(dns, 'host') : []) {
    const hostIp = h.attributes.ip ?? '';
    if (!IPV4.test(hostIp)) throw bad(`<dns><host ip='${hostIp}'> is not an IPv4 address`);
    config.dnsHosts.push({ ip: hostIp, names: childElements(h, 'hostname').map((n) => textContent(n).trim()).filter(Boolean) });
  }
  return config;
}
