// The host's side of virtual networks' switches: one detached switch process per network in use
// (run/networks/<name>/), started on demand when a guest's interface names the network, and found
// again by its control socket after a host restart (the switch, like a runner, outlives the host, so
// guests' traffic never stops with it). Networks are not yet started or stopped on their own
// (net-start/net-destroy come with network definitions): a switch runs until asked to stop.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeFileAtomic } from '../../common/fsutil.js';
import { APP_ROOT } from '../../common/paths.js';
import { exitText, logLines, spawnEngine, waitForEngine } from '../../common/process.js';
import { switchPaths, type Lease, type SwitchPaths, type SwitchRequest, type SwitchStatus } from '../../netswitch/protocol.js';
import { EngineFailure } from '../errors.js';
import { log } from '../log.js';
import { networkConfig } from './builtin.js';
import { NetworkXmlError } from './network-xml.js';

const START_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 5000;

export class NetworkError extends EngineFailure {
  override name = 'NetworkError';
}

type Request = SwitchRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class NetworkSwitches {
  private readonly starting = new Map<string, Promise<SwitchPaths>>();

  constructor(
    /** Where network definitions live (<home>/networks). */
    private readonly definitions: string,
    /** run/networks: one directory per running switch. */
    private readonly runDir: string,
  ) {}

  paths(name: string): SwitchPaths {
    return switchPaths(path.join(this.runDir, name));
  }

  /**
   * The switch of network `name`, started now when it is not running; resolves with its files
   * (guests connect to `ports`).
   */
  ensure(name: string): Promise<SwitchPaths> {
    let pending = this.starting.get(name);
    if (!pending) {
      pending = this.start(name).finally(() => this.starting.delete(name));
      this.starting.set(name, pending);
    }
    return pending;
  }

  private async start(name: string): Promise<SwitchPaths> {
    const files = this.paths(name);
    if (await answers(files.control)) return files;
    let config;
    try {
      config = networkConfig(this.definitions, name);
    } catch (err) {
      if (err instanceof NetworkXmlError) throw new NetworkError(err.message);
      throw err;
    }
    if (!config) throw new NetworkError(`network '${name}' is not defined (only 'default' exists until network definitions are supported)`);
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

  /** Sends one control request to a running switch. */
  async request<T>(name: string, req: Request): Promise<T> {
    const files = this.paths(name);
    if (!fs.existsSync(files.control)) throw new NetworkError(`network '${name}' is not running`);
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
