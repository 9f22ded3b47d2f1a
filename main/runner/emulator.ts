// The machine of one domain, and the typed slice of v86's internals the runner relies on (checked
// against v86 0.5.462; see shared/notes/v86.md). The v86 instance behind it is replaced when a
// direct-kernel guest reboots, so the rest of the runner holds this object, never a V86.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { V86, type V86Options } from 'v86';
import { installAcpi, type AcpiControl, type AcpiCpu, type AcpiPmDevice } from './acpi.js';
import { GuestAgent } from './agent.js';
import { Balloon, type V86Balloon } from './balloon.js';
import type { FileDisk } from './disk.js';
import { installFlush, type IdeDevices } from './ide.js';
import { NicCable } from './nic.js';
import { sleepWhenHalted, type V86MainLoop } from './halt-sleep.js';
import { setJitThreshold } from './jit-threshold.js';
import { restoreAbsentBars, type V86Pci } from './pci-bars.js';
import { applyPayload, PayloadError } from './state-payload.js';
import { mapUntouchedPages, type GuestMemory } from './guest-pages.js';
import { kernelAddressLimit, type BootImages } from './config.js';
import { bootKernelImage } from './kernel-cache.js';
import { log } from './log.js';
import { CTRL_ALT_DEL } from '../common/keymap.js';
import type { RebootResult, RunnerConfig, RunState, ShutdownChannel, ShutdownResult } from './protocol.js';
import type { StateMachine } from '../common/statefile.js';
import type { CoreSource } from './coredump.js';

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
  /** The VRAM (vga_memory_size bytes in wasm memory); a Proxy like cpu.mem8: only its byteOffset is used. */
  svga_memory: Uint8Array;
}

interface Ps2Device {
  /** v86's 1024-byte ring of scancodes waiting for the guest; it overwrites when full. */
  kbd_buffer: { length: number };
}

/** v86's ATAPI drive (IDE secondary master), always present, with or without a medium. */
interface CdromDrive {
  set_cdrom(buffer: FileDisk): void;
  eject(): void;
}

/** v86's NE2000 (src/ne2k.js): `mac` filters received frames; the PROM in `memory` is where drivers read it. */
interface Ne2kDevice {
  mac: Uint8Array;
  memory: Uint8Array;
}

/** v86's virtio-net (src/virtio_net.js): the config space reads `mac`. */
interface VirtioNetDevice {
  mac: Uint8Array;
}

interface V86Cpu extends AcpiCpu {
  devices: { pci: V86Pci; vga: VgaDevice; ps2: Ps2Device; acpi?: AcpiPmDevice; virtio_balloon?: V86Balloon; cdrom?: CdromDrive; net?: Ne2kDevice; virtio_net?: VirtioNetDevice } & IdeDevices;
  /** What v86 runs on a machine reset (8042 pulse, port 0xCF9, V86.restart): CPU reset + BIOS reload. */
  reboot_internal(): void;
  reset_cpu(): void;
  /** save_state's RAM packer and restore_state's unpacker (replaced per instance: guest pages go their own way, guest-pages.ts). */
  pack_memory(): { bitmap: { get_buffer(): ArrayBuffer }; packed_memory: Uint8Array };
  unpack_memory(bitmap: unknown, packed: Uint8Array): void;
  /** The wasm module's exports; instr_0FA2 is CPUID on reg32. */
  wm: { exports: { instr_0FA2(): void } };
  /** Writes guest-physical memory, dropping JIT code compiled from it. */
  write_blob(data: Uint8Array, address: number): void;
  /** [0] is 1 while the CPU waits in HLT. */
  in_hlt: Uint8Array;
  /** [0] is EFLAGS; IF is never computed lazily. */
  flags: Int32Array;
  /** EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI. */
  reg32: Int32Array;
  /** Selectors: ES, CS, SS, DS, FS, GS. */
  sreg: Uint16Array;
  /** CR0…CR7. */
  cr: Int32Array;
  /** EFLAGS with the lazily computed arithmetic flags filled in. */
  get_eflags(): number;
  /** EIP (instruction_pointer is linear: CS base included). */
  get_real_eip(): number;
  wasm_memory: WebAssembly.Memory;
  /** A Proxy over guest RAM: only its byteOffset is used (see shared/notes/v86.md §11). */
  mem8: Uint8Array;
  memory_size: Uint32Array;
}

interface V86Bus {
  send(event: string, data?: unknown): void;
}

interface V86Internals {
  bus: V86Bus;
  v86: V86MainLoop & {
    cpu: V86Cpu;
    /** The main loop: runs while `running`; `stopping` ends it at its next tick, `tick_counter` names the tick due. */
    running: boolean;
    stopping: boolean;
    tick_counter: number;
    bus: V86Bus;
    save_state(): ArrayBuffer;
    restore_state(state: ArrayBuffer): void;
  };
}

const internals = (emu: V86) => emu as unknown as V86Internals;

const v86Dir = path.dirname(createRequire(import.meta.url).resolve('v86'));

let v86Module: Promise<WebAssembly.Module> | undefined;
/**
 * v86's wasm with the runner's JIT threshold (jit-threshold.ts), compiled once per process (on V8's
 * background threads: started early, it overlaps the runner's start-up and the reading of a state
 * file); every machine instantiates the same module.
 */
export function compileV86(): Promise<WebAssembly.Module> {
  v86Module ??= fs.promises.readFile(path.join(v86Dir, 'v86.wasm')).then((bytes) => {
    try {
      setJitThreshold(bytes);
    } catch (err) {
      log('warn', `v86 runs with its own JIT threshold: ${(err as Error).message}`);
    }
    return WebAssembly.compile(bytes);
  });
  return v86Module;
}

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

/** A machine about to be destroyed: nothing scheduled for it runs after. */
function retire(machine: Machine): void {
  machine.gone = true;
  clearTimeout(machine.mapPages);
}

/** A machine's untouched pages are mapped this long after it loads (see mapUntouchedPages). */
const MAP_PAGES_AFTER_MS = 2000;
/** ~3 ms of mapUntouchedPages at a time. */
const MAP_PAGES_SLICE = 16 << 20;

/** Bytes allowed in v86's keyboard ring before we wait for the guest to read some. */
const KBD_HIGH_WATER = 256;
const KBD_STALL_MS = 10_000;
const EFLAGS_IF = 1 << 9;
/** How long a connected guest agent may take to acknowledge `poweroff` before it counts as not answering. */
const AGENT_ACK_MS = 5000;
/** A CPU in HLT with interrupts off this long has stopped for good: the guest halted (no ACPI power-off). */
const HALT_POWEROFF_MS = 1000;
const HALT_POLL_MS = 250;
/** Real-mode reset vector F000:FFF0. */
const RESET_VECTOR = 0xffff0;
/** cli; hlt; jmp back to the hlt. */
const PARK_CODE = new Uint8Array([0xfa, 0xf4, 0xeb, 0xfd]);

/** Gives v86's NIC the configured MAC in place of the random one v86 picks, before the guest's driver reads it. */
function setNicMac(cpu: V86Cpu, text: string): void {
  const mac = Uint8Array.from(text.split(':').map((h) => Number.parseInt(h, 16)));
  const ne2k = cpu.devices.net;
  if (ne2k) {
    ne2k.mac = mac;
    // The PROM holds each byte twice (word-wide reads), as v86's constructor writes it.
    for (let i = 0; i < 6; i++) ne2k.memory[i << 1] = ne2k.memory[(i << 1) | 1] = mac[i]!;
  }
  if (cpu.devices.virtio_net) cpu.devices.virtio_net.mac = mac;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The hardware a config describes, as a state file records it (see statefile.ts). */
export function describeMachine(config: RunnerConfig, images: BootImages): StateMachine {
  const disks: StateMachine['disks'] = {};
  if (images.cdrom) disks.cdrom = images.cdrom.byteLength;
  if (images.hda) disks.hda = images.hda.byteLength;
  if (images.hdb) disks.hdb = images.hdb.byteLength;
  return {
    memoryBytes: config.memoryBytes,
    vgaMemoryBytes: config.vgaMemoryBytes,
    acpi: config.acpi ?? true,
    balloon: config.balloon,
    guestAgent: config.guestAgent ?? true,
    disks,
    nic: config.nic?.model ?? 'ne2k',
  };
}

/** A saved guest to start from instead of booting. */
export interface RestorePoint {
  /** The state file's payload (state-payload.ts), once read and its checksum checked. */
  payload: Promise<Uint8Array>;
  agentConnected: boolean;
}

export interface EmulatorEvents {
  /** The guest powered itself off: ACPI soft-off, or a halt with interrupts off. Emitted once. */
  poweroff: [how: 'acpi' | 'halt'];
  /** The guest reset the machine (reboot, Ctrl+Alt+Del); it boots again. */
  reboot: [];
  /** The machine was reset, by the guest or by reset(): the screen and the agent start over. */
  restarted: [];
  /** The machine failed outside any caller's request (a replacement could not start). */
  failure: [error: unknown];
}

/** One v86 instance. */
interface Machine {
  emu: V86;
  /** Set in emulator-ready (ACPI on). */
  acpi?: AcpiControl;
  loaded: Promise<void>;
  /** mapUntouchedPages, due a while after it loads. */
  mapPages?: NodeJS.Timeout;
  /** Destroyed (replaced, or the emulator is). */
  gone?: boolean;
}

export class Emulator extends EventEmitter<EmulatorEvents> {
  /**
   * Resolves once v86 has loaded the images and initialised the first machine, and a saved guest is
   * in it; rejects if the saved guest cannot be (a StateFileError or PayloadError).
   */
  readonly loaded: Promise<void>;
  readonly restored: boolean;
  /** The memory balloon; reports 'absent' when the config has none. */
  readonly balloon: Balloon;
  private machine: Machine;
  private runState: RunState;
  private isLoaded = false;
  /** Keyboard input from every source, in order. */
  private keyboardTail: Promise<void> = Promise.resolve();
  private readonly agent: GuestAgent;
  /** Set while a direct-kernel machine is being replaced by a fresh one. */
  private replacing: Promise<void> | undefined;
  /** Set while reset() restarts a BIOS-booted machine, so that the reset is not taken for the guest's. */
  private resetting = false;
  private poweredOff = false;
  private haltedSince: number | undefined;
  private readonly haltTimer: NodeJS.Timeout;
  private readonly serialListeners: ((byte: number) => void)[] = [];
  private readonly screenListeners: (() => void)[] = [];
  /** The NIC's connection to its network's switch (config.nic). */
  private readonly cable: NicCable | undefined;

  /**
   * `restore`: a saved guest; 'incoming': a machine that waits, not started, for a migrated guest
   * (adoptState); else a boot, of `bootImage` (bootKernelImage) for a direct-kernel one.
   */
  constructor(
    private readonly config: RunnerConfig,
    private readonly images: BootImages,
    restore?: RestorePoint | 'incoming',
    bootImage?: ArrayBuffer,
  ) {
    super();
    installImageDataPolyfill();
    this.runState = config.startPaused ? 'paused' : 'running';
    this.agent = new GuestAgent((bytes) => internals(this.machine.emu).bus.send('virtio-console0-input-bytes', bytes));
    this.restored = restore !== undefined;
    const resumeAfterRestore = restore !== undefined && restore !== 'incoming' && this.runState === 'running';
    // Built stopped: the saved guest goes into it once v86 has loaded.
    if (restore) this.runState = 'paused';
    const maxKiB = config.memoryBytes / 1024;
    this.balloon = new Balloon(maxKiB, config.balloonTargetKiB ?? maxKiB, (m) => log('info', m));
    if (config.nic) {
      this.cable = new NicCable(
        config.nic.socket,
        // Frames arriving while a machine is being replaced go to the outgoing one, which drops them.
        (frame) => internals(this.machine.emu).bus.send('net0-receive', frame),
        (m) => log('info', m),
      );
    }
    if (restore === undefined && images.kernel && !bootImage) throw new Error('a direct-kernel boot needs its kernel image (bootKernelImage)');
    this.machine = this.createMachine(restore !== undefined ? 'empty' : { kernel: bootImage });
    // A method, not a closure here: the runner's long-lived closures below share this scope, and would
    // keep the saved guest's payload (as large as its RAM) for the runner's life.
    this.loaded = this.load(this.machine, restore === 'incoming' ? undefined : restore, resumeAfterRestore);
    this.haltTimer = setInterval(() => this.checkHalt(), HALT_POLL_MS);
  }

  /** mapUntouchedPages over all of a machine's memory, a slice at a time: a large guest's would stall it, VNC and control. */
  private async mapPagesOf(machine: Machine): Promise<void> {
    for (const area of ['ram', 'vram'] as const) {
      for (let at = 0; !machine.gone; at += MAP_PAGES_SLICE) {
        // Views made afresh: wasm memory that grows gets a new buffer.
        const view = this.memoryOf(machine)[area];
        if (at >= view.length) break;
        mapUntouchedPages(view.subarray(at, at + MAP_PAGES_SLICE));
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /** Resolves once `machine` has loaded and, for a restore, the saved guest is in it. */
  private async load(machine: Machine, restore: RestorePoint | undefined, resume: boolean): Promise<void> {
    await machine.loaded;
    if (restore) {
      this.adopt(machine, applyPayload(await restore.payload, this.memoryOf(machine)));
      this.agent.reset(restore.agentConnected);
      if (resume) this.resumeMachine(machine);
    }
    this.isLoaded = true;
  }

  /**
   * A machine that boots (`kernel`: the image of a direct-kernel boot, freed once v86 has copied it
   * into guest RAM), or an `empty` one into which nothing is loaded, for a guest that comes from a
   * migration or a state file.
   */
  private createMachine(load: { kernel?: ArrayBuffer } | 'empty'): Machine {
    const { config, images } = this;
    const empty = load === 'empty';
    const options: V86Options = {
      wasm_fn: async (imports) => (await WebAssembly.instantiate(await compileV86(), imports)).exports,
      memory_size: config.memoryBytes,
      vga_memory_size: config.vgaMemoryBytes,
      bios: { buffer: images.bios },
      autostart: this.runState === 'running',
      virtio_balloon: config.balloon,
      acpi: config.acpi ?? true,
      disable_speaker: true,
    };
    if (config.guestAgent ?? true) options.virtio_console = { type: 'none' };
    if (config.nic) {
      const extra = options as Record<string, unknown>;
      extra.net_device = { type: config.nic.model };
      // A restored guest's driver already holds its MAC: keep the one in the state (v86 would
      // otherwise give the NIC a random one under the guest's feet).
      if (empty) extra.preserve_mac_from_state_image = true;
    }
    if (images.vgaBios) options.vga_bios = { buffer: images.vgaBios };
    // An empty machine loads nothing: guest memory and the devices come from the stream or the file.
    if (!empty) {
      if (load.kernel) options.bzimage = { buffer: load.kernel };
      if (images.initrd) options.initrd = { buffer: images.initrd };
      if (config.cmdline !== undefined) options.cmdline = config.cmdline;
    }
    if (config.bootOrder) options.boot_order = config.bootOrder;
    // FileDisk has v86's buffer shape (get/set/load); v86's typings only know {buffer}/{url}.
    const disks = options as Record<string, unknown>;
    if (images.cdrom) disks.cdrom = images.cdrom;
    if (images.hda) disks.hda = images.hda;
    if (images.hdb) disks.hdb = images.hdb;

    const emu = new V86(options);
    const machine: Machine = {
      emu,
      loaded: new Promise((resolve) => emu.add_listener('emulator-loaded', () => resolve())),
    };
    void machine.loaded.then(() => {
      // v86 keeps what it was given for the machine's life (its settings live on in closures), 31 MiB
      // for the unpacked sample kernel: detaching the buffer frees it.
      try {
        if (!empty && load.kernel) structuredClone(load.kernel, { transfer: [load.kernel] });
      } catch (err) {
        log('warn', `the kernel image stays in memory: ${(err as Error).message}`);
      }
      machine.mapPages = setTimeout(() => void this.mapPagesOf(machine), MAP_PAGES_AFTER_MS);
      machine.mapPages.unref();
    });
    // "emulator-ready" fires (on a later tick than this constructor) once the machine is set up and
    // the images are in guest memory, before the CPU runs.
    const booting = !empty;
    emu.add_listener('emulator-ready', () => this.prepare(machine, booting));
    emu.add_listener('serial0-output-byte', (byte) => {
      for (const listener of this.serialListeners) listener(byte);
    });
    emu.add_listener('screen-set-size', () => {
      for (const listener of this.screenListeners) listener();
    });
    if (this.cable) {
      const cable = this.cable;
      emu.add_listener('net0-send', (frame: Uint8Array) => {
        if (machine === this.machine) cable.send(frame);
      });
    }
    emu.add_listener('virtio-console0-output-bytes', (bytes) => {
      if (machine === this.machine) this.agent.receive(bytes);
    });
    return machine;
  }

  private prepare(machine: Machine, booting: boolean): void {
    const cpu = internals(machine.emu).v86.cpu;
    sleepWhenHalted(internals(machine.emu).v86);
    restoreAbsentBars(cpu.devices.pci);
    installFlush(cpu.devices);
    const vidMode = this.images.vidMode;
    if (booting && vidMode !== undefined) {
      // v86's bzImage loader forces hdr.vid_mode (0x1FA in the setup header) to 0xFFFF; `vga=` is a
      // bootloader option, so do the bootloader's job. The real-mode kernel is at 0x80000.
      machine.emu.write_memory([vidMode & 0xff, vidMode >> 8], 0x80000 + 0x1fa);
    }
    this.balloon.attach(cpu.devices.virtio_balloon, booting);
    if (booting && this.config.nic) setNicMac(cpu, this.config.nic.mac);
    if (this.config.acpi ?? true) {
      // Deferred: this runs inside the guest's port write.
      machine.acpi = installAcpi(cpu, () => setImmediate(() => this.guestPoweredOff('acpi')));
    }
    const reboot = cpu.reboot_internal.bind(cpu);
    cpu.reboot_internal = () => this.onMachineReset(machine, cpu, reboot);
  }

  /** v86 is about to reset `machine` (from inside the guest's port write, or from restart()). */
  private onMachineReset(machine: Machine, cpu: V86Cpu, reboot: () => void): void {
    if (machine !== this.machine || this.replacing) return; // a machine on its way out
    const byGuest = !this.resetting;
    if (this.images.kernel) {
      // Direct kernel boot: v86 would restart the BIOS, whose kernel option ROM jumps into the kernel
      // v86 copied into RAM at start, long overwritten by the running kernel ("Unimplemented: #GP
      // handler" panic). Stopping is not enough: the guest keeps retrying resets for the rest of the
      // time slice and ends in a triple fault. So park the CPU (reset, `cli; hlt` at the reset
      // vector) and boot a fresh machine in its place.
      cpu.reset_cpu();
      cpu.write_blob(PARK_CODE, RESET_VECTOR);
      void this.replace();
    } else {
      reboot();
      machine.acpi?.reset();
      this.agent.reset();
      this.balloon.guestReset();
      this.haltedSince = undefined;
      setImmediate(() => this.emit('restarted'));
    }
    if (byGuest) setImmediate(() => this.emit('reboot'));
  }

  /** Replaces the machine by a freshly booted one (direct kernel boot: reboot and reset). */
  private replace(): Promise<void> {
    const old = this.machine;
    const run = (async () => {
      retire(old);
      await old.emu.destroy();
      const { kernel: bzimage } = this.images;
      const kernel = bzimage && (await bootKernelImage(bzimage, kernelAddressLimit(this.config, this.images)));
      const next = this.createMachine({ kernel });
      await next.loaded;
      this.machine = next;
      this.agent.reset();
      this.haltedSince = undefined;
      this.emit('restarted');
    })();
    this.replacing = run;
    run.then(
      () => (this.replacing = undefined),
      (err: unknown) => this.emit('failure', err),
    );
    return run;
  }

  /** The current machine, once it is loaded and not being replaced. */
  private async current(): Promise<Machine> {
    await this.loaded;
    while (this.replacing) await this.replacing;
    return this.machine;
  }

  private get cpu(): V86Cpu {
    return internals(this.machine.emu).v86.cpu;
  }

  /** Valid once `loaded` has resolved (v86 creates its devices in init). */
  get vga(): VgaDevice {
    return this.cpu.devices.vga;
  }

  get state(): RunState {
    return this.runState;
  }

  /** Synchronous view of `loaded`, for timers that must not touch v86 before it is set up. */
  get ready(): boolean {
    return this.isLoaded;
  }

  get agentConnected(): boolean {
    return this.agent.isConnected;
  }

  onSerialByte(listener: (byte: number) => void): void {
    this.serialListeners.push(listener);
  }

  /** v86's screen-set-size: [cols, rows, 0] in text mode, [width, height, bpp] in graphical modes. */
  onScreenSetSize(listener: () => void): void {
    this.screenListeners.push(listener);
  }

  async pause(): Promise<void> {
    const machine = await this.current();
    this.runState = 'paused';
    // What v86's stop() does at the main loop's next tick, now: that tick may be a timer some
    // milliseconds away (an idle guest), and a migration's downtime starts here. The tick due is
    // skipped by counting past it.
    const { v86 } = internals(machine.emu);
    if (!v86.running) return;
    v86.running = v86.stopping = false;
    v86.tick_counter++;
    v86.bus.send('emulator-stopped');
  }

  async resume(): Promise<void> {
    this.resumeMachine(await this.current());
  }

  private resumeMachine(machine: Machine): void {
    this.runState = 'running';
    void machine.emu.run();
  }

  async serialWrite(bytes: Uint8Array): Promise<void> {
    // Input sent before the machine exists is lost.
    const machine = await this.current();
    machine.emu.serial_send_bytes(0, bytes);
  }

  /** Asks the guest to power off through each of `channels`; says what each did (see ShutdownResult). */
  async requestShutdown(channels: ShutdownChannel[]): Promise<ShutdownResult> {
    const machine = await this.current();
    const result: ShutdownResult = {};
    if (channels.includes('acpi')) {
      result.acpi = !machine.acpi ? 'absent' : machine.acpi.pressPowerButton() ? 'pressed' : 'not-enabled';
    }
    if (channels.includes('agent')) {
      if (!(this.config.guestAgent ?? true)) result.agent = 'absent';
      else if (!this.agent.isConnected) result.agent = 'not-connected';
      else result.agent = (await this.agent.request('poweroff', AGENT_ACK_MS)) ? 'acknowledged' : 'no-answer';
    }
    return result;
  }

  /** Asks the guest to reboot: through its agent if connected, else with Ctrl+Alt+Del. */
  async requestReboot(): Promise<RebootResult['method']> {
    await this.current();
    if (this.agent.isConnected) {
      this.agent.send('reboot');
      return 'agent';
    }
    await this.sendScancodes(CTRL_ALT_DEL);
    return 'ctrl-alt-del';
  }

  /** Hard reset, as the reset button; a paused machine stays paused. */
  async reset(): Promise<void> {
    const machine = await this.current();
    if (this.images.kernel) {
      await this.replace();
      return;
    }
    this.resetting = true;
    try {
      machine.emu.restart();
    } finally {
      this.resetting = false;
    }
  }

  /**
   * Inserts `disk` into the CD-ROM drive (replacing what was there) or, without one, ejects the
   * medium; the guest sees a media change. Returns the disk that was in the drive (to be closed).
   */
  async changeMedia(disk: FileDisk | undefined): Promise<FileDisk | undefined> {
    const machine = await this.current();
    const drive = internals(machine.emu).v86.cpu.devices.cdrom;
    if (!drive) throw new Error('this machine has no CD-ROM drive');
    const previous = this.images.cdrom;
    if (disk) drive.set_cdrom(disk);
    else drive.eject();
    // A direct-kernel machine that reboots is built again from `images`: it keeps the new medium.
    this.images.cdrom = disk;
    return previous;
  }

  /**
   * What a state file holds of the loaded machine (state-payload.ts): its device state, views of its
   * memory, and what the runner knows about the guest. The views change with the guest's memory, so
   * they are written before the event loop turns (statefile.ts TakenPayload).
   */
  saveParts(): { deviceState: Uint8Array; memory: GuestMemory; agentConnected: boolean } {
    if (!this.isLoaded || this.replacing) throw new Error('the machine is being reset; save it again once it runs');
    const { machine } = this;
    return { deviceState: this.deviceStateOf(machine), memory: this.memoryOf(machine), agentConnected: this.agent.isConnected };
  }

  /**
   * Views of guest RAM and VRAM on the live wasm memory, for a migration (made afresh at each call:
   * wasm memory that grows gets a new buffer). Writes through them bypass the JIT's cache: only for a
   * machine whose CPU has not run yet (an incoming one, before adoptState, which clears that cache).
   */
  async memory(): Promise<GuestMemory> {
    return this.memoryOf(await this.current());
  }

  private memoryOf(machine: Machine): GuestMemory {
    const cpu = internals(machine.emu).v86.cpu;
    const { buffer } = cpu.wasm_memory;
    return {
      ram: new Uint8Array(buffer, cpu.mem8.byteOffset, cpu.memory_size[0]),
      vram: new Uint8Array(buffer, cpu.devices.vga.svga_memory.byteOffset, this.config.vgaMemoryBytes),
    };
  }

  /** Sizes of the current machine's wasm memory and of the guest RAM and VRAM in it (undefined before it loads). */
  wasmMemory(): { wasmBytes: number; ramBytes: number; vramBytes: number } | undefined {
    if (!this.isLoaded) return undefined;
    const cpu = internals(this.machine.emu).v86.cpu;
    return { wasmBytes: cpu.wasm_memory.buffer.byteLength, ramBytes: cpu.memory_size[0], vramBytes: cpu.devices.vga.svga_memory.length };
  }

  /**
   * v86's state of the machine without guest RAM and VRAM (a migration sends those page by page): RAM
   * packing is switched off and the VRAM hidden for the one synchronous save_state, so that the guest
   * cannot run in between. About 0.3 MiB instead of the non-zero RAM plus 8 MiB.
   */
  async deviceState(): Promise<Uint8Array> {
    return this.deviceStateOf(await this.current());
  }

  private deviceStateOf(machine: Machine): Uint8Array {
    const { v86 } = internals(machine.emu);
    const { cpu } = v86;
    const vga = cpu.devices.vga;
    const vram = vga.svga_memory;
    cpu.pack_memory = () => ({ bitmap: { get_buffer: () => new ArrayBuffer(0) }, packed_memory: new Uint8Array(0) });
    vga.svga_memory = new Uint8Array(0);
    try {
      return new Uint8Array(v86.save_state());
    } finally {
      delete (cpu as Partial<V86Cpu>).pack_memory;
      vga.svga_memory = vram;
    }
  }

  /** Takes a migrated guest's device state (deviceState on the source) into this incoming machine (see adopt). */
  async adoptState(state: Uint8Array): Promise<void> {
    this.adopt(await this.current(), state);
  }

  /**
   * Takes a device state (deviceStateOf) into an empty machine whose RAM and VRAM already hold the
   * guest's pages: restore_state would zero RAM and unpack the (empty) packed pages, so unpacking is
   * switched off for the call; it also clears the JIT cache and TLB.
   */
  private adopt(machine: Machine, state: Uint8Array): void {
    const { v86 } = internals(machine.emu);
    const { cpu } = v86;
    const vga = cpu.devices.vga;
    cpu.unpack_memory = () => undefined;
    // The full redraw that ends VGA's set_state (~25 ms) only feeds screen captures: done after the
    // guest runs again, out of a migration's downtime or a restore's time to answer.
    vga.complete_redraw = () => undefined;
    try {
      v86.restore_state(new Uint8Array(state).buffer);
    } finally {
      delete (cpu as Partial<V86Cpu>).unpack_memory;
      delete (vga as Partial<VgaDevice>).complete_redraw;
    }
    // v86 takes the RAM size from the state and only warns when it differs: its bounds checks would
    // then reach past guest RAM into v86's own memory.
    if (cpu.memory_size[0] !== this.config.memoryBytes || vga.svga_memory.length !== this.config.vgaMemoryBytes) {
      throw new PayloadError(`the saved guest's device state has ${cpu.memory_size[0]} bytes of RAM and ${vga.svga_memory.length} of VRAM, this machine ${this.config.memoryBytes} and ${this.config.vgaMemoryBytes}`);
    }
    setImmediate(() => vga.complete_redraw());
  }

  /** Starts a migrated guest (adoptState done): `agentConnected` as it was at the source. */
  async startMigrated(running: boolean, agentConnected: boolean): Promise<void> {
    this.agent.reset(agentConnected);
    if (running) await this.resume();
  }


  /** CPUID of the emulated CPU for `leaf`/`subleaf`: [eax, ebx, ecx, edx], run between two guest time slices. */
  async cpuid(leaf: number, subleaf = 0): Promise<[number, number, number, number]> {
    const machine = await this.current();
    const { cpu } = internals(machine.emu).v86;
    const saved = cpu.reg32.slice(0, 4);
    cpu.reg32[0] = leaf;
    cpu.reg32[1] = subleaf;
    try {
      cpu.wm.exports.instr_0FA2();
      const [eax, ecx, edx, ebx] = cpu.reg32;
      return [eax! >>> 0, ebx! >>> 0, ecx! >>> 0, edx! >>> 0];
    } finally {
      cpu.reg32.set(saved);
    }
  }

  /** The CPU's registers now and a view of guest RAM, for a core dump (see coredump.ts). */
  async coreSource(): Promise<CoreSource> {
    const machine = await this.current();
    const cpu = internals(machine.emu).v86.cpu;
    const [eax, ecx, edx, ebx, esp, ebp, esi, edi] = cpu.reg32;
    const [es, cs, ss, ds, fs, gs] = cpu.sreg;
    const registers = { eax, ecx, edx, ebx, esp, ebp, esi, edi, es, cs, ss, ds, fs, gs, eip: cpu.get_real_eip(), eflags: cpu.get_eflags() };
    const offset = cpu.mem8.byteOffset;
    const size = cpu.memory_size[0];
    // Made afresh at each call: wasm memory that grows gets a new buffer.
    const ram = () => new Uint8Array(cpu.wasm_memory.buffer, offset, size);
    return { registers, cr0: cpu.cr[0], cr3: cpu.cr[3], cr4: cpu.cr[4], ram };
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
    await this.current();
    let sent = 0;
    let stalledSince = Date.now();
    while (sent < codes.length) {
      const room = KBD_HIGH_WATER - this.cpu.devices.ps2.kbd_buffer.length;
      // A paused guest reads nothing; wait for it without counting that as a stall.
      if (room > 0 || this.runState === 'paused') stalledSince = Date.now();
      if (room > 0) {
        const n = Math.min(codes.length - sent, room);
        const bus = internals(this.machine.emu).bus;
        for (let i = 0; i < n; i++) bus.send('keyboard-code', codes[sent + i]);
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
    internals(this.machine.emu).bus.send('mouse-delta', [dx, -dy]);
  }

  /** Absolute position for the VMware pointer (used when the guest runs a vmmouse driver). */
  mouseAbsolute(x: number, y: number, width: number, height: number): void {
    internals(this.machine.emu).bus.send('mouse-absolute', [x, y, width, height]);
  }

  mouseButtons(left: boolean, middle: boolean, right: boolean): void {
    internals(this.machine.emu).bus.send('mouse-click', [left, middle, right]);
  }

  /** One wheel notch; positive = up. */
  mouseWheel(notches: number): void {
    internals(this.machine.emu).bus.send('mouse-wheel', [notches, 0]);
  }

  async destroy(): Promise<void> {
    clearInterval(this.haltTimer);
    this.cable?.close();
    this.balloon.close();
    await this.replacing?.catch(() => undefined);
    retire(this.machine);
    await this.machine.emu.destroy();
  }

  private guestPoweredOff(how: 'acpi' | 'halt'): void {
    if (this.poweredOff) return;
    this.poweredOff = true;
    this.emit('poweroff', how);
  }

  // Without ACPI a guest's power-off only halts the CPU with interrupts disabled, which nothing but an
  // NMI (v86 has none) ends. Polled rather than taken from v86's cpu-event-halt so that a restored or
  // paused-then-resumed halted guest is seen too.
  private checkHalt(): void {
    if (!this.isLoaded || this.replacing || this.runState !== 'running') {
      this.haltedSince = undefined;
      return;
    }
    const cpu = this.cpu;
    if (cpu.in_hlt[0] !== 1 || cpu.flags[0] & EFLAGS_IF) {
      this.haltedSince = undefined;
      return;
    }
    this.haltedSince ??= Date.now();
    if (Date.now() - this.haltedSince >= HALT_POWEROFF_MS) this.guestPoweredOff('halt');
  }
}
