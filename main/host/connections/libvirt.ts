// A libvirt host as a Domus connection: the API's domain methods mapped onto libvirt's RPC
// procedures (remote_protocol.x), and libvirt's lifecycle events turned into Domus events. Domus
// keeps no copy of the far side's definitions: every answer is read from libvirtd when asked.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { DomainInfo, DomainSummary, EventName, Events, LifecycleEvent, Method } from '../../../shared/api.js';
import { DOMAIN_STATES, type DomainState, type StateReason } from '../../../shared/libvirt/states.js';
import { parseDomainXml } from '../domain/xml.js';
import { ERROR_CODES, ERROR_WORDING, type ErrorCode } from '../../../shared/errors.js';
import { definitionChanged, HostError, internalError, invalidArg, noDomain, operationFailed, operationInvalid } from '../errors.js';
import { LibvirtError } from '../libvirt/errors.js';
import { UriError } from '../libvirt/uri.js';
import type { remote_nonnull_domain } from '../libvirt/protocol/remote.js';
import { RpcClient, type ArgsOf, type ProcName, type RetOf } from '../libvirt/rpc-client.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_SEC } from '../lifecycle.js';
import { CpuMeter, num, statFields, STATS_BALLOON, STATS_CPU_TOTAL, STATS_NOWAIT, STATS_STATE, STATS_VCPU } from './libvirt-domstats.js';
import type { RemoteConnection, StatsWatching } from './manager.js';
import type { VncUpstream } from '../api/vnc-link.js';

type ArgList<P extends ProcName> = ArgsOf<P> extends void ? [] : [args: ArgsOf<P>];

/** Opens the RPC connection to a URI (RpcClient.connect; tests may pass options such as the ssh binary). */
export type RpcOpener = (uri: string) => Promise<RpcClient>;

export const openLibvirtRpc: RpcOpener = (uri) => RpcClient.connect(uri);

export type NonnullDomain = remote_nonnull_domain;

/**
 * The API methods one part of the libvirt mapping serves (consoles, statistics, storage, jobs…),
 * each in a module of this folder that receives the connection and uses its calls below.
 */
export type LibvirtMethods = Partial<Record<Method, (params: Record<string, unknown> & { domain?: string }) => Promise<unknown>>>;

/** virDomainEventType, in libvirt's order. */
const EVENT_TYPES: (LifecycleEvent | 'pmsuspended')[] = ['defined', 'undefined', 'started', 'suspended', 'resumed', 'stopped', 'shutdown', 'pmsuspended', 'crashed'];

/** Reasons per state (libvirt-domain.h's vir*Reason enums), as the contract names them. */
const REASONS: Partial<Record<DomainState, StateReason[]>> = {
  running: ['unknown', 'booted', 'migrated', 'restored', 'from snapshot', 'unpaused'],
  paused: ['unknown', 'user', 'migrating', 'saving', 'dumping', 'ioerror', 'unknown', 'unknown', 'unknown', 'unknown', 'unknown', 'starting-up'],
  shutoff: ['unknown', 'shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from snapshot'],
  crashed: ['unknown', 'panicked'],
};

/** virDomainXMLFlags. */
const XML_SECURE = 1;
const XML_INACTIVE = 2;
/** virDomainUndefineFlagsValues: a managed save and snapshot metadata go with the definition, as virt-manager deletes them. */
const UNDEFINE_MANAGED_SAVE = 1;
/** virDomainShutdownFlagValues. */
const SHUTDOWN_FLAGS: Record<string, number> = { acpi: 1, agent: 2, initctl: 4, signal: 8, paravirt: 16 };
/** virDomainEventID. */
const EVENT_ID_LIFECYCLE = 0;
/** virConnectListAllDomainsFlags: the sets a list needs besides the statistics. */
const LIST_PERSISTENT = 4;
const LIST_MANAGEDSAVE = 256;
const LIST_AUTOSTART = 1024;
/** What a list reads of every domain, in one virConnectGetAllDomainStats call. */
const LIST_STATS = STATS_STATE | STATS_CPU_TOTAL | STATS_BALLOON | STATS_VCPU;

export class LibvirtConnection extends EventEmitter implements RemoteConnection {
  /** Statistics sampling for the clients that watch (stats.watch on this connection). */
  stats?: StatsWatching;
  private rpc?: RpcClient;
  /** Shutdowns that force the guest off when it has not stopped in time, by domain UUID. */
  private readonly forceTimers = new Map<string, NodeJS.Timeout>();

  private readonly methods: LibvirtMethods = {};
  private readonly openHooks: ((rpc: RpcClient) => Promise<void>)[] = [];
  /** CPU use of the domains, from CPU time between readings (lists, summaries, samples). */
  readonly cpu = new CpuMeter();
  /** Opens a domain's VNC display for the host's own viewers (set by the console part, libvirt-console.ts). */
  openVnc?: (ref: string) => Promise<VncUpstream>;

  constructor(
    readonly uri: string,
    private readonly openRpc: RpcOpener,
  ) {
    super();
  }

  /** Adds the methods a part of the mapping serves (see LibvirtMethods). */
  serve(methods: LibvirtMethods): void {
    Object.assign(this.methods, methods);
  }

  /** Runs `hook` on every open of the connection before open() resolves (a part's event callbacks). */
  onOpen(hook: (rpc: RpcClient) => Promise<void>): void {
    this.openHooks.push(hook);
  }

  /** Opens the connection; why it could not is a host error in libvirt's words (never an internal error). */
  async open(): Promise<{ hostname?: string; hypervisor?: string }> {
    try {
      return await this.handshake(await this.openRpc(this.uri));
    } catch (err) {
      if (err instanceof HostError) throw err;
      if (err instanceof LibvirtError) throw hostErrorOf(err);
      if (err instanceof UriError) throw invalidArg(err.message);
      throw operationFailed(`cannot connect to ${this.uri}: ${(err as Error).message}`);
    }
  }

  private async handshake(rpc: RpcClient): Promise<{ hostname?: string; hypervisor?: string }> {
    try {
      const hostname = (await rpc.call('REMOTE_PROC_CONNECT_GET_HOSTNAME')).hostname as string;
      const type = (await rpc.call('REMOTE_PROC_CONNECT_GET_TYPE')).type as string;
      const version = Number((await rpc.call('REMOTE_PROC_CONNECT_GET_VERSION')).hv_ver);
      rpc.onMessage('REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE', (msg) => void this.lifecycle(msg.msg).catch(() => undefined));
      await rpc.call('REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', { eventID: EVENT_ID_LIFECYCLE, dom: null });
      for (const hook of this.openHooks) await hook(rpc);
      rpc.onClose((err) => {
        if (this.rpc !== rpc) return;
        this.rpc = undefined;
        this.emit('closed', err?.message ?? 'closed');
      });
      this.rpc = rpc;
      return { hostname, hypervisor: `${type} ${Math.floor(version / 1e6)}.${Math.floor(version / 1e3) % 1e3}.${version % 1e3}` };
    } catch (err) {
      await rpc.close().catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const t of this.forceTimers.values()) clearTimeout(t);
    this.forceTimers.clear();
    const rpc = this.rpc;
    this.rpc = undefined;
    // Its parts stop what they run on it (samplers) as when it drops.
    if (rpc) this.emit('closed', 'closed');
    await rpc?.close();
  }

  async call(method: Method, params: unknown): Promise<unknown> {
    const p = params as Record<string, unknown> & { domain?: string };
    switch (method) {
      case 'domain.list':
        return { domains: await this.list() };
      case 'domain.info':
        return this.info(p.domain!);
      case 'domain.xml': {
        const dom = await this.lookup(p.domain!);
        const flags = (p.inactive ? XML_INACTIVE : 0) | (p.secure ? XML_SECURE : 0);
        const xml = (await this.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags })).xml as string;
        return { xml, generation: await this.generation(dom) };
      }
      case 'domain.define': {
        if (p.expectGeneration !== undefined) await this.checkGeneration(p.xml as string, p.expectGeneration as number);
        const { dom } = await this.rpcCall('REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS', { xml: p.xml as string, flags: 0 });
        return { domain: await this.summary(dom), warnings: [] };
      }
      case 'domain.undefine':
        if ((p.storage as string[] | undefined)?.length || p.removeAllStorage) throw new HostError('NO_SUPPORT', `deleting a domain's storage with it on ${this.uri}`);
        await this.rpcCall('REMOTE_PROC_DOMAIN_UNDEFINE_FLAGS', { dom: await this.lookup(p.domain!), flags: UNDEFINE_MANAGED_SAVE });
        return {};
      case 'domain.start':
        return this.act(p.domain!, (dom) => this.rpcCall('REMOTE_PROC_DOMAIN_CREATE', { dom }));
      case 'domain.destroy':
        return this.destroy(p.domain!);
      case 'domain.suspend':
        return this.act(p.domain!, (dom) => this.rpcCall('REMOTE_PROC_DOMAIN_SUSPEND', { dom }));
      case 'domain.resume':
        return this.act(p.domain!, (dom) => this.rpcCall('REMOTE_PROC_DOMAIN_RESUME', { dom }));
      case 'domain.reboot':
        return this.act(p.domain!, (dom) => this.rpcCall('REMOTE_PROC_DOMAIN_REBOOT', { dom, flags: 0 }));
      case 'domain.reset':
        return this.act(p.domain!, (dom) => this.rpcCall('REMOTE_PROC_DOMAIN_RESET', { dom, flags: 0 }));
      case 'domain.shutdown':
        return this.shutdown(p.domain!, p as { modes?: string[]; force?: boolean; timeoutSec?: number });
      case 'domain.setAutostart':
        return this.act(p.domain!, (dom) => this.rpcCall('REMOTE_PROC_DOMAIN_SET_AUTOSTART', { dom, autostart: p.enabled ? 1 : 0 }));
      default: {
        const served = this.methods[method];
        // As libvirt answers for a function its driver lacks.
        if (!served) throw new HostError('NO_SUPPORT', `${method} on ${this.uri}`);
        return served(p);
      }
    }
  }

  /**
   * virsh shutdown on libvirt: asks through the named modes (libvirt picks when none is named), and,
   * as Domus's own engines do, forces the guest off when it is still running after the timeout
   * unless only a request was made (modes named, or force false).
   */
  private async shutdown(ref: string, opts: { modes?: string[]; force?: boolean; timeoutSec?: number }): Promise<unknown> {
    const dom = await this.lookup(ref);
    const flags = (opts.modes ?? []).reduce((f, m) => f | (SHUTDOWN_FLAGS[m] ?? 0), 0);
    await this.rpcCall('REMOTE_PROC_DOMAIN_SHUTDOWN_FLAGS', { dom, flags });
    const force = opts.force ?? opts.modes === undefined;
    const uuid = uuidText(dom.uuid);
    clearTimeout(this.forceTimers.get(uuid));
    if (force) {
      const timeoutSec = opts.timeoutSec ?? DEFAULT_SHUTDOWN_TIMEOUT_SEC;
      this.forceTimers.set(
        uuid,
        setTimeout(() => {
          this.forceTimers.delete(uuid);
          this.rpcCall('REMOTE_PROC_DOMAIN_DESTROY', { dom }).catch(() => undefined);
        }, timeoutSec * 1000),
      );
    }
    const asked = (opts.modes ?? ['acpi']).filter((m): m is 'acpi' | 'agent' => m === 'acpi' || m === 'agent');
    return { domain: await this.summary(dom), asked, forced: false };
  }

  /** virsh destroy; a transient domain is gone afterwards, and its summary is the last one, shut off. */
  private async destroy(ref: string): Promise<{ domain: DomainSummary }> {
    const dom = await this.lookup(ref);
    const before = await this.summary(dom);
    await this.rpcCall('REMOTE_PROC_DOMAIN_DESTROY', { dom });
    try {
      return { domain: await this.summary(dom) };
    } catch (err) {
      if (!(err instanceof HostError && err.code === 'NO_DOMAIN') || before.persistent) throw err;
      return { domain: { ...before, id: undefined, state: 'shutoff', reason: 'destroyed', cpuPercent: 0 } };
    }
  }

  /** A call on the open connection; libvirt's errors become the host's, with libvirt's class and words. */
  async rpcCall<P extends ProcName>(proc: P, ...args: ArgList<P>): Promise<RetOf<P>> {
    if (!this.rpc) throw operationInvalid(`connection ${this.uri} is not open`);
    try {
      return await this.rpc.call(proc, ...args);
    } catch (err) {
      throw err instanceof LibvirtError ? hostErrorOf(err) : err;
    }
  }

  /** The open RPC client (for streams); refused when the connection is not open. */
  client(): RpcClient {
    if (!this.rpc) throw operationInvalid(`connection ${this.uri} is not open`);
    return this.rpc;
  }

  /** A domain by name, UUID or id, as virsh looks them up. */
  async lookup(ref: string): Promise<NonnullDomain> {
    const tries: (() => Promise<{ dom: NonnullDomain }>)[] = [];
    if (/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(ref)) {
      tries.push(() => this.rpcCall('REMOTE_PROC_DOMAIN_LOOKUP_BY_UUID', { uuid: Buffer.from(ref.replace(/-/g, ''), 'hex') }));
    }
    if (/^\d+$/.test(ref)) tries.push(() => this.rpcCall('REMOTE_PROC_DOMAIN_LOOKUP_BY_ID', { id: Number(ref) }));
    tries.push(() => this.rpcCall('REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME', { name: ref }));
    for (const attempt of tries) {
      try {
        return (await attempt()).dom;
      } catch (err) {
        if (!(err instanceof HostError && err.code === 'NO_DOMAIN')) throw err;
      }
    }
    throw noDomain(ref);
  }

  /** Looks the domain up, does `action` on it, and answers its summary afterwards. */
  private async act(ref: string, action: (dom: NonnullDomain) => Promise<unknown>): Promise<{ domain: DomainSummary }> {
    const dom = await this.lookup(ref);
    await action(dom);
    return { domain: await this.summary(dom) };
  }

  /**
   * Every domain in a constant number of calls, however many there are: state, memory, vCPUs and
   * CPU time from one virConnectGetAllDomainStats, persistence, autostart and managed save as three
   * filtered lists.
   */
  private async list(): Promise<DomainSummary[]> {
    const having = async (flags: number): Promise<Set<string>> => {
      const { domains } = await this.rpcCall('REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS', { need_results: 1, flags });
      return new Set((domains as NonnullDomain[]).map((d) => uuidText(d.uuid)));
    };
    const [{ retStats }, persistent, autostart, managedSave] = await Promise.all([
      this.rpcCall('REMOTE_PROC_CONNECT_GET_ALL_DOMAIN_STATS', { doms: [], stats: LIST_STATS, flags: STATS_NOWAIT }),
      having(LIST_PERSISTENT),
      having(LIST_AUTOSTART),
      having(LIST_MANAGEDSAVE),
    ]);
    const summaries = retStats.map(({ dom, params }) => {
      const f = statFields(params);
      const n = (key: string): number => num(f, key) ?? 0;
      const uuid = uuidText(dom.uuid);
      return this.summaryOf(dom, {
        state: n('state.state'),
        reason: n('state.reason'),
        maxKiB: n('balloon.maximum'),
        currentKiB: n('balloon.current'),
        vcpus: n('vcpu.current'),
        cpuTimeMs: f.has('cpu.time') ? n('cpu.time') / 1e6 : undefined,
        persistent: persistent.has(uuid),
        autostart: autostart.has(uuid),
        managedSave: managedSave.has(uuid),
      });
    });
    return summaries.sort((a, b) => (a.id ?? Infinity) - (b.id ?? Infinity) || a.name.localeCompare(b.name));
  }

  /** A domain's summary, read afresh: state and reason, info, persistence, autostart, managed save. */
  async summary(dom: NonnullDomain): Promise<DomainSummary> {
    const [state, info, persistent, autostart, managedSave] = await Promise.all([
      this.rpcCall('REMOTE_PROC_DOMAIN_GET_STATE', { dom, flags: 0 }),
      this.rpcCall('REMOTE_PROC_DOMAIN_GET_INFO', { dom }),
      this.rpcCall('REMOTE_PROC_DOMAIN_IS_PERSISTENT', { dom }),
      this.rpcCall('REMOTE_PROC_DOMAIN_GET_AUTOSTART', { dom }),
      this.rpcCall('REMOTE_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE', { dom, flags: 0 }),
    ]);
    return this.summaryOf(dom, {
      state: state.state as number,
      reason: state.reason as number,
      maxKiB: Number(info.maxMem),
      currentKiB: Number(info.memory),
      vcpus: Number(info.nrVirtCpu),
      cpuTimeMs: Number(info.cpuTime) / 1e6,
      persistent: Boolean(persistent.persistent),
      autostart: Boolean(autostart.autostart),
      managedSave: Boolean(managedSave.result),
    });
  }

  private summaryOf(
    dom: NonnullDomain,
    r: { state: number; reason: number; maxKiB: number; currentKiB: number; vcpus: number; cpuTimeMs?: number; persistent: boolean; autostart: boolean; managedSave: boolean },
  ): DomainSummary {
    const stateName = DOMAIN_STATES[r.state] ?? 'nostate';
    const uuid = uuidText(dom.uuid);
    const active = stateName === 'running' || stateName === 'paused';
    return {
      uuid,
      name: dom.name,
      id: dom.id >= 0 ? dom.id : undefined,
      state: stateName,
      reason: REASONS[stateName]?.[r.reason] ?? 'unknown',
      step: null,
      persistent: r.persistent,
      engine: this.uri,
      memoryKiB: r.maxKiB,
      currentMemoryKiB: r.currentKiB,
      vcpus: r.vcpus,
      cpuPercent: active && r.cpuTimeMs !== undefined ? this.cpu.percent(uuid, dom.id, r.cpuTimeMs, r.vcpus) : 0,
      autostart: r.autostart,
      onHostStop: 'keep',
      managedSave: r.managedSave,
      generation: 0,
    };
  }

  private async info(ref: string): Promise<DomainInfo> {
    const dom = await this.lookup(ref);
    const [summary, info, os, xml] = await Promise.all([
      this.summary(dom),
      this.rpcCall('REMOTE_PROC_DOMAIN_GET_INFO', { dom }),
      this.rpcCall('REMOTE_PROC_DOMAIN_GET_OS_TYPE', { dom }),
      this.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags: 0 }),
    ]);
    const config = parseDomainXml(xml.xml as string).config;
    return {
      ...summary,
      generation: generationOf(await this.inactiveXml(dom)),
      osType: os.type as string,
      cpuTimeMs: Number(info.cpuTime) / 1e6,
      config: { ...config, graphics: config.graphics.map((g) => (g.passwd ? { ...g, passwd: '********' } : g)) },
      warnings: [],
    };
  }

  /** An editor's save: refused when the definition on the host changed since the editor read it. */
  private async checkGeneration(xml: string, expected: number): Promise<void> {
    const name = parseDomainXml(xml).config.name;
    let current: number;
    try {
      current = await this.generation(await this.lookup(name));
    } catch (err) {
      if (err instanceof HostError && err.code === 'NO_DOMAIN') return;
      throw err;
    }
    if (current !== expected) {
      throw definitionChanged(`domain '${name}' was changed on ${this.uri} since you loaded it (your copy is generation ${expected}, the host has ${current}); reload it and make your change again`);
    }
  }

  private async inactiveXml(dom: NonnullDomain): Promise<string> {
    return (await this.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags: XML_INACTIVE | XML_SECURE })).xml as string;
  }

  /** The definition's generation (a hash of its inactive XML), for editors' conflict checks. */
  async generation(dom: NonnullDomain): Promise<number> {
    return generationOf(await this.inactiveXml(dom));
  }

  /** libvirt's lifecycle event, as Domus's: the domain's summary read afresh, or gone when undefined. */
  private async lifecycle(msg: { dom: NonnullDomain; event: number; detail: number }): Promise<void> {
    const event = EVENT_TYPES[msg.event];
    if (!event) return;
    const uuid = uuidText(msg.dom.uuid);
    if (event === 'stopped' || event === 'undefined') {
      clearTimeout(this.forceTimers.get(uuid));
      this.forceTimers.delete(uuid);
    }
    if (event === 'undefined') {
      this.emitEvent('domain.undefined', { uuid, name: msg.dom.name });
      return;
    }
    let domain: DomainSummary;
    try {
      domain = await this.summary(msg.dom);
    } catch (err) {
      // A transient domain that stopped is gone by the time we ask.
      if (err instanceof HostError && err.code === 'NO_DOMAIN') {
        this.emitEvent('domain.undefined', { uuid, name: msg.dom.name });
        return;
      }
      throw err;
    }
    if (event === 'defined') this.emitEvent('domain.defined', { domain });
    this.emitEvent('domain.lifecycle', { domain, event: event === 'pmsuspended' ? 'suspended' : event });
    // A transient domain is gone once shut off; libvirt sends the event before it drops the domain,
    // so a read in between still finds it (as a migrated-away one often is, under load).
    if (!domain.persistent && domain.state === 'shutoff') this.emitEvent('domain.undefined', { uuid, name: msg.dom.name });
  }

  emitEvent<E extends EventName>(name: E, data: Events[E]): void {
    this.emit('event', name, data);
  }
}

export function uuidText(raw: Buffer): string {
  const h = Buffer.from(raw).toString('hex');
  if (h.length !== 32) throw internalError(`libvirt sent a UUID of ${raw.length} bytes`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The same generation as the host's own definitions: a hash of the inactive XML. */
function generationOf(xml: string): number {
  return createHash('sha256').update(xml).digest().readUInt32BE(0);
}

/**
 * libvirt's classes that are Domus's under another name: a parser's complaint about the XML
 * (XML_DETAIL carries only the parser's words) and a schema violation are XML errors.
 */
const SAME_CLASS: Record<string, ErrorCode> = { XML_DETAIL: 'XML_ERROR', XML_INVALID_SCHEMA: 'XML_ERROR' };

/** A libvirt error as the host's: the same class (virErrorNumber) where Domus has it, libvirt's own words. */
export function hostErrorOf(err: LibvirtError): HostError {
  const codeName = err.codeName.replace(/^VIR_ERR_/, '');
  const name = SAME_CLASS[codeName] ?? codeName;
  const code: ErrorCode = (ERROR_CODES as string[]).includes(name) ? (name as ErrorCode) : 'OPERATION_FAILED';
  const wording = ERROR_WORDING[code];
  const detail = wording && err.message.startsWith(`${wording}: `) ? err.message.slice(wording.length + 2) : err.message;
  return new HostError(code, detail);
}
