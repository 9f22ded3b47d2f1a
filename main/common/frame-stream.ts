// Ethernet frames over a stream socket in QEMU's `-netdev stream` framing: each frame is preceded by
// its length as a 4-byte big-endian integer. Domus's virtual switch speaks it on every port, so QEMU
// attaches with no helper and the v86 runner uses the same code.
import type { Socket } from 'node:net';

/** Larger than any frame a NIC sends (1518 + VLAN tags, or a 64 KiB virtio-net GSO frame). */
export const MAX_FRAME_BYTES = 65_550;
/** Shorter than an Ethernet header: never a frame. */
export const MIN_FRAME_BYTES = 14;

/** Prefixes one frame with its length. */
export function encodeFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, 4);
  return out;
}

/**
 * Splits a byte stream into frames. A length beyond MAX_FRAME_BYTES means the peer does not speak
 * the framing (or is hostile): `onBad` is called once and nothing more is decoded.
 */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private broken = false;

  constructor(
    private readonly onFrame: (frame: Buffer) => void,
    private readonly onBad: (reason: string) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.broken) return;
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (len > MAX_FRAME_BYTES) {
        this.broken = true;
        this.pending = Buffer.alloc(0);
        this.onBad(`frame length ${len} exceeds ${MAX_FRAME_BYTES} bytes`);
        return;
      }
      if (buf.length - at - 4 < len) break;
      // A copy: the socket may reuse its buffer, and receivers keep frames.
      this.onFrame(Buffer.from(buf.subarray(at + 4, at + 4 + len)));
      at += 4 + len;
    }
    buf = buf.subarray(at);
    this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}

/** Reads frames from `socket`; a peer breaking the framing is disconnected. */
export function readFrames(socket: Socket, onFrame: (frame: Buffer) => void, onBad: (reason: string) => void = () => undefined): void {
  const decoder = new FrameDecoder(onFrame, (reason) => {
    onBad(reason);
    socket.destroy();
  });
  socket.on('data', (chunk: Buffer) => decoder.push(chunk));
}
