// How a local client reaches the host: the per-user daemon's unix socket, starting the daemon in
// the background first when none runs (as virsh starts libvirt's session daemon).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ApiClient, type MessageTransport } from '../../shared/client.js';
import { openPrivateLog } from '../common/fsutil.js';
import { JsonlConnection } from '../common/jsonl.js';
import { isLocked } from '../common/locks.js';
import { APP_ROOT, hostAnswers, hostPaths, type HostPaths } from '../common/paths.js';

const DAEMON_START_TIMEOUT_MS = 20_000;

export async function ensureDaemon(paths: HostPaths = hostPaths()): Promise<void> {
  if (await hostAnswers(paths.socket)) return;
  fs.mkdirSync(paths.run, { recursive: true, mode: 0o700 });
  let exitCode: number | null | undefined;
  const startDaemon = (): void => {
    exitCode = undefined;
    const out = openPrivateLog(paths.log);
    const child = spawn(process.execPath, [path.join(APP_ROOT, 'dist', 'host', 'domusd.mjs')], {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, DOMUS_HOME: paths.home },
    });
    fs.closeSync(out);
    child.on('exit', (code) => (exitCode = code));
    child.unref();
  };
  startDaemon();
  const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await hostAnswers(paths.socket)) return;
    // Exit code 3: another host holds this home (another client started one at the same moment,
    // or it is still re-attaching to its guests); its socket answers once it is ready. A host that
    // was stopping lets go of the lock without answering again: then start one after all.
    if (exitCode === 3 && !isLocked(paths.lock)) startDaemon();
    else if (exitCode !== undefined && exitCode !== 3) {
      throw new Error(`the Domus host daemon exited with code ${exitCode} (see ${paths.log})`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the Domus host daemon did not start within ${DAEMON_START_TIMEOUT_MS / 1000} s (see ${paths.log})`);
}

export function unixTransport(sock: net.Socket): MessageTransport {
  const conn = new JsonlConnection(sock);
  return {
    send: (text) => {
      if (conn.isOpen) sock.write(text + '\n');
    },
    onMessage: (handler) => conn.on('message', (msg) => handler(JSON.stringify(msg))),
    onClose: (handler) => conn.on('close', (err) => handler(err ? err.message : 'socket closed')),
    close: () => conn.destroy(),
  };
}

/** A client of the host; `connection`: the libvirt connection (URI) its calls are for. */
export async function connectHost(paths: HostPaths = hostPaths(), autostart = true, connection?: string): Promise<ApiClient> {
  if (autostart) await ensureDaemon(paths);
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(paths.socket);
    s.once('connect', () => resolve(s));
    s.once('error', (err) => reject(new Error(`cannot connect to the Domus host at ${paths.socket}: ${err.message}`)));
  });
  return new ApiClient(unixTransport(sock), connection);
}
