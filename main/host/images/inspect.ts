// host.inspectImage: the image reader, run in a worker thread; its verdicts become API errors.
import { checkInputFile, InputFileError } from '../../common/input-file.js';
import type { ImageInspection } from '../../../shared/api.js';
import { FsimageJobError, runFsimageJob } from './reader-client.js';
import { HostError, invalidArg } from '../errors.js';

export async function inspectImageFile(file: string): Promise<ImageInspection> {
  // Checked here too, before a worker exists: a worker blocked in open(2) on a FIFO could never be ended.
  try {
    checkInputFile(file, { blockDevices: true });
  } catch (err) {
    if (err instanceof InputFileError) throw invalidArg(`cannot inspect '${file}': ${err.kind ? 'it ' : ''}${err.reason}`);
    throw err;
  }
  try {
    return await runFsimageJob<ImageInspection>({ op: 'inspect', path: file });
  } catch (err) {
    if (err instanceof FsimageJobError) throw new HostError(err.expected ? 'OPERATION_UNSUPPORTED' : 'INTERNAL_ERROR', `cannot inspect '${file}': ${err.message}`);
    throw err;
  }
}
