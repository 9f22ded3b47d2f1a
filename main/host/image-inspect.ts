// host.inspectImage: the image reader, run in a worker thread; its verdicts become API errors.
import fs from 'node:fs';
import type { ImageInspection } from '../../shared/api.js';
import { FsimageJobError, runFsimageJob } from './fsimage-client.js';
import { HostError } from './host.js';

export async function inspectImageFile(file: string): Promise<ImageInspection> {
  if (!fs.existsSync(file)) throw new HostError('INVALID_ARG', `cannot inspect '${file}': No such file or directory`);
  try {
    return await runFsimageJob<ImageInspection>({ op: 'inspect', path: file });
  } catch (err) {
    if (err instanceof FsimageJobError) throw new HostError(err.expected ? 'OPERATION_UNSUPPORTED' : 'INTERNAL_ERROR', `cannot inspect '${file}': ${err.message}`);
    throw err;
  }
}
