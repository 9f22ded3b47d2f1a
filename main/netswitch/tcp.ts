// One TCP connection's endpoint in the gateway, speaking to a guest: the far end of a guest's
// outbound connection (passive open) or the near end of a forwarded host port (active open). It
// knows nothing of sockets: the NAT splices it to one through TcpHooks. What it does: the three-way
// handshake with the MSS option, in-order receive (out-of-order segments are dropped and answered
// with a duplicate ACK, which makes the guest retransmit), a receive window taken from the host
// side's free room, a bounded send buffer, RFC 6298 retransmission timeouts with backoff, fast
// retransmit on three duplicate ACKs and NewReno partial-ACK recovery, Reno congestion control, zero
// window probes, FIN and RST both ways and half-close. The guest's window may be scaled (RFC 7323:
// Linux offers it, and 64 KiB in flight would cap a transfer to the guest); the gateway's own window
// is never more than 64 KiB, so it offers a scale of 0. Not done: SACK, timestamps (one virtual hop
// does not need them).

import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from './packets.js';

/** What the gateway advertises: an Ethernet MTU of 1500 less the IPv4 and TCP headers. */
export const OUR_MSS = 1460;
/** RFC 9293's default when the peer's SYN has no MSS option. */
const DEFAULT_MSS = 536;
/** Host data queued for the guest (sent and unacknowledged, or not sent yet) before the host socket is paused. */
export const SEND_BUFFER_BYTES = 256 * 1024;
const MAX_WINDOW = 0xffff;
const INITIAL_RTO_MS = 1000;
const MAX_RTO_MS = 60_000;
/** Retransmissions of one segment before the connection is given up (about 2 minutes with backoff). */
const MAX_RETRIES = 8;
/** How long a closed connection answers a retransmitted FIN (a short TIME-WAIT). */
const TIME_WAIT_MS = 2000;

export type TcpState = 'syn-sent' | 'syn-received' | 'established' | 'fin-wait-1' | 'fin-wait-2' | 'close-wait' | 'closing' | 'last-ack' | 'time-wait' | 'closed';

export interface TcpHooks {
  /** Sends one segment to the guest (ports are filled in by the caller). */
  output(segment: Omit<TcpSegment, 'srcPort' | 'dstPort'>): void;
  /** The handshake completed. */
  established(): void;
  /** In-order data from the guest, never more than room() allowed. */
  data(chunk: Buffer): void;
  /** The guest sent FIN: no more data from it. */
  end(): void;
  /** Bytes the host side can take now: the receive window advertised to the guest. */
  room(): number;
  /** The send buffer has room again after write() returned false. */
  drained(): void;
  /** The connection is over: 'done' after FINs both ways, 'reset' by a RST from the guest, 'timeout' when the guest stopped answering. */
  closed(reason: 'done' | 'reset' | 'timeout'): void;
}

export interface TcpOptions {
  /** Lower bound of the retransmission timeout (RFC 6298 says 1 s; Linux uses 200 ms). */
  minRtoMs?: number;
  /** Initial send sequence number (random when absent). */
  iss?: number;
}

const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
const seqLe = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
const seqDiff = (a: number, b: number): number => (a - b) | 0;

export class TcpEndpoint {
  state: TcpState;
  private readonly iss: number;
  private sndUna: number;
  private sndNxt: number;
  private sndWnd = 0;
  private sndMss = DEFAULT_MSS;
  /** The guest's window scale; undefined until both sides offered one (then scaling is on). */
  private sndShift: number | undefined;
  private rcvNxt = 0;
  private irs = 0;
  /** Host data from sndUna on: chunks, their total in `queued`. */
  private readonly chunks: Buffer[] = [];
  private queued = 0;
  private hostEnded = false;
  private finSent = false;
  private paused = false;
  private cwnd = 10 * OUR_MSS;
  private ssthresh = MAX_WINDOW;
  private dupAcks = 0;
  /** Highest sequence sent when loss recovery began (NewReno). */
  private recover: number | undefined;
  private srtt: number | undefined;
  private rttvar = 0;
  private rto = INITIAL_RTO_MS;
  private readonly minRto: number;
  private retries = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The segment being timed for an RTT sample (Karn: never a retransmitted one). */
  private timing: { seq: number; at: number } | undefined;
  private lastWindow = 0;

  private constructor(
    private readonly hooks: TcpHooks,
    state: TcpState,
    options: TcpOptions,
  ) {
    this.state = state;
    this.minRto = options.minRtoMs ?? 200;
    this.iss = (options.iss ?? Math.floor(Math.random() * 0x100000000)) >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
  }

  /** The far end of a guest's connection, from its SYN; nothing is sent until accept(). */
  static passive(syn: TcpSegment, hooks: TcpHooks, options: TcpOptions = {}): TcpEndpoint {
    const ep = new TcpEndpoint(hooks, 'syn-received', options);
    ep.irs = syn.seq;
    ep.rcvNxt = (syn.seq + 1) >>> 0;
    ep.sndWnd = syn.window;
    ep.sndMss = Math.min(OUR_MSS, syn.mss ?? DEFAULT_MSS);
    if (syn.wscale !== undefined) ep.sndShift = Math.min(14, syn.wscale);
    return ep;
  }

  /** A connection the gateway opens to a guest: sends the SYN. */
  static active(hooks: TcpHooks, options: TcpOptions = {}): TcpEndpoint {
    const ep = new TcpEndpoint(hooks, 'syn-sent', options);
    ep.sendSyn();
    return ep;
  }

  /** The host side is connected: answer the guest's SYN. */
  accept(): void {
    this.sendSyn();
  }

  /** Whether a new SYN from the guest is a retransmission of the one that opened this connection. */
  isOpeningSyn(seg: TcpSegment): boolean {
    return this.state === 'syn-received' && seg.seq === this.irs;
  }

  private sendSyn(): void {
    const synAck = this.state === 'syn-received';
    this.sndNxt = (this.iss + 1) >>> 0;
    // A SYN-ACK carries a scale only when the guest's SYN offered one.
    const wscale = !synAck || this.sndShift !== undefined ? { wscale: 0 } : {};
    this.hooks.output({ seq: this.iss, ack: synAck ? this.rcvNxt : 0, flags: synAck ? TCP_SYN | TCP_ACK : TCP_SYN, window: this.window(), mss: OUR_MSS, ...wscale, payload: Buffer.alloc(0) });
    this.arm();
  }

  /** Host data for the guest; false when the send buffer is full and the host side should pause. */
  write(chunk: Buffer): boolean {
    if (this.hostEnded || this.state === 'closed' || chunk.length === 0) return !this.paused;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.push();
    if (this.queued >= SEND_BUFFER_BYTES) this.paused = true;
    return !this.paused;
  }

  /** The host side ended: FIN once the queued data is sent. */
  end(): void {
    if (this.hostEnded) return;
    this.hostEnded = true;
    this.push();
  }

  /** The host side has taken data: tell the guest when its window opened noticeably. */
  windowChanged(): void {
    if (this.state === 'closed' || this.state === 'syn-sent') return;
    const now = this.window();
    if (now - this.lastWindow >= Math.min(this.sndMss * 2, MAX_WINDOW / 2) || (this.lastWindow === 0 && now > 0)) this.sendAck();
  }

  /** Resets the connection (the host side failed). */
  abort(): void {
    this.reset('reset');
  }

  private reset(reason: 'reset' | 'timeout'): void {
    if (this.state === 'closed') return;
    if (this.state !== 'syn-sent' && this.state !== 'time-wait') this.hooks.output({ seq: this.sndNxt, ack: this.rcvNxt, flags: TCP_RST | TCP_ACK, window: 0, payload: Buffer.alloc(0) });
    this.finish(reason);
  }

  /** Bytes queued for the guest (sent or not) and not yet acknowledged. */
  get buffered(): number {
    return this.queued;
  }

  /** The guest's window in a segment, scaled (never in a SYN). */
  private peerWindow(seg: TcpSegment): number {
    return seg.window * 2 ** (this.sndShift ?? 0);
  }

  private window(): number {
    return Math.max(0, Math.min(MAX_WINDOW, Math.floor(this.hooks.room())));
  }

  private sendAck(): void {
    this.lastWindow = this.window();
    this.hooks.output({ seq: this.sndNxt, ack: this.rcvNxt, flags: TCP_ACK, window: this.lastWindow, payload: Buffer.alloc(0) });
  }

  /** One segment from the guest. */
  input(seg: TcpSegment): void {
    if (this.state === 'closed') return;
    if (seg.flags & TCP_RST) {
      const acceptable = this.state === 'syn-sent' ? (seg.flags & TCP_ACK) !== 0 && seg.ack === this.sndNxt : seqLe(this.rcvNxt, seg.seq) && seqLt(seg.seq, (this.rcvNxt + Math.max(1, this.window())) >>> 0);
      if (acceptable) this.finish('reset');
      return;
    }
    if (this.state === 'syn-sent') {
      if (seg.flags & TCP_ACK && seg.ack !== this.sndNxt) {
        this.hooks.output({ seq: seg.ack, ack: 0, flags: TCP_RST, window: 0, payload: Buffer.alloc(0) });
        return;
      }
      if ((seg.flags & (TCP_SYN | TCP_ACK)) !== (TCP_SYN | TCP_ACK)) return;
      this.irs = seg.seq;
      this.rcvNxt = (seg.seq + 1) >>> 0;
      this.sndMss = Math.min(OUR_MSS, seg.mss ?? DEFAULT_MSS);
      if (seg.wscale !== undefined) this.sndShift = Math.min(14, seg.wscale);
      this.sndWnd = seg.window;
      this.ackedTo(seg.ack);
      this.state = 'established';
      this.sendAck();
      this.hooks.established();
      this.push();
      return;
    }
    if (seg.flags & TCP_SYN) {
      // A retransmitted SYN (our SYN-ACK was lost) gets it again; any other SYN a challenge ACK (RFC 5961).
      if (this.state === 'syn-received' && seg.seq === this.irs) {
        if (this.sndNxt !== this.iss) this.sendSyn();
      } else this.sendAck();
      return;
    }
    if (!(seg.flags & TCP_ACK)) return;
    if (this.state === 'syn-received') {
      // Still connecting the host side: the guest has nothing to acknowledge yet.
      if (this.sndNxt === this.iss) return;
      if (seg.ack !== this.sndNxt) {
        this.hooks.output({ seq: seg.ack, ack: 0, flags: TCP_RST, window: 0, payload: Buffer.alloc(0) });
        return;
      }
      this.ackedTo(seg.ack);
      this.state = 'established';
      this.hooks.established();
    }
    if (this.state === 'time-wait') {
      if (seg.flags & TCP_FIN) this.sendAck();
      return;
    }
    // An ACK for data never sent: answer with our state and ignore it.
    if (seqLt(this.sndNxt, seg.ack)) {
      this.sendAck();
      return;
    }
    // Segment acceptability: it must overlap what we can receive (RFC 9293 3.10.7.4).
    const wnd = this.window();
    const end = (seg.seq + seg.payload.length + (seg.flags & TCP_FIN ? 1 : 0)) >>> 0;
    const pure = seg.payload.length === 0 && !(seg.flags & TCP_FIN);
    // A pure ACK may be old (a keepalive or window probe sits one below rcvNxt): its ACK field still counts, and it gets an answer.
    const inWindow = pure ? seqDiff(seg.seq, this.rcvNxt) <= wnd && seqDiff(seg.seq, this.rcvNxt) > -MAX_WINDOW : seqLt(this.rcvNxt, end) && seqLt(seg.seq, (this.rcvNxt + Math.max(wnd, 1)) >>> 0);
    if (!inWindow) {
      this.sendAck();
      return;
    }
    this.handleAck(seg);
    // handleAck may have closed it (the ACK of our last FIN).
    if ((this.state as TcpState) === 'closed') return;
    if (!pure) this.receive(seg);
    else if (seqLt(seg.seq, this.rcvNxt)) this.sendAck();
    this.push();
  }

  private handleAck(seg: TcpSegment): void {
    const inFlight = seqDiff(this.sndNxt, this.sndUna);
    if (seqLt(this.sndUna, seg.ack)) {
      this.ackedTo(seg.ack);
      this.sndWnd = this.peerWindow(seg);
      if (this.recover !== undefined) {
        if (seqLt(seg.ack, this.recover)) {
          // A partial ACK in recovery: the next hole is lost too.
          this.retransmitFirst();
        } else {
          this.recover = undefined;
          this.cwnd = this.ssthresh;
        }
      }
    } else if (seg.ack === this.sndUna && seg.payload.length === 0 && !(seg.flags & TCP_FIN) && this.peerWindow(seg) === this.sndWnd && inFlight > 0) {
      if (++this.dupAcks === 3 && this.recover === undefined) {
        this.ssthresh = Math.max(Math.floor(inFlight / 2), 2 * this.sndMss);
        this.cwnd = this.ssthresh + 3 * this.sndMss;
        this.recover = this.sndNxt;
        this.retransmitFirst();
      } else if (this.dupAcks > 3) this.cwnd += this.sndMss;
    } else if (seg.ack === this.sndUna) {
      this.sndWnd = this.peerWindow(seg);
    }
    if (this.finSent && seg.ack === this.sndNxt) {
      if (this.state === 'fin-wait-1') this.state = 'fin-wait-2';
      else if (this.state === 'closing') this.timeWait();
      else if (this.state === 'last-ack') this.finish('done');
    }
  }

  /** The guest acknowledged everything before `ack`. */
  private ackedTo(ack: number): void {
    let n = seqDiff(ack, this.sndUna);
    const newly = n;
    if (this.state === 'syn-sent' || this.state === 'syn-received') n--; // our SYN
    if (this.finSent && ack === this.sndNxt) n--; // our FIN
    n = Math.min(n, this.queued);
    this.queued -= n;
    while (n > 0) {
      const head = this.chunks[0]!;
      if (head.length <= n) {
        n -= head.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = head.subarray(n);
        n = 0;
      }
    }
    this.sndUna = ack;
    this.dupAcks = 0;
    this.retries = 0;
    if (this.timing && seqLe(this.timing.seq, ack)) {
      this.sampleRtt(Date.now() - this.timing.at);
      this.timing = undefined;
    }
    if (this.recover === undefined && newly > 0) this.cwnd += this.cwnd < this.ssthresh ? Math.min(newly, this.sndMss) : Math.max(1, Math.floor((this.sndMss * this.sndMss) / this.cwnd));
    this.cwnd = Math.min(this.cwnd, SEND_BUFFER_BYTES);
    if (this.sndUna === this.sndNxt) this.disarm();
    else this.arm();
    if (this.paused && this.queued < SEND_BUFFER_BYTES / 2) {
      this.paused = false;
      this.hooks.drained();
    }
  }

  private sampleRtt(ms: number): void {
    if (this.srtt === undefined) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
    this.rto = Math.min(MAX_RTO_MS, Math.max(this.minRto, this.srtt + Math.max(10, 4 * this.rttvar)));
  }

  private receive(seg: TcpSegment): void {
    if (this.state !== 'established' && this.state !== 'fin-wait-1' && this.state !== 'fin-wait-2') {
      // The guest already sent its FIN: anything more is a retransmission.
      this.sendAck();
      return;
    }
    let payload = seg.payload;
    let seq = seg.seq;
    if (seqLt(seq, this.rcvNxt)) {
      const old = Math.min(seqDiff(this.rcvNxt, seq), payload.length);
      payload = payload.subarray(old);
      seq = (seq + old) >>> 0;
    }
    if (seq !== this.rcvNxt) {
      // Out of order: dropped; the duplicate ACK tells the guest where the hole is.
      this.sendAck();
      return;
    }
    const room = this.window();
    const take = payload.subarray(0, room);
    if (take.length > 0) {
      this.rcvNxt = (this.rcvNxt + take.length) >>> 0;
      this.hooks.data(take);
    }
    if (seg.flags & TCP_FIN && take.length === payload.length) {
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      this.hooks.end();
      if (this.state === 'established') this.state = 'close-wait';
      else if (this.state === 'fin-wait-1') this.state = 'closing';
      else {
        this.sendAck();
        this.timeWait();
        return;
      }
    }
    this.sendAck();
  }

  /** Sends what the windows allow, then the FIN once the host ended and everything queued is out. */
  private push(): void {
    if (this.state !== 'established' && this.state !== 'close-wait') return;
    let offset = seqDiff(this.sndNxt, this.sndUna);
    const limit = Math.min(this.sndWnd, this.cwnd);
    while (offset < this.queued && offset < limit) {
      const n = Math.min(this.sndMss, this.queued - offset, limit - offset);
      this.sendData(this.sndNxt, offset, n, offset + n === this.queued);
      if (!this.timing) this.timing = { seq: (this.sndNxt + n) >>> 0, at: Date.now() };
      this.sndNxt = (this.sndNxt + n) >>> 0;
      offset += n;
      this.arm(true);
    }
    if (this.hostEnded && !this.finSent && offset === this.queued) {
      this.hooks.output({ seq: this.sndNxt, ack: this.rcvNxt, flags: TCP_FIN | TCP_ACK, window: this.window(), payload: Buffer.alloc(0) });
      this.sndNxt = (this.sndNxt + 1) >>> 0;
      this.finSent = true;
      this.state = this.state === 'established' ? 'fin-wait-1' : 'last-ack';
      this.arm(true);
    } else if (offset < this.queued && this.sndWnd === 0 && this.sndNxt === this.sndUna) {
      // Zero window and nothing in flight: probe it on the retransmission timer.
      this.arm(true);
    }
  }

  private sendData(seq: number, offset: number, n: number, last: boolean): void {
    const parts: Buffer[] = [];
    let skip = offset;
    let need = n;
    for (const c of this.chunks) {
      if (need === 0) break;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const part = c.subarray(skip, skip + need);
      parts.push(part);
      need -= part.length;
      skip = 0;
    }
    this.lastWindow = this.window();
    this.hooks.output({ seq, ack: this.rcvNxt, flags: TCP_ACK | (last ? TCP_PSH : 0), window: this.lastWindow, payload: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
  }

  /** Resends the oldest unacknowledged segment (data, or the FIN when only it is outstanding). */
  private retransmitFirst(): void {
    this.timing = undefined;
    if (this.queued > 0 && seqLt(this.sndUna, this.sndNxt)) {
      const n = Math.min(this.sndMss, this.queued, Math.max(1, seqDiff(this.sndNxt, this.sndUna) - (this.finSent ? 1 : 0)));
      this.sendData(this.sndUna, 0, n, n === this.queued);
    } else if (this.finSent) {
      this.hooks.output({ seq: (this.sndNxt - 1) >>> 0, ack: this.rcvNxt, flags: TCP_FIN | TCP_ACK, window: this.window(), payload: Buffer.alloc(0) });
    }
  }

  private arm(keep = false): void {
    if (keep && this.timer) return;
    this.disarm();
    this.timer = setTimeout(() => this.onTimeout(), this.rto);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onTimeout(): void {
    this.timer = undefined;
    if (this.state === 'closed' || this.state === 'time-wait') return;
    const probing = this.sndWnd === 0 && this.sndNxt === this.sndUna && this.queued > 0;
    if (!probing && this.sndNxt === this.sndUna) return;
    // A guest may keep its window shut for as long as it likes (its application is not reading); the idle timeout of the NAT bounds that.
    if (!probing && ++this.retries > MAX_RETRIES) {
      this.reset('timeout');
      return;
    }
    this.rto = Math.min(MAX_RTO_MS, this.rto * 2);
    if (this.state === 'syn-sent' || this.state === 'syn-received') {
      this.sendSyn();
      return;
    }
    if (probing) {
      // A segment below the window makes the guest answer with its current window.
      this.hooks.output({ seq: (this.sndUna - 1) >>> 0, ack: this.rcvNxt, flags: TCP_ACK, window: this.window(), payload: Buffer.alloc(0) });
    } else {
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      this.ssthresh = Math.max(Math.floor(inFlight / 2), 2 * this.sndMss);
      this.cwnd = this.sndMss;
      this.recover = this.sndNxt;
      this.dupAcks = 0;
      this.retransmitFirst();
    }
    this.arm();
  }

  private timeWait(): void {
    this.state = 'time-wait';
    this.disarm();
    this.timer = setTimeout(() => this.finish('done'), TIME_WAIT_MS);
    this.timer.unref();
  }

  private finish(reason: 'done' | 'reset' | 'timeout'): void {
    this.state = 'closed';
    this.disarm();
    this.chunks.length = 0;
    this.queued = 0;
    this.hooks.closed(reason);
  }
}
