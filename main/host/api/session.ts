// One client connection to the host, whatever the transport: validates every request against the
// contract in shared/api.ts, calls the host, replies, and forwards the events this client wants.
import { z } from 'zod';
import { describeZodError, isMethod, RequestEnvelope, RequestParams, type ApiError, type EventName, type Events, type Method, type TraceRecord } from '../../../shared/api.js';
import { errorMessage } from '../../../shared/errors.js';
import { handlers, type ClientInfo, type ClientSession, type Handler, type HandlerTable, type HostServices } from './handlers.js';
import { LOCAL_URIS } from '../connections/manager.js';
import { apiErrorOf } from '../errors.js';
import { log } from '../log.js';

export type { ClientInfo, HostServices };


/** Broadcast events every client receives; serial output only goes to clients that opened it. */
const BROADCAST: EventName[] = [
  'domain.lifecycle',
  'domain.defined',
  'domain.undefined',
  'domain.balloon',
  'job.progress',
  'job.completed',
  'host.stopping',
  'download.progress',
  'connection.state',
  'connection.prompt',
  'connection.promptEnded',
  'network.lifecycle',
];

/** Requests whose parameters hold secrets the trace must not keep, even under a harmless key. */
const SECRET_PARAMS: Partial<Record<Method, (args: Record<string, unknown>) => Record<string, unknown>>> = {
  'connection.answer': (args) => ({ ...args, ...('answer' in args ? { answer: '***' } : {}) }),
};

/** The methods a request's connection applies to (stats.watch: that connection's sampling). */
const PER_CONNECTION = /^(domain|pool|volume|stats|network|snapshot)\./;

/** Events of libvirt connections every client receives (with the connection's URI in the envelope). */
const REMOTE_BROADCAST = new Set<EventName>(['domain.lifecycle', 'domain.defined', 'domain.undefined', 'domain.balloon', 'job.progress', 'job.completed', 'network.lifecycle']);

/** A libvirt domain's entry in serialUuids: the connection's URI, a space, the UUID (a URI has no spaces). */
const remoteSerialKey = (uri: string, uuid: string): string => `${uri} ${uuid}`;

let sessions = 0;

export class ApiSession implements ClientSession {
  /** This host's own domains by UUID, and libvirt domains by remoteSerialKey. */
  readonly serialUuids = new Set<string>();
  /** Tells this client apart from others on a libvirt connection's shared serial console. */
  private readonly id = `session-${++sessions}`;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly table: HandlerTable;
  private traceWatch?: () => void;

  constructor(
    private readonly svc: HostServices,
    public client: ClientInfo,
    private readonly send: (text: string) => void,
  ) {
    this.table = handlers(svc);
    for (const name of BROADCAST) this.forward(name, () => true);
    this.forward('domain.serial', (d) => this.serialUuids.has(d.uuid));
    // Statistics samples only go to clients that watch them (stats.watch).
    this.forward('domain.stats', (d) => this.svc.host.statsWatchers.wants(this, d.uuid));
    const remote = (uri: string, name: EventName, data: Events[EventName]): void => {
      // A libvirt domain's serial output goes to the clients that opened it, keyed by connection and UUID;
      // its statistics to the clients that watch them there.
      const wanted =
        name === 'domain.serial'
          ? this.serialUuids.has(remoteSerialKey(uri, (data as Events['domain.serial']).uuid))
          : name === 'domain.stats'
            ? svc.host.connections.wantsStats(uri, this, (data as Events['domain.stats']).uuid)
            : REMOTE_BROADCAST.has(name);
      if (wanted) this.send(JSON.stringify({ type: 'event', event: name, data, connection: uri }));
    };
    svc.host.connections.on('event', remote);
    this.unsubscribe.push(() => svc.host.connections.off('event', remote));
  }

  /** Handles one incoming JSON text; never throws: every problem becomes an error reply. */
  async receiveText(text: string): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.malformed('not valid JSON');
    }
    return this.receive(raw);
  }

  /** Handles one parsed message; never throws. */
  async receive(raw: unknown): Promise<void> {
    const env = RequestEnvelope.safeParse(raw);
    if (!env.success) {
      const id = typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : 0;
      return this.replyError(id, { code: 'RPC', message: errorMessage('RPC', `malformed request: ${describeZodError(env.error)}`) });
    }
    const { id, method } = env.data;
    if (!isMethod(method)) {
      return this.replyError(id, { code: 'NO_SUPPORT', message: errorMessage('NO_SUPPORT', `unknown method '${method}'`) });
    }
    const schema = RequestParams[method] as z.ZodType;
    const params = schema.safeParse(env.data.params ?? {});
    if (!params.success) {
      return this.replyError(id, { code: 'INVALID_ARG', message: errorMessage('INVALID_ARG', `${method}: ${describeZodError(params.error)}`) });
    }
    const started = Date.now();
    const args = (SECRET_PARAMS[method]?.(params.data as Record<string, unknown>) ?? params.data) as { domain?: string };
    // A domain, storage or network request for a libvirt connection goes to it; the host's own URIs mean the
    // local engines, and host-wide methods (session, trace, connections) are always the host's.
    const remote = env.data.connection !== undefined && !LOCAL_URIS.has(env.data.connection) && PER_CONNECTION.test(method);
    const connection = remote ? env.data.connection : undefined;
    try {
      const result = connection
        ? await this.remoteCall(connection, method, params.data as Record<string, unknown>)
        : await (this.table[method] as Handler<Method>)(params.data as never, this);
      this.traceRequest(method, args, started, true, result, undefined, connection);
      this.send(JSON.stringify({ type: 'reply', id, ok: true, result }));
    } catch (err) {
      const error: ApiError = apiErrorOf(err);
      if (error.code === 'INTERNAL_ERROR') log('error', `${method} from ${this.client.label} failed: ${(err as Error).stack ?? err}`);
      this.traceRequest(method, args, started, false, undefined, error.message, connection);
      this.replyError(id, error);
    }
  }

  /**
   * A request for a libvirt connection. Opening and closing a serial console also says which client
   * it is (the connection shares one console stream among its clients) and which UUID it is for; a
   * statistics watch there is this session's, on that connection.
   */
  private async remoteCall(uri: string, method: Method, params: Record<string, unknown>): Promise<unknown> {
    const connections = this.svc.host.connections;
    if (method === 'stats.watch') {
      await connections.watchStats(uri, this, params.domains as string[] | undefined, params.intervalMs as number);
      return {};
    }
    if (method === 'stats.unwatch') {
      connections.unwatchStats(this, uri);
      return {};
    }
    if (method !== 'domain.serialOpen' && method !== 'domain.serialClose') return connections.call(uri, method, params);
    const { uuid, ...result } = (await connections.call(uri, method, { ...params, client: this.id })) as { uuid: string };
    if (method === 'domain.serialOpen') this.serialUuids.add(remoteSerialKey(uri, uuid));
    else this.serialUuids.delete(remoteSerialKey(uri, uuid));
    return result;
  }

  identify(info: ClientInfo): void {
    this.client = { kind: info.kind, label: info.label, pid: info.pid };
  }

  /** Streams trace records matching the filter to this client; returns the recent ones when asked. */
  watchTrace(filter: { domain?: string; op?: string; backlog: boolean }): TraceRecord[] {
    this.unwatchTrace();
    const { unsubscribe, backlog } = this.svc.host.trace.subscribe(filter, (record) =>
      this.send(JSON.stringify({ type: 'event', event: 'trace.record', data: { record } })),
    );
    this.traceWatch = unsubscribe;
    return filter.backlog ? backlog : [];
  }

  unwatchTrace(): void {
    this.traceWatch?.();
    this.traceWatch = undefined;
  }

  private traceRequest(op: string, args: { domain?: string }, started: number, ok: boolean, result?: unknown, error?: string, connection?: string): void {
    if (op.startsWith('trace.')) return;
    const reply = result as { job?: { id: number; domain: string }; domain?: { name: string } } | undefined;
    const job = reply?.job?.id;
    // define, create and restore name their domain only in the reply.
    const domain = args.domain === undefined ? (reply?.domain?.name ?? reply?.job?.domain) : connection ? args.domain : this.domainName(args.domain);
    this.svc.host.trace.request({
      time: started,
      client: this.client,
      connection,
      domain,
      job,
      op,
      args,
      ok,
      result,
      error,
      durationMs: Date.now() - started,
    });
  }

  private domainName(ref: string): string {
    try {
      return this.svc.host.lookup(ref).doc.config.name;
    } catch {
      return ref;
    }
  }

  /** A message the transport could not even decode. */
  malformed(reason: string): void {
    this.replyError(0, { code: 'RPC', message: errorMessage('RPC', `malformed message: ${reason}`) });
  }

  close(): void {
    this.unwatchTrace();
    this.svc.host.statsWatchers.unwatch(this);
    this.svc.host.connections.unwatchStats(this);
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
    // Libvirt consoles this client still had open: the connection closes a stream its last client leaves.
    for (const key of this.serialUuids) {
      const space = key.lastIndexOf(' ');
      if (space < 0) continue;
      this.svc.host.connections.call(key.slice(0, space), 'domain.serialClose', { domain: key.slice(space + 1), client: this.id }).catch(() => undefined);
    }
    this.serialUuids.clear();
  }

  private forward<E extends EventName>(name: E, wanted: (data: Events[E]) => boolean): void {
    const listener = (data: Events[E]): void => {
      if (wanted(data)) this.send(JSON.stringify({ type: 'event', event: name, data }));
    };
    const host = this.svc.host as unknown as NodeJS.EventEmitter;
    host.on(name, listener);
    this.unsubscribe.push(() => host.off(name, listener));
  }

  private replyError(id: number, error: ApiError): void {
    this.send(JSON.stringify({ type: 'reply', id, ok: false, error }));
  }
}
