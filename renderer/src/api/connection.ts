// Keeps one live ApiClient to the host. A client dies with its transport, so after a close
// (host restart, sleep, crash) a new transport and client are built, with backoff, and the event
// listeners registered here carry over. The one close that is not retried is the host stopping
// because someone asked it to (see expectClose).
import type { EventName, Events, Method, Params, Result } from '@shared/api';
import { ApiClient, type MessageTransport } from '@shared/client';

/** 'closed': the host stopped on request and no reconnection is attempted until start(). */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

const BACKOFF_MS = [300, 600, 1200, 2500, 5000];

type Listener = (data: Events[EventName]) => void;
type RemoteListener = (data: Events[EventName], connection: string) => void;

export class HostConnection {
  private client: ApiClient | null = null;
  private attempts = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly listeners = new Map<EventName, Set<Listener>>();
  private readonly remoteListeners = new Map<EventName, Set<RemoteListener>>();
  private readonly stateHandlers = new Set<(state: ConnectionState) => void>();
  private currentState: ConnectionState = 'connecting';
  private currentProblem = '';
  private stayClosed = false;

  /**
   * `hello` is sent first on every connection, so the host's trace can say which window asked
   * for what (a new connection is a new session on the host).
   */
  constructor(
    private readonly openTransport: () => Promise<MessageTransport>,
    private readonly hello: Params<'session.hello'>,
  ) {}

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Why the last attempt failed or the last connection closed. */
  get problem(): string {
    return this.currentProblem;
  }

  start(): void {
    this.stayClosed = false;
    if (this.client || this.retryTimer !== undefined) return;
    this.setState('connecting');
    void this.open();
  }

  /**
   * The host is stopping because it was asked to: when its connection closes, stay closed rather
   * than reconnect (a restarted host would otherwise look like the stop never happened).
   * `false` withdraws this, e.g. when the host refused to stop.
   */
  expectClose(expected: boolean): void {
    this.stayClosed = expected;
  }

  /** `opts.connection`: the libvirt connection (URI) a domain or storage request is for; absent: this computer. */
  call<M extends Method>(method: M, params: Params<M>, opts: { connection?: string } = {}): Promise<Result<M>> {
    if (!this.client) return Promise.reject(new Error('Not connected to the Domus host'));
    return this.client.call(method, params, opts);
  }

  /** Events of this computer's own engines (those of libvirt connections go to onRemote). */
  on<E extends EventName>(event: E, listener: (data: Events[E]) => void): () => void {
    return this.add(this.listeners, event, listener as Listener);
  }

  /** Events of the libvirt connections, with the URI of the one each comes from. */
  onRemote<E extends EventName>(event: E, listener: (data: Events[E], connection: string) => void): () => void {
    return this.add(this.remoteListeners, event, listener as RemoteListener);
  }

  /** Called on every state change; a 'connected' is the moment to (re)load host state. */
  onState(handler: (state: ConnectionState) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  private add<L>(map: Map<EventName, Set<L>>, event: EventName, listener: L): () => void {
    const known = this.listeners.has(event) || this.remoteListeners.has(event);
    let set = map.get(event);
    if (!set) map.set(event, (set = new Set()));
    if (!known && this.client) this.forward(this.client, event);
    set.add(listener);
    return () => set.delete(listener);
  }

  private forward(client: ApiClient, event: EventName): void {
    client.on(event, (data, connection) => {
      if (connection === undefined) for (const listener of this.listeners.get(event) ?? []) listener(data);
      else for (const listener of this.remoteListeners.get(event) ?? []) listener(data, connection);
    });
  }

  private async open(): Promise<void> {
    this.retryTimer = undefined;
    let transport: MessageTransport;
    try {
      transport = await this.openTransport();
    } catch (err) {
      this.retry(err instanceof Error ? err.message : String(err));
      return;
    }
    const client = new ApiClient(transport);
    client.onClose((reason) => {
      if (this.client !== client) return;
      this.client = null;
      if (this.stayClosed) {
        this.currentProblem = reason;
        this.setState('closed');
      } else this.retry(reason);
    });
    for (const event of new Set([...this.listeners.keys(), ...this.remoteListeners.keys()])) this.forward(client, event);
    this.client = client;
    // Sent before anything the 'connected' handlers ask, so every later request is attributed.
    // A host that predates session.hello still serves the window; its trace just cannot name it.
    client.call('session.hello', this.hello).catch(() => undefined);
    this.attempts = 0;
    this.currentProblem = '';
    this.setState('connected');
  }

  private retry(problem: string): void {
    this.currentProblem = problem;
    const delay = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts++;
    // Jitter keeps several windows from hammering a restarting host in lockstep.
    this.retryTimer = setTimeout(() => void this.open(), delay * (0.8 + Math.random() * 0.4));
    this.setState('reconnecting');
  }

  private setState(state: ConnectionState): void {
    this.currentState = state;
    for (const handler of this.stateHandlers) handler(state);
  }
}
