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
];

/** The methods a request's connection applies to (stats.watch: that connection's sampling). */
const PER_CONNECTION = /^(domain|pool|volume|stats)\./;

/** Events of libvirt connections every client receives (with the connection's URI in the envelope). */
const REMOTE_BROADCAST = new Set<EventName>(['domain.lifecycle', 'domain.defined', 'domain.undefined', 'domain.balloon', 'job.progress', 'job.completed']);

export class ApiSession implements ClientSession {
  readonly serialUuids = new Set<string>();
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
      const wanted = REMOTE_BROADCAST.has(name) || (name === 'domain.stats' && svc.host.connections.wantsStats(uri, this, (data as Events['domain.stats']).uuid));
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
    const args = params.data as { domain?: string };
    // A domain or storage request for a libvirt connection goes to it; the host's own URIs mean the
    // local engines, and host-wide methods (session, trace, connections) are always the host's.
    const remote = env.data.connection !== undefined && !LOCAL_URIS.has(env.data.connection) && PER_CONNECTION.test(method);
    const connection = remote ? env.data.connection : undefined;
    try {
      const result = connection
        ? await this.callConnection(connection, method, params.data)
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

  /** A request for a libvirt connection; a statistics watch there is this session's, on that connection. */
  private async callConnection(uri: string, method: Method, params: unknown): Promise<unknown> {
    const { connections } = this.svc.host;
    if (method === 'stats.watch') {
      const p = params as { domains?: string[]; intervalMs: number };
      await connections.watchStats(uri, this, p.domains, p.intervalMs);
      return {};
    }
    if (method === 'stats.unwatch') {
      connections.unwatchStats(this, uri);
      return {};
    }
    return connections.call(uri, method, params);
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
