// OS image downloads into a storage pool. Each download streams into a .part file in the host's
// downloads directory while its SHA-256 is computed; a dropped connection is resumed with an HTTP
// Range request (the hash state carries on, so nothing is read twice); the verified file is moved
// into the pool under its final name in one rename. A download that fails or is cancelled removes
// its .part file, so the pool never holds a half or unverified image.
import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { CatalogueEntry, DownloadInfo } from '../../../shared/api.js';
import { hashFromSums, imageFileName } from './catalogue.js';

export interface DownloadManagerOptions {
  /** Where .part files live while a download runs (same filesystem as the pools, for the rename). */
  downloadsDir: string;
  /** A pool's directory; throws a clear error for an unknown pool. */
  poolDir(pool: string): string;
  catalogue(): Promise<{ entries: CatalogueEntry[] }>;
  /** Attempts per download when the connection drops (the first included). */
  attempts?: number;
  /** Delay before the n-th retry, in ms. */
  retryDelayMs?(attempt: number): number;
}

export class DownloadError extends Error {
  constructor(
    readonly code: 'INVALID_ARG' | 'OPERATION_INVALID',
    message: string,
  ) {
    super(message);
  }
}

interface Running {
  info: DownloadInfo;
  target: string;
  abort: AbortController;
  done: Promise<DownloadInfo>;
}

/** Progress events at most this often while bytes flow; state changes are sent at once. */
const PROGRESS_INTERVAL_MS = 500;

export class DownloadManager extends EventEmitter<{ progress: [DownloadInfo] }> {
  private nextId = 1;
  private readonly all = new Map<number, Running>();

  constructor(private readonly opts: DownloadManagerOptions) {
    super();
    // .part files of an earlier host are half downloads nobody can resume: remove them.
    fs.mkdirSync(opts.downloadsDir, { recursive: true });
    for (const f of fs.readdirSync(opts.downloadsDir)) if (f.endsWith('.part')) fs.rmSync(path.join(opts.downloadsDir, f), { force: true });
  }

  list(): DownloadInfo[] {
    return [...this.all.values()].map((r) => ({ ...r.info }));
  }

  /** The final path an entry's image has in a pool. */
  target(entry: CatalogueEntry, pool = 'default'): string {
    return path.join(this.opts.poolDir(pool), imageFileName(entry));
  }

  async start(entryId: string, pool = 'default'): Promise<DownloadInfo> {
    const { entries } = await this.opts.catalogue();
    const entry = entries.find((e) => e.id === entryId);
    if (!entry) throw new DownloadError('INVALID_ARG', `no catalogue entry '${entryId}'`);
    const target = this.target(entry, pool);
    const busy = [...this.all.values()].find((r) => r.info.status === 'running' && r.target === target);
    if (busy) return { ...busy.info };
    if (fs.existsSync(target)) throw new DownloadError('OPERATION_INVALID', `${target} already exists in pool '${pool}'; use it, or delete it to download again`);
    const id = this.nextId++;
    const info: DownloadInfo = { id, entry: entry.id, url: entry.url, file: '', status: 'running', receivedBytes: 0, totalBytes: entry.sizeBytes ?? 0 };
    const abort = new AbortController();
    const run: Running = { info, target, abort, done: Promise.resolve(info) };
    this.all.set(id, run);
    run.done = this.run(run, entry, target).then(
      () => this.finish(run, 'completed'),
      (err: Error) => this.finish(run, abort.signal.aborted ? 'cancelled' : 'failed', abort.signal.aborted ? 'cancelled by the user' : err.message),
    );
    this.emit('progress', { ...info });
    return { ...info };
  }

  /** Cancels a running download; resolves once its .part file is gone. */
  async cancel(id: number): Promise<DownloadInfo> {
    const run = this.all.get(id);
    if (!run) throw new DownloadError('INVALID_ARG', `no download with id ${id}`);
    if (run.info.status !== 'running') throw new DownloadError('OPERATION_INVALID', `download ${id} is not running (${run.info.status})`);
    run.abort.abort();
    return run.done;
  }

  /** Resolves when the download ends, whatever the outcome (for tests and the CLI). */
  whenDone(id: number): Promise<DownloadInfo> {
    const run = this.all.get(id);
    if (!run) return Promise.reject(new DownloadError('INVALID_ARG', `no download with id ${id}`));
    return run.done;
  }

  private finish(run: Running, status: DownloadInfo['status'], error?: string): DownloadInfo {
    run.info.status = status;
    if (error) run.info.error = error;
    this.emit('progress', { ...run.info });
    return { ...run.info };
  }

  private partPath(run: Running, target: string): string {
    return path.join(this.opts.downloadsDir, `${run.info.id}-${path.basename(target)}.part`);
  }

  private async run(run: Running, entry: CatalogueEntry, target: string): Promise<void> {
    const { signal } = run.abort;
    const part = this.partPath(run, target);
    try {
      const expected = entry.sha256?.toLowerCase() ?? (await this.fetchChecksum(entry, signal));
      const hash = await this.fetchInto(run, entry.url, part, signal);
      const actual = hash.digest('hex');
      if (actual !== expected) throw new Error(`SHA-256 mismatch for ${path.basename(target)}: expected ${expected}, got ${actual}; the file was deleted`);
      await this.place(part, target, signal);
      run.info.file = target;
    } finally {
      fs.rmSync(part, { force: true });
    }
  }

  private async fetchChecksum(entry: CatalogueEntry, signal: AbortSignal): Promise<string> {
    const url = entry.sha256Url!;
    const res = await fetch(url, { signal });
    if (!res.ok) throw new Error(`checksum file ${url}: HTTP ${res.status} ${res.statusText}`);
    const found = hashFromSums(await res.text(), imageFileName(entry));
    if (!found) throw new Error(`checksum file ${url} lists no SHA-256 for ${imageFileName(entry)}`);
    return found;
  }

  /** Streams the URL into `part`, resuming with Range after a dropped connection. */
  private async fetchInto(run: Running, url: string, part: string, signal: AbortSignal): Promise<Hash> {
    const attempts = this.opts.attempts ?? 5;
    const delay = this.opts.retryDelayMs ?? ((n: number) => Math.min(1000 * 2 ** (n - 1), 10_000));
    let hash = createHash('sha256');
    let received = 0;
    const file = await fs.promises.open(part, 'w');
    let lastEmit = 0;
    try {
      for (let attempt = 1; ; attempt++) {
        let res: Response;
        try {
          res = await fetch(url, { signal, headers: received > 0 ? { Range: `bytes=${received}-` } : {} });
        } catch (err) {
          if (signal.aborted || attempt >= attempts) throw connectionError(url, err);
          await sleep(delay(attempt), signal);
          continue;
        }
        if (received > 0 && res.status === 200) {
          // The server ignored the range: start over.
          received = 0;
          hash = createHash('sha256');
          await file.truncate(0);
        } else if (received > 0 && res.status !== 206) {
          await res.body?.cancel();
          throw new Error(`${url}: resuming at byte ${received} failed with HTTP ${res.status} ${res.statusText}`);
        } else if (received === 0 && res.status !== 200) {
          await res.body?.cancel();
          throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
        }
        const total = totalSize(res, received);
        if (total) run.info.totalBytes = total;
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            await file.write(chunk, 0, chunk.length, received);
            hash.update(chunk);
            received += chunk.length;
            run.info.receivedBytes = received;
            if (Date.now() - lastEmit >= PROGRESS_INTERVAL_MS) {
              lastEmit = Date.now();
              this.emit('progress', { ...run.info });
            }
          }
        } catch (err) {
          if (signal.aborted || attempt >= attempts) throw connectionError(url, err);
          await sleep(delay(attempt), signal);
          continue;
        }
        if (run.info.totalBytes && received < run.info.totalBytes) {
          // The body ended early without an error (a proxy closing cleanly): resume too.
          if (attempt >= attempts) throw new Error(`${url}: connection closed at byte ${received} of ${run.info.totalBytes}`);
          await sleep(delay(attempt), signal);
          continue;
        }
        await file.sync();
        return hash;
      }
    } finally {
      await file.close();
    }
  }

  /** Moves the verified file into the pool: one rename, or a copy to a temp name and a rename across filesystems. */
  private async place(part: string, target: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new Error('cancelled');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (fs.existsSync(target)) throw new Error(`${target} appeared while downloading; the download was not moved over it`);
    try {
      fs.renameSync(part, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp`);
      try {
        await fs.promises.copyFile(part, tmp);
        const fd = fs.openSync(tmp, 'r');
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.renameSync(tmp, target);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    }
    const dir = fs.openSync(path.dirname(target), 'r');
    fs.fsyncSync(dir);
    fs.closeSync(dir);
  }
}

function totalSize(res: Response, offset: number): number | undefined {
  const range = res.headers.get('content-range');
  const m = range && /\/(\d+)$/.exec(range);
  if (m) return Number(m[1]);
  const length = Number(res.headers.get('content-length'));
  return length > 0 ? offset + length : undefined;
}

function connectionError(url: string, err: unknown): Error {
  const e = err as Error & { cause?: Error };
  return new Error(`${url}: ${e.cause?.message ?? e.message}`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('cancelled'));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('cancelled'));
    }, { once: true });
  });
}
