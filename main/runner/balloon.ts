// The guest's memory balloon: v86's virtio-balloon device (shared/notes/v86.md §8) driven with an
// absolute target, the guest's own memory statistics, and the "no driver" verdict. v86 only counts
// the pages the guest hands over; wasm memory never shrinks, so no host RAM comes back. What the
// runner can do is ask the guest for free-page hints (v86 zeroes the hinted pages) once the balloon
// has settled, so that a later save, which skips zero pages, gets smaller.
import { EventEmitter } from 'node:events';
import type { BalloonReport, BalloonStatus, GuestMemoryStats } from './protocol.js';

/** v86's VirtioBalloon (src/virtio_balloon.js), the fields and methods used here. */
export interface V86Balloon {
  /** Target: pages the guest should have handed over (4 KiB each). */
  num_pages: number;
  /** Pages the guest has handed over, counted from the inflate and deflate queues. */
  actual: number;
  virtio: { notify_config_changes(): void; device_status: number };
  /** Releases the guest's pending statistics buffer; `cb` gets each report the guest sends back. */
  GetStats(cb: (stats: Record<string, number>) => void): void;
  /**
   * Free-page hinting (what v86's Cleanup() sets up): the command id the guest reads; when it changes
   * to a new id (>= 2) the guest reports its free pages, which v86 zeroes (counting `zeroed`), and
   * `free_cb(zeroed)` runs when the guest says it is done. Cleanup() always uses id 2, and Linux
   * ignores an id it has already served, so the runner sets a fresh id itself each time.
   */
  fp_cmd: number;
  free_cb: ((zeroedBytes: number) => void) | undefined;
  zeroed: number;
}

const PAGE_KiB = 4;
/** virtio status bits: the guest's virtio core has seen the device; its driver runs the device. */
const VIRTIO_ACKNOWLEDGE = 1;
const VIRTIO_DRIVER_OK = 4;
/** A guest that has seen the device and not followed a target within this long has no working balloon driver. */
export const BALLOON_NO_DRIVER_MS = Number(process.env.DOMUS_BALLOON_TIMEOUT_MS ?? 5000);
/**
 * A guest that has not even looked at its virtio devices is still booting (its driver may yet load),
 * unless it has been running this long: then it has no virtio support at all.
 */
const BALLOON_BOOT_GRACE_MS = 300_000;
const POLL_MS = 100;
const GUEST_STATS_TIMEOUT_MS = 1500;

export interface BalloonEvents {
  /** What the guest holds changed (libvirt's BALLOON_CHANGE). */
  change: [BalloonReport];
}

export class Balloon extends EventEmitter<BalloonEvents> {
  private device: V86Balloon | undefined;
  /** Balloon size in pages that a fresh machine starts with (the boot target, then the last one set). */
  private wantedPages: number;
  private requestedAt = Date.now();
  private attachedAt = Date.now();
  /** When the guest's virtio core first acknowledged the device (it enumerates virtio devices). */
  private seenAt: number | undefined;
  private driverOkAt: number | undefined;
  private reportedActual = -1;
  /** The balloon moved since the last free-page hinting (a fresh boot's memory is zero already). */
  private moved = false;
  private guest: GuestMemoryStats | undefined;
  private statsWaiters: (() => void)[] = [];
  /** The last free-page hinting command id (virtio ids 0 and 1 mean stop and done). */
  private hintId = 1;
  private readonly timer: NodeJS.Timeout;

  constructor(
    /** Guest RAM, the balloon's maximum. */
    readonly maxKiB: number,
    targetKiB: number,
    private readonly log: (message: string) => void,
  ) {
    super();
    this.wantedPages = this.pagesFor(targetKiB);
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  /**
   * A machine was set up. `booting`: a fresh (or reset) guest, whose balloon starts empty and gets
   * the current target before its driver probes; otherwise (a restored state) the device already
   * holds its target and actual.
   */
  attach(device: V86Balloon | undefined, booting: boolean): void {
    if (this.device && this.device !== device) this.wantedPages = this.device.num_pages;
    this.device = device;
    this.attachedAt = Date.now();
    this.seenAt = undefined;
    this.driverOkAt = undefined;
    this.guest = undefined;
    if (!device) return;
    if (booting) {
      device.num_pages = this.wantedPages;
      device.actual = 0;
      this.requestedAt = Date.now();
      this.moved = this.wantedPages > 0;
    }
  }

  /** The guest reset the machine: its driver starts over with an empty balloon. */
  guestReset(): void {
    this.attach(this.device, true);
  }

  /** Sets the absolute target (v86 only has relative Inflate/Deflate). */
  setTarget(targetKiB: number): BalloonReport {
    const device = this.device;
    if (!device) throw new Error('the domain has no balloon device');
    if (!(targetKiB > 0 && targetKiB <= this.maxKiB)) throw new Error(`balloon target ${targetKiB} KiB is outside 1..${this.maxKiB} KiB`);
    const pages = this.pagesFor(targetKiB);
    this.wantedPages = pages;
    if (device.num_pages !== pages) {
      device.num_pages = pages;
      device.virtio.notify_config_changes();
      this.requestedAt = Date.now();
      this.moved = true;
    }
    return this.report();
  }

  report(): BalloonReport {
    const device = this.device;
    const pages = device ? device.num_pages : this.wantedPages;
    const actual = device ? device.actual : 0;
    return {
      maxKiB: this.maxKiB,
      targetKiB: this.maxKiB - pages * PAGE_KiB,
      actualKiB: this.maxKiB - actual * PAGE_KiB,
      status: this.status(),
      guest: this.guest,
    };
  }

  /** The guest's memory statistics (fresh when its driver answers in time), with the report. */
  async reportWithGuestStats(): Promise<BalloonReport> {
    const device = this.device;
    if (device && this.driverOk) {
      const asked = Date.now();
      const fresh = new Promise<void>((resolve) => {
        const timer = setTimeout(done, GUEST_STATS_TIMEOUT_MS);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.statsWaiters.push(done);
      });
      // The guest keeps one statistics buffer queued; releasing it makes the driver refill it.
      device.GetStats((raw) => this.guestStats(raw));
      await fresh;
      if (this.guest && this.guest.at < asked) this.log('balloon: the guest did not refresh its memory statistics in time');
    }
    return this.report();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private get driverOk(): boolean {
    return ((this.device?.virtio.device_status ?? 0) & VIRTIO_DRIVER_OK) !== 0;
  }

  private status(): BalloonStatus {
    const device = this.device;
    if (!device) return 'absent';
    if (device.actual === device.num_pages) return 'ok';
    this.notice(device);
    const now = Date.now();
    // Not looked at yet: the guest is still booting, and 'no-driver' would be a guess.
    if (this.seenAt === undefined) return now - this.attachedAt < BALLOON_BOOT_GRACE_MS ? 'pending' : 'no-driver';
    // The clock starts at the request, or when the guest's virtio core or driver shows up later.
    const since = Math.max(this.requestedAt, this.driverOkAt ?? this.seenAt);
    return now - since < BALLOON_NO_DRIVER_MS ? 'pending' : 'no-driver';
  }

  private pagesFor(targetKiB: number): number {
    return Math.max(0, Math.round((this.maxKiB - Math.min(targetKiB, this.maxKiB)) / PAGE_KiB));
  }

  private guestStats(raw: Record<string, number>): void {
    const kib = (v: number | undefined) => (v === undefined ? undefined : Math.round(v / 1024));
    this.guest = {
      at: Date.now(),
      totalKiB: kib(raw.MEMTOT),
      freeKiB: kib(raw.MEMFREE),
      availableKiB: kib(raw.AVAIL),
      cachesKiB: kib(raw.CACHES),
      swapInKiB: kib(raw.SWAP_IN),
      swapOutKiB: kib(raw.SWAP_OUT),
      majorFaults: raw.MAJFLT,
      minorFaults: raw.MINFLT,
    };
    for (const w of this.statsWaiters.splice(0)) w();
  }

  private poll(): void {
    const device = this.device;
    if (!device) return;
    this.notice(device);
    if (device.actual !== this.reportedActual) {
      this.reportedActual = device.actual;
      this.emit('change', this.report());
    }
    if (this.moved && device.actual === device.num_pages && this.driverOk) {
      this.moved = false;
      this.hintFreePages(device);
    }
  }

  /** Notes when the guest's virtio core, then its balloon driver, first took up the device. */
  private notice(device: V86Balloon): void {
    if (this.seenAt === undefined && device.virtio.device_status & VIRTIO_ACKNOWLEDGE) this.seenAt = Date.now();
    if (this.driverOkAt === undefined && this.driverOk) this.driverOkAt = Date.now();
  }

  /** Pages the guest freed keep their old bytes in wasm memory; have the guest report them so v86 zeroes them. */
  private hintFreePages(device: V86Balloon): void {
    this.hintId = this.hintId >= 0x7fffffff ? 2 : this.hintId + 1;
    const t0 = Date.now();
    device.zeroed = 0;
    device.free_cb = (zeroed) => this.log(`balloon: free-page hinting zeroed ${Math.round(zeroed / 1024)} KiB in ${Date.now() - t0} ms`);
    device.fp_cmd = this.hintId;
    device.virtio.notify_config_changes();
  }
}
