// The connections a user added (virt-manager's connection list): libvirt hosts reached over their
// RPC protocol, kept in DOMUS_HOME/connections.json with their autoconnect flag. This host's own
// engines (v86:///session, qemu:///session) are always there and are not listed here. A connection
// that drops while autoconnect is on is retried with backoff (1 s doubling to 30 s), and every change
// is a `connection.state` event, so the GUI can grey its domains and say why. An attempt the far side
// refused (keys, password, host key) or whose password prompt was cancelled is not retried: trying
// again would only ask again or be refused again, until the person connects by hand.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { ConnectionState, EventName, Events, Method } from '../../../shared/api.js';
import { writeFileAtomic } from '../../common/fsutil.js';
import { HostError, invalidArg, operationInvalid, systemError } from '../errors.js';
import { log } from '../log.js';
import type { VncUpstream } from '../api/vnc-link.js';

/** One libvirt host as the manager drives it (libvirt/connection.ts). */
export interface RemoteConnection {
  readonly uri: string;
  /** Opens the transport and the libvirt connection; rejects with why it could not. */
  open(): Promise<{ hostname?: string; hypervisor?: string }>;
  close(): Promise<void>;
  /** Serves one API request on this connection; a method it lacks is refused with NO_SUPPORT. */
  call(method: Method, params: unknown): Promise<unknown>;
  readonly stats?: StatsWatching;
  /** The far side's events, as Domus events; `closed` when the connection drops by itself. */
  on(event: 'event', listener: (name: EventName, data: Events[EventName]) => void): this;
  on(event: 'closed', listener: (reason: string) => void): this;
  /** Opens a domain's VNC display for one of the host's own viewers, where the connection can. */
  openVnc?(ref: string): Promise<VncUpstream>;
}

/** A connection's statistics sampling, per client (stats.watch with a connection). */
export interface StatsWatching {
  /** Samples `domains` (references; undefined: every running domain) for `owner` at the interval, replacing its earlier watch. */
  watch(owner: object, domains: string[] | undefined, intervalMs: number): Promise<void>;
  unwatch(owner: object): void;
  /** Whether `owner` wants this domain's samples. */
  wants(owner: object, uuid: string): boolean;
}

export type ConnectionFactory = (uri: string) => RemoteConnection;

/** URIs of this host's own connection. */
export const LOCAL_URIS = new Set(['v86:///session', 'v86:///system', 'qemu:///session']);

const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 30000];

interface Entry {
  state: ConnectionState;
  /** Opened by a client (domus -c URI) without being added: not saved, not listed after it closes. */
  transient?: boolean;
  conn?: RemoteConnection;
  retry?: NodeJS.Timeout;
  attempts: number;
  opening?: Promise<ConnectionState>;
  /** Bumped by every close: an attempt that was under way then ends without touching the state. */
  closes: number;
}

type ManagerEvents = {
  state: [ConnectionState];
  /** The connection is being closed or removed: what it is waiting for (an ssh prompt) is moot. */
  closing: [uri: string];
  event: [uri: string, name: EventName, data: Events[EventName]];
};

export class ConnectionManager extends EventEmitter<ManagerEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly file: string;

  constructor(
    home: string,
    private readonly factory: ConnectionFactory,
  ) {
    super();
    this.file = path.join(home, 'connections.json');
  }

  /** Reads the saved connections and opens the autoconnect ones (in the background). */
  load(): void {
    let saved: { uri: string; autoconnect: boolean }[] = [];
    try {
      saved = JSON.parse(fs.readFileSync(this.file, 'utf8')) as typeof saved;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log('warn', `ignoring unreadable ${this.file}: ${(err as Error).message}`);
    }
    for (const { uri, autoconnect } of Array.isArray(saved) ? saved : []) {
      if (typeof uri !== 'string' || LOCAL_URIS.has(uri)) continue;
      this.entries.set(uri, { state: { uri, kind: 'libvirt', state: 'disconnected', autoconnect: Boolean(autoconnect) }, attempts: 0, closes: 0 });
      if (autoconnect) void this.open(uri).catch(() => undefined);
    }
  }

  list(): ConnectionState[] {
    return [...this.entries.values()].map((e) => ({ ...e.state }));
  }

  async add(uri: string, autoconnect: boolean): Promise<ConnectionState> {
    if (LOCAL_URIS.has(uri)) throw invalidArg(`${uri} is this host's own connection; it is always there`);
    const existing = this.entries.get(uri);
    if (existing && !existing.transient) throw operationInvalid(`connection ${uri} already exists`);
    this.factory(uri);
    if (existing) {
      existing.transient = false;
      existing.state.autoconnect = autoconnect;
      this.save();
      this.changed(uri);
      return autoconnect ? this.open(uri).catch(() => this.state(uri)) : this.state(uri);
    }
    this.entries.set(uri, { state: { uri, kind: 'libvirt', state: 'disconnected', autoconnect }, attempts: 0, closes: 0 });
    this.save();
    this.changed(uri);
    // Added even when the host cannot be reached now: the state says why, and autoconnect retries.
    return autoconnect ? this.open(uri).catch(() => this.state(uri)) : this.state(uri);
  }

  async remove(uri: string): Promise<void> {
    const entry = this.entry(uri);
    clearTimeout(entry.retry);
    this.entries.delete(uri);
    this.emit('closing', uri);
    this.save();
    // Its last state, so that every client drops it (they re-list on a disconnect).
    this.emit('state', { uri, kind: 'libvirt', state: 'disconnected', autoconnect: entry.state.autoconnect });
    await entry.conn?.close().catch(() => undefined);
  }

  /**
   * Opens the connection; one attempt at a time, an open one is returned as it is. A URI that was
   * never added is opened as a transient connection (as `virsh -c URI` does: nothing is saved).
   */
  open(uri: string): Promise<ConnectionState> {
    if (LOCAL_URIS.has(uri)) return Promise.reject(invalidArg(`${uri} is this host's own connection; it is always open`));
    if (!this.entries.has(uri)) {
      this.factory(uri);
      this.entries.set(uri, { state: { uri, kind: 'libvirt', state: 'disconnected', autoconnect: false }, transient: true, attempts: 0, closes: 0 });
    }
    const entry = this.entry(uri);
    if (entry.state.state === 'connected') return Promise.resolve({ ...entry.state });
    entry.opening ??= this.attempt(uri, entry).finally(() => (entry.opening = undefined));
    return entry.opening;
  }

  async close(uri: string): Promise<ConnectionState> {
    const entry = this.entry(uri);
    clearTimeout(entry.retry);
    entry.retry = undefined;
    const conn = entry.conn;
    entry.conn = undefined;
    entry.closes++;
    this.emit('closing', uri);
    entry.state = { uri, kind: 'libvirt', state: 'disconnected', autoconnect: entry.state.autoconnect };
    this.changed(uri);
    if (entry.transient) this.entries.delete(uri);
    await conn?.close().catch(() => undefined);
    return { ...entry.state };
  }

  /** Serves a request on a connected libvirt connection. */
  async call(uri: string, method: Method, params: unknown): Promise<unknown> {
    return this.connected(uri).call(method, params);
  }

  /** A libvirt domain's VNC display, for the web shell's or Electron's viewer. */
  async openVnc(uri: string, ref: string): Promise<VncUpstream> {
    const conn = this.connected(uri);
    if (!conn.openVnc) throw new HostError('NO_SUPPORT', `VNC displays on ${uri}`);
    return conn.openVnc(ref);
  }

  private connected(uri: string): RemoteConnection {
    const entry = this.entries.get(uri);
    if (!entry) throw operationInvalid(`connection ${uri} is not open`);
    if (entry.state.state !== 'connected' || !entry.conn) {
      throw operationInvalid(`connection ${uri} is ${entry.state.state}${entry.state.error ? `: ${entry.state.error}` : ''}`);
    }
    return entry.conn;
  }

  /** stats.watch for a client on a connected libvirt connection. */
  async watchStats(uri: string, owner: object, domains: string[] | undefined, intervalMs: number): Promise<void> {
    const conn = this.connected(uri);
    if (!conn.stats) throw new HostError('NO_SUPPORT', `stats.watch on ${uri}`);
    await conn.stats.watch(owner, domains, intervalMs);
  }

  /** Ends a client's statistics watch on one connection, or on all (the client left). */
  unwatchStats(owner: object, uri?: string): void {
    for (const [u, entry] of this.entries) if (uri === undefined || u === uri) entry.conn?.stats?.unwatch(owner);
  }

  wantsStats(uri: string, owner: object, uuid: string): boolean {
    return this.entries.get(uri)?.conn?.stats?.wants(owner, uuid) ?? false;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((uri) => this.close(uri)));
  }

  private async attempt(uri: string, entry: Entry): Promise<ConnectionState> {
    clearTimeout(entry.retry);
    entry.retry = undefined;
    entry.state = { uri, kind: 'libvirt', state: 'connecting', autoconnect: entry.state.autoconnect };
    this.changed(uri);
    const conn = this.factory(uri);
    const closes = entry.closes;
    const superseded = (): boolean => this.entries.get(uri) !== entry || entry.closes !== closes;
    try {
      const far = await conn.open();
      if (superseded()) {
        await conn.close();
        return { ...entry.state };
      }
      entry.conn = conn;
      entry.attempts = 0;
      entry.state = { uri, kind: 'libvirt', state: 'connected', autoconnect: entry.state.autoconnect, ...far };
      conn.on('event', (name, data) => this.emit('event', uri, name, data));
      conn.on('closed', (reason) => {
        if (entry.conn !== conn) return;
        entry.conn = undefined;
        this.dropped(uri, entry, reason);
      });
      this.changed(uri);
      return { ...entry.state };
    } catch (err) {
      if (superseded()) throw operationInvalid(`connection ${uri} was closed while it was opening`);
      const refused = err instanceof HostError && (err.code === 'AUTH_FAILED' || err.code === 'AUTH_CANCELLED');
      this.dropped(uri, entry, (err as Error).message, !refused);
      throw err;
    }
  }

  /** The connection failed or went away: say so, and retry later when it is an autoconnect one. */
  private dropped(uri: string, entry: Entry, reason: string, retry = true): void {
    if (this.entries.get(uri) !== entry) return;
    const delay = BACKOFF_MS[Math.min(entry.attempts, BACKOFF_MS.length - 1)];
    entry.attempts++;
    const retryAt = retry && entry.state.autoconnect ? Date.now() + delay : undefined;
    entry.state = { uri, kind: 'libvirt', state: 'failed', autoconnect: entry.state.autoconnect, error: reason, retryAt };
    log('warn', `connection ${uri}: ${reason}${retryAt ? `; retrying in ${delay / 1000} s` : ''}`);
    if (retryAt) entry.retry = setTimeout(() => void this.open(uri).catch(() => undefined), delay);
    this.changed(uri);
  }

  private state(uri: string): ConnectionState {
    return { ...this.entry(uri).state };
  }

  private entry(uri: string): Entry {
    const entry = this.entries.get(uri);
    if (!entry) throw invalidArg(`no connection ${uri}`);
    return entry;
  }

  private changed(uri: string): void {
    const entry = this.entries.get(uri);
    if (entry) this.emit('state', { ...entry.state });
  }

  private save(): void {
    const list = [...this.entries.values()].filter((e) => !e.transient).map((e) => ({ uri: e.state.uri, autoconnect: e.state.autoconnect }));
    try {
      writeFileAtomic(this.file, `${JSON.stringify(list, null, 2)}\n`);
    } catch (err) {
      throw systemError((err as Error).message);
    }
  }
}
