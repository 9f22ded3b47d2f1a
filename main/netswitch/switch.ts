// An L2 learning switch: ports learn the source MACs they send from (entries age out), frames go to
// the port that learned their destination, and broadcast, multicast and unknown unicast are flooded.
// The gateway is one more endpoint on it. A port's link can be set down (by port or, so that it
// also holds for a guest that reconnects, by MAC): nothing goes in or out of it then.
import { MIN_FRAME_BYTES } from '../common/frame-stream.js';
import type { Gateway } from './gateway.js';
import { isMulticast, macText } from './packets.js';
import type { PortStatus } from './protocol.js';

/** As Linux bridges and most switches age their forwarding entries. */
export const MAC_AGEING_MS = 300_000;
/** A guest sending from endless made-up MACs must not grow the table without bound; past this, new ones are flooded to. */
export const MAC_TABLE_MAX = 4096;

export interface PortSink {
  /** Queues one frame for the guest; false when it was dropped (the guest is not reading). */
  send(frame: Buffer): boolean;
}

export class Port {
  mac: string | undefined;
  linkUp = true;
  rxBytes = 0;
  rxPackets = 0;
  txBytes = 0;
  txPackets = 0;
  dropped = 0;
  readonly connectedAt = Date.now();

  constructor(
    readonly id: number,
    readonly sink: PortSink,
  ) {}

  status(): PortStatus {
    return {
      id: this.id,
      ...(this.mac && { mac: this.mac }),
      link: this.linkUp ? 'up' : 'down',
      rxBytes: this.rxBytes,
      rxPackets: this.rxPackets,
      txBytes: this.txBytes,
      txPackets: this.txPackets,
      dropped: this.dropped,
      connectedAt: this.connectedAt,
    };
  }
}

interface MacEntry {
  port: Port;
  seen: number;
}

export class Switch {
  private readonly ports = new Map<number, Port>();
  private readonly table = new Map<string, MacEntry>();
  private readonly downMacs = new Set<string>();
  private nextId = 1;

  constructor(
    private readonly gateway: Gateway,
    private readonly now: () => number = Date.now,
  ) {
    gateway.attach((frame) => this.forward(frame, undefined));
  }

  addPort(sink: PortSink): Port {
    const port = new Port(this.nextId++, sink);
    this.ports.set(port.id, port);
    return port;
  }

  removePort(port: Port): void {
    this.ports.delete(port.id);
    for (const [mac, entry] of this.table) if (entry.port === port) this.table.delete(mac);
  }

  /** A frame the guest on `port` sent. */
  input(port: Port, frame: Buffer): void {
    if (!this.ports.has(port.id) || frame.length < MIN_FRAME_BYTES) return;
    // A group address is never a source; such a frame is garbage.
    if (isMulticast(frame, 6)) return;
    const src = macText(frame, 6);
    port.mac ??= src;
    if (this.downMacs.has(port.mac)) port.linkUp = false;
    if (!port.linkUp) return;
    port.txBytes += frame.length;
    port.txPackets++;
    const known = this.table.get(src);
    if (known) {
      known.port = port;
      known.seen = this.now();
    } else if (this.table.size < MAC_TABLE_MAX) {
      this.table.set(src, { port, seen: this.now() });
    }
    this.forward(frame, port);
  }

  private forward(frame: Buffer, from: Port | undefined): void {
    const toGateway = from !== undefined && (isMulticast(frame, 0) || frame.subarray(0, 6).equals(this.gateway.mac));
    if (toGateway) for (const reply of this.gateway.receive(frame)) this.forward(reply, undefined);
    if (isMulticast(frame, 0)) {
      this.flood(frame, from);
      return;
    }
    if (from !== undefined && frame.subarray(0, 6).equals(this.gateway.mac)) return;
    const entry = this.table.get(macText(frame, 0));
    if (entry && this.now() - entry.seen < MAC_AGEING_MS && this.ports.has(entry.port.id)) {
      if (entry.port !== from) this.deliver(entry.port, frame);
      return;
    }
    this.flood(frame, from);
  }

  private flood(frame: Buffer, from: Port | undefined): void {
    for (const port of this.ports.values()) if (port !== from) this.deliver(port, frame);
  }

  private deliver(port: Port, frame: Buffer): void {
    if (!port.linkUp) {
      port.dropped++;
      return;
    }
    if (!port.sink.send(frame)) {
      port.dropped++;
      return;
    }
    port.rxBytes += frame.length;
    port.rxPackets++;
  }

  /** Drops forwarding entries not refreshed within the ageing time. */
  age(): void {
    const now = this.now();
    for (const [mac, entry] of this.table) if (now - entry.seen >= MAC_AGEING_MS) this.table.delete(mac);
  }

  /** Sets a link up or down by port id or by MAC; returns the ports it applies to now. */
  setLink(target: { port?: number; mac?: string }, up: boolean): Port[] {
    const mac = target.mac?.toLowerCase();
    if (mac) {
      if (up) this.downMacs.delete(mac);
      else this.downMacs.add(mac);
    }
    const hit = [...this.ports.values()].filter((p) => (target.port !== undefined && p.id === target.port) || (mac !== undefined && p.mac === mac));
    for (const p of hit) {
      p.linkUp = up;
      if (up && p.mac) this.downMacs.delete(p.mac);
      if (!up) for (const [m, entry] of this.table) if (entry.port === p) this.table.delete(m);
    }
    return hit;
  }

  portList(): PortStatus[] {
    return [...this.ports.values()].map((p) => p.status());
  }

  linkDownMacs(): string[] {
    return [...this.downMacs];
  }

  macTable(): { mac: string; port: number }[] {
    return [...this.table].map(([mac, e]) => ({ mac, port: e.port.id }));
  }
}
