// Worker thread (dist/runner/payload-worker.mjs): reads a state file's payload into shared memory and
// hashes it, on the second core while the runner's main thread builds the machine (payload-reader.ts).
// It starts ahead of its one job in a spare runner, so the job comes as a message.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface PayloadJob {
  /** The runner's descriptor of the state file (worker threads share it). */
  fd: number;
  position: number;
  into: SharedArrayBuffer;
}

export type PayloadReply = { digest: string } | { truncated: true } | { error: string };

const CHUNK_BYTES = 4 << 20;

function read(job: PayloadJob): PayloadReply {
  const into = new Uint8Array(job.into);
  const hash = crypto.createHash('sha256');
  for (let done = 0; done < into.length; ) {
    const n = fs.readSync(job.fd, into, done, Math.min(CHUNK_BYTES, into.length - done), job.position + done);
    // Short only if the file shrank since it was opened and measured.
    if (n === 0) return { truncated: true };
    hash.update(into.subarray(done, done + n));
    done += n;
  }
  return { digest: hash.digest('hex') };
}

const port = parentPort;
port?.once('message', (job: PayloadJob) => {
  let reply: PayloadReply;
  try {
    reply = read(job);
  } catch (err) {
    reply = { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
  port.postMessage(reply);
});
