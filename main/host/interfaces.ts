// A domain's network interfaces (virsh domiflist, domifaddr, attach-interface, detach-interface,
// domif-setlink): the definition's <interface> elements, the host-side names of a running domain's
// NICs, their leases on the networks' switches, and link state set on the switch by MAC.
import { randomBytes } from 'node:crypto';
import type { DomainInterface, DomainSummary, Result } from '../../shared/api.js';
import { parseDomainXml, serializeDomainXml, type DomainDocument } from './domain/xml.js';
import { invalidArg, operationFailed, operationUnsupported } from './errors.js';
import { addInterface, connected, interfaceAliases, interfaceTargets, nameNewInterface, removeInterface, setInterfaceLink } from './network/interface-xml.js';
import type { Networks } from './network/networks.js';
import type { DomainRecord, DomainRegistry } from './registry.js';

export class Interfaces {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly networks: Networks,
  ) {}

  /** virsh domiflist: vnetN names while running, '-' in the definition. */
  list(ref: string, inactive: boolean): DomainInterface[] {
    const rec = this.registry.lookup(ref);
    const doc = !inactive && rec.liveDoc ? rec.liveDoc : rec.doc;
    const targets = doc === rec.liveDoc ? interfaceTargets(doc) : [];
    return doc.config.interfaces.map((iface, i) => ({
      name: targets[i] ?? '-',
      type: iface.type,
      ...(iface.source && { source: iface.source }),
      ...(iface.model && { model: iface.model }),
      mac: iface.mac ?? '-',
      link: iface.link ?? 'up',
    }));
  }

  /** virsh domifaddr --source lease: what the networks' DHCP servers leased to the running domain's MACs. */
  addresses(ref: string, only?: string): Result<'domain.interfaceAddresses'> {
    const rec = this.registry.lookup(ref);
    this.registry.requireLive(rec);
    const nics = this.list(ref, false).filter((n) => n.name !== '-');
    if (only && !nics.some((n) => n.name === only || n.mac === only.toLowerCase())) throw invalidArg(`no interface with name or MAC '${only}' on domain '${rec.doc.config.name}'`);
    const leases = new Map<string, ReturnType<Networks['leasesOnFile']>>();
    const interfaces = nics
      .filter((n) => !only || n.name === only || n.mac === only.toLowerCase())
      .map((n) => {
        if (!leases.has(n.source!)) leases.set(n.source!, this.networks.leasesOnFile(n.source!));
        const addresses = leases
          .get(n.source!)!
          .filter((l) => l.mac === n.mac)
          .map((l) => ({ type: 'ipv4' as const, address: l.address, prefix: l.prefix }));
        return { name: n.name, mac: n.mac, addresses };
      })
      // As libvirt's lease source: only interfaces that hold a lease.
      .filter((n) => n.addresses.length);
    return { interfaces };
  }

  /** virsh attach-interface: into the definition and/or plugged into the running guest where its engine can. */
  async attach(ref: string, p: { type: 'network' | 'user'; source?: string; model?: string; mac?: string; live: boolean; config: boolean }): Promise<{ domain: DomainSummary; mac: string }> {
    const rec = this.registry.lookup(ref);
    const { live, config } = this.registry.scope(rec, p);
    if (p.type === 'network' && !p.source) throw invalidArg('an interface of type network needs a source network');
    if (p.type === 'user' && p.source) throw invalidArg('an interface of type user takes no source');
    const taken = new Set([...rec.doc.config.interfaces, ...(rec.liveDoc?.config.interfaces ?? [])].map((i) => i.mac));
    const mac = p.mac?.toLowerCase() ?? newMac(taken);
    if (taken.has(mac)) throw operationFailed(`domain '${rec.doc.config.name}' already has an interface with MAC address ${mac}`);
    const spec = { type: p.type, mac, source: p.source, model: p.model };
    let plug: (() => Promise<void>) | undefined;
    if (live) {
      const liveDoc = rec.liveDoc!;
      if (!rec.live!.attachNic) throw this.noHotplug(rec, 'attach');
      if (p.type !== 'network') throw operationUnsupported(`an interface of type '${p.type}' is not connected by the engines here; only one on a virtual network can be plugged into a running guest`);
      const unavailable = await this.networks.checkInterfaces({ ...liveDoc.config, interfaces: [{ type: 'network', source: p.source }] });
      if (unavailable) throw unavailable;
      const liveDraft = copy(liveDoc);
      addInterface(liveDraft, spec);
      const index = liveDraft.config.interfaces.findIndex((i) => i.mac === mac);
      const { alias } = nameNewInterface(liveDraft, index, this.registry.runningTargets());
      plug = async () => {
        const socket = await this.networks.portSocket(p.source!);
        await rec.live!.attachNic!({ mac, model: p.model, socket }, alias, serializeDomainXml(liveDraft)).catch((err: Error) => {
          throw operationFailed(`cannot plug the interface into domain '${rec.doc.config.name}': ${err.message}`);
        });
        rec.liveDoc = liveDraft;
      };
    }
    const draft = config ? copy(rec.doc) : undefined;
    if (draft) addInterface(draft, spec);
    await this.registry.configThenLive(rec, draft, async () => plug?.());
    this.registry.emitLifecycle(rec, 'defined');
    return { domain: this.registry.summary(rec), mac };
  }

  /** virsh detach-interface: by MAC, or the only interface of that type; from the definition and/or the running guest. */
  async detach(ref: string, p: { type: 'network' | 'user'; mac?: string; live: boolean; config: boolean }): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const { live, config } = this.registry.scope(rec, p);
    let unplug: (() => Promise<void>) | undefined;
    if (live) {
      const liveDoc = rec.liveDoc!;
      if (!rec.live!.detachNic) throw this.noHotplug(rec, 'detach');
      const index = findInterface(liveDoc, p.type, p.mac);
      const alias = interfaceAliases(liveDoc)[index];
      if (!alias) throw operationUnsupported(`the interface of type '${p.type}' is not connected in the running guest; detach it with --config`);
      const liveDraft = copy(liveDoc);
      removeInterface(liveDraft, index);
      unplug = async () => {
        await rec.live!.detachNic!(alias, serializeDomainXml(liveDraft)).catch((err: Error) => {
          throw operationFailed(`cannot unplug the interface from domain '${rec.doc.config.name}': ${err.message}`);
        });
        rec.liveDoc = liveDraft;
      };
    }
    let draft: DomainDocument | undefined;
    if (config) {
      draft = copy(rec.doc);
      removeInterface(draft, findInterface(rec.doc, p.type, p.mac));
    }
    await this.registry.configThenLive(rec, draft, async () => unplug?.());
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  /** virsh domif-setlink: live on the network's switch (by MAC) and/or in the definition's <link state>. */
  async setLink(ref: string, p: { interface: string; state: 'up' | 'down'; live: boolean; config: boolean }): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const { live, config } = this.registry.scope(rec, p);
    const notFound = () => operationFailed(`interface (dev: ${p.interface}) not found`);
    // A vnetN name exists while the domain runs; the definition's interface is the one with its MAC.
    const liveTargets = rec.liveDoc ? interfaceTargets(rec.liveDoc) : [];
    const named = rec.liveDoc?.config.interfaces[liveTargets.indexOf(p.interface)];
    const mac = named?.mac ?? p.interface.toLowerCase();
    const liveIndex = live ? rec.liveDoc!.config.interfaces.findIndex((iface) => iface.mac === mac) : -1;
    if (live && liveIndex < 0) throw notFound();
    const liveIface = live ? rec.liveDoc!.config.interfaces[liveIndex]! : undefined;
    if (liveIface && !connected(liveIface)) throw operationUnsupported(`interface ${p.interface} is of type '${liveIface.type}', which no engine here connects; only interfaces on a virtual network have a link to set`);
    let draft: DomainDocument | undefined;
    if (config) {
      const index = rec.doc.config.interfaces.findIndex((iface) => iface.mac === mac);
      if (index < 0) throw notFound();
      draft = copy(rec.doc);
      setInterfaceLink(draft, index, p.state);
    }
    await this.registry.configThenLive(rec, draft, async () => {
      if (!liveIface) return;
      await this.networks.setLink(liveIface.source!, liveIface.mac!, p.state);
      const liveDraft = copy(rec.liveDoc!);
      setInterfaceLink(liveDraft, liveIndex, p.state);
      rec.liveDoc = liveDraft;
    });
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  private noHotplug(rec: DomainRecord, what: 'attach' | 'detach') {
    const engine = this.registry.engineOf(rec);
    return operationUnsupported(`cannot ${what} an interface on a running ${engine} guest: ${engine} has one network card, plugged in when the guest starts; use --config and restart the guest`);
  }
}

function copy(doc: DomainDocument): DomainDocument {
  return parseDomainXml(serializeDomainXml(doc));
}

function newMac(taken: Set<string | undefined>): string {
  let mac: string;
  do mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  while (taken.has(mac));
  return mac;
}

/** virsh detach-interface's choice: the interface of `type` with `mac`, or the only one of that type. */
function findInterface(doc: DomainDocument, type: string, mac: string | undefined): number {
  const matches = doc.config.interfaces.flatMap((iface, i) => (iface.type === type && (!mac || iface.mac === mac.toLowerCase()) ? [i] : []));
  if (!matches.length) throw operationFailed(mac ? `no interface found whose type is ${type} and MAC address is ${mac.toLowerCase()}` : `no interface of type ${type} found`);
  if (matches.length > 1) throw operationFailed(`domain has ${matches.length} interfaces of type ${type}; name the one to detach with its MAC address (--mac)`);
  return matches[0]!;
}
