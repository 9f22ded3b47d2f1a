// domusd: the host daemon's entry point (started in the background by the CLI and `npm start`).
import { HostLockedError, runHost, type RunningHost } from './daemon.js';
import { hostPaths } from '../common/paths.js';

async function main(): Promise<void> {
  const paths = hostPaths();
  let running: RunningHost;
  try {
    running = await runHost(paths, () => process.exit(0));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    // 3: another host serves this home (clients then use that one); 1: this host failed.
    process.exit(err instanceof HostLockedError ? 3 : 1);
  }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void running.stop());
  process.stdout.write(`DOMUSD_READY ${process.pid}\n`);
}

void main();
