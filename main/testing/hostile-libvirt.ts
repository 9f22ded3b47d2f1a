// A scripted libvirt peer for tests that play a compromised or malicious libvirt host: it answers
// the calls a LibvirtConnection makes with whatever the test's handlers return (encoded with the
// procedure's own type, or a LibvirtError as libvirt's error reply), the opening handshake by default, and lets the test send raw packets.
// Real libvirtd cannot be made to lie; this peer exists to do exactly that.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodePacket, PacketDecoder, procedureNames, type Packet } from '../host/libvirt/packet.js';
import * as remote from '../host/libvirt/protocol/remote.js';
import { LibvirtError } from '../host/libvirt/errors.js';
import { VIR_NET_CONTINUE, VIR_NET_ERROR, VIR_NET_MESSAGE, VIR_NET_OK, VIR_NET_REPLY, VIR_NET_STREAM } from '../host/libvirt/protocol/virnet.js';
import { RpcClient, type MessageProcName, type MsgOf, type ProcName } from '../host/libvirt/rpc-client.js';
import { parseUri } from '../host/libvirt/uri.js';
import { decode, encode, type Codec } from '../host/libvirt/xdr.js';

const NAMES = procedureNames(remote.remote_procedures);

/** What a handler gets: the decoded arguments and the call's packet; it returns the reply value. */
export type PeerHandler = (args: never, call: Packet, peer: HostilePeer) => unknown;

const DEFAULTS: Partial<Record<ProcName, PeerHandler>> = {
  REMOTE_PROC_CONNECT_GET_HOSTNAME: () => ({ hostname: 'hostile' }),
  REMOTE_PROC_CONNECT_GET_TYPE: () => ({ type: 'QEMU' }),
  REMOTE_PROC_CONNECT_GET_VERSION: () => ({ hv_ver: 9_000_000n }),
  REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: () => ({ callbackID: 1 }),
  REMOTE_PROC_CONNECT_NETWORK_EVENT_REGISTER_ANY: () => ({ callbackID: 2 }),
  REMOTE_PROC_CONNECT_CLOSE: () => undefined,
};

export class HostilePeer {
  /** The procedure names of the calls received, in order. */
  readonly calls: string[] = [];
  private readonly server = net.createServer();
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-hostile-'));
  readonly socketPath = path.join(this.dir, 'sock');
  readonly sockets = new Set<net.Socket>();

  constructor(readonly handlers: Partial<Record<ProcName, PeerHandler>> = {}) {
    this.server.on('connection', (sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => undefined);
      const decoder = new PacketDecoder();
      sock.on('data', (d: Buffer) => {
        for (const p of decoder.push(d)) this.receive(sock, p);
      });
    });
  }

  static async start(handlers: Partial<Record<ProcName, PeerHandler>> = {}): Promise<HostilePeer> {
    const peer = new HostilePeer(handlers);
    await new Promise<void>((r) => peer.server.listen(peer.socketPath, r));
    return peer;
  }

  /**
   * An opener for LibvirtConnection: an RpcClient on this peer's socket, without libvirt's handshake,
   * that believes it was opened from `uri` (so that, e.g., a VNC tunnel is built for qemu+ssh://).
   */
  opener(uri?: string, options?: RpcClient['options']): (u: string) => Promise<RpcClient> {
    return async () => {
      const sock = net.connect(this.socketPath);
      await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
      const client = new RpcClient(sock);
      if (uri) client.uri = parseUri(uri);
      client.options = options;
      return client;
    };
  }

  /** Sends stream data for a call's serial (a stream procedure the client opened). */
  streamData(sock: net.Socket, call: Packet, data: Buffer): boolean {
    return sock.write(encodePacket({ ...call.header, type: VIR_NET_STREAM, status: VIR_NET_CONTINUE }, data));
  }

  /** Sends an event message (a procedure libvirtd sends unasked) to every connected client. */
  message<P extends MessageProcName>(proc: P, msg: MsgOf<P>): void {
    const spec = remote.remote_procedures[proc] as unknown as { number: number; msg: Codec<MsgOf<P>> };
    const packet = encodePacket({ prog: remote.REMOTE_PROGRAM, vers: remote.REMOTE_PROTOCOL_VERSION, proc: spec.number, type: VIR_NET_MESSAGE, serial: 0, status: VIR_NET_OK }, encode(spec.msg, msg));
    for (const sock of this.sockets) sock.write(packet);
  }

  private receive(sock: net.Socket, call: Packet): void {
    const name = NAMES.get(call.header.proc);
    if (!name) return;
    this.calls.push(name);
    const handler = this.handlers[name] ?? DEFAULTS[name];
    if (!handler) return;
    const spec = remote.remote_procedures[name] as { args: Codec<unknown>; ret: Codec<unknown> };
    const value = handler(decode(spec.args, call.payload) as never, call, this);
    if (value === NO_REPLY) return;
    if (value instanceof LibvirtError) {
      sock.write(encodePacket({ ...call.header, type: VIR_NET_REPLY, status: VIR_NET_ERROR }, encode(remote.remote_error, value.toRemote())));
      return;
    }
    sock.write(encodePacket({ ...call.header, type: VIR_NET_REPLY, status: VIR_NET_OK }, encode(spec.ret, value)));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A handler's answer that sends no reply (the call stays pending, or the handler replies itself). */
export const NO_REPLY = Symbol('no reply');
