// Runs one image-reader job in a worker thread (main/host/images/reader-worker.ts) with a heap limit and
// a deadline; the reader's own budgets normally end a job long before either.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { APP_ROOT } from '../../common/paths.js';
import type { FsimageJob, FsimageReply } from './reader-worker.js';

const JOB_TIMEOUT_MS = 90_000;
const HEAP_MB = 256;

export class FsimageJobError extends Error {
  constructor(
    message: string,
    /** True for the reader's own verdict on the image (FsImageError, BootError). */
    readonly expected: boolean,
  ) {
    super(message);
    this.name = 'FsimageJobError';
  }
}

export function runFsimageJob<T>(job: FsimageJob, timeoutMs = JOB_TIMEOUT_MS): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(APP_ROOT, 'dist', 'host', 'fsimage-worker.mjs'), {
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: HEAP_MB },
      stdout: false,
      stderr: false,
    });
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      settle(() => reject(new FsimageJobError(`reading the image took longer than ${timeoutMs / 1000} s`, true)));
      void worker.terminate();
    }, timeoutMs);
    worker.once('message', (reply: FsimageReply) =>
      settle(() => (reply.ok ? resolve(reply.result as T) : reject(new FsimageJobError(reply.message, reply.expected)))),
    );
    worker.once('error', (err) => settle(() => reject(new FsimageJobError(`the image reader failed: ${err.message}`, false))));
    worker.once('exit', (code) => settle(() => reject(new FsimageJobError(`the image reader stopped (exit ${code})`, false))));
  });
}
