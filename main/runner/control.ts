// control.sock: the host's handle on the runner (see protocol.ts). A connection is "attached" once
// it has said hello; attached connections get every event. Each hello hands over the guest's last
// 1 MiB of serial output, as QEMU's console log does for a host that re-attaches: a host that replaces
// one that was killed also gets what was on its way to the dead one. Also runs the one job a runner
// can have at a time, a save or a core dump, and watches the serial console for a kernel panic.
import type { Socket } from 'node:net';
import type { z } from 'zod';
import { JsonlConnection } from '../common/jsonl.js';
import { readProcStat } from '../common/proc-stat.js';
import type { FileDisk } from './disk.js';
import { openDisk } from './config.js';
import type { Emulator } from './emulator.js';
import type { Framebuffer, ScreenGeometry } from './framebuffer.js';
import { textToScancodes } from '../common/keymap.js';
import { encodePng } from '../common/png.js';
import {
  isRunnerOp,
  runnerOpArgs,
  type DiskCounters,
  type RunnerConfig,
  type RunnerEvent,
  type RunnerMessage,
  type RunnerOp,
  type RunnerOps,
  type RunState,
  type DumpResult,
  type MigrateArgs,
  type MigrateResult,
  type SaveHeaderArgs,
  type SaveResult,
  type SnapshotStores,
  type StatsResult,
} from './protocol.js';
import { ByteRing, Coalescer, PanicWatch } from './serial.js';
import { writeCoreFile } from './coredump.js';
import { migrateOut } from './migration.js';
import { nonZeroPages } from './guest-pages.js';
import { encodePayload } from './state-payload.js';
import { Phases } from './phases.js';
import { STATE_ENGINE, STATE_ENGINE_VERSION, writeStateFile, type StateMachine } from '../common/statefile.js';

const SERIAL_HISTORY_BYTES = 1024 * 1024;
const SERIAL_FLUSH_MS = 10;
/** How often attached clients are told of a changed screen size. */
const SCREEN_CHECK_MS = 1000;

type Conn = JsonlConnection<RunnerMessage>;

interface Job {
  readonly kind: 'save' | 'dump' | 'migration';
  readonly abort: AbortController;
  /** Settles once the job has finished, failed or been undone. */
  readonly done: Promise<unknown>;
}

type OpHandler<K extends RunnerOp> = (conn: Conn, args: z.infer<(typeof runnerOpArgs)[K]>) => Promise<RunnerOps[K]['result']>;

export interface ControlServerOptions {
  config: RunnerConfig;
  emulator: Emulator;
  framebuffer: Framebuffer;
  /** The hardware, as recorded in state files. */
  machine: StateMachine;
  startedAt: number;
  log: (message: string) => void;
  /** Called after the reply to `destroy` is queued. */
  onDestroy: () => void;
  /** The TCP VNC listener, once bound. */
  vncTcp?: () => { address: string; port: number } | undefined;
  /** An incoming migration's endpoint, while it waits for the stream. */
  incoming?: () => string | undefined;
  /** The disk images, for their I/O counters. */
  disks: { name: DiskCounters['name']; disk: FileDisk }[];
}

/** Gives each writable disk its snapshot stores; a disk not named keeps none. */
export function applySnapshotStores(disks: ControlServerOptions['disks'], stores: SnapshotStores): void {
  for (const { name, disk } of disks) if (name !== 'cdrom') disk.setStores(stores[name] ?? []);
}

/** CPU time of the main thread (its tid is the pid), where v86 runs the guest. */
function mainThreadCpuMs(): number | undefined {
  return readProcStat(`/proc/self/task/${process.pid}/stat`)?.cpuTimeMs;
}

function processStats(startedAt: number, requests: number, disks: ControlServerOptions['disks'], emulator: Emulator): StatsResult {
  const cpu = process.cpuUsage();
  const wasm = emulator.wasmMemory();
  const { heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return {
    cpuTimeMs: Math.round((cpu.user + cpu.system) / 1000),
    vcpuTimeMs: mainThreadCpuMs(),
    rssBytes: process.memoryUsage.rss(),
    wallMs: Date.now() - startedAt,
    requests,
    disks: disks.map(({ name, disk }) => ({ name, path: disk.path, ...disk.counters })),
    ...(wasm && { memory: { ...wasm, heapTotal, heapUsed, external, arrayBuffers } }),
  };
}

export class ControlServer {
  private readonly opts: ControlServerOptions;
  private readonly connections = new Set<Conn>();
  private readonly attached = new Set<Conn>();
  private readonly history = new ByteRing(SERIAL_HISTORY_BYTES);
  private readonly serialOut: Coalescer;
  private screenTimer: NodeJS.Timeout | undefined;
  /** Statistics are pulled by the host while someone watches; counted so that this can be checked. */
  private statsRequests = 0;
  private screen: ScreenGeometry | undefined;
  private job: Job | undefined;
  private readonly panic = new PanicWatch();
  private readonly ops: { [K in RunnerOp]: OpHandler<K> };

  constructor(opts: ControlServerOptions) {
    this.opts = opts;
    this.serialOut = new Coalescer(SERIAL_FLUSH_MS, (data) =>
      this.broadcast({ event: 'serial', data: data.toString('base64') }),
    );
    opts.emulator.onSerialByte((byte) => {
      this.history.pushByte(byte);
      if (this.attached.size > 0) this.serialOut.pushByte(byte);
      const panicked = this.panic.push(byte);
      if (panicked !== undefined) setImmediate(() => void this.guestPanicked(panicked));
    });
    // v86 announces mode changes before all registers are written; look once the guest moves on.
    opts.emulator.onScreenSetSize(() => setImmediate(() => this.checkScreenSize()));
    opts.emulator.on('reboot', () => this.broadcast({ event: 'guest-reboot' }));
    opts.emulator.balloon.on('change', (balloon) => this.broadcast({ event: 'balloon', balloon }));
    const { emulator, framebuffer, config, startedAt } = opts;
    this.ops = {
      hello: async (conn) => {
        // Bytes already queued belong to the clients attached before this one; this one has them in
        // the history, and gets live output from here on.
        this.serialOut.flush();
        const serialBacklog = this.history.contents().toString('base64');
        this.attach(conn);
        const { state, restored } = emulator;
        const vncTcp = opts.vncTcp?.();
        const incoming = opts.incoming?.();
        return { pid: process.pid, name: config.name, uuid: config.uuid, state, startedAt, serialBacklog, restored, ...(vncTcp && { vncTcp }), ...(incoming && { incoming }) };
      },
      pause: async () => ({ state: await this.setRunState('paused') }),
      resume: async () => ({ state: await this.setRunState('running') }),
      destroy: async () => {
        setImmediate(opts.onDestroy);
        return undefined;
      },
      serialWrite: async (_conn, { data }) => {
        await emulator.serialWrite(Buffer.from(data, 'base64'));
        return undefined;
      },
      sendScancodes: async (_conn, { codes }) => {
        await emulator.sendScancodes(codes);
        return undefined;
      },
      sendText: async (_conn, { text }) => {
        await emulator.sendScancodes(textToScancodes(text));
        return undefined;
      },
      screenshot: async () => {
        await emulator.loaded;
        framebuffer.refresh();
        const { width, height, rgba } = framebuffer;
        return { png: encodePng(width, height, rgba).toString('base64'), width, height };
      },
      stats: async () => processStats(startedAt, ++this.statsRequests, opts.disks, emulator),
      balloonSet: async (_conn, { targetKiB }) => {
        await emulator.loaded;
        return emulator.balloon.setTarget(targetKiB);
      },
      balloonInfo: async (_conn, { guestStats }) => {
        await emulator.loaded;
        return guestStats ? emulator.balloon.reportWithGuestStats() : emulator.balloon.report();
      },
      shutdown: async (_conn, { channels }) => emulator.requestShutdown(channels),
      reboot: async () => ({ method: await emulator.requestReboot() }),
      reset: async () => {
        await emulator.reset();
        this.broadcast({ event: 'reset' });
        return undefined;
      },
      save: async (_conn, { file, header }) => this.runJob('save', (signal) => this.runSave(file, header, signal)),
      dump: async (_conn, { file }) => this.runJob('dump', (signal) => this.runDump(file, signal)),
      changeMedia: async (_conn, { source }) => {
        const disk = source === undefined ? undefined : openDisk('CD-ROM image', source, false);
        const previous = await emulator.changeMedia(disk).catch((err: unknown) => {
          disk?.close();
          throw err;
        });
        previous?.close();
        // A later save records the machine as it is now.
        if (disk) this.opts.machine.disks.cdrom = disk.byteLength;
        else delete this.opts.machine.disks.cdrom;
        return undefined;
      },
      setSnapshotStores: async (_conn, { stores }) => {
        applySnapshotStores(this.opts.disks, stores);
        return undefined;
      },
      migrate: async (_conn, args) => this.runJob('migration', (signal) => this.runMigration(args, signal)),
      abortJob: async () => {
        const job = this.job;
        if (!job) throw new Error('no job is running');
        job.abort.abort();
        const completed = await job.done.then(
          () => true,
          () => false,
        );
        if (completed) throw new Error(`the ${job.kind} had already completed`);
        return undefined;
      },
    };
  }

  /** Pauses or resumes the guest; a `state` event goes out only on a change. */
  private async setRunState(state: RunState): Promise<RunState> {
    const { emulator } = this.opts;
    if (emulator.state !== state) {
      await (state === 'paused' ? emulator.pause() : emulator.resume());
      this.broadcast({ event: 'state', state });
    }
    return emulator.state;
  }

  /** Runs the runner's one job; registered before the first await, so that an abortJob right behind it finds it. */
  private async runJob<T>(kind: Job['kind'], run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.job) throw new Error(`a ${this.job.kind} is already running`);
    const abort = new AbortController();
    const done = run(abort.signal);
    this.job = { kind, abort, done };
    try {
      return await done;
    } finally {
      this.job = undefined;
    }
  }

  /** A core dump (coredump.ts) of the guest as it is: a running guest runs on meanwhile. */
  private async runDump(file: string, signal: AbortSignal): Promise<DumpResult> {
    const started = Date.now();
    const source = await this.opts.emulator.coreSource();
    const bytes = await writeCoreFile(file, source, {
      signal,
      onProgress: (processedBytes, totalBytes) => this.broadcast({ event: 'job-progress', processedBytes, totalBytes }),
    });
    return { bytes, ms: Date.now() - started };
  }

  /** Live migration, source side (migration.ts); pauses and resumes go out as `state` events. */
  private async runMigration(args: MigrateArgs, signal: AbortSignal): Promise<MigrateResult> {
    const { emulator } = this.opts;
    await emulator.loaded;
    const result = await migrateOut(
      {
        memory: () => emulator.memory(),
        state: () => emulator.state,
        pause: async () => void (await this.setRunState('paused')),
        resume: async () => void (await this.setRunState('running')),
        deviceState: () => emulator.deviceState(),
        agentConnected: () => emulator.agentConnected,
      },
      args,
      signal,
      (progress) => this.broadcast({ event: 'migration-progress', ...progress }),
    );
    this.opts.log(
      `migrated out: downtime ${result.downtimeMs} ms, total ${result.totalMs} ms, ${result.iterations} rounds, ` +
        `${result.transferredBytes} bytes sent for ${result.nonZeroRamBytes} bytes of non-zero RAM, ${result.finalPages} pages and ${result.deviceStateBytes} bytes of device state while paused`,
    );
    return result;
  }

  /** A panicking guest is paused where it stopped (QEMU's panic=pause) and the host told why. */
  private async guestPanicked(message: string): Promise<void> {
    this.opts.log(`the guest kernel panicked: ${message}`);
    // The panic first, as QEMU sends GUEST_PANICKED before STOP: the pause that follows is part of it.
    this.broadcast({ event: 'guest-panicked', message });
    await this.setRunState('paused');
  }

  private async runSave(file: string, header: SaveHeaderArgs, signal: AbortSignal): Promise<SaveResult> {
    const started = Date.now();
    const phases = new Phases();
    const wasRunning = this.opts.emulator.state === 'running';
    await this.setRunState('paused');
    try {
      await this.opts.emulator.loaded;
      // Only the non-zero pages are written (free, never-touched memory costs nothing in the file),
      // straight from guest memory, with the device state taken in the same turn of the event loop
      // (see TakenPayload): even a paused guest's RAM changes when a NIC frame or balloon reply lands.
      const take = () => {
        const parts = this.opts.emulator.saveParts();
        phases.lap('pause and device state');
        const payload = encodePayload(parts.deviceState, parts.memory, nonZeroPages(parts.memory));
        phases.lap(`scan for the ${payload.nonZeroPages} non-zero pages`);
        return { ...payload, header: { guest: { agentConnected: parts.agentConnected } } };
      };
      const { bytes, checksum } = await writeStateFile(
        file,
        {
          engine: STATE_ENGINE,
          engineVersion: STATE_ENGINE_VERSION,
          name: header.name,
          uuid: header.uuid,
          domainXml: header.domainXml,
          createdAt: new Date().toISOString(),
          machine: this.opts.machine,
          guest: { agentConnected: false },
        },
        { take },
        { signal, onProgress: (processedBytes, totalBytes) => this.broadcast({ event: 'job-progress', processedBytes, totalBytes }) },
      );
      phases.lap('file written, hashed and synced');
      this.opts.log(`saved ${bytes} bytes: ${phases}`);
      return { bytes, ms: Date.now() - started, checksum };
    } catch (err) {
      // A save that did not happen leaves the guest as it was (libvirt does the same).
      if (wasRunning) await this.setRunState('running');
      throw err;
    }
  }

  accept(socket: Socket): void {
    const conn: Conn = new JsonlConnection<RunnerMessage>(socket);
    this.connections.add(conn);
    conn.on('message', (msg) => {
      this.handle(conn, msg).catch((err: Error) => this.opts.log(`control: ${err.stack ?? err.message}`));
    });
    conn.on('invalid', (err) => conn.send({ id: null, ok: false, error: err.message }));
    conn.on('close', () => this.detach(conn));
  }

  broadcast(event: RunnerEvent): void {
    for (const conn of this.attached) conn.send(event);
  }

  /** Cancels a running save (it removes its temporary file), flushes pending output and closes every connection. */
  async closeAll(): Promise<void> {
    if (this.job) {
      this.job.abort.abort();
      await this.job.done.catch(() => undefined);
    }
    this.serialOut.flush();
    clearInterval(this.screenTimer);
    await Promise.all([...this.connections].map((c) => c.end()));
  }

  private attach(conn: Conn): void {
    if (!conn.isOpen) return;
    this.attached.add(conn);
    this.screenTimer ??= setInterval(() => this.checkScreenSize(), SCREEN_CHECK_MS);
  }

  private detach(conn: Conn): void {
    this.connections.delete(conn);
    if (!this.attached.delete(conn) || this.attached.size > 0) return;
    // Last client gone: what was queued for it is in the history, for the next one.
    this.serialOut.discard();
    clearInterval(this.screenTimer);
    this.screenTimer = undefined;
  }

  private checkScreenSize(): void {
    if (!this.opts.emulator.ready) return;
    const geo = this.opts.framebuffer.geometry();
    const last = this.screen;
    if (last && last.width === geo.width && last.height === geo.height && last.bpp === geo.bpp) return;
    this.screen = geo;
    this.broadcast({ event: 'screen-size', ...geo });
  }

  private async handle(conn: Conn, msg: unknown): Promise<void> {
    const req = typeof msg === 'object' && msg !== null && !Array.isArray(msg) ? (msg as Record<string, unknown>) : undefined;
    const id = typeof req?.id === 'number' && Number.isInteger(req.id) ? req.id : null;
    if (!req || id === null || typeof req.op !== 'string') {
      conn.send({ id, ok: false, error: 'a request is an object with an integer "id" and a string "op"' });
      return;
    }
    const op = req.op;
    if (!isRunnerOp(op)) {
      conn.send({ id, ok: false, error: `unknown op '${op}'` });
      return;
    }
    const parsed = runnerOpArgs[op].safeParse(req);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; ');
      conn.send({ id, ok: false, error: `invalid arguments for '${op}': ${issues}` });
      return;
    }
    try {
      const handler = this.ops[op] as OpHandler<typeof op>;
      const result = await handler(conn, parsed.data as never);
      conn.send(result === undefined ? { id, ok: true } : { id, ok: true, result });
    } catch (err) {
      conn.send({ id, ok: false, error: (err as Error).message || String(err) });
    }
  }
}
