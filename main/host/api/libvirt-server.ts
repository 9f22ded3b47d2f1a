// The host's libvirt socket (DOMUS_HOME/libvirt-sock, mode 0600): libvirt's own RPC protocol
// (remote program 0x20008086 v1 and the keepalive program), so that Debian's virsh and other
// libvirt clients drive Domus with `qemu+unix:///session?socket=<DOMUS_HOME>/libvirt-sock`.
// Each session maps remote procedures onto the Host facade; the XDR codecs are the client's
// (main/host/libvirt). Every byte from the socket is untrusted: packets are bounded by the decoder,
// payloads decoded against their procedure's type, and nothing a client sends can throw past its
// own session.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import type { DomainSummary, Events, LifecycleEvent, NetworkInfo, ShutdownMode } from '../../../shared/api.js';
import type { ErrorCode } from '../../../shared/errors.js';
import { DOMAIN_STATES, type StateReason } from '../../../shared/libvirt/states.js';
import { apiErrorOf, HostError, noDomain, operationInvalid } from '../errors.js';
import { VERSION, type Host } from '../host.js';
import {
  LibvirtError,
  VIR_DOMAIN_EVENT,
  VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE,
  VIR_DOMAIN_EVENT_ID_LIFECYCLE,
  VIR_DOMAIN_EVENT_ID_REBOOT,
  VIR_DRV_FEATURE_PROGRAM_KEEPALIVE,
  VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK,
  VIR_ERR,
  VIR_FROM,
} from '../libvirt/errors.js';
import { encodePacket, PacketDecoder, procedureNames, type Header, type Packet } from '../libvirt/packet.js';
import { KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION } from '../libvirt/protocol/keepalive.js';
import { REMOTE_AUTH_NONE, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, remote_error, remote_procedures, type remote_nonnull_domain, type remote_nonnull_network } from '../libvirt/protocol/remote.js';
import { VIR_NET_CALL, VIR_NET_ERROR, VIR_NET_MESSAGE, VIR_NET_OK, VIR_NET_REPLY } from '../libvirt/protocol/virnet.js';
import type { ArgsOf, MessageProcName, MsgOf, ProcName, RetOf } from '../libvirt/rpc-client.js';
import { decode, encode, type Codec } from '../libvirt/xdr.js';
import { log } from '../log.js';
import type { UnixListener } from './unix.js';
import { MIGRATION_FEATURES, migrationProcedures } from './libvirt-migration.js';

const NAMES = procedureNames(remote_procedures);

/** The library version this server speaks for: the protocol definitions are libvirt 9.0.0's. */
const LIB_VERSION = 9_000_000n;

/** Domus's error classes as libvirt's virErrorNumber (libvirt has no definition generations). */
const VIR_ERR_OF: Record<ErrorCode, number> = {
  INTERNAL_ERROR: VIR_ERR.INTERNAL_ERROR,
  NO_SUPPORT: VIR_ERR.NO_SUPPORT,
  RPC: VIR_ERR.RPC,
  INVALID_ARG: VIR_ERR.INVALID_ARG,
  ARGUMENT_UNSUPPORTED: VIR_ERR.ARGUMENT_UNSUPPORTED,
  NO_DOMAIN: VIR_ERR.NO_DOMAIN,
  NO_STORAGE_POOL: VIR_ERR.NO_STORAGE_POOL,
  NO_STORAGE_VOL: VIR_ERR.NO_STORAGE_VOL,
  NO_NETWORK: VIR_ERR.NO_NETWORK,
  NO_DOMAIN_SNAPSHOT: VIR_ERR.NO_DOMAIN_SNAPSHOT,
  XML_ERROR: VIR_ERR.XML_ERROR,
  CONFIG_UNSUPPORTED: VIR_ERR.CONFIG_UNSUPPORTED,
  OPERATION_INVALID: VIR_ERR.OPERATION_INVALID,
  OPERATION_UNSUPPORTED: VIR_ERR.OPERATION_UNSUPPORTED,
  OPERATION_FAILED: VIR_ERR.OPERATION_FAILED,
  OPERATION_TIMEOUT: VIR_ERR.OPERATION_TIMEOUT,
  OPERATION_ABORTED: VIR_ERR.OPERATION_ABORTED,
  AGENT_UNRESPONSIVE: VIR_ERR.AGENT_UNRESPONSIVE,
  AUTH_FAILED: VIR_ERR.AUTH_FAILED,
  AUTH_CANCELLED: VIR_ERR.AUTH_CANCELLED,
  SYSTEM_ERROR: VIR_ERR.SYSTEM_ERROR,
  DEFINITION_CHANGED: VIR_ERR.OPERATION_FAILED,
};

/** libvirt-domain.h's reason enums, by state (virDomainRunningReason, virDomainPausedReason…). */
const REASONS: Partial<Record<(typeof DOMAIN_STATES)[number], Partial<Record<StateReason, number>>>> = {
  running: { unknown: 0, booted: 1, migrated: 2, restored: 3, 'from snapshot': 4, unpaused: 5 },
  paused: { unknown: 0, user: 1, migrating: 2, saving: 3, dumping: 4, ioerror: 5, snapshot: 9, 'starting-up': 11 },
  shutoff: { unknown: 0, shutdown: 1, destroyed: 2, crashed: 3, migrated: 4, saved: 5, failed: 6, 'from snapshot': 7 },
};

/** The detail of a lifecycle event (virDomainEvent*DetailType), from the reason the domain now has. */
const EVENT_DETAILS: Partial<Record<LifecycleEvent, Partial<Record<StateReason, number>>>> = {
  started: { booted: 0, migrated: 1, restored: 2, 'from snapshot': 3 },
  suspended: { user: 0, migrating: 1, ioerror: 2 },
  stopped: { shutdown: 0, destroyed: 1, crashed: 2, migrated: 3, saved: 4, failed: 5, 'from snapshot': 6 },
  resumed: { unpaused: 0, migrated: 1 },
};

const LIFECYCLE_EVENT: Partial<Record<LifecycleEvent, number>> = {
  defined: VIR_DOMAIN_EVENT.DEFINED,
  undefined: VIR_DOMAIN_EVENT.UNDEFINED,
  started: VIR_DOMAIN_EVENT.STARTED,
  suspended: VIR_DOMAIN_EVENT.SUSPENDED,
  resumed: VIR_DOMAIN_EVENT.RESUMED,
  stopped: VIR_DOMAIN_EVENT.STOPPED,
  shutdown: VIR_DOMAIN_EVENT.SHUTDOWN,
  crashed: VIR_DOMAIN_EVENT.CRASHED,
};

// virConnectListAllDomainsFlags
const LIST = { ACTIVE: 1, INACTIVE: 2, PERSISTENT: 4, TRANSIENT: 8, RUNNING: 16, PAUSED: 32, SHUTOFF: 64, OTHER: 128, MANAGEDSAVE: 256, NO_MANAGEDSAVE: 512, AUTOSTART: 1024, NO_AUTOSTART: 2048 };
// virDomainModificationImpact, virDomainMemoryModFlags, virDomainXMLFlags, virDomainUndefineFlagsValues
const AFFECT_LIVE = 1;
const AFFECT_CONFIG = 2;
const MEM_MAXIMUM = 4;
const XML_SECURE = 1;
const XML_INACTIVE = 2;
const UNDEFINE_MANAGED_SAVE = 1;
const START_PAUSED = 1;
const CONNECT_RO = 1;
/** virDomainShutdownFlagValues, by the mode names the host knows. */
const SHUTDOWN_FLAGS: [number, ShutdownMode][] = [[1, 'acpi'], [2, 'agent'], [4, 'initctl'], [8, 'signal'], [16, 'paravirt']];
/** virDomainMemoryStatTags */
const MEM_STAT = { UNUSED: 4, AVAILABLE: 5, ACTUAL_BALLOON: 6, RSS: 7, USABLE: 8, LAST_UPDATE: 9, DISK_CACHES: 10 };

// virConnectListAllNetworksFlags, virNetworkXMLFlags, virNetworkEventLifecycleType, virDomainInterfaceAddressesSource
const NET_LIST = { INACTIVE: 1, ACTIVE: 2, PERSISTENT: 4, TRANSIENT: 8, AUTOSTART: 16, NO_AUTOSTART: 32 };
const NETWORK_XML_INACTIVE = 1;
const NETWORK_EVENT: Record<Events['network.lifecycle']['event'], number> = { defined: 0, undefined: 1, started: 2, stopped: 3 };
const VIR_NETWORK_EVENT_ID_LIFECYCLE = 0;
const ADDRESSES_SRC_LEASE = 0;

/** The events this server delivers, and the procedure that carries each. */
const EVENT_IDS = new Set([VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE]);

/** Procedures a read-only connection (virsh -r) may not call. */
const MUTATING = new Set<ProcName>([
  'REMOTE_PROC_DOMAIN_DEFINE_XML',
  'REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS',
  'REMOTE_PROC_DOMAIN_UNDEFINE',
  'REMOTE_PROC_DOMAIN_UNDEFINE_FLAGS',
  'REMOTE_PROC_DOMAIN_CREATE',
  'REMOTE_PROC_DOMAIN_CREATE_WITH_FLAGS',
  'REMOTE_PROC_DOMAIN_SHUTDOWN',
  'REMOTE_PROC_DOMAIN_SHUTDOWN_FLAGS',
  'REMOTE_PROC_DOMAIN_DESTROY',
  'REMOTE_PROC_DOMAIN_DESTROY_FLAGS',
  'REMOTE_PROC_DOMAIN_SUSPEND',
  'REMOTE_PROC_DOMAIN_RESUME',
  'REMOTE_PROC_DOMAIN_SET_MEMORY',
  'REMOTE_PROC_DOMAIN_SET_MEMORY_FLAGS',
  'REMOTE_PROC_DOMAIN_SET_MAX_MEMORY',
  'REMOTE_PROC_NETWORK_DEFINE_XML',
  'REMOTE_PROC_NETWORK_DEFINE_XML_FLAGS',
  'REMOTE_PROC_NETWORK_UNDEFINE',
  'REMOTE_PROC_NETWORK_CREATE',
  'REMOTE_PROC_NETWORK_DESTROY',
  'REMOTE_PROC_NETWORK_SET_AUTOSTART',
  'REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS',
  'REMOTE_PROC_DOMAIN_MIGRATE_PERFORM3_PARAMS',
  'REMOTE_PROC_DOMAIN_MIGRATE_FINISH3_PARAMS',
]);

/** Procedures callable before CONNECT_OPEN, as in libvirtd. */
const BEFORE_OPEN = new Set<ProcName>(['REMOTE_PROC_AUTH_LIST', 'REMOTE_PROC_CONNECT_SUPPORTS_FEATURE', 'REMOTE_PROC_CONNECT_OPEN', 'REMOTE_PROC_CONNECT_CLOSE']);

type Impl<P extends ProcName> = (args: ArgsOf<P>) => RetOf<P> | Promise<RetOf<P>>;
type ImplTable = { [P in ProcName]?: Impl<P> };

const ACRONYMS: Record<string, string> = { xml: 'XML', uuid: 'UUID', id: 'ID', os: 'OS', cpu: 'CPU' };

/** REMOTE_PROC_DOMAIN_GET_INFO → virDomainGetInfo: the API a procedure serves, for messages and the trace. */
export function apiName(proc: string): string {
  const words = proc.replace(/^REMOTE_PROC_/, '').toLowerCase().split('_');
  return 'vir' + words.map((w) => ACRONYMS[w] ?? w[0].toUpperCase() + w.slice(1)).join('');
}

const uuidBytes = (uuid: string): Buffer => Buffer.from(uuid.replace(/-/g, ''), 'hex');
const uuidString = (b: Buffer): string => b.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
const wire = (d: DomainSummary): remote_nonnull_domain => ({ name: d.name, uuid: uuidBytes(d.uuid), id: d.id ?? -1 });
const wireNet = (n: NetworkInfo): remote_nonnull_network => ({ name: n.name, uuid: uuidBytes(n.uuid) });

const noSupport = (what: string): LibvirtError => new LibvirtError(`this function is not supported by the connection driver: ${what}`, VIR_ERR.NO_SUPPORT, VIR_FROM.DOMAIN);

const readOnly = (what: string): LibvirtError => new LibvirtError(`operation forbidden: read only access prevents ${what}`, VIR_ERR.OPERATION_DENIED, VIR_FROM.DOMAIN);

function toLibvirt(err: unknown): LibvirtError {
  if (err instanceof LibvirtError) return err;
  const { code, message } = apiErrorOf(err);
  return new LibvirtError(message, VIR_ERR_OF[code], VIR_FROM.DOMAIN);
}

/** One client connection: the handshake, the calls, the events it registered for. */
export class LibvirtSession {
  private readonly decoder = new PacketDecoder();
  private opened = false;
  private readonly: boolean = false;
  private uri = '';
  private nextCallback = 1;
  /** callbackID → event ID and the domain it is limited to (libvirt's per-domain registration). */
  private readonly callbacks = new Map<number, { eventID: number; uuid?: string }>();
  /** callbackID → the network its network lifecycle events are limited to, if any (a separate ID space in libvirt). */
  private readonly networkCallbacks = new Map<number, { uuid?: string }>();
  /** Domains this client has seen defined, to tell DEFINED_ADDED from DEFINED_UPDATED. */
  private readonly known: Set<string>;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly impl: ImplTable;
  private closed = false;

  constructor(
    private readonly host: Host,
    private readonly sock: net.Socket,
  ) {
    this.known = new Set(host.list().map((d) => d.uuid));
    this.impl = this.procedures();
    sock.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = this.decoder.push(chunk);
      } catch (err) {
        log('warn', `libvirt client: ${(err as Error).message}; dropping the connection`);
        sock.destroy();
        return;
      }
      for (const p of packets) this.receive(p);
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.close());
    this.listen('domain.lifecycle', (e) => this.lifecycle(e));
    this.listen('domain.undefined', (e) => {
      this.known.delete(e.uuid);
      this.sendEvent(VIR_DOMAIN_EVENT_ID_LIFECYCLE, e.uuid, 'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE', (callbackID) => ({
        callbackID,
        msg: { dom: { name: e.name, uuid: uuidBytes(e.uuid), id: -1 }, event: VIR_DOMAIN_EVENT.UNDEFINED, detail: 0 },
      }));
    });
    this.listen('network.lifecycle', (e) => {
      for (const [callbackID, cb] of this.networkCallbacks) {
        if (cb.uuid && cb.uuid !== e.network.uuid) continue;
        this.sendMessage('REMOTE_PROC_NETWORK_EVENT_LIFECYCLE', { callbackID, net: wireNet(e.network), event: NETWORK_EVENT[e.event], detail: 0 });
      }
    });
    this.listen('domain.balloon', (e) => {
      if (!this.callbacks.size) return;
      const d = this.summaryOf(e.uuid);
      if (!d) return;
      this.sendEvent(VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE, e.uuid, 'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_BALLOON_CHANGE', (callbackID) => ({ callbackID, msg: { dom: wire(d), actual: BigInt(e.actualKiB) } }));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubscribe) u();
    this.callbacks.clear();
    this.networkCallbacks.clear();
  }

  private receive({ header: h, payload }: Packet): void {
    if (h.prog === KEEPALIVE_PROGRAM) {
      if (h.vers === KEEPALIVE_PROTOCOL_VERSION && h.type === VIR_NET_MESSAGE && h.proc === KEEPALIVE_PROC_PING) {
        this.write({ prog: KEEPALIVE_PROGRAM, vers: KEEPALIVE_PROTOCOL_VERSION, proc: KEEPALIVE_PROC_PONG, type: VIR_NET_MESSAGE, serial: 0, status: VIR_NET_OK });
      }
      return;
    }
    // Only calls get answers; a stray reply, message or stream packet has nobody waiting for it.
    if (h.type !== VIR_NET_CALL) return;
    if (h.prog !== REMOTE_PROGRAM || h.vers !== REMOTE_PROTOCOL_VERSION) {
      this.replyError(h, new LibvirtError(`cannot find program ${h.prog} version ${h.vers}`, VIR_ERR.RPC, VIR_FROM.RPC));
      return;
    }
    void this.call(h, payload);
  }

  private async call(h: Header, payload: Buffer): Promise<void> {
    const name = NAMES.get(h.proc);
    const started = Date.now();
    let args: unknown;
    let domain: string | undefined;
    try {
      if (!name) throw new LibvirtError(`this function is not supported by the connection driver: unknown procedure ${h.proc}`, VIR_ERR.NO_SUPPORT, VIR_FROM.RPC);
      const spec = remote_procedures[name] as { args: Codec<unknown>; ret: Codec<unknown> };
      const impl = this.impl[name] as ((a: unknown) => unknown) | undefined;
      if (!impl) throw noSupport(apiName(name));
      if (!this.opened && !BEFORE_OPEN.has(name)) throw new LibvirtError('connection not open', VIR_ERR.INVALID_CONN, VIR_FROM.RPC);
      if (this.readonly && MUTATING.has(name)) throw readOnly(apiName(name));
      try {
        args = decode(spec.args, payload);
      } catch (err) {
        throw new LibvirtError(`Unable to decode message payload: ${(err as Error).message}`, VIR_ERR.RPC, VIR_FROM.RPC);
      }
      domain = (args as { dom?: { name?: string } } | undefined)?.dom?.name ?? undefined;
      const ret = await impl(args);
      this.write({ ...h, type: VIR_NET_REPLY, status: VIR_NET_OK }, encode(spec.ret, ret));
      this.trace(name, args, domain ?? (ret as { dom?: { name?: string } } | undefined)?.dom?.name, started);
    } catch (err) {
      const error = toLibvirt(err);
      if (error.code === VIR_ERR.INTERNAL_ERROR) log('error', `libvirt client: ${name ?? h.proc} failed: ${(err as Error).stack ?? err}`);
      this.replyError(h, error);
      if (name) this.trace(name, args, domain, started, error.message);
    }
  }

  private trace(proc: ProcName, args: unknown, domain: string | undefined, started: number, error?: string): void {
    if (proc === 'REMOTE_PROC_AUTH_LIST' || proc === 'REMOTE_PROC_CONNECT_SUPPORTS_FEATURE') return;
    const { dom: _dom, ...rest } = (args ?? {}) as { dom?: unknown };
    // The trace holds JSON: XDR's 64-bit numbers and UUID bytes are made readable first.
    const readable = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : Buffer.isBuffer(v) && v.length === 16 ? uuidString(v) : v]));
    this.host.trace.request({
      time: started,
      client: { kind: 'virsh', label: 'libvirt client' },
      domain,
      op: apiName(proc),
      args: readable,
      ok: error === undefined,
      error,
      durationMs: Date.now() - started,
    });
  }

  private replyError(h: Header, err: LibvirtError): void {
    this.write({ ...h, type: VIR_NET_REPLY, status: VIR_NET_ERROR }, encode(remote_error, err.toRemote()));
  }

  private write(h: Header, payload?: Uint8Array): void {
    if (this.closed || this.sock.destroyed) return;
    this.sock.write(encodePacket(h, payload));
  }

  private listen<E extends keyof Events>(name: E, f: (data: Events[E]) => void): void {
    const host = this.host as unknown as NodeJS.EventEmitter;
    host.on(name, f);
    this.unsubscribe.push(() => host.off(name, f));
  }

  private sendEvent<P extends MessageProcName>(eventID: number, uuid: string, proc: P, msg: (callbackID: number) => MsgOf<P>): void {
    for (const [callbackID, cb] of this.callbacks) {
      if (cb.eventID !== eventID || (cb.uuid && cb.uuid !== uuid)) continue;
      this.sendMessage(proc, msg(callbackID));
    }
  }

  private sendMessage<P extends MessageProcName>(proc: P, msg: MsgOf<P>): void {
    const spec = remote_procedures[proc] as unknown as { number: number; msg: Codec<MsgOf<P>> };
    this.write({ prog: REMOTE_PROGRAM, vers: REMOTE_PROTOCOL_VERSION, proc: spec.number, type: VIR_NET_MESSAGE, serial: 0, status: VIR_NET_OK }, encode(spec.msg, msg));
  }

  private lifecycle(e: Events['domain.lifecycle']): void {
    const d = e.domain;
    if (e.event === 'rebooted') {
      this.sendEvent(VIR_DOMAIN_EVENT_ID_REBOOT, d.uuid, 'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_REBOOT', (callbackID) => ({ callbackID, msg: { dom: wire(d) } }));
      return;
    }
    const event = LIFECYCLE_EVENT[e.event];
    if (event === undefined) return;
    let detail = EVENT_DETAILS[e.event]?.[d.reason] ?? 0;
    if (e.event === 'defined') {
      detail = this.known.has(d.uuid) ? 1 : 0;
      this.known.add(d.uuid);
    }
    this.sendEvent(VIR_DOMAIN_EVENT_ID_LIFECYCLE, d.uuid, 'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE', (callbackID) => ({ callbackID, msg: { dom: wire(d), event, detail } }));
  }

  private summaryOf(uuid: string): DomainSummary | undefined {
    return this.host.list().find((d) => d.uuid === uuid);
  }

  /** The domain a call names, by UUID as libvirtd's drivers look it up. */
  private dom(dom: remote_nonnull_domain): DomainSummary {
    const uuid = uuidString(dom.uuid);
    const d = this.summaryOf(uuid);
    if (!d) throw new HostError('NO_DOMAIN', `no domain with matching uuid '${uuid}' (${dom.name})`);
    return d;
  }

  private procedures(): ImplTable {
    const { host } = this;
    const byName = (name: string): DomainSummary => {
      const d = host.list().find((x) => x.name === name);
      if (!d) throw noDomain(name);
      return d;
    };
    const after = (uuid: string): { dom: remote_nonnull_domain } => ({ dom: wire(this.summaryOf(uuid)!) });
    const shutdown = async (dom: remote_nonnull_domain, flags: number): Promise<void> => {
      const modes = SHUTDOWN_FLAGS.filter(([bit]) => flags & bit).map(([, mode]) => mode);
      // virDomainShutdown only asks the guest; it neither waits nor forces.
      await host.shutdown(this.dom(dom).uuid, { modes: modes.length ? modes : undefined, force: false, unreachable: 'fail' });
    };
    const setMemory = async (dom: remote_nonnull_domain, memory: bigint, flags: number): Promise<void> => {
      const uuid = this.dom(dom).uuid;
      const edit = { sizeKiB: Number(memory), live: Boolean(flags & AFFECT_LIVE), config: Boolean(flags & AFFECT_CONFIG) };
      if (flags & MEM_MAXIMUM) host.setMaxMemory(uuid, edit);
      else await host.setMemory(uuid, edit);
    };
    const undefine = (dom: remote_nonnull_domain, flags: number): void => {
      const d = this.dom(dom);
      if (d.managedSave && !(flags & UNDEFINE_MANAGED_SAVE)) throw operationInvalid('Refusing to undefine while domain managed save image exists');
      // libvirt undefines a running domain by making it transient.
      host.undefine(d.uuid, true);
    };
    const start = async (dom: remote_nonnull_domain, flags: number): Promise<{ dom: remote_nonnull_domain }> => {
      const d = this.dom(dom);
      if (d.state !== 'shutoff') throw operationInvalid('domain is already running');
      await host.start(d.uuid, { paused: Boolean(flags & START_PAUSED) });
      return after(d.uuid);
    };
    return {
      REMOTE_PROC_AUTH_LIST: () => ({ types: [REMOTE_AUTH_NONE] }),
      REMOTE_PROC_CONNECT_SUPPORTS_FEATURE: ({ feature }) => ({ supported: feature === VIR_DRV_FEATURE_PROGRAM_KEEPALIVE || feature === VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK || MIGRATION_FEATURES.includes(feature) ? 1 : 0 }),
      REMOTE_PROC_CONNECT_OPEN: ({ name, flags }) => {
        const uris = host.drivers.connections().map((c) => c.uri);
        if (name && !uris.includes(name)) {
          throw new LibvirtError(`no connection driver available for ${name}; this Domus host serves ${uris.join(', ')}`, VIR_ERR.NO_CONNECT, VIR_FROM.NONE);
        }
        this.uri = name || host.drivers.defaultDriver.uri;
        this.readonly = Boolean(flags & CONNECT_RO);
        this.opened = true;
      },
      REMOTE_PROC_CONNECT_CLOSE: () => {
        this.opened = false;
        this.callbacks.clear();
        this.networkCallbacks.clear();
      },
      REMOTE_PROC_CONNECT_GET_TYPE: () => ({ type: 'Domus' }),
      REMOTE_PROC_CONNECT_GET_VERSION: () => {
        const [major, minor, micro] = VERSION.split('.').map(Number);
        return { hv_ver: BigInt(major * 1_000_000 + minor * 1000 + micro) };
      },
      REMOTE_PROC_CONNECT_GET_LIB_VERSION: () => ({ lib_ver: LIB_VERSION }),
      REMOTE_PROC_CONNECT_GET_HOSTNAME: () => ({ hostname: os.hostname() }),
      REMOTE_PROC_CONNECT_GET_URI: () => ({ uri: this.uri }),
      REMOTE_PROC_CONNECT_IS_SECURE: () => ({ secure: 1 }),
      REMOTE_PROC_NODE_GET_SECURITY_MODEL: () => ({ model: [], doi: [] }),
      REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS: ({ need_results, flags }) => {
        const domains = host.list().filter((d) => listed(d, flags));
        return { domains: need_results ? domains.map(wire) : [], ret: domains.length };
      },
      REMOTE_PROC_CONNECT_NUM_OF_DOMAINS: () => ({ num: host.list().filter((d) => d.state !== 'shutoff').length }),
      REMOTE_PROC_CONNECT_NUM_OF_DEFINED_DOMAINS: () => ({ num: host.list().filter((d) => d.state === 'shutoff').length }),
      REMOTE_PROC_CONNECT_LIST_DOMAINS: ({ maxids }) => ({ ids: host.list().flatMap((d) => (d.id === undefined ? [] : [d.id])).slice(0, maxids) }),
      REMOTE_PROC_CONNECT_LIST_DEFINED_DOMAINS: ({ maxnames }) => ({ names: host.list().filter((d) => d.state === 'shutoff').map((d) => d.name).slice(0, maxnames) }),
      REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME: ({ name }) => ({ dom: wire(byName(name)) }),
      REMOTE_PROC_DOMAIN_LOOKUP_BY_UUID: ({ uuid }) => {
        const d = this.summaryOf(uuidString(uuid));
        if (!d) throw new HostError('NO_DOMAIN', `no domain with matching uuid '${uuidString(uuid)}'`);
        return { dom: wire(d) };
      },
      REMOTE_PROC_DOMAIN_LOOKUP_BY_ID: ({ id }) => {
        const d = host.list().find((x) => x.id === id);
        if (!d) throw new HostError('NO_DOMAIN', `no domain with matching id ${id}`);
        return { dom: wire(d) };
      },
      REMOTE_PROC_DOMAIN_GET_INFO: async ({ dom }) => {
        const { uuid } = this.dom(dom);
        await host.refreshCpuTime(uuid);
        const i = host.info(uuid);
        return { state: DOMAIN_STATES.indexOf(i.state), maxMem: BigInt(i.memoryKiB), memory: BigInt(i.currentMemoryKiB), nrVirtCpu: i.vcpus, cpuTime: BigInt(Math.round(i.cpuTimeMs * 1e6)) };
      },
      REMOTE_PROC_DOMAIN_GET_STATE: ({ dom }) => {
        const d = this.dom(dom);
        return { state: DOMAIN_STATES.indexOf(d.state), reason: REASONS[d.state]?.[d.reason] ?? 0 };
      },
      REMOTE_PROC_DOMAIN_GET_OS_TYPE: ({ dom }) => ({ type: host.info(this.dom(dom).uuid).osType }),
      REMOTE_PROC_DOMAIN_GET_MAX_MEMORY: ({ dom }) => ({ memory: BigInt(this.dom(dom).memoryKiB) }),
      REMOTE_PROC_DOMAIN_IS_ACTIVE: ({ dom }) => ({ active: this.dom(dom).state === 'shutoff' ? 0 : 1 }),
      REMOTE_PROC_DOMAIN_IS_PERSISTENT: ({ dom }) => ({ persistent: this.dom(dom).persistent ? 1 : 0 }),
      REMOTE_PROC_DOMAIN_IS_UPDATED: ({ dom }) => {
        this.dom(dom);
        return { updated: 0 };
      },
      REMOTE_PROC_DOMAIN_GET_AUTOSTART: ({ dom }) => ({ autostart: this.dom(dom).autostart ? 1 : 0 }),
      REMOTE_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE: ({ dom }) => ({ result: this.dom(dom).managedSave ? 1 : 0 }),
      REMOTE_PROC_DOMAIN_GET_SECURITY_LABEL: ({ dom }) => {
        this.dom(dom);
        return { label: [], enforcing: 0 };
      },
      REMOTE_PROC_DOMAIN_GET_XML_DESC: ({ dom, flags }) => {
        if (this.readonly && flags & XML_SECURE) throw readOnly('virDomainGetXMLDesc with secure flag');
        return { xml: host.xml(this.dom(dom).uuid, { inactive: Boolean(flags & XML_INACTIVE), secure: Boolean(flags & XML_SECURE) }).xml };
      },
      REMOTE_PROC_DOMAIN_DEFINE_XML: ({ xml }) => ({ dom: wire(host.define(xml).domain) }),
      REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS: ({ xml }) => ({ dom: wire(host.define(xml).domain) }),
      REMOTE_PROC_DOMAIN_UNDEFINE: ({ dom }) => undefine(dom, 0),
      REMOTE_PROC_DOMAIN_UNDEFINE_FLAGS: ({ dom, flags }) => undefine(dom, flags),
      REMOTE_PROC_DOMAIN_CREATE: async ({ dom }) => void (await start(dom, 0)),
      REMOTE_PROC_DOMAIN_CREATE_WITH_FLAGS: ({ dom, flags }) => start(dom, flags),
      REMOTE_PROC_DOMAIN_SHUTDOWN: ({ dom }) => shutdown(dom, 0),
      REMOTE_PROC_DOMAIN_SHUTDOWN_FLAGS: ({ dom, flags }) => shutdown(dom, flags),
      REMOTE_PROC_DOMAIN_DESTROY: async ({ dom }) => void (await host.destroy(this.dom(dom).uuid)),
      REMOTE_PROC_DOMAIN_DESTROY_FLAGS: async ({ dom }) => void (await host.destroy(this.dom(dom).uuid)),
      REMOTE_PROC_DOMAIN_SUSPEND: async ({ dom }) => void (await host.suspend(this.dom(dom).uuid)),
      REMOTE_PROC_DOMAIN_RESUME: async ({ dom }) => void (await host.resume(this.dom(dom).uuid)),
      // virDomainSetMemory is the live balloon (qemuDomainSetMemory: VIR_DOMAIN_AFFECT_LIVE).
      REMOTE_PROC_DOMAIN_SET_MEMORY: ({ dom, memory }) => setMemory(dom, memory, AFFECT_LIVE),
      REMOTE_PROC_DOMAIN_SET_MEMORY_FLAGS: ({ dom, memory, flags }) => setMemory(dom, memory, flags),
      REMOTE_PROC_DOMAIN_SET_MAX_MEMORY: ({ dom, memory }) => setMemory(dom, memory, MEM_MAXIMUM | AFFECT_CONFIG),
      REMOTE_PROC_DOMAIN_MEMORY_STATS: async ({ dom, maxStats }) => {
        const m = await host.memoryStats(this.dom(dom).uuid);
        const kib = (tag: number, v: number | undefined): { tag: number; val: bigint }[] => (v === undefined ? [] : [{ tag, val: BigInt(Math.round(v)) }]);
        const stats = [
          ...kib(MEM_STAT.ACTUAL_BALLOON, m.actualKiB),
          ...kib(MEM_STAT.UNUSED, m.unusedKiB),
          ...kib(MEM_STAT.AVAILABLE, m.availableKiB),
          ...kib(MEM_STAT.USABLE, m.usableKiB),
          ...kib(MEM_STAT.DISK_CACHES, m.diskCachesKiB),
          ...kib(MEM_STAT.LAST_UPDATE, m.lastUpdate === undefined ? undefined : Math.floor(m.lastUpdate / 1000)),
          ...kib(MEM_STAT.RSS, m.rssKiB),
        ];
        return { stats: stats.slice(0, maxStats) };
      },
      REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: ({ eventID, dom }) => {
        if (!EVENT_IDS.has(eventID)) throw noSupport(`event ID ${eventID}; Domus delivers lifecycle, reboot and balloon-change events`);
        const callbackID = this.nextCallback++;
        this.callbacks.set(callbackID, { eventID, uuid: dom ? this.dom(dom).uuid : undefined });
        return { callbackID };
      },
      REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: ({ callbackID }) => {
        if (!this.callbacks.delete(callbackID)) throw new LibvirtError(`could not find event callback ${callbackID} for deletion`, VIR_ERR.INVALID_ARG, VIR_FROM.DOMAIN);
      },
      ...this.networkProcedures(),
      ...migrationProcedures(host, {
        listen: () => (this.sock instanceof tls.TLSSocket ? { kind: 'tcp', address: this.sock.localAddress ?? '' } : { kind: 'unix' }),
        onClose: (f) => this.unsubscribe.push(f),
        wire,
        dom: (d) => this.dom(d),
      }),
    };
  }

  /** virsh net-* and domifaddr, answered by the host's own networks (host.networks). */
  private networkProcedures(): ImplTable {
    const networks = this.host.networks;
    /** A network the client names by its handle, looked up by UUID as libvirtd's network driver does. */
    const net = (n: remote_nonnull_network): string => networks.lookup(uuidString(n.uuid));
    const info = (n: remote_nonnull_network): NetworkInfo => networks.info(net(n));
    const byFlags = async (flags: number): Promise<NetworkInfo[]> => (await networks.list()).filter((n) => netListed(n, flags));
    return {
      REMOTE_PROC_CONNECT_LIST_ALL_NETWORKS: async ({ need_results, flags }) => {
        const listed = await byFlags(flags);
        return { nets: need_results ? listed.map(wireNet) : [], ret: listed.length };
      },
      REMOTE_PROC_CONNECT_NUM_OF_NETWORKS: async () => ({ num: (await byFlags(NET_LIST.ACTIVE)).length }),
      REMOTE_PROC_CONNECT_LIST_NETWORKS: async ({ maxnames }) => ({ names: (await byFlags(NET_LIST.ACTIVE)).map((n) => n.name).slice(0, maxnames) }),
      REMOTE_PROC_CONNECT_NUM_OF_DEFINED_NETWORKS: async () => ({ num: (await byFlags(NET_LIST.INACTIVE)).length }),
      REMOTE_PROC_CONNECT_LIST_DEFINED_NETWORKS: async ({ maxnames }) => ({ names: (await byFlags(NET_LIST.INACTIVE)).map((n) => n.name).slice(0, maxnames) }),
      REMOTE_PROC_NETWORK_LOOKUP_BY_NAME: ({ name }) => ({ net: wireNet(networks.info(networks.lookup(name))) }),
      REMOTE_PROC_NETWORK_LOOKUP_BY_UUID: ({ uuid }) => ({ net: wireNet(networks.info(networks.lookup(uuidString(uuid)))) }),
      REMOTE_PROC_NETWORK_GET_XML_DESC: ({ net: n, flags }) => ({ xml: networks.xml(net(n), Boolean(flags & NETWORK_XML_INACTIVE)) }),
      REMOTE_PROC_NETWORK_IS_ACTIVE: ({ net: n }) => ({ active: info(n).active ? 1 : 0 }),
      REMOTE_PROC_NETWORK_IS_PERSISTENT: ({ net: n }) => ({ persistent: info(n).persistent ? 1 : 0 }),
      REMOTE_PROC_NETWORK_GET_AUTOSTART: ({ net: n }) => ({ autostart: info(n).autostart ? 1 : 0 }),
      REMOTE_PROC_NETWORK_GET_BRIDGE_NAME: ({ net: n }) => {
        const { name, bridge } = info(n);
        if (!bridge) throw new LibvirtError(`internal error: network '${name}' does not have a bridge name.`, VIR_ERR.INTERNAL_ERROR, VIR_FROM.NETWORK);
        return { name: bridge };
      },
      REMOTE_PROC_NETWORK_DEFINE_XML: ({ xml }) => ({ net: wireNet(networks.define(xml).network) }),
      REMOTE_PROC_NETWORK_DEFINE_XML_FLAGS: ({ xml }) => ({ net: wireNet(networks.define(xml).network) }),
      REMOTE_PROC_NETWORK_UNDEFINE: ({ net: n }) => networks.undefine(net(n)),
      REMOTE_PROC_NETWORK_CREATE: async ({ net: n }) => void (await networks.start(net(n))),
      REMOTE_PROC_NETWORK_DESTROY: async ({ net: n }) => void (await networks.destroy(net(n))),
      REMOTE_PROC_NETWORK_SET_AUTOSTART: ({ net: n, autostart }) => void networks.setAutostart(net(n), autostart !== 0),
      REMOTE_PROC_NETWORK_GET_DHCP_LEASES: async ({ net: n, mac, need_results }) => {
        const { name, bridge } = info(n);
        const leases = await networks.dhcpLeases(name, mac ?? undefined);
        const wired = leases.map((l) => ({
          iface: bridge ?? name,
          expirytime: BigInt(l.expiryTime),
          type: 0,
          mac: l.mac,
          iaid: null,
          ipaddr: l.address,
          prefix: l.prefix,
          hostname: l.hostname ?? null,
          clientid: l.clientId ?? null,
        }));
        return { leases: need_results ? wired : [], ret: wired.length };
      },
      REMOTE_PROC_DOMAIN_INTERFACE_ADDRESSES: ({ dom, source }) => {
        if (source !== ADDRESSES_SRC_LEASE) throw new LibvirtError(`Operation not supported: address source ${source}; Domus knows the addresses its networks leased (--source lease)`, VIR_ERR.OPERATION_UNSUPPORTED, VIR_FROM.DOMAIN);
        const { interfaces } = this.host.interfaceAddresses(this.dom(dom).uuid);
        return {
          ifaces: interfaces.map((i) => ({ name: i.name, hwaddr: i.mac, addrs: i.addresses.map((a) => ({ type: a.type === 'ipv4' ? 0 : 1, addr: a.address, prefix: a.prefix })) })),
        };
      },
      REMOTE_PROC_CONNECT_NETWORK_EVENT_REGISTER_ANY: ({ eventID, net: n }) => {
        if (eventID !== VIR_NETWORK_EVENT_ID_LIFECYCLE) throw noSupport(`network event ID ${eventID}; Domus delivers network lifecycle events`);
        const callbackID = this.nextCallback++;
        this.networkCallbacks.set(callbackID, { uuid: n ? networks.info(net(n)).uuid : undefined });
        return { callbackID };
      },
      REMOTE_PROC_CONNECT_NETWORK_EVENT_DEREGISTER_ANY: ({ callbackID }) => {
        if (!this.networkCallbacks.delete(callbackID)) throw new LibvirtError(`could not find event callback ${callbackID} for deletion`, VIR_ERR.INVALID_ARG, VIR_FROM.NETWORK);
      },
    };
  }
}

/** One of virConnectListAll*'s filter groups: within a group any flag matches, an empty group matches all. */
const inGroup = (flags: number, pairs: [number, boolean][]): boolean => !pairs.some(([bit]) => flags & bit) || pairs.some(([bit, yes]) => flags & bit && yes);

/** virConnectListAllDomains' filter groups. */
function listed(d: DomainSummary, flags: number): boolean {
  const group = (pairs: [number, boolean][]): boolean => inGroup(flags, pairs);
  const active = d.state !== 'shutoff';
  return (
    group([[LIST.ACTIVE, active], [LIST.INACTIVE, !active]]) &&
    group([[LIST.PERSISTENT, d.persistent], [LIST.TRANSIENT, !d.persistent]]) &&
    group([[LIST.RUNNING, d.state === 'running'], [LIST.PAUSED, d.state === 'paused'], [LIST.SHUTOFF, d.state === 'shutoff'], [LIST.OTHER, !['running', 'paused', 'shutoff'].includes(d.state)]]) &&
    group([[LIST.MANAGEDSAVE, d.managedSave], [LIST.NO_MANAGEDSAVE, !d.managedSave]]) &&
    group([[LIST.AUTOSTART, d.autostart], [LIST.NO_AUTOSTART, !d.autostart]])
  );
}

/** virConnectListAllNetworks' filter groups. */
function netListed(n: NetworkInfo, flags: number): boolean {
  const group = (pairs: [number, boolean][]): boolean => inGroup(flags, pairs);
  return (
    group([[NET_LIST.ACTIVE, n.active], [NET_LIST.INACTIVE, !n.active]]) &&
    group([[NET_LIST.PERSISTENT, n.persistent], [NET_LIST.TRANSIENT, !n.persistent]]) &&
    group([[NET_LIST.AUTOSTART, n.autostart], [NET_LIST.NO_AUTOSTART, !n.autostart]])
  );
}

/** Serves libvirt's protocol on `socketPath` (owner-only, as the host's other socket). */
export async function listenLibvirt(host: Host, socketPath: string): Promise<UnixListener> {
  fs.rmSync(socketPath, { force: true });
  const clients = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    clients.add(sock);
    sock.on('close', () => clients.delete(sock));
    new LibvirtSession(host, sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  server.on('error', (err) => log('warn', `libvirt socket: ${err.message}`));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of clients) sock.destroy();
      }),
  };
}
