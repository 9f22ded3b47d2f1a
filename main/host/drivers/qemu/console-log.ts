// The guest's serial output as QEMU's pipe chardev writes it (serial.out), read from an offset as it
// grows. QEMU writes the file whether or not a host is attached, so output made while none was is not
// lost and never seen twice.
//
// Bounded on disk without touching what QEMU writes: what has been read, except the last
// `keepBytes` a re-attaching host hands over, is punched out of the file (fallocate --punch-hole).
// The file keeps its size, so QEMU's appends and every offset stay valid, while its blocks are
// freed. Cutting the file instead (truncate, or rename and reopen) would race with QEMU's writes.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { log } from '../../log.js';

/** The poll reads the file where watching it (inotify) is not possible. */
const POLL_MS = 250;
const BLOCK = 4096;

export interface ConsoleLogOptions {
  /** What a re-attaching host hands over: never punched. */
  keepBytes: number;
  /** Punch once this much more than keepBytes has been read (virtlogd rotates at 2 MiB). */
  trimBytes: number;
}

export class ConsoleLog {
  private offset: number;
  private watcher?: fs.FSWatcher;
  private poll?: NodeJS.Timeout;
  private stopped = false;
  /** Everything before this offset is a hole already. */
  private punched = 0;
  private punching = false;
  private punchFailed = false;

  constructor(
    readonly file: string,
    fromOffset: number,
    private readonly onData: (data: Buffer) => void,
    private readonly opts: ConsoleLogOptions,
  ) {
    this.offset = fromOffset;
  }

  start(): void {
    try {
      this.watcher = fs.watch(this.file, () => this.read());
      this.watcher.on('error', () => undefined);
    } catch {
      /* the poll below still reads it */
    }
    this.poll = setInterval(() => this.read(), POLL_MS);
    this.poll.unref();
    this.read();
  }

  /** Reads what is left, then no more. */
  stop(): void {
    this.read();
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.poll);
  }

  read(): void {
    if (this.stopped) return;
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.file, 'r');
      const size = fs.fstatSync(fd).size;
      while (this.offset < size) {
        const buf = Buffer.alloc(Math.min(size - this.offset, 256 * 1024));
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.onData(buf.subarray(0, n));
      }
    } catch {
      /* not there yet, or removed at exit */
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    this.trim();
  }

  private trim(): void {
    const upTo = Math.floor((this.offset - this.opts.keepBytes) / BLOCK) * BLOCK;
    if (this.punching || this.punchFailed || upTo - this.punched < this.opts.trimBytes) return;
    this.punching = true;
    execFile('fallocate', ['--punch-hole', '--offset', String(this.punched), '--length', String(upTo - this.punched), this.file], (err, _out, stderr) => {
      this.punching = false;
      if (!err) {
        this.punched = upTo;
        return;
      }
      // Not fatal: the file then grows with the output, as it did before trimming existed.
      this.punchFailed = true;
      if (!this.stopped) log('warn', `cannot free the read part of ${this.file}: ${(stderr || err.message).trim()}`);
    });
  }

  /** The last `bytes` bytes before offset `end` (what a re-attaching host hands over). */
  static tail(file: string, end: number, bytes: number): Buffer {
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, 'r');
      const len = Math.min(end, bytes);
      const buf = Buffer.alloc(len);
      const n = fs.readSync(fd, buf, 0, len, end - len);
      return buf.subarray(0, n);
    } catch {
      return Buffer.alloc(0);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}
