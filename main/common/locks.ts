// Locks between processes: one host per DOMUS_HOME, one runner per domain, one writer per disk image.
//
// Node has no flock(2), and Domus takes no native addon, so util-linux flock(1) takes the lock on a
// descriptor it inherits from us (fd 3). A flock lock belongs to the open file description, which
// the helper shares with us: it stays when the helper exits and ends only when our descriptor is
// closed, at close(), at exit, or when the kernel reaps a holder killed by SIGKILL. So a lock is
// never stale, no pid has to be trusted to say who is alive, and of two processes racing for one
// lock the kernel lets exactly one win. Node opens files close-on-exec: a runner the host spawns
// does not inherit the host's lock.
//
// Who holds a lock is read from the kernel: /proc/locks lists every lock by device and inode, and
// /proc/PID/fdinfo/FD shows the locks taken through that descriptor, i.e. the holder's pid even
// when flock(1) took the lock for it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** flock(1)'s exit status when the lock is taken (its default, 1, is also its error status). */
const CONFLICT_EXIT = 75;
/** By path where util-linux installs it: a host may run with a PATH that lacks it. */
const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((f) => fs.existsSync(f)) ?? 'flock';

/** Takes flock(2) on `fd` without waiting; false when another open file holds a conflicting lock. */
export function tryFlock(fd: number, mode: 'shared' | 'exclusive'): boolean {
  const r = spawnSync(FLOCK, ['--nonblock', `--${mode}`, '--conflict-exit-code', String(CONFLICT_EXIT), '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
  });
  if (r.error) throw new Error(`cannot take a file lock: flock (util-linux) did not run: ${r.error.message}`);
  if (r.status === 0) return true;
  if (r.status === CONFLICT_EXIT) return false;
  throw new Error(`cannot take a file lock: flock exited with ${r.status ?? r.signal}: ${r.stderr.toString().trim()}`);
}

/** An exclusive lock on `file` (created 0600 if missing) that this process keeps until it exits. */
export interface PidLock {
  /** Drops the lock: closes the descriptor. */
  release(): void;
}

/**
 * Takes the exclusive lock on `file` and writes this process's pid into it, or returns the pid of the
 * process that holds it (0 when it cannot be told). The pid is for people and error messages; the
 * lock alone says whether the holder lives.
 */
export function claimPidLock(file: string): PidLock | { heldBy: number } {
  let fd: number;
  for (;;) {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    let locked = false;
    try {
      locked = tryFlock(fd, 'exclusive');
    } finally {
      if (!locked) fs.closeSync(fd);
    }
    if (!locked) return { heldBy: lockHolders(file)[0]?.pid ?? readPid(file) };
    // A holder removes its pid file as it exits: a lock on that removed file is worth nothing.
    if (sameInode(fs.fstatSync(fd), file)) break;
    fs.closeSync(fd);
  }
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  let open = true;
  return {
    release: () => {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

function sameInode(st: fs.Stats, file: string): boolean {
  try {
    const now = fs.statSync(file);
    return now.ino === st.ino && now.dev === st.dev;
  } catch {
    return false;
  }
}

/** The pid written in a pid file, or 0. */
export function readPid(file: string): number {
  try {
    return Number.parseInt(fs.readFileSync(file, 'utf8'), 10) || 0;
  } catch {
    return 0;
  }
}

export interface FileLock {
  type: 'FLOCK' | 'POSIX' | 'OFDLCK';
  write: boolean;
  /** From /proc/locks: exact for POSIX locks; for FLOCK and OFDLCK the process that took it, or -1. */
  pid: number;
  start: number;
  end: number;
}

/** The locks on `file` (none when it does not exist), from /proc/locks. */
export function locksOn(file: string): FileLock[] {
  const id = inodeIdOf(file);
  if (!id) return [];
  return fs
    .readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .flatMap((line) => parseLockLine(line, id) ?? []);
}

/** A line of /proc/locks (or of an fdinfo's "lock:" lines) if it is a lock held on inode `id`. */
function parseLockLine(line: string, id: string): FileLock | undefined {
  // "1: POSIX  ADVISORY  WRITE 1234 fe:00:56789 0 EOF"; blocked waiters ("1: -> ...") hold nothing.
  const m = /^\d+:\s+(FLOCK|POSIX|OFDLCK)\s+\S+\s+(READ|WRITE)\s+(-?\d+)\s+(\S+)\s+(\d+)\s+(\d+|EOF)$/.exec(line.trim());
  if (!m || m[4] !== id) return undefined;
  return { type: m[1] as FileLock['type'], write: m[2] === 'WRITE', pid: Number(m[3]), start: Number(m[5]), end: m[6] === 'EOF' ? Infinity : Number(m[6]) };
}

/** True when some process holds a lock on `file`. */
export function isLocked(file: string): boolean {
  return locksOn(file).length > 0;
}

/** The pid of the process holding a POSIX lock on `file` (how QEMU holds its -pidfile), or undefined. */
export function posixLockHolder(file: string): number | undefined {
  const lock = locksOn(file).find((l) => l.type === 'POSIX' && l.pid > 0);
  return lock?.pid;
}

/** A process holding locks on a file, with the locks it holds (from its fdinfo). */
export interface LockHolder {
  pid: number;
  locks: FileLock[];
}

/**
 * The processes (other than this one) holding a lock on `file` through one of their descriptors:
 * every readable /proc/PID/fd entry on its inode whose fdinfo lists a lock. Only run to name a
 * holder, as it looks at every descriptor of every process of this user.
 */
export function lockHolders(file: string): LockHolder[] {
  const id = inodeIdOf(file);
  if (!id) return [];
  const holders: LockHolder[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    const locks: FileLock[] = [];
    for (const fd of fds) {
      try {
        const target = fs.statSync(`/proc/${entry}/fd/${fd}`, { bigint: true });
        if (inodeId(target) !== id) continue;
        for (const line of fs.readFileSync(`/proc/${entry}/fdinfo/${fd}`, 'utf8').split('\n')) {
          const lock = line.startsWith('lock:') ? parseLockLine(line.slice('lock:'.length), id) : undefined;
          if (lock) locks.push(lock);
        }
      } catch {
        // closed meanwhile
      }
    }
    if (locks.length) holders.push({ pid: Number(entry), locks });
  }
  return holders;
}

/** A process in words: the Domus domain it runs (v86 runner or QEMU), or its command name. */
export function describeProcess(pid: number): string {
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return `process ${pid}`;
  }
  const runnerAt = argv.findIndex((a) => /[\\/]runner[\\/]main\.(mjs|ts)$/.test(a));
  if (runnerAt >= 0 && argv[runnerAt + 1]) {
    try {
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      // A runner started as a spare (`--spare DIR PID`) moved into its state dir when it was taken.
      const stateDir = argv[runnerAt + 1] === '--spare' ? cwd : path.resolve(cwd, argv[runnerAt + 1]!);
      const config = JSON.parse(fs.readFileSync(path.join(stateDir, 'runner.json'), 'utf8')) as { name?: string; uuid?: string };
      return `domain '${config.name}' (${config.uuid}) in v86 runner pid ${pid}`;
    } catch {
      return `a v86 runner (pid ${pid})`;
    }
  }
  if (/qemu-system/.test(path.basename(argv[0] ?? '')) && argv.includes('-name')) {
    // -name guest=NAME,debug-threads=on, with commas in NAME doubled.
    const name = /^(?:guest=)?((?:[^,]|,,)*)/.exec(argv[argv.indexOf('-name') + 1] ?? '')![1]!.replaceAll(',,', ',');
    const uuid = argv.includes('-uuid') ? ` (${argv[argv.indexOf('-uuid') + 1]})` : '';
    return `domain '${name}'${uuid} in QEMU pid ${pid}`;
  }
  return `process ${pid} (${path.basename(argv[0] ?? '?')})`;
}

// QEMU's image locking (block/file-posix.c): OFD read locks on byte 100 + permission bit ("I hold
// it") and on byte 200 + bit ("I do not share it"); the write permission is bit 1.
const QEMU_LOCK_PERM_BASE = 100;
const QEMU_PERM_WRITE_BIT = 1;

/** A lock by which its holder writes the image: an exclusive flock, or QEMU's lock on its write byte. */
function writerLock(l: FileLock): boolean {
  if (l.type === 'FLOCK') return l.write;
  const writeByte = QEMU_LOCK_PERM_BASE + QEMU_PERM_WRITE_BIT;
  return l.start <= writeByte && writeByte <= l.end;
}

/**
 * Locks of the other scheme that forbid opening a disk image now: a v86 runner (flock: exclusive
 * for a writer, shared for a reader) asks about QEMU's byte-range locks (`range`), the QEMU driver
 * about v86 runners' flocks (`flock`); each engine enforces its own scheme itself. A writer
 * conflicts with any user; a reader with a writer.
 */
export function conflictingImageLocks(file: string, writable: boolean, scheme: 'flock' | 'range'): FileLock[] {
  return locksOn(file).filter((l) => (l.type === 'FLOCK') === (scheme === 'flock') && (writable || writerLock(l)));
}

/** Why `what` ('hda', 'disk image'...) `file` cannot be opened now: who holds it, and how. */
export function imageInUseMessage(what: string, file: string, writable: boolean): string {
  const holders = lockHolders(file).map((h) => `${describeProcess(h.pid)}, which ${h.locks.some(writerLock) ? 'writes to it' : 'reads it'}`);
  const rule = writable ? 'a disk image can be written by one guest at a time, and not while others read it' : 'it is being written, so it cannot be shared read-only';
  return `${what} '${file}' is in use by ${holders.length ? holders.join('; ') : 'another process'}; ${rule}`;
}

/** inodeId of `file`, or undefined when it cannot be stat'ed (then nothing can hold a lock on it). */
function inodeIdOf(file: string): string | undefined {
  try {
    return inodeId(fs.statSync(file, { bigint: true }));
  } catch {
    return undefined;
  }
}

/** /proc/locks' "MAJOR:MINOR:INODE" (major and minor in hex) for a file. */
function inodeId(st: fs.BigIntStats): string {
  // glibc's dev_t encoding (gnu_dev_major/gnu_dev_minor).
  const dev = st.dev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const hex = (n: bigint) => n.toString(16).padStart(2, '0');
  return `${hex(major)}:${hex(minor)}:${st.ino}`;
}
