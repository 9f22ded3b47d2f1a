// The one error type of the image reader: a corrupt, hostile or unsupported image ends every call
// with an FsImageError (never another exception), so callers can show the message as it is.

export type FsImageErrorCode =
  | 'io' // the host file could not be read
  | 'corrupt' // a structure is out of bounds or inconsistent
  | 'limit' // a size, count or time budget was exceeded
  | 'unsupported' // a valid feature this reader does not handle
  | 'not-found' // the path does not exist
  | 'not-dir'
  | 'is-dir'
  | 'loop'; // too many symlinks

export class FsImageError extends Error {
  constructor(
    readonly code: FsImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FsImageError';
  }
}

export function corrupt(message: string): FsImageError {
  return new FsImageError('corrupt', message);
}

export function limit(message: string): FsImageError {
  return new FsImageError('limit', message);
}

/** Runs `fn` and turns any non-FsImageError (a RangeError from a bad buffer index, say) into one. */
export function guarded<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FsImageError) throw err;
    throw corrupt(`${what}: ${(err as Error).message}`);
  }
}
