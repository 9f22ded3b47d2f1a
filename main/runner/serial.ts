// Serial output bookkeeping: the guest's recent output, handed to each client that says hello, and a
// coalescing buffer for the clients attached.

/** Keeps the newest `capacity` bytes. */
export class ByteRing {
  private readonly buf: Buffer;
  private start = 0;
  private length = 0;

  constructor(readonly capacity: number) {
    this.buf = Buffer.alloc(capacity);
  }

  pushByte(byte: number): void {
    if (this.length < this.capacity) {
      this.buf[(this.start + this.length) % this.capacity] = byte;
      this.length++;
    } else {
      this.buf[this.start] = byte;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** A copy of the contents, oldest first. */
  contents(): Buffer {
    const end = this.start + this.length;
    return end <= this.capacity
      ? Buffer.from(this.buf.subarray(this.start, end))
      : Buffer.concat([this.buf.subarray(this.start), this.buf.subarray(0, end - this.capacity)]);
  }
}

/** Appends bytes and hands them out in one chunk at most `delayMs` after the first. */
export class Coalescer {
  private chunk = Buffer.alloc(4096);
  private length = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly flushTo: (data: Buffer) => void,
  ) {}

  pushByte(byte: number): void {
    if (this.length === this.chunk.length) {
      const bigger = Buffer.alloc(this.chunk.length * 2);
      this.chunk.copy(bigger);
      this.chunk = bigger;
    }
    this.chunk[this.length++] = byte;
    this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Hands out what is buffered now (if anything). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.length === 0) return;
    const data = Buffer.from(this.chunk.subarray(0, this.length));
    this.length = 0;
    if (this.chunk.length > 65536) this.chunk = Buffer.alloc(4096);
    this.flushTo(data);
  }

  /** Drops what is buffered, without handing it out. */
  discard(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.length = 0;
  }
}

const PANIC_END = '---[ end Kernel panic - not syncing: ';
const MAX_LINE_BYTES = 1024;

/**
 * Finds Linux's last panic line on the console, "---[ end Kernel panic - not syncing: REASON ]---",
 * printed once the kernel has said everything and only waits (or reboots, after panic=N seconds).
 * v86 has no pvpanic device; this line is the guest's panic notification. (A guest can print it
 * from user space too; it then only pauses itself.)
 */
export class PanicWatch {
  private line = '';

  /** Feeds one byte; returns the panic's reason when it completes the line. */
  push(byte: number): string | undefined {
    if (byte !== 0x0a) {
      if (this.line.length < MAX_LINE_BYTES) this.line += String.fromCharCode(byte);
      return undefined;
    }
    const line = this.line;
    this.line = '';
    const at = line.indexOf(PANIC_END);
    if (at < 0) return undefined;
    return line.slice(at + PANIC_END.length).replace(/\s*\]---\s*$/, '').trim();
  }
}
