// Reads a v86 state file's payload for a restore without holding up the machine being built: a worker
// thread (payload-worker.ts) reads and hashes it, ~30 ms for the 128 MiB sample, on the other core.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { APP_ROOT } from '../common/paths.js';
import { checkPayloadDigest, openStateFile, StateFileError, type StateHeader } from '../common/statefile.js';
import type { PayloadJob, PayloadReply } from './payload-worker.js';

let warm: Worker | undefined;

function startWorker(): Worker {
  return new Worker(path.join(APP_ROOT, 'dist', 'runner', 'payload-worker.mjs'), { stdout: false, stderr: false });
}

/** Starts the reader's thread ahead of need (a spare runner): its start-up, ~40-80 ms, leaves the restore's path. */
export function warmPayloadReader(): void {
  warm ??= startWorker();
}

/** Ends a thread started ahead that no restore will use. */
export function coolPayloadReader(): void {
  void warm?.terminate();
  warm = undefined;
}

/**
 * Opens `file` and checks its header at once (a StateFileError); `payload` resolves to the payload
 * once read and its checksum matched, or rejects with a StateFileError.
 */
export function readStateFile(file: string): { header: StateHeader; payload: Promise<Uint8Array> } {
  const { fd, header, payloadOffset } = openStateFile(file);
  const into = new SharedArrayBuffer(header.payloadBytes);
  const worker = warm ?? startWorker();
  warm = undefined;
  const payload = new Promise<Uint8Array>((resolve, reject) => {
    worker.postMessage({ fd, position: payloadOffset, into } satisfies PayloadJob);
    worker.once('message', (reply: PayloadReply) => {
      try {
        if ('truncated' in reply) throw new StateFileError(`state file '${file}' is truncated`);
        if ('error' in reply) throw new StateFileError(`cannot read state file '${file}': ${reply.error}`);
        checkPayloadDigest(file, header, reply.digest);
        resolve(new Uint8Array(into));
      } catch (err) {
        reject(err as Error);
      }
    });
    worker.once('error', (err) => reject(new StateFileError(`cannot read state file '${file}': ${err.message}`)));
    worker.once('exit', () => {
      reject(new StateFileError(`cannot read state file '${file}': its reader stopped`));
    });
  }).finally(() => fs.closeSync(fd));
  return { header, payload };
}
