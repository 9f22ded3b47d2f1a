// Test support: a call the host never answers fails the test after a while, naming the call, with
// what the processes behind it were doing (each thread's state and kernel stack, and gdb's
// backtraces): otherwise a hang only shows as a file's timeout, minutes later, with nothing to go on.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { ApiClient } from '../../shared/client.js';

/** How long a test waits for any one answer of the host (DOMUS_TEST_CALL_TIMEOUT_MS overrides). */
export const CALL_TIMEOUT_MS = Number(process.env.DOMUS_TEST_CALL_TIMEOUT_MS) || 240_000;

const read = (file: string): string => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** Processes whose command line (arguments joined by spaces) passes `test`. */
export function processesMatching(test: (cmdline: string, pid: number) => boolean): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && test(read(`/proc/${d}/cmdline`).replace(/\0/g, ' '), Number(d)))
    .map(Number);
}

/** Whether a process sees a mount of a directory under `dir` (a private libvirtd's QEMUs see its bind mounts). */
export function mountsFrom(pid: number, dir: string): boolean {
  return read(`/proc/${pid}/mountinfo`).includes(`${dir}/`);
}

/** What one process is doing: each thread's name, state, wait channel and kernel stack, then gdb's backtraces. */
export function processReport(pid: number, label: string): string {
  const out = [`== ${label}, pid ${pid}: ${read(`/proc/${pid}/cmdline`).replace(/\0/g, ' ').slice(0, 200)}`];
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return `${out[0]}\n   (gone)`;
  }
  for (const tid of tids) {
    const stat = read(`/proc/${pid}/task/${tid}/stat`);
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    // The kernel's side matters for a thread stuck in the kernel (D); gdb shows the others' waits.
    const stack = state === 'D' ? ` ${read(`/proc/${pid}/task/${tid}/stack`).trim().split('\n').join(' < ')}` : '';
    out.push(`   ${tid} ${read(`/proc/${pid}/task/${tid}/comm`).trim()} ${state} wchan=${read(`/proc/${pid}/task/${tid}/wchan`) || '-'}${stack}`);
  }
  try {
    out.push(execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'thread apply all bt'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch (err) {
    out.push(`   (no backtraces: ${(err as Error).message.split('\n')[0]})`);
  }
  return out.join('\n');
}

/**
 * Makes every call of `client` that gets no answer within `timeoutMs` fail, naming the call,
 * with `report()` (what the host's side was doing) in its message.
 */
export function failStuckCalls(client: ApiClient, report: () => string, timeoutMs = CALL_TIMEOUT_MS): ApiClient {
  const call = client.call.bind(client);
  client.call = ((method, params, opts) => {
    const answer = call(method, params, opts);
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const what = `${method} ${JSON.stringify(params).slice(0, 300)}`;
        reject(new Error(`the host did not answer ${what} within ${timeoutMs / 1000} s\n${report()}`));
      }, timeoutMs);
      timer.unref();
    });
    return Promise.race([answer, stuck]).finally(() => clearTimeout(timer));
  }) as ApiClient['call'];
  return client;
}
