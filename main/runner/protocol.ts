// The contract between the management host and a per-domain v86 runner process: the files in the
// runner's state directory, runner.json, and the newline-delimited JSON protocol on control.sock.
// The host imports these types; keep them free of runner internals.
import path from 'node:path';
import { z } from 'zod';

const MiB = 1024 * 1024;

/** File names inside a runner's state directory. */
export const RUNNER_FILES = {
  config: 'runner.json',
  pid: 'runner.pid',
  log: 'runner.log',
  control: 'control.sock',
  vnc: 'vnc.sock',
} as const;

export type RunnerPaths = { [K in keyof typeof RUNNER_FILES]: string };

export function runnerPaths(stateDir: string): RunnerPaths {
  return {
    config: path.join(stateDir, RUNNER_FILES.config),
    pid: path.join(stateDir, RUNNER_FILES.pid),
    log: path.join(stateDir, RUNNER_FILES.log),
    control: path.join(stateDir, RUNNER_FILES.control),
    vnc: path.join(stateDir, RUNNER_FILES.vnc),
  };
}

/** Runner exit codes. */
export const RUNNER_EXIT = {
  /** `destroy` op, SIGTERM or SIGINT. */
  ok: 0,
  /** The emulator failed at run time; an `error` event was sent first. */
  emulatorFailure: 1,
  /** Bad runner.json, unreadable image, bad BIOS…: one `error: …` line in runner.log, no sockets. */
  configError: 2,
} as const;

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
  /**
   * bzImage setup-header vid_mode (e.g. 0x317 = 1024x768x16). Absent: taken from `vga=` in cmdline on
   * kernel boots, as a bootloader would (v86's loader alone ignores it).
   */
  vidMode?: number;
  startPaused?: boolean;
  /** VNC authentication (RFB security type 2). Only the first 8 characters count (RFB limit). */
  vncPassword?: string;
}

const pathString = z.string().min(1, 'must be a non-empty path');

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
  vidMode: z.number().int().min(0).max(0xffff).optional(),
  startPaused: z.boolean().optional(),
  vncPassword: z.string().min(1).optional(),
});

export type BootDevice = 'hd' | 'cdrom' | 'fd';

// SeaBIOS (CONFIG_QEMU) reads the boot order from CMOS 0x3D (low byte) and 0x38 bits 4-7, which v86
// fills from boot_order: one nibble per slot, first device in the lowest nibble; 1 = floppy, 2 = hard
// disk, 3 = CD-ROM. Only three slots exist.
const BOOT_NIBBLE: Record<BootDevice, number> = { fd: 1, hd: 2, cdrom: 3 };

/** v86 `boot_order` for a device list, first = highest priority. [] gives 0 (v86's automatic choice). */
export function bootOrderValue(devs: BootDevice[]): number {
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
  /** Base64 of the serial output produced while no control client was attached (at most 1 MiB, newest kept). */
  serialBacklog: string;
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

export interface StatsResult {
  /** process.cpuUsage() user + system. */
  cpuTimeMs: number;
  rssBytes: number;
  /** Since the runner started. */
  wallMs: number;
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
  | { event: 'stats'; cpuTimeMs: number; rssBytes: number; at: number }
  /** Pixel size of the screen as captured; bpp 0 = text mode. */
  | { event: 'screen-size'; width: number; height: number; bpp: number }
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
} satisfies { [K in RunnerOp]: z.ZodType };

export function isRunnerOp(op: string): op is RunnerOp {
  return Object.hasOwn(runnerOpArgs, op);
}
