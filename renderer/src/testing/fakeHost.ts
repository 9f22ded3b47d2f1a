// The host as the stores' unit tests see it. The stores under test talk through the real
// HostConnection and ApiClient; this fake stands at the transport, where the JSON messages cross,
// and the test plays the host: it answers or refuses requests and sends events.
import { afterEach, beforeEach, mock } from 'node:test';
import { createPinia, setActivePinia } from 'pinia';
import type { ApiError, DomainSummary, EventName, Events, Method, Params, Result, ServerMessage } from '@shared/api';
import type { MessageTransport } from '@shared/client';
import { HostConnection } from '../api/connection';
import { setHostConnection } from '../stores/api';
import { useDomainsStore } from '../stores/domains';
import { installBrowserGlobals } from './browser';

interface SentRequest {
  id: number;
  method: Method;
  params: unknown;
}

type Answer = (params: never) => unknown;

/** Lets the replies and events already sent reach the stores (they travel as microtasks). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeHostTransport implements MessageTransport {
  /** Every request the stores sent, in order. */
  readonly requests: SentRequest[] = [];
  private readonly unanswered: SentRequest[] = [];
  private readonly answers = new Map<Method, Answer>();
  private receiver: (text: string) => void = () => undefined;
  private closeHandler: (reason: string) => void = () => undefined;

  send(text: string): void {
    const { id, method, params } = JSON.parse(text) as SentRequest;
    const request = { id, method, params };
    this.requests.push(request);
    const answer = this.answers.get(method);
    if (!answer) {
      this.unanswered.push(request);
      return;
    }
    try {
      this.deliver({ type: 'reply', id, ok: true, result: answer(params as never) });
    } catch (err) {
      this.deliver({ type: 'reply', id, ok: false, error: err as ApiError });
    }
  }

  onMessage(handler: (text: string) => void): void {
    this.receiver = handler;
  }

  onClose(handler: (reason: string) => void): void {
    this.closeHandler = handler;
  }

  close(): void {
    this.closeHandler('client closed');
  }

  /** Answers every request for `method` from now on; throwing an ApiError refuses it. */
  answer<M extends Method>(method: M, respond: (params: Params<M>) => Result<M>): void {
    this.answers.set(method, respond as Answer);
  }

  /** Answers the oldest unanswered request for `method`, and says what it asked. */
  reply<M extends Method>(method: M, result: Result<M>): Params<M> {
    const request = this.take(method);
    this.deliver({ type: 'reply', id: request.id, ok: true, result });
    return request.params as Params<M>;
  }

  /** Refuses the oldest unanswered request for `method` with the host's error. */
  refuse<M extends Method>(method: M, error: ApiError): Params<M> {
    const request = this.take(method);
    this.deliver({ type: 'reply', id: request.id, ok: false, error });
    return request.params as Params<M>;
  }

  /** The parameters of every request sent for `method`, answered or not. */
  sent<M extends Method>(method: M): Params<M>[] {
    return this.requests.filter((r) => r.method === method).map((r) => r.params as Params<M>);
  }

  emit<E extends EventName>(event: E, data: Events[E]): void {
    this.deliver({ type: 'event', event, data });
  }

  private take(method: Method): SentRequest {
    const i = this.unanswered.findIndex((r) => r.method === method);
    if (i < 0) throw new Error(`no unanswered ${method} request (sent: ${this.requests.map((r) => r.method).join(', ')})`);
    return this.unanswered.splice(i, 1)[0];
  }

  private deliver(message: ServerMessage): void {
    const text = JSON.stringify(message);
    queueMicrotask(() => this.receiver(text));
  }
}

/**
 * A fresh Pinia whose stores reach a connected fake host. The domain list every connection loads
 * is answered with `domains`.
 */
export async function connectFakeHost(domains: DomainSummary[] = []): Promise<FakeHostTransport> {
  installBrowserGlobals();
  const transport = new FakeHostTransport();
  transport.answer('session.hello', () => ({}));
  transport.answer('domain.list', () => ({ domains: structuredClone(domains) }));
  const connection = new HostConnection(() => Promise.resolve(transport), { kind: 'web', label: 'unit test' });
  setHostConnection(connection);
  setActivePinia(createPinia());
  connection.start();
  await settle();
  return transport;
}

/** A shut-off domain summary; `fields` overrides any of it. */
export function summary(fields: Partial<DomainSummary> & Pick<DomainSummary, 'uuid' | 'name'>): DomainSummary {
  return {
    state: 'shutoff',
    reason: 'unknown',
    step: null,
    persistent: true,
    engine: 'v86',
    memoryKiB: 262_144,
    currentMemoryKiB: 262_144,
    vcpus: 1,
    cpuPercent: 0,
    autostart: false,
    onHostStop: 'shutdown',
    managedSave: false,
    generation: 1,
    ...fields,
  };
}

/**
 * For each test of the enclosing suite: mocked timers, a fresh Pinia on a fake host listing
 * `domains`, and the domain list loaded (toasts name domains from it). `fixture.host` is the
 * current test's host.
 */
export function fakeHostPerTest(domains: DomainSummary[]): { host: FakeHostTransport } {
  const fixture = {} as { host: FakeHostTransport };
  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    fixture.host = await connectFakeHost(domains);
    useDomainsStore();
    await settle();
  });
  afterEach(() => mock.timers.reset());
  return fixture;
}
