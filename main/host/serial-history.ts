// A serial console's scrollback: the newest bytes of the guest's output, up to a bound, for viewers
// that open the console later. Kept as the chunks that came, trimmed to the byte: an engine's
// hand-over at attach (up to 1 MiB in one chunk) keeps its newest part rather than going whole.

/** What the host keeps per domain, for its own guests and a libvirt connection's alike. */
export const SERIAL_HISTORY_BYTES = 256 * 1024;

export class SerialHistory {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly capacity = SERIAL_HISTORY_BYTES) {}

  push(data: Buffer): void {
    if (!data.length) return;
    this.chunks.push(data);
    this.bytes += data.length;
    while (this.bytes > this.capacity) {
      const over = this.bytes - this.capacity;
      const first = this.chunks[0];
      if (first.length <= over) {
        this.chunks.shift();
        this.bytes -= first.length;
      } else {
        // A copy, so that the rest of a large chunk is not held.
        this.chunks[0] = Buffer.from(first.subarray(over));
        this.bytes -= over;
      }
    }
  }

  contents(): Buffer {
    return Buffer.concat(this.chunks);
  }

  clear(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}
