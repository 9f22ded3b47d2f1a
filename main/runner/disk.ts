// A raw disk image backed by its file, in the shape of v86's buffer objects (SyncBuffer /
// AsyncXHRBuffer: load/get/set/byteLength…). v86 would otherwise keep the whole image in memory and
// drop every guest write when the runner exits.
import fs from 'node:fs';
import { CowStore, keepBeforeWrite } from '../common/cow-store.js';
import { openInputFile } from '../common/input-file.js';
import { tryFlock } from '../common/locks.js';

export class FileDisk {
  readonly byteLength: number;
  /** Set by v86 before it calls load(). */
  onload: (() => void) | undefined;
  /** What the guest read and wrote through this image (domstats block.N.rd/wr). */
  readonly counters = { rdBytes: 0, wrBytes: 0, rdReqs: 0, wrReqs: 0 };
  /** Called on the guest's first cache flush (the runner logs it). */
  onFirstFlush: (() => void) | undefined;
  private flushes = 0;
  private fd: number;
  /** The snapshots' copy-before-write stores of this disk (cow-store.ts). */
  private stores: CowStore[] = [];

  constructor(
    readonly path: string,
    readonly writable: boolean,
  ) {
    // Only regular files: v86 takes the size from fstat, and a FIFO or device would block the runner.
    const { fd, stats } = openInputFile(path, { writable });
    this.fd = fd;
    this.byteLength = stats.size;
  }

  /**
   * Takes the image's lock, as QEMU does: shared for a reader, exclusive for a writer; false when
   * another process holds a conflicting one. Held until close() (or the runner's end).
   */
  lock(): boolean {
    return tryFlock(this.fd, this.writable ? 'exclusive' : 'shared');
  }

  load(): void {
    this.onload?.();
  }

  get(start: number, length: number, done: (data: Uint8Array) => void): void {
    done(this.read(start, length));
  }

  get_and_cache(start: number, length: number, done: (data: Uint8Array) => void): void {
    done(this.read(start, length));
  }

  get_from_cache(start: number, length: number): Uint8Array {
    return this.read(start, length);
  }

  set(start: number, data: Uint8Array, done: () => void): void {
    if (!this.writable) throw new Error(`write to read-only image '${this.path}'`);
    keepBeforeWrite(this.fd, this.byteLength, this.stores, start, data.length);
    fs.writeSync(this.fd, data, 0, data.length, start);
    this.counters.wrBytes += data.length;
    this.counters.wrReqs++;
    done();
  }

  /** The guest's cache flush (ATA FLUSH CACHE, see ide.ts): its writes are on the host's disk once this returns. */
  flush(): void {
    if (this.writable) {
      for (const s of this.stores) s.sync();
      fs.fsyncSync(this.fd);
    }
    if (this.flushes++ === 0) this.onFirstFlush?.();
  }

  // v86's save_state/restore_state call these; the contents stay in the file, so there is nothing to add.
  get_state(): unknown[] {
    return [];
  }

  set_state(): void {}

  /** Replaces the snapshot stores kept for this disk; nothing changes if one cannot be opened. */
  setStores(paths: readonly string[]): void {
    const opened: CowStore[] = [];
    try {
      for (const p of paths) opened.push(CowStore.open(p, this.byteLength));
    } catch (err) {
      for (const s of opened) s.close();
      throw err;
    }
    for (const s of this.stores) s.close();
    this.stores = opened;
  }

  close(): void {
    for (const s of this.stores) s.close();
    this.stores = [];
    fs.closeSync(this.fd);
  }

  private read(start: number, length: number): Uint8Array {
    // Bytes past the end of the file (a partial last sector) read as zeros.
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, out, done, length - done, start + done);
      if (n === 0) break;
      done += n;
    }
    this.counters.rdBytes += length;
    this.counters.rdReqs++;
    return out;
  }
}
