// Switch entry: `node dist/netswitch/main.mjs <dir>`, one process per running virtual network,
// detached from the host like a runner, so that a host restart never cuts guests' traffic. Guests'
// NICs connect to ports.sock (QEMU `-netdev stream` framing); the host talks JSON lines on
// control.sock. See protocol.ts for the files.
import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import { readFrames, encodeFrame } from '../common/frame-stream.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { JsonlConnection } from '../common/jsonl.js';
import { claimPidLock } from '../common/locks.js';
import { Gateway, type Resolver } from './gateway.js';
import { ipNumber } from './packets.js';
import { switchConfigSchema, switchPaths, switchRequestSchema, type Lease, type SwitchConfig, type SwitchResponse, type SwitchStatus } from './protocol.js';
import { MAC_AGEING_MS, Switch } from './switch.js';

/** Frames queued for a guest beyond this are dropped, as a switch's full egress queue would. */
const PORT_QUEUE_BYTES = 4 * 1024 * 1024;

process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

function log(level: 'info' | 'warn' | 'error', message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${level}: ${message}\n`);
}

function fail(message: string): never {
  log('error', message);
  process.exit(2);
}

function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // already gone
  }
}

function readConfig(file: string): SwitchConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`cannot read ${file}: ${(err as Error).message}`);
  }
  const parsed = switchConfigSchema.safeParse(raw);
  if (!parsed.success) fail(`bad ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

function readLeases(file: string): Lease[] {
  try {
    const value: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(value) ? (value as Lease[]) : [];
  } catch {
    return [];
  }
}

/** The host's own resolver (getaddrinfo: hosts file, the system's DNS configuration, on every OS). */
const hostResolver: Resolver = async (name) => {
  try {
    const found = await dns.promises.lookup(name, { family: 4, all: true });
    return [...new Set(found.map((a) => ipNumber(a.address)))];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
    throw err;
  }
};

function listen(server: net.Server, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => {
      server.off('error', reject);
      fs.chmodSync(file, 0o600);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) fail('usage: netswitch <dir>');
  const files = switchPaths(dir);
  const lock = claimPidLock(files.pid);
  if (!('release' in lock)) fail(`the switch of this network already runs (pid ${lock.heldBy || 'unknown'})`);
  const config = readConfig(files.config);
  const startedAt = Date.now();

  const saveLeases = (leases: Lease[]): void => {
    try {
      writeFileAtomic(files.leases, `${JSON.stringify(leases, null, 2)}\n`);
    } catch (err) {
      log('warn', `cannot save the leases: ${(err as Error).message}`);
    }
  };
  const gateway = new Gateway(config, { onLeases: saveLeases, resolve: hostResolver, log });
  gateway.dhcp?.restore(readLeases(files.leases));
  const sw = new Switch(gateway);
  setInterval(() => sw.age(), MAC_AGEING_MS / 10).unref();

  const ports = net.createServer((socket) => {
    socket.setNoDelay(true);
    const port = sw.addPort({
      send: (frame) => {
        if (socket.destroyed || socket.writableLength > PORT_QUEUE_BYTES) return false;
        socket.write(encodeFrame(frame));
        return true;
      },
    });
    log('info', `port ${port.id} connected`);
    readFrames(
      socket,
      (frame) => sw.input(port, frame),
      (reason) => log('warn', `port ${port.id}${port.mac ? ` (${port.mac})` : ''} disconnected: ${reason}`),
    );
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sw.removePort(port);
      log('info', `port ${port.id}${port.mac ? ` (${port.mac})` : ''} closed`);
    });
  });

  const stop = (why: string): void => {
    log('info', `stopping: ${why}`);
    ports.close();
    control.close();
    gateway.nat?.close();
    removeQuietly(files.ports);
    removeQuietly(files.control);
    removeQuietly(files.pid);
    lock.release();
    process.exit(0);
  };

  const status = (): SwitchStatus => ({
    name: config.name,
    pid: process.pid,
    mac: config.mac,
    address: config.address,
    startedAt,
    ports: sw.portList(),
    linkDown: sw.linkDownMacs(),
    macTable: sw.macTable(),
    ...(gateway.nat && { nat: gateway.nat.status() }),
  });

  const control = net.createServer((socket) => {
    const conn = new JsonlConnection<SwitchResponse>(socket, { maxLineBytes: 64 * 1024 });
    conn.on('message', (value) => {
      const id = typeof (value as { id?: unknown })?.id === 'number' ? (value as { id: number }).id : 0;
      const parsed = switchRequestSchema.safeParse(value);
      if (!parsed.success) {
        conn.send({ id, ok: false, error: `bad request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')}` });
        return;
      }
      const req = parsed.data;
      switch (req.op) {
        case 'status':
          conn.send({ id, ok: true, result: status() });
          break;
        case 'leases':
          conn.send({ id, ok: true, result: gateway.dhcp?.list() ?? [] });
          break;
        case 'link': {
          if (req.mac === undefined && req.port === undefined) {
            conn.send({ id, ok: false, error: 'link needs a mac or a port' });
            break;
          }
          const hit = sw.setLink({ mac: req.mac, port: req.port }, req.state === 'up');
          if (req.mac === undefined && hit.length === 0) {
            conn.send({ id, ok: false, error: `no port ${req.port}` });
            break;
          }
          log('info', `link ${req.state}: ${req.mac ?? `port ${req.port}`} (${hit.length} port(s) now)`);
          conn.send({ id, ok: true, result: { ports: hit.map((p) => p.id) } });
          break;
        }
        case 'stop':
          conn.send({ id, ok: true, result: {} });
          void conn.end().then(() => stop('asked to'));
          break;
      }
    });
  });

  // We hold the lock: sockets left by a switch that died are stale.
  removeQuietly(files.ports);
  removeQuietly(files.control);
  try {
    await listen(ports, files.ports);
    await listen(control, files.control);
  } catch (err) {
    fail(`cannot listen: ${(err as Error).message}`);
  }
  // Taken ports are in the status for the host to show; the network runs without them.
  await gateway.nat?.listen(config.portForwards);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log('info', `network '${config.name}' up: gateway ${config.address}/${config.prefix} (${config.mac})${config.dhcp ? `, DHCP ${config.dhcp.start}-${config.dhcp.end}` : ''}, ${config.forward === 'nat' ? 'NAT to the host' : 'isolated'}`);
}

main().catch((err: unknown) => fail((err as Error).stack ?? String(err)));
