// The v86 runner without a host, for the runner's tests: the sample guest's files, runner
// configurations, a runner spawned on a temp state dir, and a control-socket client.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JsonlConnection } from '../common/jsonl.js';
import { APP_ROOT } from '../common/paths.js';
import { RUNNER_ENV, RUNNER_NODE_FLAGS, runnerPaths, type RunnerConfig, type RunnerEvent, type RunnerMessage, type RunnerPaths, type RunnerReply } from '../runner/protocol.js';
import { connectUnix } from './connect-unix.js';
import { assertGuestModulesLoaded } from './guest-output.js';
import { SAMPLE_CMDLINE, guest } from './harness.js';

export const READY = 'DOMUS-GUEST-READY';

/** A file of the sample guests (build/guests, or DOMUS_GUEST_DIR), or why it is missing. */
export function guestFile(name: string): string | { missing: string } {
  const file = guest(name);
  return fs.existsSync(file) ? file : { missing: `sample guest not built: ${file} is missing (run npm run guests)` };
}

/** The PV sample guest (vmlinuz + initrd.gz), or why it is missing. */
export function findGuest(): { kernel: string; initrd: string } | { missing: string } {
  const kernel = guestFile('vmlinuz');
  const initrd = guestFile('initrd.gz');
  if (typeof kernel !== 'string') return kernel;
  if (typeof initrd !== 'string') return initrd;
  return { kernel, initrd };
}

/** 128 MiB, Debian's SeaBIOS and VGA BIOS, a balloon; no boot device. */
export function baseConfig(extra: Partial<RunnerConfig> = {}): RunnerConfig {
  return {
    name: 'test-guest',
    uuid: '6b1f7c1e-0000-4000-8000-000000000001',
    memoryBytes: 128 * 1024 * 1024,
    vgaMemoryBytes: 8 * 1024 * 1024,
    bios: '/usr/share/seabios/bios.bin',
    vgaBios: '/usr/share/seabios/vgabios-stdvga.bin',
    balloon: true,
    ...extra,
  };
}

/** Direct kernel boot of the sample guest. */
export function pvConfig(guest: { kernel: string; initrd: string }, extra: Partial<RunnerConfig> = {}): RunnerConfig {
  return baseConfig({ kernel: guest.kernel, initrd: guest.initrd, cmdline: SAMPLE_CMDLINE, ...extra });
}

export interface SpawnedRunner {
  dir: string;
  paths: RunnerPaths;
  child: ChildProcess;
  exited: Promise<number | null>;
  log(): string;
  kill(): Promise<void>;
}

/** The runner's entry point, run from the sources. */
export const RUNNER_MAIN = path.join(APP_ROOT, 'main/runner/main.ts');

/** Writes runner.json (raw text or a config) into a fresh temp dir and starts a runner on it. */
export function spawnRunner(config: RunnerConfig | string): SpawnedRunner {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-runner-'));
  const paths = runnerPaths(dir);
  fs.writeFileSync(paths.config, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  const logFd = fs.openSync(paths.log, 'a');
  const child = spawn(process.execPath, [...RUNNER_NODE_FLAGS, '--import', 'tsx', RUNNER_MAIN, dir], {
    cwd: APP_ROOT,
    env: { ...process.env, ...RUNNER_ENV },
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    dir,
    paths,
    child,
    exited,
    log: () => fs.readFileSync(paths.log, 'utf8'),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A control-socket client that keeps the serial text it receives. */
export class ControlClient extends EventEmitter<{ event: [RunnerEvent] }> {
  serial = '';
  readonly events: RunnerEvent[] = [];
  private nextId = 1;
  private pending = new Map<number, (reply: RunnerReply) => void>();
  readonly nullReplies: RunnerReply[] = [];

  private constructor(readonly conn: JsonlConnection) {
    super();
    conn.on('message', (value) => {
      const m = value as RunnerMessage;
      if ('event' in m) {
        if (m.event === 'serial') this.serial += Buffer.from(m.data, 'base64').toString('latin1');
        this.events.push(m);
        this.emit('event', m);
      } else if (m.id === null) {
        this.nullReplies.push(m);
      } else {
        this.pending.get(m.id)?.(m);
        this.pending.delete(m.id);
      }
    });
  }

  static async connect(file: string, timeoutMs = 20_000): Promise<ControlClient> {
    return new ControlClient(new JsonlConnection(await connectUnix(file, timeoutMs)));
  }

  request(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<RunnerReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${op} in ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.conn.socket.write(JSON.stringify({ id, op, ...args }) + '\n');
    });
  }

  /** Sends an op and returns its result, failing on an error reply. */
  async call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
    const r = await this.request(op, args, timeoutMs);
    if (!r.ok) throw new Error(`${op} failed: ${r.error}`);
    return r.result as T;
  }

  /** Resolves once the serial text after `from` matches; rejects with the tail of the output. */
  waitSerial(re: RegExp, timeoutMs = 60_000, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        try {
          assertGuestModulesLoaded(this.serial);
        } catch (err) {
          done();
          reject(err as Error);
          return;
        }
        const m = re.exec(this.serial.slice(from));
        if (!m) return;
        done();
        resolve(m);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} on serial; last output:\n${this.serial.slice(-800)}`));
      }, timeoutMs);
      const onEvent = (e: RunnerEvent): void => {
        if (e.event === 'serial') check();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
      };
      this.on('event', onEvent);
      check();
    });
  }

  async waitEvent<E extends RunnerEvent['event']>(name: E, timeoutMs = 10_000): Promise<Extract<RunnerEvent, { event: E }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${name}' event in ${timeoutMs} ms`)), timeoutMs);
      const on = (e: RunnerEvent) => {
        if (e.event !== name) return;
        clearTimeout(timer);
        this.off('event', on);
        resolve(e as Extract<RunnerEvent, { event: E }>);
      };
      this.on('event', on);
    });
  }

  /** Runs a shell command on the guest's ttyS0 shell and waits for a marker it prints. */
  async sh(command: string, timeoutMs = 30_000): Promise<string> {
    const tag = `M${Math.random().toString(36).slice(2, 8)}`;
    const from = this.serial.length;
    // The marker is assembled by the shell so that the echoed command line never matches it.
    await this.call('serialWrite', { data: Buffer.from(`${command}; echo ${tag}""END\n`).toString('base64') });
    const m = await this.waitSerial(new RegExp(`([\\s\\S]*)\\r?\\n${tag}END`), timeoutMs, from);
    return m[1];
  }

  close(): void {
    this.conn.destroy();
  }
}

