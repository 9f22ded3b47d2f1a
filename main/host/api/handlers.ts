// One handler per API method: the table the API session dispatches to after validation.
import type { Method, ParsedParams, Results, TraceRecord } from '../../../shared/api.js';
import fs from 'node:fs';
import { loadCatalogue } from '../downloads/catalogue.js';
import { DownloadError } from '../downloads/manager.js';
import { browse } from '../storage/browse.js';
import { HostError, invalidArg, operationUnsupported } from '../errors.js';
import type { Host } from '../host.js';
import { listUsbDevices } from '../usb.js';

/** Who a request came from, as a handler sees it: one client's session (api-session.ts). */
export interface ClientSession {
  /** Domains whose serial output this client receives. */
  readonly serialUuids: Set<string>;
  identify(info: ClientInfo): void;
  /** Streams trace records matching the filter to this client; returns the recent ones when asked. */
  watchTrace(filter: { domain?: string; op?: string; backlog: boolean }): TraceRecord[];
  unwatchTrace(): void;
}

export interface ClientInfo {
  /** Who is asking: 'cli', 'web', 'electron', … (the client says so in session.hello). */
  kind: string;
  label: string;
  pid?: number;
}

export type Handler<M extends Method> = (params: ParsedParams<M>, session: ClientSession) => Results[M] | Promise<Results[M]>;
export type HandlerTable = { [M in Method]: Handler<M> };

export interface HostServices {
  host: Host;
  /** Starts the web shell if needed; a new one-time address into it. */
  webShellUrl(): Promise<string>;
  /** Stops the host: each running domain follows its on-stop policy first. */
  stop(): void;
}

export function handlers(svc: HostServices): HandlerTable {
  const { host } = svc;
  return {
    'connection.list': () => ({ connections: host.connections.list() }),
    'connection.add': async (p) => ({ connection: await host.connections.add(p.uri, p.autoconnect) }),
    'connection.remove': async (p) => {
      await host.connections.remove(p.uri);
      return {};
    },
    'connection.open': async (p) => ({ connection: await host.connections.open(p.uri) }),
    'connection.close': async (p) => ({ connection: await host.connections.close(p.uri) }),
    'connection.answer': (p) => {
      host.sshPrompts.answer(p.id, p.cancel ? undefined : p.answer);
      return {};
    },
    'connection.prompts': () => ({ prompts: host.sshPrompts.list() }),
    'host.status': () => host.status(),
    'host.uri': () => ({ uri: host.canonicalUri }),
    'host.samples': async () => (await import('../new-vm/samples.js')).sampleGuests(),
    'host.webShell': async () => ({ url: await svc.webShellUrl() }),
    'host.stop': () => {
      setImmediate(() => svc.stop());
      return {};
    },
    'session.hello': (p, session) => {
      session.identify(p);
      return {};
    },
    'trace.subscribe': (p, session) => ({ backlog: session.watchTrace(p) }),
    'trace.unsubscribe': (_p, session) => {
      session.unwatchTrace();
      return {};
    },
    'domain.list': (p) => ({ domains: host.list().filter((d) => p.all || d.state !== 'shutoff') }),
    'domain.define': (p) => host.define(p.xml, p.expectGeneration),
    'domain.create': (p) => host.create(p.spec),
    'domain.createTransient': (p) => host.createTransient(p.xml, p.paused),
    'domain.undefine': (p) => host.undefineWithStorage(p.domain, p),
    'domain.start': async (p) => {
      const domain = await host.start(p.domain);
      return { domain, warnings: host.startNotes(p.domain) };
    },
    'domain.destroy': async (p) => ({ domain: await host.destroy(p.domain) }),
    'domain.shutdown': (p) => host.shutdown(p.domain, { modes: p.modes, force: p.force, unreachable: p.unreachable, timeoutSec: p.timeoutSec }),
    'domain.reboot': async (p) => ({ domain: await host.reboot(p.domain) }),
    'domain.reset': async (p) => ({ domain: await host.reset(p.domain) }),
    'domain.suspend': async (p) => ({ domain: await host.suspend(p.domain) }),
    'domain.resume': async (p) => ({ domain: await host.resume(p.domain) }),
    'domain.setAutostart': (p) => ({ domain: host.setAutostart(p.domain, p.enabled) }),
    'domain.setOnHostStop': (p) => ({ domain: host.setOnHostStop(p.domain, p.policy) }),
    'domain.fastStart': (p) => ({ domain: host.setFastStart(p.domain, p.action, p.afterSec) }),
    'domain.setMetadata': (p) => host.setMetadata(p.domain, p),
    'domain.save': async (p) => ({ job: await host.save(p.domain, p.file) }),
    'domain.restore': (p) => host.restore(p.file, p.paused),
    'domain.managedSave': async (p) => ({ job: await host.managedSave(p.domain) }),
    'domain.managedSaveRemove': (p) => ({ domain: host.managedSaveRemove(p.domain) }),
    'domain.coreDump': (p) => host.coreDump(p.domain, p.file, p),
    'domain.migrate': (p) => host.migrate(p.domain, p),
    'domain.clone': (p) => host.clone(p.domain, p),
    'domain.jobInfo': (p) => ({ job: host.jobInfo(p.domain, p.completed) }),
    'domain.jobAbort': async (p) => ({ job: await host.jobAbort(p.domain) }),
    'domain.info': async (p) => {
      await host.refreshCpuTime(p.domain);
      return host.info(p.domain);
    },
    'domain.xml': (p) => host.xml(p.domain, { inactive: p.inactive, secure: p.secure }),
    'domain.screenshot': async (p) => {
      const shot = await host.screenshot(p.domain);
      return { png: shot.png.toString('base64'), width: shot.width, height: shot.height };
    },
    'domain.sendKeys': async (p) => {
      await host.sendKeys(p.domain, p);
      return {};
    },
    'domain.sendKey': async (p) => {
      await host.sendKey(p.domain, p);
      return {};
    },
    'domain.vncDisplay': (p) => host.vncDisplay(p.domain),
    'domain.setMemory': async (p) => ({ domain: await host.setMemory(p.domain, p) }),
    'domain.setMaxMemory': (p) => ({ domain: host.setMaxMemory(p.domain, p) }),
    'domain.memoryStats': (p) => host.memoryStats(p.domain),
    'domain.stats': (p) => host.statsSample(p.domain),
    'stats.watch': (p, session) => {
      const uuids = p.domains && new Set(p.domains.map((d) => host.lookup(d).doc.config.uuid));
      host.statsWatchers.watch(session, uuids, p.intervalMs);
      return {};
    },
    'stats.unwatch': (_p, session) => {
      host.statsWatchers.unwatch(session);
      return {};
    },
    'domain.changeMedia': async (p) => ({ domain: await host.changeMedia(p.domain, p) }),
    'domain.attachDisk': (p) => host.attachDisk(p.domain, p),
    'domain.detachDisk': (p) => ({ domain: host.detachDisk(p.domain, p) }),
    'domain.attachDevice': async (p) => ({ domain: await host.attachDevice(p.domain, p) }),
    'domain.detachDevice': async (p) => ({ domain: await host.detachDevice(p.domain, p) }),
    'domain.updateDevice': async (p) => ({ domain: await host.updateDevice(p.domain, p) }),
    'domain.blockInfo': (p) => host.blockInfo(p.domain, p.target),
    'domain.blockResize': (p) => host.blockResize(p.domain, p.target, p.sizeBytes),
    'pool.list': () => ({ pools: host.storage.listPools() }),
    'volume.list': (p) => ({ volumes: host.storage.listVolumes(p.pool) }),
    'volume.create': async (p) => ({ volume: await host.storage.createVolume(p.pool, p.name, p.capacityBytes, p.format) }),
    'volume.clone': async (p) => ({ volume: await host.storage.cloneVolume(p.pool, p.source, p.name) }),
    'volume.resize': async (p) => ({ volume: await host.storage.resizeVolume(p.pool, p.name, p.capacityBytes) }),
    'volume.delete': (p) => {
      host.storage.deleteVolume(p.pool, p.name);
      return {};
    },
    'volume.info': (p) => ({ volume: host.storage.volumeInfo(p.volume, p.pool) }),
    // This computer's pools are its own directories: a local file needs no upload, it is used where it is.
    'volume.upload': (p) => {
      throw operationUnsupported(`vol-upload sends a file to a libvirt host's pool; on this computer use '${p.file}' where it is, or copy it into ${host.storage.poolDir(p.pool)}`);
    },
    'volume.uploadAbort': (p) => {
      throw new HostError('NO_SUPPORT', `no upload job ${p.job} on this computer (uploads go to libvirt hosts)`);
    },
    'network.list': async () => ({ networks: await host.networks.list() }),
    'network.define': (p) => host.networks.define(p.xml),
    'network.undefine': (p) => {
      host.networks.undefine(p.network);
      return {};
    },
    'network.start': async (p) => ({ network: await host.networks.start(p.network) }),
    'network.destroy': async (p) => ({ network: await host.networks.destroy(p.network) }),
    'network.xml': (p) => ({ xml: host.networks.xml(p.network, p.inactive) }),
    'network.setAutostart': (p) => ({ network: host.networks.setAutostart(p.network, p.enabled) }),
    'network.dhcpLeases': async (p) => ({ leases: await host.networks.dhcpLeases(p.network, p.mac) }),
    'domain.interfaces': (p) => ({ interfaces: host.interfaceList(p.domain, p.inactive) }),
    'domain.interfaceAddresses': (p) => host.interfaceAddresses(p.domain, p.interface),
    'domain.attachInterface': (p) => host.attachInterface(p.domain, p),
    'domain.detachInterface': async (p) => ({ domain: await host.detachInterface(p.domain, p) }),
    'domain.setLinkState': async (p) => ({ domain: await host.setLinkState(p.domain, p) }),
    'host.usbDevices': () => ({ devices: listUsbDevices() }),
    'host.browse': (p) => browse(p.path ?? host.storage.poolDir('default'), p.filter),
    'host.inspectImage': async (p) => (await import('../images/inspect.js')).inspectImageFile(p.path),
    'osinfo.detect': async (p) => (await import('../osinfo/detect.js')).detectOs(p.path),
    'osinfo.list': async (p) => (await import('../osinfo/detect.js')).listOses(p),
    'catalogue.list': () => catalogueList(host),
    'download.start': (p) => downloadCall(async () => ({ download: await host.downloads.start(p.entry, p.pool) })),
    'download.cancel': (p) => downloadCall(async () => ({ download: await host.downloads.cancel(p.id) })),
    'download.list': () => ({ downloads: host.downloads.list() }),
    'host.connections': () => ({ connections: host.drivers.connections() }),
    'host.setAccel': async (p) => ({ connection: await host.drivers.setAccel(p.mode) }),
    'domain.toNative': async (p) => ({ argv: await host.toNative(p.domain, p.xml) }),
    'domain.capabilities': (p) => ({ capabilities: host.capabilities(p) }),
    'domain.serialOpen': (p, session) => {
      const { uuid, history } = host.serialHistory(p.domain);
      session.serialUuids.add(uuid);
      return { backlog: history.toString('base64') };
    },
    'domain.serialClose': (p, session) => {
      session.serialUuids.delete(host.lookup(p.domain).doc.config.uuid);
      return {};
    },
    'snapshot.list': (p) => host.snapshots.list(p.domain),
    'snapshot.create': (p) => host.snapshots.create(p.domain, p),
    'snapshot.info': (p) => ({ snapshot: host.snapshots.info(p.domain, p.snapshot) }),
    'snapshot.revert': (p) => host.snapshots.revert(p.domain, p.snapshot, p),
    'snapshot.delete': async (p) => ({ deleted: await host.snapshots.delete(p.domain, p.snapshot, p.children) }),
    'snapshot.xml': (p) => ({ xml: host.snapshots.xml(p.domain, p.snapshot) }),
    'snapshot.thumbnail': (p) => host.snapshots.thumbnail(p.domain, p.snapshot),
    'domain.serialWrite': async (p) => {
      await host.serialWrite(p.domain, Buffer.from(p.data, 'base64'));
      return {};
    },
  };
}

/** The catalogue, each entry marked with its file when the default pool already holds it. */
async function catalogueList(host: Host): Promise<Results['catalogue.list']> {
  let catalogue;
  try {
    catalogue = await loadCatalogue();
  } catch (err) {
    throw invalidArg((err as Error).message);
  }
  const entries = catalogue.entries.map((e) => {
    const file = host.downloads.target(e);
    return fs.existsSync(file) ? { ...e, file } : e;
  });
  return { entries, source: catalogue.source };
}

async function downloadCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof DownloadError) throw new HostError(err.code, err.message);
    if (err instanceof HostError) throw err;
    throw invalidArg((err as Error).message);
  }
}
