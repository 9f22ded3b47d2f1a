// The host's link between one of its own viewers (the GUI's noVNC, over a WebSocket or a
// MessagePort) and a guest's RFB server: a local guest's unix socket, or a libvirt domain's VNC
// display reached as virt-manager reaches it (see connections/libvirt-console.ts). When the
// definition sets passwd=, the server asks every connection for it; the host, which holds the
// definition, answers for its own viewers (as virt-manager reads the password from the XML) and
// offers them security None, so the password never travels to the renderer. Without a password,
// bytes pass through untouched.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { VNC_CHALLENGE_BYTES, vncAuthResponse } from '../../common/vnc-auth.js';

const SECURITY_NONE = 1;
const SECURITY_VNC = 2;

export interface VncLinkEnds {
  /** Bytes for the viewer. */
  toViewer(data: Buffer): void;
  /** The link is gone (either side closed, or authentication failed). */
  closed(reason?: string): void;
}

/** A guest's RFB server as a byte stream, and the password its definition sets. */
export interface VncUpstream {
  stream: Duplex;
  password?: string;
}

/** A local guest's display: its RFB unix socket. */
export function unixVncUpstream(socketPath: string, password: string | undefined): VncUpstream {
  return { stream: net.connect(socketPath), password };
}

export class VncLink {
  private sock?: Duplex;
  private password?: string;
  private upstream = Buffer.alloc(0);
  private fromViewer = Buffer.alloc(0);
  /** Upstream handshake done (or not needed): bytes flow both ways. */
  private open = false;
  /** What the viewer side of our None handshake still expects. */
  private viewerPhase: 'version' | 'security' | 'done' = 'version';
  private viewerMinor = 8;
  private upstreamPhase: 'version' | 'types' | 'challenge' | 'result' | 'reason' = 'version';
  private ended = false;

  /**
   * `upstream` may still be on its way (a libvirt display reached over ssh): until it arrives, the
   * viewer's bytes wait.
   */
  constructor(
    upstream: VncUpstream | Promise<VncUpstream>,
    private readonly ends: VncLinkEnds,
  ) {
    Promise.resolve(upstream).then(
      (up) => this.attach(up),
      (err: Error) => this.end(err.message),
    );
  }

  private attach({ stream, password }: VncUpstream): void {
    if (this.ended) {
      stream.destroy();
      return;
    }
    this.sock = stream;
    this.password = password;
    this.open = password === undefined;
    stream.on('data', (d: Buffer) => this.onUpstream(d));
    stream.on('end', () => this.end());
    stream.on('close', () => this.end());
    stream.on('error', (err) => this.end(err.message));
    if (password === undefined) {
      // Bytes pass through: what the viewer sent so far goes up as it was.
      this.viewerPhase = 'done';
      if (this.fromViewer.length) stream.write(this.fromViewer);
      this.fromViewer = Buffer.alloc(0);
    } else {
      this.ends.toViewer(Buffer.from('RFB 003.008\n', 'latin1'));
      this.viewerHandshake();
    }
  }

  /** Bytes from the viewer. */
  write(data: Buffer): void {
    if (this.ended) return;
    if (!this.sock) {
      this.fromViewer = Buffer.concat([this.fromViewer, data]);
      return;
    }
    if (this.viewerPhase === 'done' && this.open) {
      this.sock.write(data);
      return;
    }
    this.fromViewer = Buffer.concat([this.fromViewer, data]);
    this.viewerHandshake();
  }

  close(): void {
    this.ended = true;
    this.sock?.destroy();
  }

  private end(reason?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.sock?.destroy();
    this.ends.closed(reason);
  }

  // Our side towards the viewer: RFB 3.3/3.7/3.8 with security None.
  private viewerHandshake(): void {
    if (this.viewerPhase === 'version' && this.fromViewer.length >= 12) {
      const m = /^RFB 003\.(\d{3})\n$/.exec(this.fromViewer.subarray(0, 12).toString('latin1'));
      this.fromViewer = this.fromViewer.subarray(12);
      if (!m) return this.end('viewer sent a bad RFB version');
      const minor = Number(m[1]);
      this.viewerMinor = minor >= 8 ? 8 : minor === 7 ? 7 : 3;
      if (this.viewerMinor === 3) {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(SECURITY_NONE);
        this.ends.toViewer(b);
        this.viewerPhase = 'done';
      } else {
        this.ends.toViewer(Buffer.from([1, SECURITY_NONE]));
        this.viewerPhase = 'security';
      }
    }
    if (this.viewerPhase === 'security' && this.fromViewer.length >= 1) {
      const chosen = this.fromViewer[0];
      this.fromViewer = this.fromViewer.subarray(1);
      if (chosen !== SECURITY_NONE) return this.end(`viewer chose security type ${chosen}`);
      if (this.viewerMinor === 8) this.ends.toViewer(Buffer.alloc(4));
      this.viewerPhase = 'done';
    }
    this.flushViewer();
  }

  /** ClientInit and everything after go upstream once both handshakes are through. */
  private flushViewer(): void {
    if (this.viewerPhase !== 'done' || !this.open || this.fromViewer.length === 0) return;
    this.sock!.write(this.fromViewer);
    this.fromViewer = Buffer.alloc(0);
  }

  private onUpstream(data: Buffer): void {
    if (this.open) {
      this.ends.toViewer(data);
      return;
    }
    this.upstream = Buffer.concat([this.upstream, data]);
    for (;;) {
      const b = this.upstream;
      if (this.upstreamPhase === 'version') {
        if (b.length < 12) return;
        this.upstream = b.subarray(12);
        this.sock!.write('RFB 003.008\n');
        this.upstreamPhase = 'types';
      } else if (this.upstreamPhase === 'types') {
        if (b.length < 1 || b.length < 1 + b[0]) return;
        const types = [...b.subarray(1, 1 + b[0])];
        this.upstream = b.subarray(1 + b[0]);
        if (types.length === 0) return this.end('the guest VNC server refused the connection');
        const type = types.includes(SECURITY_VNC) ? SECURITY_VNC : types.includes(SECURITY_NONE) ? SECURITY_NONE : undefined;
        if (type === undefined) return this.end(`no usable security type among ${types.join(', ')}`);
        this.sock!.write(Buffer.from([type]));
        this.upstreamPhase = type === SECURITY_VNC ? 'challenge' : 'result';
      } else if (this.upstreamPhase === 'challenge') {
        if (b.length < VNC_CHALLENGE_BYTES) return;
        this.sock!.write(vncAuthResponse(this.password ?? '', b.subarray(0, VNC_CHALLENGE_BYTES)));
        this.upstream = b.subarray(VNC_CHALLENGE_BYTES);
        this.upstreamPhase = 'result';
      } else if (this.upstreamPhase === 'result') {
        if (b.length < 4) return;
        if (b.readUInt32BE(0) !== 0) {
          this.upstreamPhase = 'reason';
          continue;
        }
        this.upstream = Buffer.alloc(0);
        this.open = true;
        this.flushViewer();
        // ServerInit waits for ClientInit, so nothing else can be buffered here.
        if (b.length > 4) this.ends.toViewer(b.subarray(4));
        return;
      } else {
        if (b.length < 8 || b.length < 8 + b.readUInt32BE(4)) return;
        return this.end(`VNC authentication failed: ${b.subarray(8, 8 + b.readUInt32BE(4)).toString('utf8')}`);
      }
    }
  }
}
