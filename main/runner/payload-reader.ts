// Reads a v86 state file's payload for a restore without holding up the machine being built: a worker
// thread (payload-worker.ts) reads and hashes it, ~30 ms for the 128 MiB sample, on the other core.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { APP_ROOT } from '../common/paths.js';
import { checkPayloadDigest, StateFileError, type StateHeader } from '../common/statefile.js';
import type { PayloadJob, PayloadReply } from './payload-worker.js';

let warm: Worker | undefined;

function startWorker(): Worker {
  return new Worker(path.join(APP_ROOT, 'dist', 'runner', 'payload-worker.mjs'), { stdout: false, stderr: false });
}

/** Starts the reader's thread ahead of need (a spare runner): its start-up, ~40-80 ms, leaves the restore's path. */
export function warmPayloadReader(): void {
  if (warm) return;
  const worker = startWorker();
  // A thread that fails or ends before its job is not used (startPayloadRead starts another).
  const drop = () => {
    if (warm === worker) warm = undefined;
  };
  worker.on('error', drop);
  worker.once('exit', drop);
  warm = worker;
}

/** Ends a thread started ahead that no restore will use. */
export function coolPayloadReader(): void {
  void warm?.terminate();
  warm = undefined;
}

/**
 * Starts reading the payload of a state file opened with openStateFile (whose header the caller
 * checked against its configuration, `maxBytes` included), and takes over its descriptor. Resolves
 * to the payload once read and its checksum matched; rejects with a StateFileError.
 */
export function startPayloadRead(file: string, opened: { fd: number; header: StateHeader; payloadOffset: number }, maxBytes: number): Promise<Uint8Array> {
  const { fd, header, payloadOffset } = opened;
  let into: SharedArrayBuffer;
  let worker: Worker;
  try {
    if (header.payloadBytes > maxBytes) throw new StateFileError(`state file '${file}' is corrupt: a payload of ${header.payloadBytes} bytes, at most ${maxBytes} for this machine`);
    into = new SharedArrayBuffer(header.payloadBytes);
    worker = warm ?? startWorker();
    warm = undefined;
  } catch (err) {
    fs.closeSync(fd);
    return Promise.reject(err instanceof StateFileError ? err : new StateFileError(`cannot read state file '${file}': ${(err as Error).message}`));
  }
  return new Promise<Uint8Array>((resolve, reject) => {
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
}
