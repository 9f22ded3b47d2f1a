// Worker thread for the image reader: the guest's image is untrusted, so the host reads it off its
// own event loop, in a thread with a heap limit that the host terminates at a deadline. Whatever
// the image does, the host process neither blocks nor runs out of memory.
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { writeFileAtomic } from '../../common/fsutil.js';
import { BootError, chooseBoot, DiskImage, FsImageError, inspectImage, parseBootloaderArgs, readIsoIdentity } from '../../fsimage/index.js';

export type FsimageJob =
  | { op: 'inspect'; path: string }
  | { op: 'identify'; path: string }
  | { op: 'boot'; disk: string; bootloaderArgs?: string; cmdline?: string; outDir: string };

export interface BootJobResult {
  kernel: string;
  initrd?: string;
  cmdline: string;
  how: 'explicit' | 'config' | 'newest';
  configFile?: string;
  label?: string;
  kernelPath: string;
  initrdPath?: string;
  where: string;
  arch: 'i686' | 'x86_64' | 'unknown';
  archReason: string;
}

export type FsimageReply = { ok: true; result: unknown } | { ok: false; expected: boolean; message: string };

function boot(job: Extract<FsimageJob, { op: 'boot' }>): BootJobResult {
  const opts = parseBootloaderArgs(job.bootloaderArgs);
  const img = DiskImage.open(job.disk);
  try {
    const choice = chooseBoot(img, opts, job.cmdline);
    const kernel = path.join(job.outDir, 'pygrub-kernel');
    writeFileAtomic(kernel, choice.kernel, 0o600);
    let initrd: string | undefined;
    if (choice.initrd) {
      initrd = path.join(job.outDir, 'pygrub-initrd');
      writeFileAtomic(initrd, choice.initrd, 0o600);
    }
    const { how, configFile, label, kernelPath, initrdPath, where, cmdline, facts } = choice;
    return { kernel, initrd, cmdline, how, configFile, label, kernelPath, initrdPath, where, arch: facts.arch, archReason: facts.reason };
  } finally {
    img.close();
  }
}

if (parentPort) {
  const job = workerData as FsimageJob;
  let reply: FsimageReply;
  try {
    reply = { ok: true, result: job.op === 'inspect' ? inspectImage(job.path) : job.op === 'identify' ? readIsoIdentity(job.path) : boot(job) };
  } catch (err) {
    const expected = err instanceof FsImageError || err instanceof BootError;
    reply = { ok: false, expected, message: expected ? (err as Error).message : String((err as Error).stack ?? err) };
  }
  parentPort.postMessage(reply);
}
