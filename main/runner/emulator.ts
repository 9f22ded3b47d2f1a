// The v86 instance of one domain, and the typed slice of v86's internals the runner relies on
// (checked against v86 0.5.462; see shared/notes/v86.md).
import path from 'node:path';
import { createRequire } from 'node:module';
import { V86, type V86Options } from 'v86';
import type { BootImages } from './config.js';
import type { RunnerConfig, RunState } from './protocol.js';

/** One rectangle of v86's RGBA destination buffer to put on screen (v86's "layer"). */
export interface VgaLayer {
  image_data: { data: Uint8ClampedArray; width: number; height: number };
  screen_x: number;
  screen_y: number;
  buffer_x: number;
  buffer_y: number;
  buffer_width: number;
  buffer_height: number;
}

/** v86's VGAScreen (src/vga.js), fields read by the framebuffer capture. */
export interface VgaDevice {
  graphical_mode: boolean;
  svga_enabled: boolean;
  svga_bpp: number;
  screen_width: number;
  screen_height: number;
  virtual_width: number;
  layers: VgaLayer[];
  /** The screen adapter; in Node a DummyScreenAdapter whose update_buffer does nothing. */
  screen: { update_buffer(layers: VgaLayer[]): void };
  screen_fill_buffer(): void;
  complete_redraw(): void;
  scan_line_to_screen_row(scanLine: number): number;
  // Text mode.
  vga_memory: Uint8Array;
  /** Font: 8 pages of 256 glyphs, 32 bytes per glyph. */
  plane2: Uint8Array;
  max_cols: number;
  max_rows: number;
  max_scan_line: number;
  clocking_mode: number;
  attribute_mode: number;
  character_map_select: number;
  font_page_ab_enabled: boolean;
  offset_register: number;
  start_address: number;
  line_compare: number;
  cursor_address: number;
  cursor_scanline_start: number;
  cursor_scanline_end: number;
  dac_mask: number;
  dac_map: Uint8Array;
  /** 0xRRGGBB per DAC entry. */
  vga256_palette: Int32Array;
}

interface Ps2Device {
  /** v86's 1024-byte ring of scancodes waiting for the guest; it overwrites when full. */
  kbd_buffer: { length: number };
}

interface V86Internals {
  bus: { send(event: string, data?: unknown): void };
  v86: { cpu: { devices: { vga: VgaDevice; ps2: Ps2Device } } };
}

const v86Dir = path.dirname(createRequire(import.meta.url).resolve('v86'));

// v86 allocates the RGBA buffer for graphical modes only if ImageData exists (set_size_graphical);
// Node has none. Must be in place before the guest first switches to a graphical mode.
function installImageDataPolyfill(): void {
  const g = globalThis as Record<string, unknown>;
  g.ImageData ??= class ImageData {
    constructor(
      readonly data: Uint8ClampedArray,
      readonly width: number,
      readonly height: number,
    ) {}
  };
}

/** Bytes allowed in v86's keyboard ring before we wait for the guest to read some. */
const KBD_HIGH_WATER = 256;
const KBD_STALL_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Emulator {
  /** Resolves once v86 has loaded the images and initialised the machine. */
  readonly loaded: Promise<void>;
  private readonly emu: V86;
  private readonly internals: V86Internals;
  private runState: RunState;
  private isLoaded = false;
  /** Keyboard input from every source, in order. */
  private keyboardTail: Promise<void> = Promise.resolve();

  constructor(config: RunnerConfig, images: BootImages) {
    installImageDataPolyfill();
    const options: V86Options = {
      wasm_path: path.join(v86Dir, 'v86.wasm'),
      memory_size: config.memoryBytes,
      vga_memory_size: config.vgaMemoryBytes,
      bios: { buffer: images.bios },
      autostart: !config.startPaused,
      virtio_balloon: config.balloon,
      disable_speaker: true,
    };
    if (images.vgaBios) options.vga_bios = { buffer: images.vgaBios };
    if (images.kernel) options.bzimage = { buffer: images.kernel };
    if (images.initrd) options.initrd = { buffer: images.initrd };
    if (config.cmdline !== undefined) options.cmdline = config.cmdline;
    if (config.bootOrder) options.boot_order = config.bootOrder;
    // FileDisk has v86's buffer shape (get/set/load); v86's typings only know {buffer}/{url}.
    const disks = options as Record<string, unknown>;
    if (images.cdrom) disks.cdrom = images.cdrom;
    if (images.hda) disks.hda = images.hda;
    if (images.hdb) disks.hdb = images.hdb;

    this.runState = config.startPaused ? 'paused' : 'running';
    this.emu = new V86(options);
    this.internals = this.emu as unknown as V86Internals;
    this.loaded = new Promise((resolve) =>
      this.emu.add_listener('emulator-loaded', () => {
        this.isLoaded = true;
        resolve();
      }),
    );

    const vidMode = images.vidMode;
    if (vidMode !== undefined) {
      // v86's bzImage loader forces hdr.vid_mode (0x1FA in the setup header) to 0xFFFF; `vga=` is a
      // bootloader option, so do the bootloader's job. "emulator-ready" fires (on a later tick than
      // this constructor) once the real-mode kernel is at 0x80000 and before the CPU runs.
      this.emu.add_listener('emulator-ready', () => {
        this.emu.write_memory([vidMode & 0xff, vidMode >> 8], 0x80000 + 0x1fa);
      });
    }
  }

  /** Valid once `loaded` has resolved (v86 creates its devices in init). */
  get vga(): VgaDevice {
    return this.internals.v86.cpu.devices.vga;
  }

  private get ps2(): Ps2Device {
    return this.internals.v86.cpu.devices.ps2;
  }

  get state(): RunState {
    return this.runState;
  }

  /** Synchronous view of `loaded`, for timers that must not touch v86 before it is set up. */
  get ready(): boolean {
    return this.isLoaded;
  }

  onSerialByte(listener: (byte: number) => void): void {
    this.emu.add_listener('serial0-output-byte', listener);
  }

  /** v86's screen-set-size: [cols, rows, 0] in text mode, [width, height, bpp] in graphical modes. */
  onScreenSetSize(listener: () => void): void {
    this.emu.add_listener('screen-set-size', listener);
  }

  async pause(): Promise<void> {
    await this.loaded;
    this.runState = 'paused';
    await this.emu.stop();
  }

  async resume(): Promise<void> {
    await this.loaded;
    this.runState = 'running';
    await this.emu.run();
  }

  async serialWrite(bytes: Uint8Array): Promise<void> {
    // Input sent before the machine exists is lost.
    await this.loaded;
    this.emu.serial_send_bytes(0, bytes);
  }

  /**
   * Queues set-1 scancode bytes for the PS/2 keyboard. v86's ring holds 1024 bytes and silently
   * overwrites when full, so bytes are fed only while the guest keeps reading.
   */
  sendScancodes(codes: readonly number[]): Promise<void> {
    const run = this.keyboardTail.then(() => this.feedKeyboard(codes));
    this.keyboardTail = run.catch(() => undefined);
    return run;
  }

  private async feedKeyboard(codes: readonly number[]): Promise<void> {
    await this.loaded;
    let sent = 0;
    let stalledSince = Date.now();
    while (sent < codes.length) {
      const room = KBD_HIGH_WATER - this.ps2.kbd_buffer.length;
      // A paused guest reads nothing; wait for it without counting that as a stall.
      if (room > 0 || this.runState === 'paused') stalledSince = Date.now();
      if (room > 0) {
        const n = Math.min(codes.length - sent, room);
        for (let i = 0; i < n; i++) this.internals.bus.send('keyboard-code', codes[sent + i]);
        sent += n;
        continue;
      }
      if (Date.now() - stalledSince > KBD_STALL_MS) {
        throw new Error(`the guest stopped reading the keyboard; ${codes.length - sent} scancode bytes dropped`);
      }
      await sleep(5);
    }
  }

  /** PS/2 mouse motion in screen direction (y grows downwards). */
  mouseMove(dx: number, dy: number): void {
    // PS/2 reports y upwards.
    this.internals.bus.send('mouse-delta', [dx, -dy]);
  }

  /** Absolute position for the VMware pointer (used when the guest runs a vmmouse driver). */
  mouseAbsolute(x: number, y: number, width: number, height: number): void {
    this.internals.bus.send('mouse-absolute', [x, y, width, height]);
  }

  mouseButtons(left: boolean, middle: boolean, right: boolean): void {
    this.internals.bus.send('mouse-click', [left, middle, right]);
  }

  /** One wheel notch; positive = up. */
  mouseWheel(notches: number): void {
    this.internals.bus.send('mouse-wheel', [notches, 0]);
  }

  async destroy(): Promise<void> {
    await this.emu.destroy();
  }
}
