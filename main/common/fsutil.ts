// File helpers shared by the host and the runner.
import fs from 'node:fs';
import path from 'node:path';

/** Files that can hold guest memory, passwords or console output are the owner's alone. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;
const GROUP_OTHER = 0o077;

/**
 * Writes a file so that a crash leaves either the old or the new content, never a mix:
 * temp file in the same directory, fsync, rename over the target, fsync the directory. A failure
 * (a full disk) leaves the old content and no temp file, and throws a FileWriteError naming `file`.
 * Owner-only unless asked otherwise: definitions hold VNC passwords. `makeDirs` creates missing
 * parent directories, for Domus's own files; a path a user named is written only where it exists.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array | Uint8Array[], mode = PRIVATE_FILE_MODE, makeDirs = true): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    if (makeDirs) fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      // Pieces are written one after the other: a large file need not be copied into one buffer first.
      for (const piece of Array.isArray(data) ? data : [data]) fs.writeFileSync(fd, piece);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new FileWriteError(file, err);
  }
  try {
    fsyncPath(dir);
  } catch (err) {
    throw new FileWriteError(file, err);
  }
}

/** fsync of a file or directory by path (a directory: so that a rename or unlink in it is durable). */
export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * writeFileAtomic for large files written in pieces: a temporary owner-only file beside `file`,
 * filled by `fill` (through the handle, or by another process through the path), fsync'd, checked
 * by `beforeRename` (an abort), renamed over `file`, then the directory fsync'd. On any failure the
 * temporary file is removed and `file` is left as it was; errors come out through `wrap`, except
 * those `keep` says are already the caller's own (an abort).
 */
export async function fillFileAtomic(
  file: string,
  fill: (fh: fs.promises.FileHandle, tmp: string) => Promise<void>,
  opts: { wrap: (err: unknown) => Error; keep?: (err: unknown) => boolean; beforeRename?: () => void },
): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, 'wx', PRIVATE_FILE_MODE);
  } catch (err) {
    throw opts.wrap(err);
  }
  try {
    await fill(fh, tmp);
    await fh.sync();
    await fh.close();
    opts.beforeRename?.();
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw opts.keep?.(err) ? err : opts.wrap(err);
  }
  try {
    const dh = await fs.promises.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    throw opts.wrap(err);
  }
}

/** A file that could not be written: says which and why in strerror's words; `code` is the errno name. */
export class FileWriteError extends Error {
  readonly code?: string;
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`cannot write '${file}': ${systemErrorText(cause)}`);
    this.name = 'FileWriteError';
    this.code = (cause as NodeJS.ErrnoException).code;
  }
}

/**
 * A failed system call as strerror words it ("No space left on device"), without Node's
 * "ENOSPC: ..., write" wrapping, so that messages can name the file themselves; other errors keep
 * their message.
 */
export function systemErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const m = typeof e?.code === 'string' ? /^[A-Z0-9_]+: ([^,]+)/.exec(e.message) : null;
  return m ? m[1][0].toUpperCase() + m[1].slice(1) : err instanceof Error ? err.message : String(err);
}

/** True when a process with this pid exists (signal 0 probes without delivering). */
export function processAlive(pid: number): boolean {
  // kill(0) and kill(-n) signal process groups: a pid not known yet (0) is no process.
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The directories in `dir`; none when `dir` does not exist. */
export function subdirectories(dir: string): fs.Dirent[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()) : [];
}

/** Creates `dir` (and missing parents) owner-only; an existing one loses group and other access. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const { mode } = fs.statSync(dir);
  if (mode & GROUP_OTHER) fs.chmodSync(dir, mode & ~GROUP_OTHER & 0o7777);
}

/** Opens a log for appending, owner-only even when an earlier version created it looser. */
export function openPrivateLog(file: string): number {
  const fd = fs.openSync(file, 'a', PRIVATE_FILE_MODE);
  const { mode } = fs.fstatSync(fd);
  if (mode & GROUP_OTHER) fs.fchmodSync(fd, mode & ~GROUP_OTHER & 0o7777);
  return fd;
}

/**
 * Takes group and other access off `root` and, when it is a directory, everything under it.
 * Symbolic links are neither changed nor followed; entries that vanish meanwhile (a runner
 * cleaning up) are skipped. Returns the paths it changed.
 */
export function tightenTree(root: string): string[] {
  const changed: string[] = [];
  const visit = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) return;
    if (st.mode & GROUP_OTHER) {
      try {
        fs.chmodSync(p, st.mode & ~GROUP_OTHER & 0o7777);
        changed.push(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = fs.readdirSync(p);
    } catch {
      return;
    }
    for (const name of names) visit(path.join(p, name));
  };
  visit(root);
  return changed;
}

/** True when `file` is a regular file; false when missing, unreadable or anything else. */
export function isRegularFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
