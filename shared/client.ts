// A transport-agnostic API client, used by the renderer (WebSocket or Electron port) and the CLI
// (unix socket). The transport only moves JSON text; this class pairs replies with requests.
import type { ApiError, EventName, Events, Method, Params, Result, ServerMessage } from './api.js';

export interface MessageTransport {
  send(text: string): void;
  /** Registers the receiver of every incoming message (called once). */
  onMessage(handler: (text: string) => void): void;
  onClose(handler: (reason: string) => void): void;
  close(): void;
}

export class ApiCallError extends Error implements ApiError {
  readonly code: ApiError['code'];
  constructor(error: ApiError) {
    super(error.message);
    this.name = 'ApiCallError';
    this.code = error.code;
  }
}

/** An event's data, and the libvirt connection it comes from (undefined: the host's own engines). */
type Listener<E extends EventName> = (data: Events[E], connection: string | undefined) => void;

export class ApiClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<EventName, Set<Listener<EventName>>>();
  private closedReason: string | undefined;
  private readonly closeHandlers = new Set<(reason: string) => void>();

  /**
   * `connection`: the libvirt connection (URI) every call is for, as `virsh -c URI` does; without it,
   * calls go to the host's own engines.
   */
  constructor(
    private readonly transport: MessageTransport,
    private readonly connection?: string,
  ) {
    transport.onMessage((text) => this.receive(text));
    transport.onClose((reason) => {
      this.closedReason = reason;
      for (const p of this.pending.values()) p.reject(new Error(`connection to Domus host closed: ${reason}`));
      this.pending.clear();
      for (const h of this.closeHandlers) h(reason);
    });
  }

  /** `opts.connection` overrides the client's connection for this call. */
  call<M extends Method>(method: M, params: Params<M>, opts: { connection?: string } = {}): Promise<Result<M>> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new Error(`connection to Domus host closed: ${this.closedReason}`));
    }
    const id = this.nextId++;
    return new Promise<Result<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const connection = opts.connection ?? this.connection;
      const envelope = connection ? { type: 'request', id, method, params, connection } : { type: 'request', id, method, params };
      this.transport.send(JSON.stringify(envelope));
    });
  }

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<EventName>);
    return () => set.delete(listener as Listener<EventName>);
  }

  onClose(handler: (reason: string) => void): void {
    this.closeHandlers.add(handler);
  }

  close(): void {
    this.transport.close();
  }

  private receive(text: string): void {
    let msg: ServerMessage;
    try {
      msg = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    if (msg.type === 'reply' && msg.id === 0 && !msg.ok) {
      // The host could not read a request at all (e.g. a line over its size limit), so it cannot
      // say which: every call still waiting fails with that error rather than waiting forever.
      for (const p of this.pending.values()) p.reject(new ApiCallError(msg.error));
      this.pending.clear();
    } else if (msg.type === 'reply') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new ApiCallError(msg.error));
    } else if (msg.type === 'event') {
      for (const l of this.listeners.get(msg.event) ?? []) l(msg.data as never, msg.connection);
    }
  }
}
