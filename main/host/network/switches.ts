// The host's side of virtual networks' switches: one detached switch process per active network
// (run/networks/<name>/), started by net-start (networks.ts) with the network's SwitchConfig, found
// again by its control socket after a host restart (the switch, like a runner, outlives the host, so
// guests' traffic never stops with it), and stopped by net-destroy.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeFileAtomic } from '../../common/fsutil.js';
import { APP_ROOT } from '../../common/paths.js';
import { exitText, logLines, spawnEngine, waitForEngine, waitGone } from '../../common/process.js';
import { switchPaths, type Lease, type SwitchConfig, type SwitchPaths, type SwitchRequest, type SwitchStatus } from '../../netswitch/protocol.js';
import { EngineFailure } from '../errors.js';
import { log } from '../log.js';

const START_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 10_000;

export class NetworkError extends EngineFailure {
  override name = 'NetworkError';
}

type Request = SwitchRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class NetworkSwitches {
  private readonly starting = new Map<string, Promise<SwitchPaths>>();

  constructor(
    /** run/networks: one directory per running switch. */
    private readonly runDir: string,
  ) {}

  paths(name: string): SwitchPaths {
    return switchPaths(path.join(this.runDir, name));
  }

  /** Whether the network's switch runs (answers on its control socket). */
  running(name: string): Promise<boolean> {
    return answers(this.paths(name).control);
  }

  /** The running switch of network `name` (guests connect to `ports`); an error when it does not run. */
  async require(name: string): Promise<SwitchPaths> {
    if (!(await this.running(name))) throw new NetworkError(`network '${name}' is not active`);
    return this.paths(name);
  }

  /** Starts the switch of network `name` serving `config`, unless it runs already; resolves with its files. */
  start(name: string, config: SwitchConfig): Promise<SwitchPaths> {
    let pending = this.starting.get(name);
    if (!pending) {
      pending = this.spawn(name, config).finally(() => this.starting.delete(name));
      this.starting.set(name, pending);
    }
    return pending;
  }

  private async spawn(name: string, config: SwitchConfig): Promise<SwitchPaths> {
    const files = this.paths(name);
    if (await answers(files.control)) return files;
    const dir = path.dirname(files.config);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(files.config, `${JSON.stringify(config, null, 2)}\n`);
    const proc = spawnEngine(process.execPath, [path.join(APP_ROOT, 'dist', 'netswitch', 'main.mjs'), dir], {
      logFile: files.log,
      cwd: dir,
      env: process.versions.electron ? { ...process.env, ELECTRON_RUN_AS_NODE: '1' } : process.env,
    });
    await waitForEngine(proc, async () => ((await answers(files.control)) ? true : undefined), {
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 25,
      onExit: (exit) => new NetworkError(`the switch of network '${name}' ${exitText(exit)}: ${logLines(files.log).pop() ?? `see ${files.log}`}`),
      onTimeout: () => new NetworkError(`the switch of network '${name}' did not come up within ${START_TIMEOUT_MS / 1000} s (see ${files.log})`),
    });
    log('info', `network '${name}': switch started (pid ${proc.child.pid})`);
    return files;
  }

  /** Stops the network's switch and waits for it to exit; its guests' NICs lose their link. */
  async stop(name: string): Promise<void> {
    const { pid } = await this.status(name);
    await this.request(name, { op: 'stop' });
    if (!(await waitGone(pid, STOP_TIMEOUT_MS))) throw new NetworkError(`the switch of network '${name}' (pid ${pid}) did not exit within ${STOP_TIMEOUT_MS / 1000} s`);
    log('info', `network '${name}': switch stopped`);
  }

  /** Sends one control request to a running switch. */
  async request<T>(name: string, req: Request): Promise<T> {
    const files = this.paths(name);
    if (!fs.existsSync(files.control)) throw new NetworkError(`network '${name}' is not active`);
    return controlRequest<T>(files.control, req);
  }

  status(name: string): Promise<SwitchStatus> {
    return this.request<SwitchStatus>(name, { op: 'status' });
  }

  leases(name: string): Promise<Lease[]> {
    return this.request<Lease[]>(name, { op: 'leases' });
  }

  /** Sets the link of the guest NIC with this MAC up or down (it holds across the NIC reconnecting). */
  setLink(name: string, mac: string, state: 'up' | 'down'): Promise<unknown> {
    return this.request(name, { op: 'link', mac, state });
  }
}

function answers(socketPath: string): Promise<boolean> {
  return controlRequest(socketPath, { op: 'status' }).then(
    () => true,
    () => false,
  );
}

function controlRequest<T>(socketPath: string, req: Request): Promise<T> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new NetworkError(`the switch at ${socketPath} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    sock.on('connect', () => sock.write(`${JSON.stringify({ id: 1, ...req })}\n`));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.destroy();
      const res = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: T; error?: string };
      if (res.ok) resolve(res.result as T);
      else reject(new NetworkError(res.error ?? 'the switch refused the request'));
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(new NetworkError(`cannot reach the switch at ${socketPath}: ${err.message}`));
    });
  });
}
