// The guest NIC's cable: frames v86's NIC sends ("net0-send") go to the network's switch over its
// port socket, frames from the switch go to the NIC ("net0-receive"), in QEMU's `-netdev stream`
// framing. When the switch goes away the cable is re-plugged every second until it is back; frames
// sent meanwhile are lost, as on an unplugged cable.
import net from 'node:net';
import { encodeFrame, readFrames } from '../common/frame-stream.js';

const RECONNECT_MS = 1000;
/** Frames are dropped while more than this waits for the switch, as a full NIC queue would drop them. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export class NicCable {
  private socket: net.Socket | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private warned = false;

  constructor(
    private readonly socketPath: string,
    private readonly deliver: (frame: Uint8Array) => void,
    private readonly log: (message: string) => void,
  ) {
    this.connect();
  }

  /** One frame from the guest. */
  send(frame: Uint8Array): void {
    const s = this.socket;
    if (!s || s.connecting || s.destroyed || s.writableLength > MAX_QUEUED_BYTES) return;
    s.write(encodeFrame(frame));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
  }

  private connect(): void {
    if (this.closed) return;
    const s = net.connect(this.socketPath);
    this.socket = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.warned = false;
      this.log(`NIC connected to the switch at ${this.socketPath}`);
    });
    readFrames(s, (frame) => this.deliver(frame), (reason) => this.log(`the switch broke the framing: ${reason}`));
    s.on('error', (err) => {
      if (!this.warned) this.log(`NIC cannot reach the switch at ${this.socketPath}: ${err.message}; retrying`);
      this.warned = true;
    });
    s.on('close', () => {
      if (this.socket === s) this.socket = undefined;
      if (!this.closed) this.timer = setTimeout(() => this.connect(), RECONNECT_MS);
    });
  }
}
