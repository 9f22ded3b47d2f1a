// One client connection to the host, whatever the transport: validates every request against the
// contract in shared/api.ts, calls the host, replies, and forwards the events this client wants.
import { z } from 'zod';
import {
  describeZodError,
  isMethod,
  RequestEnvelope,
  RequestParams,
  type ApiError,
  type EventName,
  type Events,
  type Method,
  type ParsedParams,
  type Results,
} from '../../shared/api.js';
import { Host, HostError } from './host.js';
import { log } from './log.js';

export interface ClientInfo {
  /** Who is asking: 'cli', 'web', 'electron'. */
  kind: string;
  label: string;
}

type Handler<M extends Method> = (params: ParsedParams<M>, session: ApiSession) => Results[M] | Promise<Results[M]>;
type HandlerTable = { [M in Method]: Handler<M> };

/** Broadcast events every client receives; serial output only goes to clients that opened it. */
const BROADCAST: EventName[] = ['domain.lifecycle', 'domain.defined', 'domain.undefined', 'domain.stats'];

export interface HostServices {
  host: Host;
  webShellUrl(): Promise<string>;
  stop(): void;
}

function handlers(svc: HostServices): HandlerTable {
  const { host } = svc;
  return {
    'host.status': () => host.status(),
    'host.samples': async () => (await import('./samples.js')).sampleGuests(),
    'host.webShell': async () => ({ url: await svc.webShellUrl() }),
    'host.stop': () => {
      setImmediate(() => svc.stop());
      return {};
    },
    'domain.list': (p) => ({ domains: host.list().filter((d) => p.all || d.state !== 'shutoff') }),
    'domain.define': (p) => host.define(p.xml),
    'domain.create': (p) => host.create(p.spec),
    'domain.undefine': (p) => {
      host.undefine(p.domain);
      return {};
    },
    'domain.start': async (p) => ({ domain: await host.start(p.domain) }),
    'domain.destroy': async (p) => ({ domain: await host.destroy(p.domain) }),
    'domain.suspend': async (p) => ({ domain: await host.suspend(p.domain) }),
    'domain.resume': async (p) => ({ domain: await host.resume(p.domain) }),
    'domain.info': (p) => host.info(p.domain),
    'domain.xml': (p) => ({ xml: host.xml(p.domain) }),
    'domain.screenshot': async (p) => {
      const shot = await host.screenshot(p.domain);
      return { png: shot.png.toString('base64'), width: shot.width, height: shot.height };
    },
    'domain.sendKeys': async (p) => {
      await host.sendKeys(p.domain, p);
      return {};
    },
    'domain.serialOpen': (p, session) => {
      const { uuid, history } = host.serialHistory(p.domain);
      session.serialUuids.add(uuid);
      return { backlog: history.toString('base64') };
    },
    'domain.serialClose': (p, session) => {
      session.serialUuids.delete(host.lookup(p.domain).config.uuid);
      return {};
    },
    'domain.serialWrite': async (p) => {
      await host.serialWrite(p.domain, Buffer.from(p.data, 'base64'));
      return {};
    },
  };
}

export class ApiSession {
  readonly serialUuids = new Set<string>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly table: HandlerTable;

  constructor(
    private readonly svc: HostServices,
    readonly client: ClientInfo,
    private readonly send: (text: string) => void,
  ) {
    this.table = handlers(svc);
    for (const name of BROADCAST) this.forward(name, () => true);
    this.forward('domain.serial', (d) => this.serialUuids.has(d.uuid));
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
      return this.replyError(id, { code: 'bad-request', message: `malformed request: ${describeZodError(env.error)}` });
    }
    const { id, method } = env.data;
    if (!isMethod(method)) {
      return this.replyError(id, { code: 'unknown-method', message: `unknown method '${method}'` });
    }
    const schema = RequestParams[method] as z.ZodType;
    const params = schema.safeParse(env.data.params ?? {});
    if (!params.success) {
      return this.replyError(id, { code: 'invalid-arg', message: `invalid arguments for ${method}: ${describeZodError(params.error)}` });
    }
    try {
      const handler = this.table[method] as Handler<Method>;
      const result = await handler(params.data as never, this);
      this.send(JSON.stringify({ type: 'reply', id, ok: true, result }));
    } catch (err) {
      if (err instanceof HostError) return this.replyError(id, { code: err.code, message: err.message });
      log('error', `${method} from ${this.client.label} failed: ${(err as Error).stack ?? err}`);
      this.replyError(id, { code: 'internal', message: `internal error: ${(err as Error).message}` });
    }
  }

  /** A message the transport could not even decode. */
  malformed(reason: string): void {
    this.replyError(0, { code: 'bad-request', message: `malformed message: ${reason}` });
  }

  close(): void {
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
