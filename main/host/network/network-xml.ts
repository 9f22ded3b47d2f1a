// libvirt's network XML, the part Domus's switch serves: <name>, <uuid>, <forward mode='nat'> (or
// none: isolated), <bridge name>, <mac address>, <domain name>, one IPv4 <ip address prefix|netmask>
// with <dhcp> (<range start end>, <host mac ip name>), <dns><host ip><hostname>, and Domus's host
// port forwards (<portForward>, modelled on libvirt's <interface><portForward>). The document is
// kept as written (comments, unknown elements) and dumped in libvirt's element order.
import type { PortForward, SwitchConfig } from '../../netswitch/protocol.js';
import { XmlSyntaxError, childElements, createElement, firstChild, parseXmlTree, serializeXmlTree, setText, textContent, type XmlElement, type XmlNode } from '../domain/xml-tree.js';

/** libvirt's default DHCP lease time (dnsmasq's 1 h). */
const DEFAULT_LEASE_SECONDS = 3600;
/** Host ports one network may forward (each is a listening socket in the switch). */
export const MAX_FORWARDED_PORTS = 1024;
/** The order virNetworkDefFormat writes a network's elements in; <portForward> (Domus's) last. */
const ORDER = ['name', 'uuid', 'title', 'description', 'metadata', 'forward', 'bridge', 'mtu', 'mac', 'domain', 'dns', 'ip', 'route', 'portgroup', 'portForward'];

export class NetworkXmlError extends Error {
  override name = 'NetworkXmlError';
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
/** A network's name names its definition file and its switch's directory (and unix sockets in it, 108 bytes at most). */
const NAME = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,49}$/;

export function ipNum(text: string): number {
  return text.split('.').reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

function netmaskPrefix(mask: string): number | undefined {
  const n = ipNum(mask);
  const prefix = 32 - Math.log2((~n >>> 0) + 1);
  return Number.isInteger(prefix) ? prefix : undefined;
}

/** A parsed network definition: the document as written and what the switch serves from it. */
export interface NetworkDocument {
  nodes: XmlNode[];
  root: XmlElement;
  uuid: string;
  /** <bridge name>, when the definition names one. */
  bridge?: string;
  config: SwitchConfig;
}

/** Whether two networks' subnets share an address. */
export function subnetsOverlap(a: { address: string; prefix: number }, b: { address: string; prefix: number }): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  return ((ipNum(a.address) & mask) >>> 0) === ((ipNum(b.address) & mask) >>> 0);
}

/** Whether two port forwards would listen on the same socket (0.0.0.0 takes the port on every address). */
export function listenClash(a: PortForward, b: PortForward): boolean {
  return a.proto === b.proto && a.port === b.port && (a.address === b.address || a.address === '0.0.0.0' || b.address === '0.0.0.0');
}

export function parseNetworkXml(xml: string, where: string): NetworkDocument {
  const bad = (problem: string) => new NetworkXmlError(`invalid network XML in ${where}: ${problem}`);
  let nodes: XmlNode[];
  try {
    nodes = parseXmlTree(xml);
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw bad(err.message.replace('domain XML', 'network XML'));
    throw err;
  }
  const root = nodes.find((n): n is XmlElement => n.type === 'element');
  if (!root || root.name !== 'network') throw bad(`root element is <${root?.name}>, expected <network>`);
  return { nodes, root, ...derive(root, bad) };
}

function derive(root: XmlElement, bad: (problem: string) => NetworkXmlError): Omit<NetworkDocument, 'nodes' | 'root'> {
  const nameEl = firstChild(root, 'name');
  const name = nameEl ? textContent(nameEl).trim() : '';
  if (!name) throw bad('<name> is missing');
  if (!NAME.test(name)) throw bad(`<name>${name}</name>: a network name is 1 to 50 letters, digits and '_', '+', '-', '.' (not first)`);
  const uuidEl = firstChild(root, 'uuid');
  const uuid = uuidEl ? textContent(uuidEl).trim() : '';
  if (uuidEl && !UUID.test(uuid)) throw bad(`<uuid>${uuid}</uuid> is not a UUID`);
  const forwardEl = firstChild(root, 'forward');
  const mode = forwardEl ? (forwardEl.attributes.mode ?? 'nat') : 'none';
  if (mode !== 'nat' && mode !== 'none') {
    throw bad(`<forward mode='${mode}'> is not supported: Domus networks are NAT (<forward mode='nat'/>) or isolated (no <forward>)`);
  }
  if (forwardEl?.attributes.dev !== undefined) throw bad(`<forward dev='${forwardEl.attributes.dev}'>: Domus's NAT goes through the host's own sockets, not a chosen device`);
  const bridge = firstChild(root, 'bridge')?.attributes.name;
  const macEl = firstChild(root, 'mac');
  const mac = macEl?.attributes.address;
  if (macEl && (!mac || !MAC.test(mac))) throw bad(`<mac address='${mac ?? ''}'> is not a MAC address`);
  const ips = childElements(root, 'ip');
  const v6 = ips.find((ip) => (ip.attributes.family ?? 'ipv4') !== 'ipv4');
  if (v6) throw bad(`<ip family='${v6.attributes.family}'> is not supported: the switch serves one IPv4 network`);
  if (ips.length !== 1) throw bad(`expected one IPv4 <ip>, found ${ips.length}`);
  const ip = ips[0]!;
  const address = ip.attributes.address ?? '';
  if (!IPV4.test(address)) throw bad(`<ip address='${address}'> is not an IPv4 address`);
  const { prefix: prefixText, netmask } = ip.attributes;
  if (prefixText !== undefined && netmask !== undefined) throw bad(`<ip> has both prefix and netmask`);
  const prefix = prefixText !== undefined ? (/^\d+$/.test(prefixText) ? Number(prefixText) : NaN) : netmask !== undefined && IPV4.test(netmask) ? netmaskPrefix(netmask) : undefined;
  if (prefix === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
    throw bad(`<ip address='${address}'> needs a prefix from 8 to 30 or the matching netmask (${prefixText !== undefined ? `prefix='${prefixText}'` : netmask !== undefined ? `netmask='${netmask}'` : 'none given'})`);
  }
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const net = (ipNum(address) & mask) >>> 0;
  const broadcast = (net | ~mask) >>> 0;
  const inNet = (a: string) => IPV4.test(a) && ((ipNum(a) & mask) >>> 0) === net;
  const host = (a: string) => inNet(a) && ipNum(a) !== net && ipNum(a) !== broadcast;
  if (!host(address)) throw bad(`<ip address='${address}'> is the network or broadcast address of ${address}/${prefix}`);
  const config: SwitchConfig = { name, mac: (mac ?? '').toLowerCase(), address, prefix, dnsHosts: [], forward: mode, portForwards: [] };
  const domain = firstChild(root, 'domain')?.attributes.name;
  if (domain) config.domain = domain;
  const dhcp = firstChild(ip, 'dhcp');
  if (dhcp) {
    const ranges = childElements(dhcp, 'range');
    if (ranges.length !== 1) throw bad(`<dhcp> needs one <range>, found ${ranges.length}`);
    const { start = '', end = '' } = ranges[0]!.attributes;
    if (!host(start) || !host(end) || ipNum(start) > ipNum(end)) throw bad(`<range start='${start}' end='${end}'> is not a range inside ${address}/${prefix}`);
    const hosts = childElements(dhcp, 'host').map((h) => {
      const { mac: hostMac = '', ip: hostIp = '', name: hostName } = h.attributes;
      if (!MAC.test(hostMac)) throw bad(`<host mac='${hostMac}'> is not a MAC address`);
      if (!host(hostIp)) throw bad(`<host ip='${hostIp}'> is not inside ${address}/${prefix}`);
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
  const forwards = childElements(root, 'portForward');
  if (forwards.length && mode !== 'nat') throw bad(`<portForward> needs a NAT network (<forward mode='nat'/>): an isolated network's guests are not reachable from the host`);
  for (const pf of forwards) {
    const { proto = 'tcp', address: listen = '127.0.0.1', guest = '' } = pf.attributes;
    if (proto !== 'tcp' && proto !== 'udp') throw bad(`<portForward proto='${proto}'> is not 'tcp' or 'udp'`);
    if (!IPV4.test(listen)) throw bad(`<portForward address='${listen}'> is not an IPv4 address`);
    if (!host(guest) || guest === address) throw bad(`<portForward guest='${guest}'> is not a guest's address inside ${address}/${prefix}`);
    const ranges = childElements(pf, 'range');
    if (!ranges.length) throw bad(`<portForward guest='${guest}'> has no <range start to>`);
    for (const r of ranges) {
      const port = (attr: string, text: string | undefined) => {
        const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
        if (!(n >= 1 && n <= 65535)) throw bad(`<portForward><range ${attr}='${text ?? ''}'> is not a port from 1 to 65535`);
        return n;
      };
      const start = port('start', r.attributes.start);
      const end = r.attributes.end === undefined ? start : port('end', r.attributes.end);
      const to = r.attributes.to === undefined ? start : port('to', r.attributes.to);
      if (end < start) throw bad(`<portForward><range start='${start}' end='${end}'>: end is below start`);
      if (to + (end - start) > 65535) throw bad(`<portForward><range start='${start}' end='${end}' to='${to}'>: the guest's ports would pass 65535`);
      if (config.portForwards.length + (end - start + 1) > MAX_FORWARDED_PORTS) throw bad(`<portForward>: more than ${MAX_FORWARDED_PORTS} forwarded ports`);
      for (let p = start; p <= end; p++) {
        const entry: PortForward = { proto, address: listen, port: p, guest, guestPort: to + (p - start) };
        const twice = config.portForwards.find((e) => listenClash(e, entry));
        if (twice) throw bad(`<portForward>: ${proto} ${listen}:${p} is forwarded twice (also to ${twice.guest}:${twice.guestPort})`);
        config.portForwards.push(entry);
      }
    }
  }
  return { uuid, config, ...(bridge && { bridge }) };
}

/**
 * What libvirt adds at define: a <uuid> and a <mac> when the definition has none. Returns a new
 * document; the text the user wrote is otherwise kept (elements put in libvirt's order).
 */
export function completeNetwork(doc: NetworkDocument, generate: { uuid: () => string; macBytes: () => Uint8Array }): NetworkDocument {
  const root = structuredClone(doc.root);
  if (!firstChild(root, 'uuid')) root.children.push(withText('uuid', generate.uuid()));
  if (!firstChild(root, 'mac')) {
    const mac = `52:54:00:${[...generate.macBytes().subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    root.children.push(createElement('mac', { address: mac }));
  }
  return reparse(doc, inOrder(root));
}

function withText(name: string, text: string): XmlElement {
  const el = createElement(name);
  setText(el, text);
  return el;
}

/** Top-level elements in libvirt's order (a comment travels with the element after it); unknown ones keep their place at the end. */
function inOrder(root: XmlElement): XmlElement {
  const groups: { rank: number; nodes: XmlNode[] }[] = [];
  let pending: XmlNode[] = [];
  for (const child of root.children) {
    if (child.type === 'text') continue;
    pending.push(child);
    if (child.type !== 'element') continue;
    const rank = ORDER.indexOf(child.name);
    groups.push({ rank: rank < 0 ? ORDER.length : rank, nodes: pending });
    pending = [];
  }
  groups.sort((a, b) => a.rank - b.rank);
  return { ...root, children: [...groups.flatMap((g) => g.nodes), ...pending] };
}

function reparse(doc: NetworkDocument, root: XmlElement): NetworkDocument {
  const nodes = doc.nodes.map((n) => (n === doc.root ? root : n));
  return parseNetworkXml(serializeXmlTree(nodes), `network '${doc.config.name}'`);
}

export function serializeNetworkXml(doc: NetworkDocument): string {
  return serializeXmlTree(doc.nodes);
}

/** libvirt's default network (its default.xml), which the host defines on its first run. */
export const DEFAULT_NETWORK_XML = `<network>
  <name>default</name>
  <forward mode='nat'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`;
