// The host's spare v86 runner (protocol.ts SPARE): one runner process started ahead of need, so that
// the next start or restore skips Node's start, module loading and v86's wasm compile (~150 ms of the
// ~350 ms a restore took). A host that starts with v86 domains defined, the define of a v86 domain,
// or the first v86 start of a session makes one; each start that takes it makes the next one a moment later, once the new guest
// has had the CPU for its own start. A spare costs one
// idle process (~70 MiB RSS, 12 threads, no CPU to speak of); it ends with the host that started it.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { subdirectories } from '../../../common/fsutil.js';
import { isLocked, readPid } from '../../../common/locks.js';
import { killProcess, waitGone, type EngineProcess } from '../../../common/process.js';
import { SPARE } from '../../../runner/protocol.js';
import { log } from '../../log.js';

/** After a start takes the spare, the next one waits this long: the new guest's start comes first. */
const REFILL_DELAY_MS = 1000;
const HANDOVER_TIMEOUT_MS = 2000;

interface Spare {
  dir: string;
  proc: EngineProcess;
}

export class SpareRunner {
  private spare: Spare | undefined;
  private refill: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly runDir: string,
    /** Starts `runner --spare dir` with its output in logFile. */
    private readonly spawn: (dir: string, logFile: string) => EngineProcess,
  ) {}

  /**
   * Hands the spare, if one is ready, the state dir of a domain about to start (its runner.json
   * written): resolves to the spare's process, now that domain's runner, or undefined (then start a
   * runner as usual). Either way another spare is started shortly after.
   */
  async take(stateDir: string): Promise<EngineProcess | undefined> {
    const spare = this.spare;
    this.spare = undefined;
    this.scheduleRefill();
    if (!spare) return undefined;
    const socket = path.join(spare.dir, SPARE.socket);
    if (spare.proc.exited() || !fs.existsSync(socket)) {
      // Not ready yet (or gone): a cold start costs what waiting for it would.
      this.discard(spare);
      return undefined;
    }
    try {
      // Its output so far, and all that follows on the same descriptors, is the domain's runner.log.
      fs.renameSync(path.join(spare.dir, SPARE.log), path.join(stateDir, SPARE.log));
      await handOver(socket, stateDir);
      return spare.proc;
    } catch (err) {
      log('warn', `the spare runner (pid ${spare.proc.child.pid}) could not be taken: ${(err as Error).message}; starting a runner`);
      this.discard(spare);
      // It may have taken the dir just before it was killed: gone, it holds no lock there.
      if (spare.proc.child.pid) await waitGone(spare.proc.child.pid, HANDOVER_TIMEOUT_MS);
      return undefined;
    }
  }

  /** Starts a spare shortly, unless there is one. */
  warm(): void {
    if (!this.spare) this.scheduleRefill();
  }

  /** Ends the spare (the host is stopping); none is started after. */
  close(): void {
    this.closed = true;
    clearTimeout(this.refill);
    if (this.spare) this.discard(this.spare);
    this.spare = undefined;
  }

  /**
   * Removes what spares of an earlier host left (they end with the host that started them; one whose
   * host was killed a moment ago may still be waiting).
   */
  removeLeftovers(): void {
    for (const entry of subdirectories(this.runDir)) {
      if (!entry.name.startsWith(SPARE.dirPrefix)) continue;
      const dir = path.join(this.runDir, entry.name);
      const pidFile = path.join(dir, SPARE.pid);
      if (isLocked(pidFile)) {
        const pid = readPid(pidFile);
        if (pid) killProcess(pid);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  private scheduleRefill(): void {
    if (this.closed || this.refill) return;
    this.refill = setTimeout(() => {
      this.refill = undefined;
      if (this.closed || this.spare) return;
      const dir = path.join(this.runDir, `${SPARE.dirPrefix}${randomBytes(6).toString('hex')}`);
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
        this.spare = { dir, proc: this.spawn(dir, path.join(dir, SPARE.log)) };
      } catch (err) {
        log('warn', `cannot start a spare runner: ${(err as Error).message}`);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, REFILL_DELAY_MS);
    this.refill.unref();
  }

  private discard(spare: Spare): void {
    if (!spare.proc.exited() && spare.proc.child.pid) killProcess(spare.proc.child.pid);
    fs.rmSync(spare.dir, { recursive: true, force: true });
  }
}

/** Sends the state dir and waits for the spare's `ok`. */
function handOver(socketPath: string, stateDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let got = '';
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no answer within ${HANDOVER_TIMEOUT_MS} ms`), HANDOVER_TIMEOUT_MS);
    socket.setEncoding('utf8');
    socket.on('error', (err) => fail((err as NodeJS.ErrnoException).code ?? err.message));
    socket.on('data', (chunk: string) => (got += chunk));
    socket.on('end', () => {
      clearTimeout(timer);
      const answer = got.trim();
      if (answer === SPARE.ok) resolve();
      else fail(`it answered '${answer.slice(0, 200)}'`);
    });
    socket.write(`${JSON.stringify({ stateDir })}\n`);
  });
}
