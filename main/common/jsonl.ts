// Newline-delimited JSON over a stream socket (the runner's control socket, the host's unix-socket
// API). One JSON value per line, UTF-8. Partial lines are buffered; a line that is not valid JSON or
// is longer than the limit is reported through 'invalid' and skipped, and the connection stays usable.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
/** A peer that stops reading must not make us buffer without bound. */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export interface JsonlOptions {
  maxLineBytes?: number;
  maxBufferedBytes?: number;
}

export interface JsonlEvents {
  /** One parsed line. The value is unchecked: validate it before use. */
  message: [value: unknown];
  /** A line was skipped (malformed JSON or too long). The connection stays open. */
  invalid: [error: Error];
  /** The socket is closed; `error` is set when it closed because of one (EPIPE, ECONNRESET…). */
  close: [error?: Error];
}

const NEWLINE = 0x0a;

// No 'error' event on purpose: EventEmitter throws on an unhandled 'error', and a peer going away
// must never crash the process that owns the socket. Errors arrive through 'close' instead.
export class JsonlConnection<Out = unknown> extends EventEmitter<JsonlEvents> {
  readonly socket: Socket;
  private readonly maxLineBytes: number;
  private readonly maxBufferedBytes: number;
  private chunks: Buffer[] = [];
  private pendingBytes = 0;
  /** Set while skipping the rest of an over-long line, up to its newline. */
  private discarding = false;
  private closed = false;
  private closeError: Error | undefined;

  constructor(socket: Socket, options: JsonlOptions = {}) {
    super();
    this.socket = socket;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (err) => {
      this.closeError ??= err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.emit('close', this.closeError);
    });
  }

  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed && this.socket.writable;
  }

  /** Queues one message. Returns false (and sends nothing) when the connection is gone. */
  send(message: Out): boolean {
    return this.sendLine(JSON.stringify(message));
  }

  /**
   * Queues one line of JSON text already serialized (without its newline). A peer with more than
   * the cap still queued is not reading: the connection is dropped, and 'close' says why.
   */
  sendLine(json: string): boolean {
    if (!this.isOpen) return false;
    if (this.socket.writableLength > this.maxBufferedBytes) {
      this.closeError ??= new Error(`peer is not reading (over ${this.maxBufferedBytes} bytes queued); dropped`);
      this.socket.destroy();
      return false;
    }
    this.socket.write(json + '\n');
    return true;
  }

  /** Flushes what is queued, then closes. Resolves once the socket is closed (or after `timeoutMs`). */
  end(timeoutMs = 1000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(data: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = data.indexOf(NEWLINE, start);
      if (nl < 0) break;
      this.takeLine(data.subarray(start, nl));
      start = nl + 1;
    }
    if (start < data.length) this.keepPartial(data.subarray(start));
  }

  private keepPartial(part: Buffer): void {
    if (this.discarding) return;
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.maxLineBytes) {
      this.chunks = [];
      this.pendingBytes = 0;
      this.discarding = true;
      this.emit('invalid', new Error(`line longer than ${this.maxLineBytes} bytes; skipped`));
      return;
    }
    // Copy: the socket may reuse its buffer.
    this.chunks.push(Buffer.from(part));
  }

  private takeLine(tail: Buffer): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    let line = tail;
    if (this.chunks.length > 0) {
      this.chunks.push(tail);
      line = Buffer.concat(this.chunks);
      this.chunks = [];
      this.pendingBytes = 0;
    }
    if (line.length > this.maxLineBytes) {
      this.emit('invalid', new Error(`line longer than ${this.maxLineBytes} bytes; skipped`));
      return;
    }
    const text = line.toString('utf8').trim();
    if (text === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.emit('invalid', new Error(`malformed JSON line: ${(err as Error).message}`));
      return;
    }
    this.emit('message', value);
  }
}
