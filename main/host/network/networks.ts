// Virtual networks as libvirt manages them (virsh net-*): persistent definitions in
// <home>/networks/NAME.xml, autostart marks in <home>/networks/autostart/NAME, transient networks
// (a running network that was undefined), and the lifecycle: start (the switch process serving the
// definition), destroy (the switch stops; guests' NICs lose their link), undefine, autostart at host
// start. The running definition is kept beside the switch (run/networks/NAME/network.xml) so a new
// host (even after a SIGKILL) finds the network active with what it was started from. libvirt's
// `default` NAT network is defined and autostarted on the first run; undefined, it stays gone.
import { randomBytes, randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { NetworkInfo, NetworkLease } from '../../../shared/api.js';
import type { DomainConfig } from '../../../shared/domain.js';
import type { Lease, PortForward, SwitchStatus } from '../../netswitch/protocol.js';
import { noNetwork, operationFailed, operationInvalid, xmlError } from '../errors.js';
import { log } from '../log.js';
import { removeHostFile, writeHostFile, type HostEventBus } from '../registry.js';
import { completeNetwork, DEFAULT_NETWORK_XML, listenClash, NetworkXmlError, parseNetworkXml, serializeNetworkXml, subnetsOverlap, type NetworkDocument } from './network-xml.js';
import { NetworkError, type NetworkSwitches } from './switches.js';

interface NetworkRecord {
  /** The persistent definition; absent for a transient (undefined while running) network. */
  doc?: NetworkDocument;
  /** The running definition, while active. */
  live?: NetworkDocument;
}

/** Marks that the host once defined libvirt's default network: an undefined default stays gone. */
const DEFAULT_CREATED = '.default-created';
const LIVE_XML = 'network.xml';

export class Networks {
  private readonly records = new Map<string, NetworkRecord>();
  private readonly autostartDir: string;

  constructor(
    /** <home>/networks. */
    private readonly dir: string,
    private readonly switches: NetworkSwitches,
    private readonly events: HostEventBus,
  ) {
    this.autostartDir = path.join(dir, 'autostart');
  }

  /**
   * Reads the definitions (defining libvirt's default network on the first run), finds the switches
   * an earlier host left running, and starts the autostart networks that are not.
   */
  async init(): Promise<void> {
    fs.mkdirSync(this.autostartDir, { recursive: true, mode: 0o700 });
    const marker = path.join(this.dir, DEFAULT_CREATED);
    if (!fs.existsSync(marker)) {
      if (!fs.existsSync(this.definitionPath('default'))) {
        const doc = this.complete(parseNetworkXml(DEFAULT_NETWORK_XML, "libvirt's default network"));
        writeHostFile(this.definitionPath('default'), serializeNetworkXml(doc));
        writeHostFile(this.autostartPath('default'), '');
        log('info', "defined libvirt's default network (NAT, 192.168.122.0/24), autostarted");
      }
      writeHostFile(marker, '');
    }
    for (const file of fs.readdirSync(this.dir)) {
      if (!file.endsWith('.xml')) continue;
      const full = path.join(this.dir, file);
      try {
        const read = parseNetworkXml(fs.readFileSync(full, 'utf8'), full);
        if (`${read.config.name}.xml` !== file) throw new NetworkXmlError(`${full} defines network '${read.config.name}'; its file must be ${read.config.name}.xml`);
        const doc = this.complete(read);
        // A definition written by hand gets its UUID and MAC once, as libvirt gives them at load.
        if (doc !== read) writeHostFile(full, serializeNetworkXml(doc));
        this.records.set(doc.config.name, { doc });
      } catch (err) {
        log('error', `skipping network definition ${full}: ${(err as Error).message}`);
      }
    }
    const runDir = path.dirname(this.switches.paths('x').config);
    for (const name of fs.existsSync(runDir) ? fs.readdirSync(runDir) : []) {
      if (!(await this.switches.running(name))) continue;
      const rec = this.records.get(name);
      const liveFile = path.join(runDir, name, LIVE_XML);
      try {
        const live = fs.existsSync(liveFile) ? parseNetworkXml(fs.readFileSync(liveFile, 'utf8'), liveFile) : rec?.doc;
        if (!live) throw new Error(`no definition and no ${liveFile}`);
        this.records.set(name, { ...rec, live });
        log('info', `network '${name}' is active (its switch kept running)`);
      } catch (err) {
        log('warn', `the switch of network '${name}' runs, but its definition is unknown: ${(err as Error).message}`);
      }
    }
    for (const [name, rec] of this.records) {
      if (rec.live || !rec.doc || !this.autostart(name)) continue;
      await this.start(name).catch((err: Error) => log('error', `autostart of network '${name}' failed: ${err.message}`));
    }
  }

  /** virsh net-list --all: every network, its switch asked whether it still runs. */
  async list(): Promise<NetworkInfo[]> {
    await Promise.all([...this.records.keys()].map((name) => this.refresh(name)));
    return [...this.records.keys()].sort().map((name) => this.info(name));
  }

  /** A network by name or UUID, as virsh looks them up. */
  lookup(ref: string): string {
    if (this.records.has(ref)) return ref;
    for (const [name, rec] of this.records) if (sameUuid((rec.live ?? rec.doc)!.uuid, ref)) return name;
    throw noNetwork(ref);
  }

  info(name: string): NetworkInfo {
    const rec = this.records.get(name)!;
    const doc = (rec.live ?? rec.doc)!;
    const { config } = doc;
    return {
      name,
      uuid: doc.uuid,
      active: Boolean(rec.live),
      persistent: Boolean(rec.doc),
      autostart: Boolean(rec.doc) && this.autostart(name),
      forward: config.forward,
      ...(doc.bridge && { bridge: doc.bridge }),
      address: config.address,
      prefix: config.prefix,
      ...(config.dhcp && { dhcpRange: { start: config.dhcp.start, end: config.dhcp.end } }),
    };
  }

  /** virsh net-define: a new persistent network, or a new definition for an existing one (the next start's, when it runs). */
  define(xml: string): { network: NetworkInfo; warnings: string[] } {
    let parsed: NetworkDocument;
    try {
      parsed = parseNetworkXml(xml, 'the definition');
    } catch (err) {
      if (err instanceof NetworkXmlError) throw xmlError(err.message);
      throw err;
    }
    const { name } = parsed.config;
    const existing = this.records.get(name);
    const current = existing && (existing.live ?? existing.doc)!;
    if (current && parsed.uuid && !sameUuid(parsed.uuid, current.uuid)) throw operationFailed(`network '${name}' already exists with uuid ${current.uuid}`);
    // A new definition without a UUID or MAC keeps the network's.
    const doc = this.complete(parsed, current);
    for (const [other, rec] of this.records) {
      if (other === name) continue;
      const theirs = (rec.live ?? rec.doc)!;
      if (sameUuid(theirs.uuid, doc.uuid)) throw operationFailed(`network '${other}' is already defined with uuid ${doc.uuid}`);
      const clash = this.portClash(doc, [rec.doc, rec.live]);
      if (clash) throw operationFailed(`network '${name}' would forward ${clash}, which network '${other}' forwards already`);
    }
    writeHostFile(this.definitionPath(name), serializeNetworkXml(doc));
    this.records.set(name, { ...existing, doc });
    const warnings = existing?.live ? [`network '${name}' is active: the new definition takes effect when it is next started`] : [];
    this.emit(name, 'defined');
    return { network: this.info(name), warnings };
  }

  /** virsh net-undefine: a running network goes on as a transient one until it is destroyed. */
  undefine(ref: string): void {
    const name = this.lookup(ref);
    const rec = this.records.get(name)!;
    if (!rec.doc) throw operationInvalid(`network '${name}' is not persistent`);
    removeHostFile(this.definitionPath(name));
    try {
      removeHostFile(this.autostartPath(name));
    } catch (err) {
      log('warn', `network '${name}' undefined, but ${(err as Error).message}`);
    }
    const info = this.info(name);
    if (rec.live) this.records.set(name, { live: rec.live });
    else this.records.delete(name);
    this.events.emit('network.lifecycle', { network: { ...info, persistent: false, autostart: false }, event: 'undefined' });
  }

  /** virsh net-start: the network's switch; refused when its subnet or a forwarded port is another active network's, or a port is taken. */
  async start(ref: string): Promise<NetworkInfo> {
    const name = this.lookup(ref);
    await this.refresh(name);
    const rec = this.records.get(name)!;
    if (rec.live) throw operationInvalid(`network '${name}' is already active`);
    const doc = rec.doc!;
    const { config } = doc;
    for (const [other, o] of this.records) {
      if (!o.live || other === name) continue;
      const theirs = o.live.config;
      if (subnetsOverlap(config, theirs)) {
        throw operationFailed(`network '${name}' (${config.address}/${config.prefix}) overlaps active network '${other}' (${theirs.address}/${theirs.prefix})`);
      }
      const clash = this.portClash(doc, [o.live]);
      if (clash) throw operationFailed(`network '${name}' forwards ${clash}, which active network '${other}' forwards already`);
    }
    for (const pf of config.portForwards) {
      const problem = await portTaken(pf);
      if (problem) throw operationFailed(`network '${name}' cannot forward ${pf.proto} ${pf.address}:${pf.port}: ${problem}`);
    }
    const files = this.switches.paths(name);
    fs.mkdirSync(path.dirname(files.config), { recursive: true, mode: 0o700 });
    writeHostFile(path.join(path.dirname(files.config), LIVE_XML), serializeNetworkXml(doc));
    try {
      await this.switches.start(name, config);
    } catch (err) {
      throw operationFailed((err as Error).message);
    }
    rec.live = doc;
    this.emit(name, 'started');
    return this.info(name);
  }

  /** virsh net-destroy: stops the switch; a transient network is gone with it. */
  async destroy(ref: string): Promise<NetworkInfo> {
    const name = this.lookup(ref);
    await this.refresh(name);
    const rec = this.records.get(name)!;
    if (!rec.live) throw operationInvalid(`network '${name}' is not active`);
    try {
      await this.switches.stop(name);
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      // A switch that went away while we asked is stopped all the same.
      if (await this.switches.running(name)) throw operationFailed(err.message);
    }
    const info = { ...this.info(name), active: false };
    this.stopped(name);
    return info;
  }

  setAutostart(ref: string, enabled: boolean): NetworkInfo {
    const name = this.lookup(ref);
    if (!this.records.get(name)!.doc) throw operationInvalid(`cannot set autostart for transient network '${name}'`);
    if (enabled) writeHostFile(this.autostartPath(name), '');
    else removeHostFile(this.autostartPath(name));
    this.emit(name, 'defined');
    return this.info(name);
  }

  /** virsh net-dumpxml: the running definition while active, unless the persistent one is asked for. */
  xml(ref: string, inactive: boolean): string {
    const rec = this.records.get(this.lookup(ref))!;
    return serializeNetworkXml((inactive ? (rec.doc ?? rec.live) : (rec.live ?? rec.doc))!);
  }

  /** virsh net-dhcp-leases: the switch's current leases (optionally one MAC's). */
  async dhcpLeases(ref: string, mac?: string): Promise<NetworkLease[]> {
    const name = this.lookup(ref);
    const rec = this.records.get(name)!;
    if (!rec.live) throw operationInvalid(`network '${name}' is not active`);
    const leases = await this.switches.leases(name).catch((err: Error) => {
      throw operationFailed(err.message);
    });
    return toNetworkLeases(name, rec.live.config.prefix, leases).filter((l) => !mac || l.mac === mac.toLowerCase());
  }

  /** The leases of an active network as the switch last wrote them (read from its file: no request). */
  leasesOnFile(name: string): NetworkLease[] {
    const rec = this.records.get(name);
    if (!rec?.live) return [];
    try {
      const leases = JSON.parse(fs.readFileSync(this.switches.paths(name).leases, 'utf8')) as Lease[];
      return toNetworkLeases(name, rec.live.config.prefix, Array.isArray(leases) ? leases : []);
    } catch {
      return [];
    }
  }

  /** Sets the link of the NIC with this MAC on an active network's switch. */
  async setLink(name: string, mac: string, state: 'up' | 'down'): Promise<void> {
    if (!this.records.get(name)?.live) throw operationInvalid(`network '${name}' is not active`);
    await this.switches.setLink(name, mac, state).catch((err: Error) => {
      throw operationFailed(err.message);
    });
  }

  /** The socket a NIC connects to on an active network's switch. */
  async portSocket(name: string): Promise<string> {
    return (await this.switches.require(name).catch((err: Error) => {
      throw operationInvalid(err.message);
    })).ports;
  }

  /** The switch's port counters of an active network (undefined when it does not answer). */
  status(name: string): Promise<SwitchStatus | undefined> {
    if (!this.records.get(name)?.live) return Promise.resolve(undefined);
    return this.switches.status(name).catch(() => undefined);
  }

  active(name: string): boolean {
    return Boolean(this.records.get(name)?.live);
  }

  /**
   * Why a domain cannot start with these interfaces, as libvirt says it: a network that does not
   * exist, or is not active. Undefined when every network it names runs.
   */
  async checkInterfaces(config: DomainConfig): Promise<Error | undefined> {
    for (const iface of config.interfaces) {
      if (iface.type !== 'network' || !iface.source) continue;
      const name = iface.source;
      if (!this.records.has(name)) return noNetwork(name);
      await this.refresh(name);
      if (!this.records.get(name)?.live) return operationInvalid(`network '${name}' is not active`);
    }
    return undefined;
  }

  /** A switch that stopped on its own (or was killed) makes its network inactive. */
  private async refresh(name: string): Promise<void> {
    const rec = this.records.get(name);
    if (rec?.live && !(await this.switches.running(name))) {
      log('warn', `the switch of network '${name}' is gone: the network is inactive`);
      this.stopped(name);
    }
  }

  private stopped(name: string): void {
    const rec = this.records.get(name);
    if (!rec?.live) return;
    try {
      removeHostFile(path.join(path.dirname(this.switches.paths(name).config), LIVE_XML));
    } catch (err) {
      log('warn', `network '${name}' stopped, but ${(err as Error).message}`);
    }
    const info = { ...this.info(name), active: false };
    if (rec.doc) rec.live = undefined;
    else this.records.delete(name);
    this.events.emit('network.lifecycle', { network: info, event: 'stopped' });
  }

  /** The first port `doc` forwards that one of `others` forwards too. */
  private portClash(doc: NetworkDocument, others: (NetworkDocument | undefined)[]): string | undefined {
    for (const o of others) {
      for (const pf of doc.config.portForwards) {
        if (o?.config.portForwards.some((theirs) => listenClash(pf, theirs))) return `${pf.proto} ${pf.address}:${pf.port}`;
      }
    }
    return undefined;
  }

  /** The definition with what libvirt adds at define (a UUID and a MAC, those of `like` when given); the same object when nothing was missing. */
  private complete(doc: NetworkDocument, like?: NetworkDocument): NetworkDocument {
    if (doc.uuid && doc.config.mac) return doc;
    const macBytes = like ? () => Buffer.from(like.config.mac.split(':').slice(3).join(''), 'hex') : () => randomBytes(3);
    return completeNetwork(doc, { uuid: () => like?.uuid ?? randomUUID(), macBytes });
  }

  private emit(name: string, event: 'defined' | 'started'): void {
    this.events.emit('network.lifecycle', { network: this.info(name), event });
  }

  private autostart(name: string): boolean {
    return fs.existsSync(this.autostartPath(name));
  }

  private definitionPath(name: string): string {
    return path.join(this.dir, `${name}.xml`);
  }

  private autostartPath(name: string): string {
    return path.join(this.autostartDir, name);
  }
}

function toNetworkLeases(network: string, prefix: number, leases: Lease[]): NetworkLease[] {
  const now = Date.now() / 1000;
  return leases
    .filter((l) => l['expiry-time'] > now)
    .map((l) => ({
      network,
      mac: l['mac-address'],
      address: l['ip-address'],
      prefix,
      ...(l.hostname && { hostname: l.hostname }),
      ...(l['client-id'] && { clientId: l['client-id'] }),
      expiryTime: l['expiry-time'],
    }));
}

/** Whether something on this host already listens where a port forward would; the reason when so. */
function portTaken(pf: PortForward): Promise<string | undefined> {
  return new Promise((resolve) => {
    const failed = (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? 'the address is already in use' : err.code === 'EADDRNOTAVAIL' ? 'the address is not one of this host' : err.message);
    if (pf.proto === 'udp') {
      const sock = dgram.createSocket('udp4');
      sock.once('error', failed);
      sock.bind(pf.port, pf.address, () => sock.close(() => resolve(undefined)));
      return;
    }
    const server = net.createServer();
    server.once('error', failed);
    server.listen({ port: pf.port, host: pf.address, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

function sameUuid(a: string, b: string): boolean {
  return a.replace(/-/g, '').toLowerCase() === b.replace(/-/g, '').toLowerCase();
}
