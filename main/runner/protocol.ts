// The contract between the management host and a per-domain v86 runner process: the files in the
// runner's state directory, runner.json, and the newline-delimited JSON protocol on control.sock;
// the saved-state file format is in statefile.ts (re-exported here). The host imports these types;
// keep them free of runner internals.
import path from 'node:path';
import { z } from 'zod';
import type { BootDevice } from '../../shared/libvirt/schema.js';

export { readStateHeader, StateFileError, type StateHeader, type StateMachine } from '../common/statefile.js';

const MiB = 1024 * 1024;

/** File names inside a runner's state directory. */
export const RUNNER_FILES = {
  config: 'runner.json',
  pid: 'runner.pid',
  log: 'runner.log',
  control: 'control.sock',
  vnc: 'vnc.sock',
  /** RunnerExit, written (atomically) just before the runner exits once it was up. */
  exit: 'exit.json',
  /** CpuDescription (cpuid.ts) of the emulated CPU, written once the machine is loaded. */
  cpu: 'cpu.json',
} as const;

export type RunnerPaths = { [K in keyof typeof RUNNER_FILES]: string };

/**
 * A spare runner (`runner --spare <dir>`, dir run/spare-*): started ahead of the next start or restore, with its
 * modules loaded and v86's wasm compiled, it waits on <dir>/spare.sock. The host takes it by moving
 * <dir>/runner.log into a domain's state dir and sending one line, `{"stateDir": "…"}`; the spare
 * answers `ok` and runs as if started on that dir. It holds <dir>/runner.pid while it waits, and ends
 * when the process that started it does (a spare must not outlive its host).
 */
export const SPARE = { flag: '--spare', dirPrefix: 'spare-', socket: 'spare.sock', pid: RUNNER_FILES.pid, log: RUNNER_FILES.log, ok: 'ok' } as const;

export function runnerPaths(stateDir: string): RunnerPaths {
  return {
    config: path.join(stateDir, RUNNER_FILES.config),
    pid: path.join(stateDir, RUNNER_FILES.pid),
    log: path.join(stateDir, RUNNER_FILES.log),
    control: path.join(stateDir, RUNNER_FILES.control),
    vnc: path.join(stateDir, RUNNER_FILES.vnc),
    exit: path.join(stateDir, RUNNER_FILES.exit),
    cpu: path.join(stateDir, RUNNER_FILES.cpu),
  };
}

/**
 * Environment every runner starts with. One malloc arena: V8's background threads compile v86's JIT
 * modules with malloc'd zones, and glibc gives each thread its own arena whose high-water mark stays
 * resident (five arenas of 42-47 MiB in a settled 128 MiB guest's runner, measured 2026-12-03).
 */
export const RUNNER_ENV = { MALLOC_ARENA_MAX: '1' } as const;

/**
 * Node (V8) flags every runner starts with. v86 compiles the guest's hot code into thousands of small
 * wasm modules; V8 tiers the hot ones up with TurboFan, whose freed compile zones fragment the malloc
 * heap (~130 MiB of a settled runner's RSS). Liftoff alone compiles them in a fraction of the time:
 * measured on bare v86 2026-12-04, 3 runs each: RSS 181-195 MiB instead of 318-332, boot 8.1-8.8 s
 * instead of 9.2-10.4, a busybox loop's first run 1460-1770 ms instead of 1810-2110, its later runs
 * ~5 % slower (1080-1180 ms against 1030-1150).
 */
export const RUNNER_NODE_FLAGS = ['--liftoff-only'] as const;

/** Runner exit codes. */
export const RUNNER_EXIT = {
  /** `destroy` op, SIGTERM or SIGINT, or the guest powered off. */
  ok: 0,
  /** The emulator failed at run time; an `error` event was sent first. */
  emulatorFailure: 1,
  /**
   * Bad runner.json, unreadable image, bad BIOS, unusable restoreFrom state file…: one `error: …` line
   * in runner.log, no sockets, no exit.json.
   */
  configError: 2,
} as const;

/** Contents of exit.json: why a runner that was up has ended. */
export interface RunnerExit {
  /**
   * poweroff: the guest powered itself off (ACPI S5, or a halt with interrupts disabled);
   * destroy: the `destroy` op; signal: SIGTERM/SIGINT; crash: the emulator (or the runner) failed.
   */
  reason: 'poweroff' | 'destroy' | 'signal' | 'crash';
  /** crash: the error; signal: its name. */
  message?: string;
}

export interface RunnerConfig {
  name: string;
  uuid: string;
  /** Guest RAM. With an initrd it must exceed 64 MiB + the initrd size (v86 loads it at 64 MiB). */
  memoryBytes: number;
  /** VGA memory; a power of two from 256 KiB to 256 MiB. Defaults to 8 MiB when absent from runner.json. */
  vgaMemoryBytes: number;
  /** Host paths (Debian seabios: /usr/share/seabios/bios.bin and vgabios-stdvga.bin). */
  bios: string;
  vgaBios?: string;
  /** Direct kernel boot (bzImage). */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Raw images. cdrom is opened read-only; hda/hdb read-write, and guest writes go to the file. */
  cdrom?: string;
  hda?: string;
  hdb?: string;
  /** v86 boot_order; build it with {@link bootOrderValue}. Absent: v86 picks (fd, else hd, else cdrom). */
  bootOrder?: number;
  /** virtio_balloon device. */
  balloon: boolean;
  /** Balloon target at boot (libvirt's <currentMemory>), KiB; absent = all of memoryBytes. */
  balloonTargetKiB?: number;
  /**
   * bzImage setup-header vid_mode (e.g. 0x317 = 1024x768x16). Absent: taken from `vga=` in cmdline on
   * kernel boots, as a bootloader would (v86's loader alone ignores it).
   */
  vidMode?: number;
  startPaused?: boolean;
  /** VNC authentication (RFB security type 2) on every listener. Only the first 8 characters count (RFB limit). */
  vncPassword?: string;
  /**
   * A TCP listener besides vnc.sock (libvirt's <graphics type='vnc'>): on `address`, at `port`, or
   * with no port the first free one from 5900 up (autoport).
   */
  vncListen?: VncListen;
  /**
   * v86's ACPI (PIIX4 power management, SeaBIOS's tables): power button, guest power-off seen by the
   * runner. Absent = on. Off, a guest's power-off is only seen as a halt.
   */
  acpi?: boolean;
  /** v86's virtio console, the guest agent's channel (see build/guests/files/domus-agent). Absent = on. */
  guestAgent?: boolean;
  /**
   * Absolute path of a state file written by the `save` op: the runner checks it fully (exit 2 with
   * one clear error line if it is unusable), then resumes the guest from it instead of booting. The
   * file is only read. The rest of the config must describe the same machine (memory, devices).
   */
  restoreFrom?: string;
  /**
   * The guest's NIC (v86 has one: ne2k or virtio-net) and the virtual switch it plugs into: a unix
   * socket speaking QEMU's `-netdev stream` framing. Absent: the NIC is left unconnected.
   */
  nic?: RunnerNic;
  /** Snapshot stores (cow-store.ts) kept for the writable disks, absolute paths; see `setSnapshotStores`. */
  snapshotStores?: SnapshotStores;
  /**
   * Live migration destination (see migration.ts): the machine is created but not started, and waits
   * for one migration stream on `listen` (a unix socket path, made 0600, or a TCP address; port 0 =
   * the kernel picks) from a peer that sends `token` first. The guest runs once the stream has ended.
   */
  incoming?: RunnerIncoming;
}

/** Per writable disk, the copy-before-write stores of the domain's snapshots. */
export interface SnapshotStores {
  hda?: string[];
  hdb?: string[];
}

/** The CPU the runner's guest sees (cpu.json, written once loaded): what a migration destination checks. */
export interface CpuDescription {
  /** Vendor string, family, model and stepping. */
  model: string;
  features: string[];
}

export interface RunnerIncoming {
  listen: { kind: 'unix'; path: string } | { kind: 'tcp'; address: string; port: number };
  /** 32 random bytes, hex. */
  token: string;
}

export interface RunnerNic {
  model: 'ne2k' | 'virtio';
  mac: string;
  socket: string;
}

const pathString = z.string().min(1, 'must be a non-empty path');
const absolutePath = z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path');

export const runnerConfigSchema: z.ZodType<RunnerConfig> = z.strictObject({
  name: z.string().min(1),
  uuid: z.string().min(1),
  memoryBytes: z
    .number()
    .int()
    .min(16 * MiB, 'must be at least 16 MiB')
    // v86 treats sizes as int32.
    .max(2047 * MiB, 'must be at most 2047 MiB'),
  vgaMemoryBytes: z
    .number()
    .int()
    .min(256 * 1024, 'must be at least 256 KiB')
    .max(256 * MiB, 'must be at most 256 MiB')
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two')
    .default(8 * MiB),
  bios: pathString,
  vgaBios: pathString.optional(),
  kernel: pathString.optional(),
  initrd: pathString.optional(),
  cmdline: z.string().optional(),
  cdrom: pathString.optional(),
  hda: pathString.optional(),
  hdb: pathString.optional(),
  bootOrder: z.number().int().min(0).max(0xfff).optional(),
  balloon: z.boolean(),
  balloonTargetKiB: z.number().int().positive().optional(),
  vidMode: z.number().int().min(0).max(0xffff).optional(),
  startPaused: z.boolean().optional(),
  vncPassword: z.string().min(1).optional(),
  vncListen: z.strictObject({ address: z.string().min(1), port: z.number().int().min(1).max(65535).optional() }).optional(),
  acpi: z.boolean().optional(),
  guestAgent: z.boolean().optional(),
  restoreFrom: absolutePath.optional(),
  nic: z
    .strictObject({
      model: z.enum(['ne2k', 'virtio']),
      mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i, 'must be a MAC address'),
      socket: absolutePath,
    })
    .optional(),
  snapshotStores: z.strictObject({ hda: z.array(absolutePath).max(256).optional(), hdb: z.array(absolutePath).max(256).optional() }).optional(),
  incoming: z
    .strictObject({
      listen: z.discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('unix'), path: absolutePath }),
        z.strictObject({ kind: z.literal('tcp'), address: z.string().min(1), port: z.number().int().min(0).max(65535) }),
      ]),
      token: z.string().regex(/^[0-9a-f]{64}$/, 'must be 32 bytes in hex'),
    })
    .optional(),
});

export interface VncListen {
  address: string;
  port?: number;
}

/** First port autoport tries (display :0), as libvirt and QEMU count. */
export const VNC_PORT_BASE = 5900;

/** The boot devices v86's BIOS can be given: it has no network boot. */
export type BiosBootDevice = Exclude<BootDevice, 'network'>;

// SeaBIOS (CONFIG_QEMU) reads the boot order from CMOS 0x3D (low byte) and 0x38 bits 4-7, which v86
// fills from boot_order: one nibble per slot, first device in the lowest nibble; 1 = floppy, 2 = hard
// disk, 3 = CD-ROM. Only three slots exist.
const BOOT_NIBBLE: Record<BiosBootDevice, number> = { fd: 1, hd: 2, cdrom: 3 };

/** v86 `boot_order` for a device list, first = highest priority. [] gives 0 (v86's automatic choice). */
export function bootOrderValue(devs: BiosBootDevice[]): number {
  const unique = [...new Set(devs)].slice(0, 3);
  return unique.reduce((value, dev, i) => value | (BOOT_NIBBLE[dev] << (4 * i)), 0);
}

export type RunState = 'running' | 'paused';

export interface HelloResult {
  pid: number;
  name: string;
  uuid: string;
  state: RunState;
  /** Epoch ms. */
  startedAt: number;
  /** Base64 of the guest's recent serial output (its last 1 MiB), some of which an earlier client may have had. */
  serialBacklog: string;
  /** The guest was resumed from a state file (RunnerConfig.restoreFrom) rather than booted. */
  restored: boolean;
  /** Where the TCP VNC listener is bound (RunnerConfig.vncListen), with the port it got. */
  vncTcp?: { address: string; port: number };
  /** An incoming migration's endpoint ('unix:/path' or 'tcp:host:port'), while it waits for the stream. */
  incoming?: string;
}

export interface StateResult {
  state: RunState;
}

export interface ScreenshotResult {
  /** Base64 PNG. */
  png: string;
  width: number;
  height: number;
}

/** The channels an engine can ask a guest to power off through (virsh shutdown --mode). */
export type ShutdownChannel = 'acpi' | 'agent';

/**
 * What became of a shutdown request on each channel asked:
 * acpi: 'pressed' (the guest enabled its power button: its OS listens), 'not-enabled' (pressed, but
 * the guest never enabled the button: no ACPI in its OS, or still booting), 'absent' (ACPI is off).
 * agent: 'acknowledged' (the agent took `poweroff`), 'no-answer' (connected once, did not answer in
 * time), 'not-connected' (the channel exists but no agent announced itself), 'absent' (no channel),
 * 'unsupported' (the engine does not wire the channel up).
 */
export interface ShutdownResult {
  acpi?: 'pressed' | 'not-enabled' | 'absent';
  agent?: 'acknowledged' | 'no-answer' | 'not-connected' | 'absent' | 'unsupported';
}

export interface RebootResult {
  /** agent: the guest agent's `reboot`; ctrl-alt-del: the keys on the PS/2 keyboard. */
  method: 'agent' | 'ctrl-alt-del';
}

/** What a save writes into the state file's header besides the machine description. */
export interface SaveHeaderArgs {
  domainXml: string;
  name: string;
  uuid: string;
}

export interface SaveResult {
  /** Size of the state file. */
  bytes: number;
  /** Wall time of the whole save (pause, snapshot, write, fsync). */
  ms: number;
  /** Hex SHA-256 of the payload, as in the header. */
  checksum: string;
}

export interface DumpResult {
  /** Size of the core file. */
  bytes: number;
  ms: number;
}

export interface StatsResult {
  /** process.cpuUsage() user + system. */
  cpuTimeMs: number;
  /**
   * The emulation thread's CPU time (the main thread, where v86 runs the guest): the guest's vCPU
   * time. The rest of cpuTimeMs is the engine's own overhead (V8's compiler and GC threads, I/O).
   * Absent where the thread's counters cannot be read.
   */
  vcpuTimeMs?: number;
  rssBytes: number;
  /** Since the runner started. */
  wallMs: number;
  /** `stats` requests answered so far, this one included (shows whether anyone polls the runner). */
  requests: number;
  /** Bytes and requests each disk image served to the guest since the runner started. */
  disks: DiskCounters[];
  /** Where the memory goes (docs/benchmarks.md); absent until the emulator has loaded. */
  memory?: RunnerMemory;
}

/** The runner's memory by owner, as the process sees it (resident or not). */
export interface RunnerMemory {
  /** The whole wasm memory: guest RAM, VRAM and v86's own (JIT cache, tables, TLB). It never shrinks. */
  wasmBytes: number;
  ramBytes: number;
  vramBytes: number;
  /** process.memoryUsage(): the V8 heap and the memory outside it (ArrayBuffers among it). */
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface DiskCounters {
  /** v86's drive: hda, hdb or cdrom. */
  name: 'hda' | 'hdb' | 'cdrom';
  path: string;
  rdBytes: number;
  wrBytes: number;
  rdReqs: number;
  wrReqs: number;
}

/** The source side of a live migration (the `migrate` op). */
export interface MigrateArgs {
  /** 'unix:/abs/path' or 'tcp:host:port' (IPv6 in brackets). */
  uri: string;
  token: string;
  /** false: the guest is paused first and copied in one pass. */
  live: boolean;
  /** MiB/s; absent = unlimited. */
  bandwidthMiBs?: number;
  /** The longest pause aimed for when deciding to stop and copy the rest. */
  maxDowntimeMs: number;
}

export interface MigrationProgressEvent {
  phase: 'setup' | 'precopy' | 'stopcopy';
  iteration: number;
  totalBytes: number;
  transferredBytes: number;
  remainingBytes: number;
  dirtyRateBytesPerSec?: number;
}

export interface MigrateResult {
  /** From the pause here to the destination's acknowledgement that the guest runs (or waits paused) there. */
  downtimeMs: number;
  totalMs: number;
  /** Pre-copy rounds, the stop-and-copy pass included. */
  iterations: number;
  transferredBytes: number;
  /** Guest RAM pages that held anything but zeros when the migration started, in bytes. */
  nonZeroRamBytes: number;
  /** Pages sent in the stop-and-copy pass and the device state's size. */
  finalPages: number;
  deviceStateBytes: number;
  /** Where the downtime went: the pause, last scan and pages; saving the device state; sending it, the restore there and the acknowledgement. */
  downtimeParts: { pauseAndPagesMs: number; deviceStateMs: number; restoreAndAckMs: number };
}

/** ok: the guest holds the target; pending: on its way; no-driver: not followed in time; absent: no device. */
export type BalloonStatus = 'ok' | 'pending' | 'no-driver' | 'absent';

/** The guest's virtio-balloon statistics, in KiB (libvirt's dommemstat fields). */
export interface GuestMemoryStats {
  /** Epoch ms when the guest sent them. */
  at: number;
  /** MemTotal: what the guest's page allocator manages (RAM minus kernel reservations and the balloon). */
  totalKiB?: number;
  freeKiB?: number;
  /** MemAvailable. */
  availableKiB?: number;
  cachesKiB?: number;
  swapInKiB?: number;
  swapOutKiB?: number;
  majorFaults?: number;
  minorFaults?: number;
}

export interface BalloonReport {
  /** Guest RAM (the most it can have). */
  maxKiB: number;
  targetKiB: number;
  /** What the guest holds: maximum minus the pages it handed to the balloon. */
  actualKiB: number;
  status: BalloonStatus;
  /** The latest statistics the guest sent, if its driver does. */
  guest?: GuestMemoryStats;
}

/** Arguments and results per op. */
export interface RunnerOps {
  /** Also attaches the connection: from now on it receives every event (others get replies only). */
  hello: { args: Record<string, never>; result: HelloResult };
  /** Idempotent; a `state` event goes out only on a change. */
  pause: { args: Record<string, never>; result: StateResult };
  resume: { args: Record<string, never>; result: StateResult };
  /** Replies, then stops the guest, removes the sockets and pid file and exits 0. */
  destroy: { args: Record<string, never>; result: undefined };
  /** Base64 bytes to ttyS0. */
  serialWrite: { args: { data: string }; result: undefined };
  /** Set-1 scancode bytes (make and break) to the PS/2 keyboard; replies once the guest took them. */
  sendScancodes: { args: { codes: number[] }; result: undefined };
  /** Types on a US layout (\n = Enter, \t = Tab); any other character is an error and nothing is typed. */
  sendText: { args: { text: string }; result: undefined };
  screenshot: { args: Record<string, never>; result: ScreenshotResult };
  stats: { args: Record<string, never>; result: StatsResult };
  /** Sets the balloon target (absolute) and replies at once; the guest follows (`balloon` events). */
  balloonSet: { args: { targetKiB: number }; result: BalloonReport };
  /** The balloon now; with guestStats, first asks the guest for fresh statistics (up to 1.5 s). */
  balloonInfo: { args: { guestStats: boolean }; result: BalloonReport };
  /**
   * Asks the guest to power off through each channel given (the ACPI power button, the guest agent's
   * `poweroff`) and says what each did; waits only for the agent's acknowledgement (a few seconds at
   * most). The guest's power-off then shows as `guest-poweroff` and exit 0.
   */
  shutdown: { args: { channels: ShutdownChannel[] }; result: ShutdownResult };
  /**
   * Asks the guest to reboot (agent if connected, else Ctrl+Alt+Del) and replies once the request is
   * delivered; the guest's reset then shows as `guest-reboot`.
   */
  reboot: { args: Record<string, never>; result: RebootResult };
  /** Hard reset now; replies once the machine has been reset, after a `reset` event. */
  reset: { args: Record<string, never>; result: undefined };
  /**
   * Pauses the guest (if running), writes its state to `file` (absolute; atomically, `job-progress`
   * events on the way) and replies. The guest stays paused. One job at a time.
   */
  save: { args: { file: string; header: SaveHeaderArgs }; result: SaveResult };
  /**
   * Writes an ELF core of the guest to `file` (absolute; atomically, `job-progress` events on the
   * way; see coredump.ts) and replies. A running guest runs on meanwhile (the host pauses it first
   * when it wants a consistent dump). One job at a time (a save or a dump).
   */
  dump: { args: { file: string }; result: DumpResult };
  /**
   * Cancels the running save or dump: no file is left behind, the guest runs again if it ran before, and the
   * job replies with the error 'save aborted' or 'dump aborted'. Replies once all that is done; an error if no job runs.
   */
  abortJob: { args: Record<string, never>; result: undefined };
  /**
   * Puts the image `source` (absolute path, opened read-only) into the CD-ROM drive, or ejects the
   * medium when there is none; the guest sees a media change. An unreadable image is an error and
   * leaves the drive as it was.
   */
  changeMedia: { args: { source?: string }; result: undefined };
  /**
   * Replaces the snapshot stores of the writable disks (a disk's stores are all opened first: one that
   * cannot be is an error naming it, and that disk keeps its earlier ones). From the reply on, a
   * guest write keeps the old chunk in each store.
   */
  setSnapshotStores: { args: { stores: SnapshotStores }; result: undefined };
  /**
   * Live migration, source side: streams the guest to a runner waiting at `uri` (RunnerConfig.incoming),
   * `migration-progress` events during and after each round. Once the destination acknowledges, the guest stays
   * paused here for good. A job: abortJob cancels it; on any failure or cancel the guest runs on as before.
   */
  migrate: { args: MigrateArgs; result: MigrateResult };
}

export type RunnerOp = keyof RunnerOps;

export type RunnerRequest = { [K in RunnerOp]: { id: number; op: K } & RunnerOps[K]['args'] }[RunnerOp];

export type RunnerReply =
  | { id: number; ok: true; result?: unknown }
  /** `id` is null only when the request line had no usable id (malformed JSON, not an object…). */
  | { id: number | null; ok: false; error: string };

export type RunnerEvent =
  | { event: 'serial'; data: string }
  | { event: 'state'; state: RunState }
  /** What the guest holds changed (it followed a new target, or rebooted). */
  | { event: 'balloon'; balloon: BalloonReport }
  /** Pixel size of the screen as captured; bpp 0 = text mode. */
  | { event: 'screen-size'; width: number; height: number; bpp: number }
  /** The guest powered itself off; the runner exits 0 right after (exit.json: poweroff). */
  | { event: 'guest-poweroff' }
  /** The guest reset the machine itself (reboot, Ctrl+Alt+Del…); it boots again in the same runner. */
  | { event: 'guest-reboot' }
  /** The `reset` op reset the machine. */
  | { event: 'reset' }
  /**
   * The guest kernel panicked (Linux's "---[ end Kernel panic - not syncing: …" on the serial
   * console); the runner pauses it right after (a `state` event follows), as QEMU's pvpanic with
   * panic=pause does. `message` is the panic's reason.
   */
  | { event: 'guest-panicked'; message: string }
  /** A save or dump job wrote this much of its file so far. */
  | { event: 'job-progress'; processedBytes: number; totalBytes: number }
  /** A migration's progress, after each round. */
  | ({ event: 'migration-progress' } & MigrationProgressEvent)
  /** An incoming migration has arrived: the guest is restored here and in `state`. */
  | { event: 'migrated-in'; state: RunState }
  /** The runner is about to exit with code 1. */
  | { event: 'error'; message: string };

export type RunnerMessage = RunnerReply | RunnerEvent;

const noArgs = z.object({});
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

/** Argument schemas, checked by the runner before an op runs (extra keys are ignored). */
export const runnerOpArgs = {
  hello: noArgs,
  pause: noArgs,
  resume: noArgs,
  destroy: noArgs,
  serialWrite: z.object({ data: base64 }),
  sendScancodes: z.object({ codes: z.array(z.number().int().min(0).max(255)).max(65536) }),
  sendText: z.object({ text: z.string().max(65536) }),
  screenshot: noArgs,
  stats: noArgs,
  balloonSet: z.object({ targetKiB: z.number().int().positive() }),
  balloonInfo: z.object({ guestStats: z.boolean() }),
  shutdown: z.object({ channels: z.array(z.enum(['acpi', 'agent'])).min(1) }),
  reboot: noArgs,
  reset: noArgs,
  save: z.object({
    file: absolutePath,
    header: z.object({ domainXml: z.string(), name: z.string().min(1), uuid: z.string().min(1) }),
  }),
  dump: z.object({ file: absolutePath }),
  abortJob: noArgs,
  changeMedia: z.object({ source: absolutePath.optional() }),
  setSnapshotStores: z.object({ stores: z.strictObject({ hda: z.array(absolutePath).max(256).optional(), hdb: z.array(absolutePath).max(256).optional() }) }),
  migrate: z.object({
    uri: z.string().regex(/^(unix:\/|tcp:)/, "must be 'unix:/path' or 'tcp:host:port'").max(4096),
    token: z.string().regex(/^[0-9a-f]{64}$/, 'must be 32 bytes in hex'),
    live: z.boolean(),
    bandwidthMiBs: z.number().positive().optional(),
    maxDowntimeMs: z.number().int().positive().max(3_600_000),
  }),
} satisfies { [K in RunnerOp]: z.ZodType };

export function isRunnerOp(op: string): op is RunnerOp {
  return Object.hasOwn(runnerOpArgs, op);
}
