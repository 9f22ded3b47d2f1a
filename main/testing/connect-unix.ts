// Connecting to a unix socket that a process just started may not have created yet.
import net from 'node:net';
import { sleep } from './harness.js';

/** Connects to `file`, retrying until it accepts; throws the last error after `timeoutMs`. */
export async function connectUnix(file: string, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(file);
        s.once('connect', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`cannot connect to ${file} within ${timeoutMs} ms: ${(err as Error).message}`);
      await sleep(100);
    }
  }
}

/** One JSON-lines request on a control socket (a runner's, a switch's) and its parsed reply line. */
export async function controlRequest<T>(file: string, req: Record<string, unknown>): Promise<T> {
  const sock = net.connect(file);
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(buf.slice(0, nl));
      });
      sock.on('error', reject);
      sock.write(`${JSON.stringify(req)}\n`);
    });
    return JSON.parse(line) as T;
  } finally {
    sock.destroy();
  }
}
