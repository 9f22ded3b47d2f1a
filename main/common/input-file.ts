// Opening a file someone named (an image to inspect or boot, a state file to restore) without
// letting its kind hurt the reader: open(2) on a FIFO waits for a writer, a tty or serial device may
// block or change state, /dev/zero never ends. So the path is stat'ed first and refused unless it is
// a regular file (or a block device where a disk may be one); then it is opened O_NONBLOCK, which
// returns at once even if a FIFO was swapped in after the stat, and the open file is checked again.
import fs from 'node:fs';

export interface InputFileOptions {
  /** Block devices are images too (a disk partition, /dev/sr0); state files never are. */
  blockDevices?: boolean;
  writable?: boolean;
}

/** Refused path: the message names the path and what it is, or why it could not be used. */
export class InputFileError extends Error {
  override name = 'InputFileError';
  constructor(
    readonly file: string,
    /** The message without the path: "is a FIFO (named pipe), not a regular file", "No such file or directory". */
    readonly reason: string,
    /** Set when the path exists but is the wrong kind: 'directory', 'FIFO (named pipe)', 'socket'… */
    readonly kind?: string,
    /** Set when stat or open failed: the errno code ('ENOENT', 'EACCES'…). */
    readonly code?: string,
  ) {
    super(`'${file}'${kind ? ' ' : ': '}${reason}`);
  }
}

export function fileKind(st: fs.Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isBlockDevice()) return 'block device';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isSocket()) return 'socket';
  if (st.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}

function allowed(st: fs.Stats, opts: InputFileOptions): boolean {
  return st.isFile() || (opts.blockDevices === true && st.isBlockDevice());
}

function refuse(file: string, st: fs.Stats, opts: InputFileOptions, viaLink: boolean): InputFileError {
  const kind = fileKind(st);
  const wanted = opts.blockDevices ? 'a regular file or a block device' : 'a regular file';
  const what = viaLink ? `a symbolic link to a ${kind}` : `a ${kind}`;
  return new InputFileError(file, `is ${what}, not ${wanted}`, kind);
}

function errnoError(file: string, err: unknown): InputFileError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  const why: Record<string, string> = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    EPERM: 'Operation not permitted',
    ENOTDIR: 'a path component is not a directory',
    ELOOP: 'too many levels of symbolic links',
  };
  return new InputFileError(file, why[code] ?? (err as Error).message, undefined, code);
}

/** Checks what `file` is (following symbolic links) without opening it; returns its stats. */
export function checkInputFile(file: string, opts: InputFileOptions = {}): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw errnoError(file, err);
  }
  if (!allowed(st, opts)) throw refuse(file, st, opts, fs.lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() ?? false);
  return st;
}

/** Opens `file` for reading (or read-write) once it is known to be safe to read; close the fd when done. */
export function openInputFile(file: string, opts: InputFileOptions = {}): { fd: number; stats: fs.Stats } {
  checkInputFile(file, opts);
  // Windows has no O_NONBLOCK and no FIFOs reachable by path; the check above is all it needs.
  const flags = (opts.writable ? fs.constants.O_RDWR : fs.constants.O_RDONLY) | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);
  let fd: number;
  try {
    fd = fs.openSync(file, flags);
  } catch (err) {
    throw errnoError(file, err);
  }
  try {
    const stats = fs.fstatSync(fd);
    if (!allowed(stats, opts)) throw refuse(file, stats, opts, false);
    return { fd, stats };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}
