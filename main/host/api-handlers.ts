// One handler per API method: the table the API session dispatches to after validation.
import type { Method, ParsedParams, Results } from '../../shared/api.js';
import type { ApiSession } from './api-session.js';
import type { Host } from './host.js';

export type Handler<M extends Method> = (params: ParsedParams<M>, session: ApiSession) => Results[M] | Promise<Results[M]>;
export type HandlerTable = { [M in Method]: Handler<M> };

export interface HostServices {
  host: Host;
  webShellUrl(): Promise<string>;
  stop(): void;
}

export function handlers(svc: HostServices): HandlerTable {
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

