// A stand-in for a v86 runner whose host re-attach is slow: it holds the runner lock and serves
// control.sock like a runner, but answers `hello` only after HELLO_DELAY_MS, so that a test can
// act while a host is still re-attaching. It appends a line to <helloLog> per hello and exits on
// `destroy`. Usage: node --import tsx main/testing/slow-runner.ts <stateDir> <delayMs> <helloLog>
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { claimPidLock } from '../common/locks.js';
import { JsonlConnection } from '../common/jsonl.js';
import { runnerPaths } from '../runner/protocol.js';

const stateDir = path.resolve(process.argv[2]!);
const delayMs = Number(process.argv[3]);
const helloLog = process.argv[4]!;
const paths = runnerPaths(stateDir);
const claim = claimPidLock(paths.pid);
if ('heldBy' in claim) {
  process.stderr.write(`runner lock held by ${claim.heldBy}\n`);
  process.exit(2);
}
const startedAt = Date.now();
const server = net.createServer((sock) => {
  const conn = new JsonlConnection(sock);
  conn.on('message', (msg) => {
    const { id, op } = msg as { id: number; op: string };
    if (op === 'hello') {
      fs.appendFileSync(helloLog, `${Date.now()}\n`);
      setTimeout(() => conn.send({ id, ok: true, result: { pid: process.pid, name: 'slow', uuid: path.basename(stateDir), state: 'running', startedAt, serialBacklog: '', restored: false } }), delayMs);
    } else if (op === 'destroy') {
      conn.send({ id, ok: true, result: null });
      fs.rmSync(paths.control, { force: true });
      // Exits once the reply has been handed to the kernel.
      conn.socket.end(() => process.exit(0));
    } else {
      conn.send({ id, ok: false, error: `not supported by the stand-in: ${op}` });
    }
  });
});
server.listen(paths.control, () => process.stdout.write('SLOW_RUNNER_READY\n'));
