// libvirt's RPC framing, for the client and the server alike: a 4-byte length (counting itself),
// the 24-byte virNetMessageHeader, then the payload (XDR args/ret/msg, a remote_error, or raw
// stream bytes). See docs/kbase/internals/rpc.rst in libvirt.
import { decode, encode, XdrError } from './xdr.js';
import {
  VIR_NET_MESSAGE_HEADER_MAX,
  VIR_NET_MESSAGE_LEN_MAX,
  VIR_NET_MESSAGE_MAX,
  virNetMessageHeader,
  type virNetMessageHeader as Header,
} from './protocol/virnet.js';

export type { Header };

export interface Packet {
  header: Header;
  payload: Buffer;
}

/** One packet's bytes; refuses what a libvirt peer would refuse as too large. */
export function encodePacket(header: Header, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const head = encode(virNetMessageHeader, header);
  const length = VIR_NET_MESSAGE_LEN_MAX + head.length + payload.length;
  if (length - VIR_NET_MESSAGE_LEN_MAX > VIR_NET_MESSAGE_MAX) {
    throw new XdrError(`packet of ${length} bytes exceeds libvirt's maximum of ${VIR_NET_MESSAGE_MAX + VIR_NET_MESSAGE_LEN_MAX}`);
  }
  const len = Buffer.alloc(4);
  len.writeUInt32BE(length);
  return Buffer.concat([len, head, payload]);
}

/**
 * Splits a byte stream into packets. A length outside [28, 4 + maxMessage] throws before any
 * buffering, so a hostile peer cannot make us hold more than one maximal message.
 */
export class PacketDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  constructor(private readonly maxMessage = VIR_NET_MESSAGE_MAX) {}

  push(chunk: Buffer): Packet[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Packet[] = [];
    for (;;) {
      if (this.buffered < 4) return out;
      const head = this.chunks[0].length >= 4 ? this.chunks[0] : this.join();
      const length = head.readUInt32BE(0);
      if (length < VIR_NET_MESSAGE_LEN_MAX + VIR_NET_MESSAGE_HEADER_MAX || length - VIR_NET_MESSAGE_LEN_MAX > this.maxMessage) {
        throw new XdrError(`packet length ${length} is outside ${VIR_NET_MESSAGE_LEN_MAX + VIR_NET_MESSAGE_HEADER_MAX}..${this.maxMessage + VIR_NET_MESSAGE_LEN_MAX}`);
      }
      if (this.buffered < length) return out;
      const all = this.join();
      const header = decode(virNetMessageHeader, all.subarray(4, 4 + VIR_NET_MESSAGE_HEADER_MAX));
      out.push({ header, payload: Buffer.from(all.subarray(4 + VIR_NET_MESSAGE_HEADER_MAX, length)) });
      const rest = all.subarray(length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
    }
  }

  private join(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }
}

/** A procedure table as the generator emits it (protocol/remote.ts's `remote_procedures`). */
export type ProcedureTable = Record<string, { number: number }>;

/** number → procedure name, for dispatching incoming packets. */
export function procedureNames<T extends ProcedureTable>(table: T): Map<number, keyof T & string> {
  return new Map(Object.entries(table).map(([name, p]) => [p.number, name as keyof T & string]));
}
