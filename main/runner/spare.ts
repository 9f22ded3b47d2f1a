// A spare runner (protocol.ts SPARE): what a runner would do in its first ~150 ms (start Node, load
// its modules, compile v86's wasm, start the state reader's thread) done before a domain needs it,
// as Chrome keeps a spare renderer process. It waits for the host to hand it a domain's state dir.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { claimPidLock } from '../common/locks.js';
import { ConfigError } from './config.js';
import { compileV86 } from './emulator.js';
import { warmPayloadReader } from './payload-reader.js';
import { RUNNER_FILES, SPARE } from './protocol.js';

/** How often the spare checks that the process that started it is still there. */
const PARENT_POLL_MS = 500;
const MAX_HANDOVER_BYTES = 4096;

/**
 * Waits in `dir` for a state dir from the host; resolves with it once answered `ok`, with `dir`
 * removed and the working directory moved to it. Exits the process when the host (`hostPid`, its
 * parent) goes first.
 */
export async function waitAsSpare(dir: string, hostPid: number, log: (m: string) => void): Promise<string> {
  // The host's pid comes from the host: one that died while this process started is already gone.
  const orphaned = () => process.ppid !== hostPid;
  if (orphaned()) process.exit(0);
  const watch = setInterval(() => orphaned() && process.exit(0), PARENT_POLL_MS);
  const claim = claimPidLock(path.join(dir, SPARE.pid));
  if ('heldBy' in claim) throw new ConfigError(`another spare runner (pid ${claim.heldBy || 'unknown'}) is using ${dir}`);
  await compileV86();
  warmPayloadReader();
  const socketPath = path.join(dir, SPARE.socket);
  const server = net.createServer();
  const stateDir = await new Promise<string>((resolve, reject) => {
    server.on('connection', (socket) => {
      socket.on('error', () => undefined);
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        got += chunk;
        if (!got.includes('\n')) {
          if (got.length > MAX_HANDOVER_BYTES) socket.destroy();
          return;
        }
        const taken = stateDirOf(got.slice(0, got.indexOf('\n')));
        if (typeof taken !== 'string') {
          socket.end(`${taken.error}\n`);
          return;
        }
        clearInterval(watch);
        server.close();
        claim.release();
        fs.rmSync(dir, { recursive: true, force: true });
        process.chdir(taken);
        log(`spare runner taken for ${taken}`);
        socket.end(`${SPARE.ok}\n`);
        resolve(taken);
      });
    });
    server.once('error', (err) => reject(new ConfigError(`spare runner: cannot listen on '${socketPath}': ${err.message}`)));
    server.listen(socketPath, () => {
      fs.chmodSync(socketPath, 0o600);
      log(`spare runner pid ${process.pid} ready in ${dir}`);
    });
  });
  return stateDir;
}

/** The state dir of a handover line, or why it is not one. */
function stateDirOf(line: string): string | { error: string } {
  let stateDir: unknown;
  try {
    stateDir = (JSON.parse(line) as { stateDir?: unknown }).stateDir;
  } catch {
    return { error: 'error: not a JSON line' };
  }
  if (typeof stateDir !== 'string' || !path.isAbsolute(stateDir)) return { error: 'error: stateDir must be an absolute path' };
  if (!fs.existsSync(path.join(stateDir, RUNNER_FILES.config))) return { error: `error: ${stateDir} has no ${RUNNER_FILES.config}` };
  return stateDir;
}
