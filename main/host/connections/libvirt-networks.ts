// Virtual networks of a libvirt host (virsh net-*) and domains' interfaces on them (domiflist,
// domifaddr, attach-interface, detach-interface, domif-setlink), answered in the shapes of this
// computer's own networks (NetworkInfo, NetworkLease, DomainInterface), and libvirt's network
// lifecycle events as Domus's network.lifecycle. Interface device XML is cut from libvirt's own
// definition of the domain, as the disk edits in libvirt-devices.ts are.
import { randomBytes } from 'node:crypto';
import type { DomainInterface, NetworkInfo, NetworkLease } from '../../../shared/api.js';
import { newMac, parseDomainXml, type DomainDocument } from '../domain/xml.js';
import { childElements, createElement, firstChild, parseXmlTree, serializeXmlTree, type XmlElement } from '../domain/xml-tree.js';
import { HostError, invalidArg, operationFailed } from '../errors.js';
import { LibvirtError, VIR_ERR } from '../libvirt/errors.js';
import type { remote_network_event_lifecycle_msg, remote_nonnull_network } from '../libvirt/protocol/remote.js';
import { editedDefinition, impact } from './libvirt-devices.js';
import { uuidText, type LibvirtConnection, type LibvirtMethods, type NonnullDomain } from './libvirt.js';

type Net = remote_nonnull_network;

/** virConnectListAllNetworksFlags: the sets a list reads besides every network's XML. */
const LIST_ACTIVE = 2;
const LIST_PERSISTENT = 4;
const LIST_AUTOSTART = 16;
/** virNetworkXMLFlags. */
const NETWORK_XML_INACTIVE = 1;
/** virNetworkEventID and virNetworkEventLifecycleType, in libvirt's order. */
const NETWORK_EVENT_ID_LIFECYCLE = 0;
const NETWORK_EVENTS = ['defined', 'undefined', 'started', 'stopped'] as const;
/** virDomainInterfaceAddressesSource: the addresses the domain's networks' DHCP servers leased. */
const ADDRESSES_SRC_LEASE = 0;
/** virIPAddrType. */
const IP_TYPES = ['ipv4', 'ipv6'] as const;
/** virDomainXMLFlags. */
const XML_INACTIVE = 2;

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function rootElement(xml: string, name: string): XmlElement {
  const root = parseXmlTree(xml).find((n): n is XmlElement => n.type === 'element');
  if (root?.name !== name) throw operationFailed(`libvirt sent <${root?.name ?? ''}> where <${name}> XML was expected`);
  return root;
}

/** 255.255.255.0 → 24; undefined for what is not a netmask. */
function prefixOfNetmask(mask: string): number | undefined {
  const bits = mask
    .split('.')
    .map((p) => Number(p).toString(2).padStart(8, '0'))
    .join('');
  return /^1*0*$/.test(bits) && bits.length === 32 ? bits.replace(/0+$/, '').length : undefined;
}

/**
 * What a network's XML says that the RPC calls do not: forward mode (no <forward> is isolated;
 * <forward> without a mode is NAT, as libvirt reads it), bridge, the first IPv4 address with its
 * prefix, and its first DHCP range.
 */
export function networkXmlSummary(xml: string): Pick<NetworkInfo, 'forward' | 'bridge' | 'address' | 'prefix' | 'dhcpRange'> {
  const root = rootElement(xml, 'network');
  const forward = firstChild(root, 'forward');
  const summary: ReturnType<typeof networkXmlSummary> = { forward: forward ? (forward.attributes.mode ?? 'nat') : 'none' };
  const bridge = firstChild(root, 'bridge')?.attributes.name;
  if (bridge) summary.bridge = bridge;
  const ip = childElements(root, 'ip').find((e) => (e.attributes.family ?? 'ipv4') === 'ipv4' && e.attributes.address);
  if (ip) {
    summary.address = ip.attributes.address;
    const { prefix, netmask } = ip.attributes;
    const bits = prefix !== undefined ? Number(prefix) : netmask !== undefined ? prefixOfNetmask(netmask) : undefined;
    if (bits !== undefined && Number.isInteger(bits) && bits >= 0 && bits <= 32) summary.prefix = bits;
    const range = firstChild(firstChild(ip, 'dhcp') ?? ip, 'range');
    if (range?.attributes.start && range.attributes.end) summary.dhcpRange = { start: range.attributes.start, end: range.attributes.end };
  }
  return summary;
}

/** A domain's <interface> elements, in the order of its definition. */
function interfaceElements(doc: DomainDocument): XmlElement[] {
  const devices = firstChild(doc.root, 'devices');
  return devices ? childElements(devices, 'interface') : [];
}

/** One <interface> as virsh domiflist prints it. */
function describeInterface(el: XmlElement): DomainInterface {
  const source = firstChild(el, 'source')?.attributes;
  const row: DomainInterface = {
    name: firstChild(el, 'target')?.attributes.dev ?? '-',
    type: el.attributes.type ?? '',
    mac: firstChild(el, 'mac')?.attributes.address?.toLowerCase() ?? '',
    link: firstChild(el, 'link')?.attributes.state === 'down' ? 'down' : 'up',
  };
  const src = source && (source.network ?? source.bridge ?? source.dev);
  if (src) row.source = src;
  const model = firstChild(el, 'model')?.attributes.type;
  if (model) row.model = model;
  return row;
}

export class LibvirtNetworks {
  /** The last info read of each network by UUID, for an undefined event that can no longer read it. */
  private readonly known = new Map<string, NetworkInfo>();
  /** Events are handled one after the other, so that each is emitted in libvirt's order. */
  private events: Promise<void> = Promise.resolve();

  constructor(private readonly conn: LibvirtConnection) {
    // Every open registers again: a reopened connection is a new client to libvirtd.
    conn.onOpen(async (rpc) => {
      rpc.onMessage('REMOTE_PROC_NETWORK_EVENT_LIFECYCLE', (msg) => {
        this.events = this.events.then(() => this.lifecycle(msg)).catch(() => undefined);
      });
      try {
        await rpc.call('REMOTE_PROC_CONNECT_NETWORK_EVENT_REGISTER_ANY', { eventID: NETWORK_EVENT_ID_LIFECYCLE, net: null });
      } catch (err) {
        // A host without a network driver (a session daemon) still opens; it just has no network events.
        if (!(err instanceof LibvirtError && err.code === VIR_ERR.NO_SUPPORT)) throw err;
      }
    });
  }

  /** A network by name or UUID, as virsh looks them up. */
  async lookup(ref: string): Promise<Net> {
    if (UUID.test(ref)) {
      try {
        return (await this.conn.rpcCall('REMOTE_PROC_NETWORK_LOOKUP_BY_UUID', { uuid: Buffer.from(ref.replace(/-/g, ''), 'hex') })).net;
      } catch (err) {
        if (!(err instanceof HostError && err.code === 'NO_NETWORK')) throw err;
      }
    }
    return (await this.conn.rpcCall('REMOTE_PROC_NETWORK_LOOKUP_BY_NAME', { name: ref })).net;
  }

  /**
   * Every network in N + 4 calls for N networks, all sent at once: the list, the active, persistent
   * and autostarted sets as filtered lists, and each network's XML.
   */
  async list(): Promise<NetworkInfo[]> {
    const listed = async (flags: number): Promise<Net[]> => (await this.conn.rpcCall('REMOTE_PROC_CONNECT_LIST_ALL_NETWORKS', { need_results: 1, flags })).nets;
    const uuids = async (flags: number): Promise<Set<string>> => new Set((await listed(flags)).map((n) => uuidText(n.uuid)));
    const [all, active, persistent, autostart] = await Promise.all([listed(0), uuids(LIST_ACTIVE), uuids(LIST_PERSISTENT), uuids(LIST_AUTOSTART)]);
    const infos = await Promise.all(
      all.map(async (net) => {
        const uuid = uuidText(net.uuid);
        return this.infoOf(net, await this.xml(net, false), { active: active.has(uuid), persistent: persistent.has(uuid), autostart: autostart.has(uuid) });
      }),
    );
    return infos.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One network's info, read afresh in four calls sent at once. */
  async info(net: Net): Promise<NetworkInfo> {
    const [xml, active, persistent, autostart] = await Promise.all([
      this.xml(net, false),
      this.conn.rpcCall('REMOTE_PROC_NETWORK_IS_ACTIVE', { net }),
      this.conn.rpcCall('REMOTE_PROC_NETWORK_IS_PERSISTENT', { net }),
      this.conn.rpcCall('REMOTE_PROC_NETWORK_GET_AUTOSTART', { net }),
    ]);
    return this.infoOf(net, xml, { active: active.active === 1, persistent: persistent.persistent === 1, autostart: autostart.autostart === 1 });
  }

  async xml(net: Net, inactive: boolean): Promise<string> {
    return (await this.conn.rpcCall('REMOTE_PROC_NETWORK_GET_XML_DESC', { net, flags: inactive ? NETWORK_XML_INACTIVE : 0 })).xml as string;
  }

  private infoOf(net: Net, xml: string, state: { active: boolean; persistent: boolean; autostart: boolean }): NetworkInfo {
    const info: NetworkInfo = { name: net.name, uuid: uuidText(net.uuid), ...state, ...networkXmlSummary(xml) };
    this.known.set(info.uuid, info);
    return info;
  }

  /** net-destroy: a transient network is gone afterwards, and its info is the last one, inactive. */
  async destroy(net: Net): Promise<NetworkInfo> {
    const before = await this.info(net);
    await this.conn.rpcCall('REMOTE_PROC_NETWORK_DESTROY', { net });
    return before.persistent ? this.info(net) : { ...before, active: false };
  }

  async leases(net: Net, mac?: string): Promise<NetworkLease[]> {
    const { leases } = await this.conn.rpcCall('REMOTE_PROC_NETWORK_GET_DHCP_LEASES', { net, mac: mac ?? null, need_results: 1, flags: 0 });
    return leases.map((l) => {
      const lease: NetworkLease = { network: net.name, mac: l.mac ?? '', address: l.ipaddr, prefix: l.prefix, expiryTime: Number(l.expirytime) };
      if (l.hostname) lease.hostname = l.hostname;
      if (l.clientid) lease.clientId = l.clientid;
      return lease;
    });
  }

  /** libvirt's network lifecycle event as Domus's, with the network's info read afresh (the last one read when it is gone). */
  private async lifecycle(msg: remote_network_event_lifecycle_msg): Promise<void> {
    const event = NETWORK_EVENTS[msg.event];
    if (!event) return;
    const uuid = uuidText(msg.net.uuid);
    let network: NetworkInfo;
    try {
      network = await this.info(msg.net);
    } catch (err) {
      if (!(err instanceof HostError && err.code === 'NO_NETWORK')) throw err;
      const last = this.known.get(uuid);
      this.known.delete(uuid);
      network = { forward: 'unknown', ...last, name: msg.net.name, uuid, active: false, persistent: false, autostart: false };
    }
    this.conn.emitEvent('network.lifecycle', { network, event });
  }

  methods(): LibvirtMethods {
    const conn = this.conn;
    const summary = async (dom: NonnullDomain) => ({ domain: await conn.summary(dom) });
    /** The <interface> a detach or link change names, in the definition these flags edit. */
    const findInterface = (doc: DomainDocument, pick: (row: DomainInterface) => boolean, what: string): XmlElement => {
      const found = interfaceElements(doc).filter((el) => pick(describeInterface(el)));
      if (found.length === 0) throw operationFailed(`No interface found whose ${what}`);
      if (found.length > 1) throw operationFailed(`Domain has ${found.length} interfaces whose ${what}; name one by its MAC address`);
      return found[0]!;
    };
    return {
      'network.list': async () => ({ networks: await this.list() }),
      'network.define': async (p) => {
        const { net } = await conn.rpcCall('REMOTE_PROC_NETWORK_DEFINE_XML', { xml: p.xml as string });
        return { network: await this.info(net), warnings: [] };
      },
      'network.undefine': async (p) => {
        await conn.rpcCall('REMOTE_PROC_NETWORK_UNDEFINE', { net: await this.lookup(p.network as string) });
        return {};
      },
      'network.start': async (p) => {
        const net = await this.lookup(p.network as string);
        await conn.rpcCall('REMOTE_PROC_NETWORK_CREATE', { net });
        return { network: await this.info(net) };
      },
      'network.destroy': async (p) => ({ network: await this.destroy(await this.lookup(p.network as string)) }),
      'network.xml': async (p) => ({ xml: await this.xml(await this.lookup(p.network as string), Boolean(p.inactive)) }),
      'network.setAutostart': async (p) => {
        const net = await this.lookup(p.network as string);
        await conn.rpcCall('REMOTE_PROC_NETWORK_SET_AUTOSTART', { net, autostart: p.enabled ? 1 : 0 });
        return { network: await this.info(net) };
      },
      'network.dhcpLeases': async (p) => ({ leases: await this.leases(await this.lookup(p.network as string), p.mac as string | undefined) }),
      'domain.interfaces': async (p) => {
        const dom = await conn.lookup(p.domain!);
        const { xml } = await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags: p.inactive ? XML_INACTIVE : 0 });
        return { interfaces: interfaceElements(parseDomainXml(xml as string)).map(describeInterface) };
      },
      'domain.interfaceAddresses': async (p) => {
        const dom = await conn.lookup(p.domain!);
        const { ifaces } = await conn.rpcCall('REMOTE_PROC_DOMAIN_INTERFACE_ADDRESSES', { dom, source: ADDRESSES_SRC_LEASE, flags: 0 });
        const wanted = p.interface as string | undefined;
        return {
          interfaces: ifaces
            .filter((i) => wanted === undefined || i.name === wanted || i.hwaddr?.toLowerCase() === wanted.toLowerCase())
            .map((i) => ({
              name: i.name,
              mac: i.hwaddr ?? '',
              addresses: i.addrs.filter((a) => IP_TYPES[a.type]).map((a) => ({ type: IP_TYPES[a.type]!, address: a.addr, prefix: a.prefix })),
            })),
        };
      },
      'domain.attachInterface': async (p) => {
        const type = p.type as 'network' | 'user';
        const source = p.source as string | undefined;
        if (type === 'network' && !source) throw invalidArg('an interface of type network needs a source network');
        if (type === 'user' && source) throw invalidArg('an interface of type user takes no source');
        const dom = await conn.lookup(p.domain!);
        const flags = impact(p);
        const doc = await editedDefinition(conn, dom, flags);
        const taken = new Set(interfaceElements(doc).map((el) => describeInterface(el).mac));
        const mac = (p.mac as string | undefined)?.toLowerCase() ?? newMac(taken, () => randomBytes(3));
        if (p.mac && taken.has(mac)) throw operationFailed(`the domain already has an interface with MAC address ${mac}`);
        const children = [createElement('mac', { address: mac })];
        if (source) children.push(createElement('source', { network: source }));
        if (p.model) children.push(createElement('model', { type: p.model as string }));
        const xml = serializeXmlTree([createElement('interface', { type }, children)]);
        await conn.rpcCall('REMOTE_PROC_DOMAIN_ATTACH_DEVICE_FLAGS', { dom, xml, flags });
        return { ...(await summary(dom)), mac };
      },
      'domain.detachInterface': async (p) => {
        const type = p.type as string;
        const mac = (p.mac as string | undefined)?.toLowerCase();
        const dom = await conn.lookup(p.domain!);
        const flags = impact(p);
        const doc = await editedDefinition(conn, dom, flags);
        const el = findInterface(doc, (row) => row.type === type && (mac === undefined || row.mac === mac), `type is ${type}${mac ? ` and MAC address is ${mac}` : ''}`);
        await conn.rpcCall('REMOTE_PROC_DOMAIN_DETACH_DEVICE_FLAGS', { dom, xml: serializeXmlTree([el]), flags });
        return summary(dom);
      },
      'domain.setLinkState': async (p) => {
        const ref = (p.interface as string).toLowerCase();
        const dom = await conn.lookup(p.domain!);
        const flags = impact(p);
        const doc = await editedDefinition(conn, dom, flags);
        const el = findInterface(doc, (row) => row.mac === ref || (row.name !== '-' && row.name.toLowerCase() === ref), `MAC address or name is ${p.interface as string}`);
        const link = firstChild(el, 'link');
        if (link) link.attributes.state = p.state as string;
        else el.children.push(createElement('link', { state: p.state as string }));
        await conn.rpcCall('REMOTE_PROC_DOMAIN_UPDATE_DEVICE_FLAGS', { dom, xml: serializeXmlTree([el]), flags });
        return summary(dom);
      },
    };
  }
}

export function networkMethods(conn: LibvirtConnection): LibvirtMethods {
  return new LibvirtNetworks(conn).methods();
}
