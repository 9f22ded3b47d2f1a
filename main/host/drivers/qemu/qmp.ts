// A small QMP client (QEMU Machine Protocol): newline-delimited JSON over a unix socket. The
// greeting is read, capabilities negotiated, then every command carries an id its reply is matched
// by; events are emitted as they come. A closed socket rejects every pending and later command
// (a client that waits on a dead QEMU would hang forever).
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { EngineFailure } from '../../errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

/** A command QEMU refused; the message names the command and QEMU's own description. */
export class QmpError extends EngineFailure {
  override name = 'QmpError';
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    readonly desc: string,
  ) {
    super(`QEMU refused '${command}': ${desc}${qmpClass && qmpClass !== 'GenericError' ? ` (${qmpClass})` : ''}`);
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_LINE_BYTES = 16 * 1024 * 1024;

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closedFlag = false;
  greeting?: QmpGreeting;
  private greeted?: (g: QmpGreeting) => void;

  private constructor(private readonly sock: net.Socket) {
    super();
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.receive(chunk));
    sock.on('error', () => undefined);
    sock.on('close', () => this.onClose());
  }

  /** Connects, reads the greeting and leaves negotiation mode (qmp_capabilities). */
  static async connect(socketPath: string, timeoutMs = 10_000): Promise<QmpClient> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const qmp = new QmpClient(sock);
    const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QEMU sent no QMP greeting on ${socketPath} within ${timeoutMs / 1000} s`)), timeoutMs);
      qmp.greeted = (g) => {
        clearTimeout(timer);
        resolve(g);
      };
      qmp.once('close', () => {
        clearTimeout(timer);
        reject(new Error(`QEMU closed its QMP socket ${socketPath} before greeting`));
      });
    });
    qmp.greeting = greeting;
    await qmp.execute('qmp_capabilities');
    return qmp;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    if (this.closedFlag) return Promise.reject(new Error(`QEMU's QMP connection is closed ('${command}' not sent)`));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QEMU did not answer '${command}' within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.sock.write(`${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_LINE_BYTES) {
      this.sock.destroy(new Error('QMP line too long'));
      return;
    }
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      this.greeted?.(msg.QMP as QmpGreeting);
      return;
    }
    if ('event' in msg) {
      this.emit('event', msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, err.class ?? 'GenericError', err.desc ?? 'unknown error'));
    } else {
      p.resolve(msg.return);
    }
  }

  private onClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`QEMU closed its QMP connection before answering '${p.command}'`));
    }
    this.pending.clear();
    this.emit('close');
  }
}
