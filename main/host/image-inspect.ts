// host.inspectImage: the image reader run in the host process; its errors become API errors.
import fs from 'node:fs';
import type { ImageInspection } from '../../shared/api.js';
import { FsImageError, inspectImage } from '../fsimage/index.js';
import { HostError } from './host.js';

export function inspectImageFile(file: string): ImageInspection {
  if (!fs.existsSync(file)) throw new HostError('invalid-arg', `cannot inspect '${file}': No such file or directory`);
  try {
    return inspectImage(file);
  } catch (err) {
    if (err instanceof FsImageError) throw new HostError(err.code === 'io' ? 'invalid-arg' : 'unsupported', `cannot inspect '${file}': ${err.message}`);
    throw err;
  }
}
