// A client of libvirt's RPC protocol (remote program 0x20008086 v1, keepalive program): calls
// matched by serial, server messages (events) by procedure, streams, keepalive, and the opening
// handshake libvirt's remote driver performs (auth list, keepalive feature, connect open).
import { Duplex } from 'node:stream';
import { LibvirtError, VIR_DRV_FEATURE_PROGRAM_KEEPALIVE, VIR_ERR, VIR_FROM } from './errors.js';
import { encodePacket, PacketDecoder, procedureNames, type Header, type Packet } from './packet.js';
import { KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION } from './protocol/keepalive.js';
import { REMOTE_AUTH_NONE, REMOTE_AUTH_POLKIT, REMOTE_AUTH_SASL, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, remote_error, remote_procedures } from './protocol/remote.js';
import {
  VIR_NET_CALL,
  VIR_NET_CONTINUE,
  VIR_NET_ERROR,
  VIR_NET_MESSAGE,
  VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX,
  VIR_NET_OK,
  VIR_NET_REPLY,
  VIR_NET_REPLY_WITH_FDS,
  VIR_NET_STREAM,
} from './protocol/virnet.js';
import { openTransport, type TransportOptions } from './transports.js';
import { parseUri, type LibvirtUri } from './uri.js';
import { decode, encode, type Codec } from './xdr.js';

type Procedures = typeof remote_procedures;
/** A remote procedure's name, e.g. `REMOTE_PROC_CONNECT_GET_HOSTNAME`. */
export type ProcName = keyof Procedures;
type Of<C> = C extends Codec<infer T> ? T : never;
export type ArgsOf<P extends ProcName> = Of<Procedures[P]['args']>;
export type RetOf<P extends ProcName> = Of<Procedures[P]['ret']>;
/** Procedures the server sends as messages (events). */
export type MessageProcName = { [P in ProcName]: Procedures[P] extends { msg: Codec<unknown> } ? P : never }[ProcName];
export type MsgOf<P extends MessageProcName> = Procedures[P] extends { msg: Codec<infer T> } ? T : never;
/** Arguments as a rest parameter, so that procedures without arguments take none. */
type ArgList<P extends ProcName> = ArgsOf<P> extends void ? [] : [args: ArgsOf<P>];

export interface RpcClientOptions extends TransportOptions {
  /** Seconds of silence before a keepalive PING (libvirt's default 5; 0 turns keepalive off). */
  keepaliveInterval?: number;
  /** Unanswered PINGs before the peer is declared dead (libvirt's default 5). */
  keepaliveCount?: number;
}

const NAMES = procedureNames(remote_procedures);
/** Bytes waiting to go to a peer that does not read them, beyond which we stop reading the peer. */
const MAX_UNSENT = 4 << 20;
/** Stream data nobody has read yet, beyond which the stream is cut off. */
export const MAX_UNREAD_STREAM = 8 << 20;
const closedError = (): LibvirtError => new LibvirtError('the connection to libvirt is closed', VIR_ERR.INVALID_CONN, VIR_FROM.RPC);

interface Pending {
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
}

/**
 * One connection to a libvirt daemon. `RpcClient.connect(uri)` opens and authenticates it;
 * `new RpcClient(stream)` speaks the protocol on a stream that is already open, with no handshake.
 */
export class RpcClient {
  /** The URI this client was opened with (connect() only). */
  uri?: LibvirtUri;
  /** The options it was opened with (connect() only): a VNC tunnel over ssh uses the same ssh options. */
  options?: RpcClientOptions;
  private readonly decoder = new PacketDecoder();
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, RpcStream>();
  private readonly listeners = new Map<string, Set<(msg: never) => void>>();
  private readonly closeListeners = new Set<(err: Error | null) => void>();
  private serial = 0;
  private closedBy: Error | null | undefined;
  private keepalive?: NodeJS.Timeout;
  private heard = false;
  private throttled = false;

  constructor(private readonly stream: Duplex) {
    stream.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = this.decoder.push(chunk);
      } catch (err) {
        this.destroy(new LibvirtError(`protocol error from the libvirt peer: ${(err as Error).message}`, VIR_ERR.RPC, VIR_FROM.RPC));
        return;
      }
      this.heard = true;
      for (const p of packets) this.dispatch(p);
    });
    const gone = (): void => this.destroy(new LibvirtError('the libvirt peer closed the connection', VIR_ERR.RPC, VIR_FROM.RPC));
    stream.on('error', (err) => this.finish(err));
    stream.on('end', gone);
    stream.on('close', gone);
    // A transport that was read in paused mode (TLS's confirmation byte) must flow again.
    stream.resume();
  }

  /**
   * Opens `uri` as libvirt's remote driver does: transport, REMOTE_PROC_AUTH_LIST (none and polkit
   * handled; SASL refused with a clear error), keepalive if the server supports it, CONNECT_OPEN.
   */
  static async connect(uri: string, opts: RpcClientOptions = {}): Promise<RpcClient> {
    const parsed = parseUri(uri);
    const client = new RpcClient(await openTransport(parsed, opts));
    client.uri = parsed;
    client.options = opts;
    try {
      await client.authenticate();
      const interval = opts.keepaliveInterval ?? 5;
      if (interval > 0) {
        const { supported } = await client.call('REMOTE_PROC_CONNECT_SUPPORTS_FEATURE', { feature: VIR_DRV_FEATURE_PROGRAM_KEEPALIVE });
        if (supported) client.startKeepalive(interval, opts.keepaliveCount ?? 5);
      }
      await client.call('REMOTE_PROC_CONNECT_OPEN', { name: parsed.name, flags: 0 });
    } catch (err) {
      client.destroy();
      throw err;
    }
    return client;
  }

  private async authenticate(): Promise<void> {
    let types: number[];
    try {
      ({ types } = await this.call('REMOTE_PROC_AUTH_LIST'));
    } catch (err) {
      if (err instanceof LibvirtError && err.code === VIR_ERR.NO_SUPPORT) return;
      throw err;
    }
    const type = types[0] ?? REMOTE_AUTH_NONE;
    if (type === REMOTE_AUTH_NONE) return;
    if (type === REMOTE_AUTH_POLKIT) {
      await this.call('REMOTE_PROC_AUTH_POLKIT');
      return;
    }
    const what = type === REMOTE_AUTH_SASL ? 'SASL authentication, which Domus does not support' : `authentication type ${type}, which Domus does not know`;
    throw new LibvirtError(`the libvirt server requires ${what}; allow this user without it (auth_unix_rw, auth_tcp), or connect over ssh`, VIR_ERR.AUTH_UNAVAILABLE, VIR_FROM.AUTH);
  }

  /** Calls a remote procedure; a libvirt error comes back as a LibvirtError with its code and domain. */
  async call<P extends ProcName>(proc: P, ...args: ArgList<P>): Promise<RetOf<P>> {
    const spec = remote_procedures[proc];
    const payload = await this.send(spec.number, encode(spec.args as Codec<unknown>, args[0]));
    return decode(spec.ret as Codec<RetOf<P>>, payload);
  }

  /** Calls a procedure that opens a stream (e.g. REMOTE_PROC_DOMAIN_OPEN_CONSOLE), then carries its data. */
  async openStream<P extends ProcName>(proc: P, ...args: ArgList<P>): Promise<RpcStream> {
    const spec = remote_procedures[proc];
    const serial = this.nextSerial();
    const stream = new RpcStream(this, spec.number, serial);
    this.streams.set(serial, stream);
    try {
      await this.send(spec.number, encode(spec.args as Codec<unknown>, args[0]), serial);
    } catch (err) {
      this.streams.delete(serial);
      throw err;
    }
    return stream;
  }

  /** Listens for a server message (an event) by procedure; returns the function that stops listening. */
  onMessage<P extends MessageProcName>(proc: P, listener: (msg: MsgOf<P>) => void): () => void {
    const set = this.listeners.get(proc) ?? new Set();
    this.listeners.set(proc, set);
    set.add(listener as (msg: never) => void);
    return () => set.delete(listener as (msg: never) => void);
  }

  /** Called once when the connection ends: null after close(), else why (peer gone, keepalive timeout…). */
  onClose(listener: (err: Error | null) => void): void {
    if (this.closedBy !== undefined) listener(this.closedBy);
    else this.closeListeners.add(listener);
  }

  get closed(): boolean {
    return this.closedBy !== undefined;
  }

  /**
   * Sends a keepalive PING after every `interval` seconds without a packet from the peer, and
   * declares it dead after `count` PINGs go unanswered (virKeepAlive's rules).
   */
  startKeepalive(interval: number, count: number): void {
    clearInterval(this.keepalive);
    let left = count;
    this.heard = false;
    this.keepalive = setInterval(() => {
      if (this.heard) {
        this.heard = false;
        left = count;
        return;
      }
      if (left-- <= 0) {
        this.destroy(new LibvirtError(`connection closed due to keepalive timeout: no answer to ${count} pings in ${interval * (count + 1)} s`, VIR_ERR.INTERNAL_ERROR, VIR_FROM.RPC));
        return;
      }
      this.write(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PROC_PING, VIR_NET_MESSAGE, 0, VIR_NET_OK);
    }, interval * 1000);
    this.keepalive.unref();
  }

  /** REMOTE_PROC_CONNECT_CLOSE, then the transport ends. */
  async close(): Promise<void> {
    if (this.closedBy !== undefined) return;
    try {
      await this.call('REMOTE_PROC_CONNECT_CLOSE');
    } finally {
      this.destroy();
    }
  }

  /** Drops the connection at once; pending calls fail with `err` (or "closed"). */
  destroy(err?: Error): void {
    this.finish(err ?? null);
    this.stream.destroy();
  }

  /** @internal a packet on this connection's remote program (used by RpcStream). */
  write(prog: number, vers: number, proc: number, type: number, serial: number, status: number, payload?: Uint8Array): void {
    if (this.closedBy !== undefined) throw closedError();
    this.stream.write(encodePacket({ prog, vers, proc, type, serial, status } as Header, payload));
    // A peer that sends (pings, events, calls' answers) but does not read what that makes us send
    // would have us queue without end: we stop reading it until it catches up (and keepalive, if
    // on, gives up on it meanwhile).
    if (!this.throttled && this.stream.writableLength > MAX_UNSENT) {
      this.throttled = true;
      this.stream.pause();
      this.stream.once('drain', () => {
        this.throttled = false;
        this.stream.resume();
      });
    }
  }

  /** @internal resolves once the transport has room again, or is gone (stream writers wait on it). */
  drained(): Promise<void> {
    const t = this.stream;
    if (!t.writableNeedDrain || t.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        t.off('drain', done);
        t.off('close', done);
        resolve();
      };
      t.on('drain', done);
      t.on('close', done);
    });
  }

  /** @internal */
  dropStream(serial: number): void {
    this.streams.delete(serial);
  }

  private nextSerial(): number {
    this.serial = (this.serial + 1) >>> 0;
    return this.serial;
  }

  private send(proc: number, payload: Buffer, serial = this.nextSerial()): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.write(REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, proc, VIR_NET_CALL, serial, VIR_NET_OK, payload);
      this.pending.set(serial, { resolve, reject });
    });
  }

  private dispatch({ header: h, payload }: Packet): void {
    if (h.prog === KEEPALIVE_PROGRAM) {
      if (h.type === VIR_NET_MESSAGE && h.proc === KEEPALIVE_PROC_PING) {
        this.write(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PROC_PONG, VIR_NET_MESSAGE, 0, VIR_NET_OK);
      }
      return;
    }
    if (h.prog !== REMOTE_PROGRAM) return;
    try {
      if (h.type === VIR_NET_REPLY || h.type === VIR_NET_REPLY_WITH_FDS) {
        const call = this.pending.get(h.serial);
        if (!call) return;
        this.pending.delete(h.serial);
        // Descriptors ride on SCM_RIGHTS, which Node's sockets do not receive.
        if (h.type === VIR_NET_REPLY_WITH_FDS) call.reject(new LibvirtError(`${NAMES.get(h.proc)} returns file descriptors, which this client cannot receive`, VIR_ERR.NO_SUPPORT, VIR_FROM.RPC));
        else if (h.status === VIR_NET_OK) call.resolve(payload);
        else call.reject(LibvirtError.fromRemote(decode(remote_error, payload)));
      } else if (h.type === VIR_NET_MESSAGE) {
        const name = NAMES.get(h.proc);
        const spec = name && (remote_procedures[name] as { msg?: Codec<unknown> });
        const set = name && this.listeners.get(name);
        if (!spec || !spec.msg || !set?.size) return;
        const msg = decode(spec.msg, payload);
        for (const l of set) l(msg as never);
      } else if (h.type === VIR_NET_STREAM) {
        this.streams.get(h.serial)?.receive(h.status, payload);
      }
    } catch (err) {
      this.destroy(new LibvirtError(`malformed packet from the libvirt peer (procedure ${NAMES.get(h.proc) ?? h.proc}): ${(err as Error).message}`, VIR_ERR.RPC, VIR_FROM.RPC));
    }
  }

  private finish(err: Error | null): void {
    if (this.closedBy !== undefined) return;
    this.closedBy = err;
    clearInterval(this.keepalive);
    const why = err ?? closedError();
    for (const p of this.pending.values()) p.reject(why);
    this.pending.clear();
    for (const s of this.streams.values()) s.destroy(why);
    this.streams.clear();
    for (const l of this.closeListeners) l(err);
    this.closeListeners.clear();
  }
}

/**
 * The data of a stream procedure (console, volume upload/download): readable bytes from the
 * server, writable bytes to it. `finish()` ends it cleanly (virStreamFinish), `abort()` cancels it
 * (virStreamAbort); both wait for the server's confirmation.
 */
export class RpcStream extends Duplex {
  private confirm?: { resolve: () => void; reject: (err: Error) => void };
  private done = false;
  private ended = false;

  constructor(
    private readonly client: RpcClient,
    private readonly proc: number,
    private readonly serial: number,
  ) {
    super();
  }

  /** @internal a STREAM packet for this stream's serial. */
  receive(status: number, payload: Buffer): void {
    if (status === VIR_NET_CONTINUE) {
      // Data after the server's own end of file has no reader.
      if (this.ended) return;
      // An empty data packet is the server's end of file (the stream hung up).
      if (!payload.length) {
        this.ended = true;
        this.push(null);
        return;
      }
      // Stream data is not flow-controlled in libvirt's protocol: a server that sends what nobody
      // reads (into an upload, or faster than a reader takes it) is cut off, not buffered.
      if (this.readableLength + payload.length > MAX_UNREAD_STREAM) {
        this.client.dropStream(this.serial);
        this.done = true;
        try {
          this.packet(VIR_NET_ERROR);
        } catch {
          // The connection is gone: there is no stream left to abort.
        }
        this.destroy(new LibvirtError(`the libvirt server sent more than ${MAX_UNREAD_STREAM} bytes of stream data that were not read; the stream was aborted`, VIR_ERR.RPC, VIR_FROM.STREAMS));
        return;
      }
      this.push(payload);
      return;
    }
    const err = status === VIR_NET_ERROR ? LibvirtError.fromRemote(decode(remote_error, payload)) : null;
    if (this.confirm) {
      this.done = true;
      this.client.dropStream(this.serial);
      if (err) this.confirm.reject(err);
      else this.confirm.resolve();
      this.confirm = undefined;
      this.push(null);
    } else if (err) {
      this.client.dropStream(this.serial);
      this.done = true;
      this.destroy(err);
    } else this.push(null);
  }

  override _read(): void {}

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Torn down (its connection lost) while a finish or abort waits: the server's confirmation will not come.
    this.confirm?.reject(err ?? new LibvirtError('the stream was closed before the libvirt server confirmed its end', VIR_ERR.RPC, VIR_FROM.STREAMS));
    this.confirm = undefined;
    cb(err);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      for (let at = 0; at < chunk.length; at += VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX) {
        this.packet(VIR_NET_CONTINUE, chunk.subarray(at, at + VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX));
      }
      // The socket's buffer bounds what is in flight: an upload of a large file does not sit in memory.
      this.client.drained().then(() => cb(), cb);
    } catch (err) {
      cb(err as Error);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finish().then(() => cb(), cb);
  }

  /** Ends the stream: no more data from us, and the server confirms it has everything. */
  finish(): Promise<void> {
    return this.close(VIR_NET_OK);
  }

  /** Cancels the stream on the server. */
  abort(): Promise<void> {
    return this.close(VIR_NET_ERROR);
  }

  private close(status: number): Promise<void> {
    if (this.done) return Promise.resolve();
    if (this.confirm) return Promise.reject(new LibvirtError('the stream is already closing', VIR_ERR.OPERATION_INVALID, VIR_FROM.STREAMS));
    return new Promise((resolve, reject) => {
      this.confirm = { resolve, reject };
      try {
        this.packet(status);
      } catch (err) {
        this.confirm = undefined;
        reject(err as Error);
      }
    });
  }

  private packet(status: number, data?: Uint8Array): void {
    this.client.write(REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, this.proc, VIR_NET_STREAM, this.serial, status, data);
  }
}
