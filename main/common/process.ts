// Engine processes as both engines run them: spawned detached with their output in a private log
// (so they outlive the host), waited on until they open their control socket, and, when they fail
// before that, described by the last lines they logged.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { openPrivateLog, processAlive } from './fsutil.js';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EngineProcess {
  readonly child: ChildProcess;
  /** How the process ended, once it has (before it was ready). */
  exited(): ProcessExit | undefined;
}

/**
 * Spawns `cmd` detached from the host (its own process group, no reference keeping the host's event
 * loop alive) with stdout and stderr appended to `logFile`, after an optional first line.
 */
export function spawnEngine(cmd: string, args: string[], opts: { logFile: string; cwd: string; env?: NodeJS.ProcessEnv; firstLine?: string }): EngineProcess {
  const out = openPrivateLog(opts.logFile);
  if (opts.firstLine) fs.writeSync(out, `${opts.firstLine}\n`);
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], cwd: opts.cwd, env: opts.env ?? process.env });
  } finally {
    fs.closeSync(out);
  }
  let exit: ProcessExit | undefined;
  child.on('exit', (code, signal) => (exit = { code, signal }));
  // A binary that cannot be executed: no 'exit' follows.
  child.on('error', () => (exit ??= { code: null, signal: null }));
  child.unref();
  return { child, exited: () => exit };
}

/**
 * Polls `probe` until it yields a connection. Fails with `onExit`'s error when the process ends
 * first, or kills it and fails with `onTimeout`'s when `timeoutMs` passes.
 */
export async function waitForEngine<T>(
  proc: EngineProcess,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs: number; onExit: (exit: ProcessExit) => Error; onTimeout: () => Error },
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const exit = proc.exited();
    if (exit) throw opts.onExit(exit);
    const ready = await probe();
    if (ready !== undefined) {
      proc.child.removeAllListeners('exit');
      return ready;
    }
    if (Date.now() - started > opts.timeoutMs) {
      if (proc.child.pid) killProcess(proc.child.pid);
      throw opts.onTimeout();
    }
    await sleep(opts.intervalMs);
  }
}

/** SIGKILL, for a process that may already be gone. */
export function killProcess(pid: number): void {
  // kill(0) would SIGKILL the caller's own process group.
  if (!(pid > 0)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * Waits up to `ms` for a process to end; whether it did. `exited`, for a child of this process: its
 * exit event, which ends the wait at once rather than at the next poll.
 */
export async function waitGone(pid: number, ms: number, exited?: Promise<void>): Promise<boolean> {
  let ended = false;
  void exited?.then(() => (ended = true));
  const deadline = Date.now() + ms;
  // Most processes asked to end are gone within tens of ms (a save's stop waits for this): poll
  // often at first, then every 20 ms.
  for (let wait = 2; !ended && processAlive(pid) && Date.now() < deadline; wait = Math.min(20, wait * 2)) {
    await (exited ? Promise.race([sleep(wait), exited]) : sleep(wait));
  }
  return ended || !processAlive(pid);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The non-empty lines of a log (none when it is unreadable), without those `skip` matches. */
export function logLines(file: string, skip?: RegExp): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .trim()
    .split('\n')
    .filter((l) => l && !skip?.test(l));
}

/** "was killed by SIGKILL" / "exited with code 1", as a failure message words it. */
export function exitText(exit: ProcessExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}
