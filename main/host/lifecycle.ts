// Domain lifecycle: boot and restore through the driver registry, adoption of a live guest (its
// serial output, state changes, reboots, balloon and exit become the domain's states, reasons and
// events), re-attach to guests an earlier host left running, and the power operations (start,
// shutdown with its timeout, destroy, reboot, reset, suspend, resume).
import fs from 'node:fs';
import type { Events, Result, ShutdownMode } from '../../shared/api.js';
import type { DomainSummary } from '../../shared/api.js';
import type { StateReason } from '../../shared/libvirt/states.js';
import { completeInstall, installTimeDocument, pendingInstall } from './domain/install-boot.js';
import { parseDomainXml, serializeDomainXml, type DomainDocument } from './domain/xml.js';
import type { LiveDomain, Reattached, ShutdownChannel, StartedDomain } from './drivers/driver.js';
import type { DriverRegistry } from './drivers/registry.js';
import type { CoreDumps } from './jobs/core-dump.js';
import { configUnsupported, operationFailed, operationInvalid, operationUnsupported } from './errors.js';
import type { FastStart } from './fast-start.js';
import { log } from './log.js';
import { assignTargets } from './network/interface-xml.js';
import type { Networks } from './network/networks.js';
import { removeHostFile, type DomainRecord, type DomainRegistry, type HostEventBus } from './registry.js';
import { ignoredBecause, shutdownOutcome, unreachableError } from './shutdown.js';
import { diskConflict } from './storage/in-use.js';

/** How long a clean shutdown may take before the domain is forced off (virsh has no default; the seed used 60 s). */
export const DEFAULT_SHUTDOWN_TIMEOUT_SEC = Number(process.env.DOMUS_SHUTDOWN_TIMEOUT ?? 60);

export interface BootOptions {
  paused?: boolean;
  restoreFrom?: string;
  /** The definition the state file was saved with (restore). */
  liveXml?: string;
  /** The state file is the domain's fast-start state (its summaries say so from the start event on). */
  fastStart?: boolean;
}

export class Lifecycle {
  private nextId = 1;

  constructor(
    private readonly registry: DomainRegistry,
    private readonly drivers: DriverRegistry,
    private readonly events: HostEventBus,
    private readonly networks: Networks,
    private readonly dumps: CoreDumps,
    private readonly fastStart: FastStart,
  ) {}

  /** Attaches to the guests an earlier host left running, and records why the others ended. */
  async reattach(): Promise<void> {
    const found = new Map<string, Reattached>();
    for (const driver of this.drivers.all()) for (const [uuid, result] of await driver.reattachAll()) found.set(uuid, result);
    for (const [uuid, result] of found) {
      const rec = this.registry.get(uuid);
      if ('exited' in result) {
        // The guest ended while no host was attached: record why.
        if (rec) this.registry.setState(rec, 'shutoff', result.exited, null);
        continue;
      }
      if (!rec) {
        log('warn', `runner for unknown domain ${uuid} left running; destroying it`);
        await result.live.destroy().catch(() => undefined);
        continue;
      }
      rec.liveDoc = result.liveXml ? parseDomainXml(result.liveXml) : rec.doc;
      this.adopt(rec, result.live);
      rec.state = result.live.state;
      rec.reason = result.live.state === 'paused' ? 'user' : result.live.restored ? 'restored' : 'booted';
    }
  }

  async start(ref: string, opts: { paused?: boolean } = {}): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    if (rec.live || rec.step) throw operationInvalid(`domain '${rec.doc.config.name}' is already active`);
    const saved = this.registry.managedSavePath(rec.doc.config.uuid);
    if (fs.existsSync(saved)) {
      // Never cold-boot over a saved state: restore it, or fail and keep it.
      await this.boot(rec, { paused: opts.paused, restoreFrom: saved });
      try {
        removeHostFile(saved);
      } catch (err) {
        // The guest runs from it already: the start succeeded, but a later one would restore it again.
        log('error', `domain '${rec.doc.config.name}' restored, but ${(err as Error).message}; remove it before the next start (managedsave-remove)`);
      }
    } else {
      await this.bootOrFastStart(rec, opts.paused);
    }
    return this.registry.summary(rec);
  }

  /** A start without a managed save: from the kept fast-start state when there is one, else cold. */
  private async bootOrFastStart(rec: DomainRecord, paused?: boolean): Promise<void> {
    const kept = this.fastStart.keptState(rec);
    if (kept) {
      try {
        await this.boot(rec, { paused, restoreFrom: kept, fastStart: true });
        return;
      } catch (err) {
        // The state is a cache (an engine upgrade may not read it): it goes and the guest boots cold.
        log('warn', `domain '${rec.doc.config.name}': fast-start state not restored (${(err as Error).message}); booting cold`);
        removeHostFile(kept);
      }
    }
    await this.boot(rec, { paused });
  }

  /**
   * Boots (or restores) a record's guest on its engine and adopts it; the record is shutoff/failed
   * when it cannot. A definition no engine here can run is refused first, with the reason, and the
   * record is left as it was (libvirt's "unsupported configuration" at start).
   */
  async boot(rec: DomainRecord, opts: BootOptions): Promise<void> {
    const restoring = opts.restoreFrom !== undefined;
    // While an install is pending, each boot runs the install-time definition (the media first).
    const liveDoc = opts.liveXml
      ? this.registry.parse(opts.liveXml)
      : pendingInstall(rec.doc)
        ? installTimeDocument(rec.doc)
        : parseDomainXml(serializeDomainXml(rec.doc));
    // Asked afresh: an engine may have become available (or gone) since the definition was judged.
    if (!opts.liveXml) this.registry.judge(rec);
    const cannotStart = this.drivers.cannotStart(liveDoc);
    if (cannotStart) throw configUnsupported(`domain '${rec.doc.config.name}' ${cannotStart}`);
    // As libvirt: a guest on a network that is not there, or not started, does not start.
    const unavailable = await this.networks.checkInterfaces(liveDoc.config);
    if (unavailable) throw unavailable;
    assignTargets(liveDoc, this.registry.runningTargets());
    const conflict = diskConflict(rec.doc.config.uuid, (opts.liveXml ? liveDoc : rec.doc).config.disks, this.registry.diskUsers());
    if (conflict) throw operationInvalid(conflict);
    this.registry.setState(rec, rec.state, rec.reason, restoring ? 'restoring' : 'starting');
    let handle: LiveDomain;
    try {
      const started = await this.drivers.start(liveDoc, { paused: opts.paused, restoreFrom: opts.restoreFrom });
      handle = started.live;
      rec.liveDoc = liveDoc;
      rec.startNotes = started.notes;
    } catch (err) {
      this.registry.setState(rec, 'shutoff', restoring ? rec.reason : 'failed', null);
      throw operationFailed((err as Error).message);
    }
    rec.serialHistory.clear();
    rec.fastStarted = opts.fastStart ?? false;
    this.adopt(rec, handle);
    if (!restoring && !opts.liveXml) this.fastStart.watch(rec, handle, liveDoc);
    rec.state = handle.state;
    rec.reason = opts.paused ? 'user' : restoring ? 'restored' : 'booted';
    rec.step = null;
    this.registry.emitLifecycle(rec, opts.paused ? 'suspended' : 'started');
  }

  /** A guest that arrived by migration (migration/destination.ts): started/migrated, then resumed/migrated when it runs. */
  adoptMigrated(rec: DomainRecord, started: StartedDomain, liveDoc: DomainDocument): void {
    rec.liveDoc = liveDoc;
    rec.startNotes = started.notes;
    rec.serialHistory.clear();
    this.adopt(rec, started.live);
    rec.state = started.live.state;
    rec.reason = 'migrated';
    rec.step = null;
    this.registry.emitLifecycle(rec, 'started');
    if (rec.state === 'running') this.registry.emitLifecycle(rec, 'resumed');
  }

  async destroy(ref: string): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const live = this.registry.requireLive(rec);
    rec.stopping = 'destroyed';
    await live.destroy();
    return this.registry.summary(rec);
  }

  /**
   * Clean shutdown, as virsh's with xendomains' timeout: asks the guest through the channels it has
   * (or those named), then forces it off (reason destroyed) when it has not powered off within the
   * timeout. A guest that cannot be asked at all is forced off at once, or, when the caller only
   * requests, refused. See RequestParams['domain.shutdown'] for the options.
   */
  async shutdown(
    ref: string,
    opts: { modes?: ShutdownMode[]; force?: boolean; unreachable?: 'force' | 'fail'; timeoutSec?: number } = {},
  ): Promise<Result<'domain.shutdown'>> {
    const rec = this.registry.lookup(ref);
    const live = this.registry.requireLive(rec);
    const name = rec.doc.config.name;
    const driver = this.registry.driverOf(rec);
    const engine = driver.engine;
    const can: readonly string[] = driver.capabilities.shutdownModes;
    const cannot = (opts.modes ?? []).filter((m) => !can.includes(m));
    if (cannot.length) {
      throw operationUnsupported(`the ${engine} engine cannot shut a guest down by ${cannot.map((m) => `'${m}'`).join(', ')}; it can use ${can.map((m) => `'${m}'`).join(' and ')}`);
    }
    const force = opts.force ?? opts.modes === undefined;
    const timeoutSec = opts.timeoutSec ?? DEFAULT_SHUTDOWN_TIMEOUT_SEC;
    const heard = await live.shutdown((opts.modes as ShutdownChannel[] | undefined) ?? driver.capabilities.shutdownModes);
    const outcome = shutdownOutcome(heard, engine);
    if (!outcome.asked.length) {
      if ((opts.unreachable ?? (force ? 'force' : 'fail')) === 'fail') throw unreachableError(name, heard, outcome);
      const message = `domain '${name}' cannot be asked to shut down (${outcome.notes.join('; ')}): forced off`;
      await this.forceOff(rec, live, message);
      return { domain: this.registry.summary(rec), asked: [], forced: true, message };
    }
    this.registry.setState(rec, rec.state, rec.reason, 'shutting-down');
    clearTimeout(rec.shutdownTimer);
    rec.shutdownTimer = setTimeout(() => {
      if (rec.live !== live) return;
      const late = `domain '${name}' did not shut down within ${timeoutSec} s: ${ignoredBecause(heard)}`;
      if (force) {
        void this.forceOff(rec, live, `${late}; forced off`);
      } else {
        // Only a request: the guest keeps running, and the step says the request is over.
        log('info', late);
        this.registry.setState(rec, rec.state, rec.reason, null, late);
      }
    }, timeoutSec * 1000);
    return { domain: this.registry.summary(rec), asked: outcome.asked, forced: false, message: outcome.notes.join('; ') || undefined };
  }

  /** Resolves once the domain has stopped, with its 'stopped' event (for host stop and tests); at once when it is not running. */
  whenStopped(ref: string): Promise<Events['domain.lifecycle']> {
    const rec = this.registry.lookup(ref);
    if (!rec.live) return Promise.resolve({ domain: this.registry.summary(rec), event: 'stopped' });
    return new Promise((resolve) => {
      const listener = (e: Events['domain.lifecycle']): void => {
        if (e.domain.uuid === rec.doc.config.uuid && e.event === 'stopped') {
          this.events.off('domain.lifecycle', listener);
          resolve(e);
        }
      };
      this.events.on('domain.lifecycle', listener);
    });
  }

  async reboot(ref: string): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    await this.registry.requireLive(rec).reboot();
    return this.registry.summary(rec);
  }

  async reset(ref: string): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    await this.registry.requireLive(rec).reset();
    return this.registry.summary(rec);
  }

  async suspend(ref: string): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const live = this.registry.requireLive(rec);
    if (rec.state === 'paused') throw operationInvalid(`domain '${rec.doc.config.name}' is already paused`);
    await live.pause();
    return this.registry.summary(rec);
  }

  async resume(ref: string): Promise<DomainSummary> {
    const rec = this.registry.lookup(ref);
    const live = this.registry.requireLive(rec);
    if (rec.state !== 'paused') throw operationInvalid(`domain '${rec.doc.config.name}' is not paused`);
    await live.resume();
    return this.registry.summary(rec);
  }

  /** Drops every runner connection, leaving the guests running (a killed host does the same). */
  detachAll(): void {
    for (const rec of this.registry.records()) rec.live?.detach();
  }

  /** Destroys a domain on the host's own decision; `why` goes with its 'stopped' event and the log. */
  private async forceOff(rec: DomainRecord, live: LiveDomain, why: string): Promise<void> {
    log('info', why);
    rec.stopping = 'destroyed';
    rec.stopDetail = why;
    await live.destroy();
  }

  /** Makes a live guest the record's: its events become the domain's states, reasons and events. */
  private adopt(rec: DomainRecord, handle: LiveDomain): void {
    const { registry } = this;
    rec.live = handle;
    rec.id = this.nextId++;
    rec.cpuPercent = 0;
    rec.lastSample = undefined;
    rec.balloon = undefined;
    rec.stopping = undefined;
    const serial = (data: Buffer): void => {
      if (!data.length) return;
      rec.serialHistory.push(data);
      this.events.emit('domain.serial', { uuid: rec.doc.config.uuid, data: data.toString('base64') });
    };
    handle.on('serial', serial);
    serial(handle.takeSerialBacklog());
    handle.on('state', (state) => {
      // Pauses and resumes that are part of a save, a dump, a snapshot or a migration, or of a panic, are not the user's.
      if (rec.step === 'saving' || rec.step === 'dumping' || rec.step === 'snapshotting' || rec.step === 'migrating' || rec.state === 'crashed') return;
      registry.setState(rec, state, state === 'paused' ? 'user' : 'unpaused', rec.step);
      registry.emitLifecycle(rec, state === 'paused' ? 'suspended' : 'resumed');
    });
    handle.on('rebooted', () => {
      registry.emitLifecycle(rec, 'rebooted');
      // The installer's reboot: the install is over, the next boot is the final definition's.
      if (rec.live === handle && rec.liveDoc && pendingInstall(rec.liveDoc) && this.finishInstall(rec)) {
        rec.restartAfter = 'install';
        rec.stopping = 'shutdown';
        void handle.destroy();
      }
    });
    handle.on('panicked', (detail) => void this.crashed(rec, handle, detail));
    handle.on('balloon', (b) => {
      rec.balloon = b;
      this.events.emit('domain.balloon', { uuid: rec.doc.config.uuid, name: rec.doc.config.name, actualKiB: b.actualKiB });
    });
    handle.on('exit', ({ reason, detail }) => {
      clearTimeout(rec.shutdownTimer);
      // Our own destroy wins over what the runner saw; a guest power-off during a shutdown is 'shutdown'.
      const why: StateReason = rec.stopping ?? reason;
      if (why === 'shutdown' && rec.liveDoc && pendingInstall(rec.liveDoc)) this.finishInstall(rec);
      const restart = rec.restartAfter;
      rec.restartAfter = undefined;
      rec.live = undefined;
      rec.liveDoc = undefined;
      rec.id = undefined;
      rec.cpuPercent = 0;
      rec.stopping = undefined;
      const stopDetail = why === 'destroyed' ? rec.stopDetail : why === 'crashed' ? (rec.stopDetail ?? detail) : undefined;
      rec.stopDetail = undefined;
      if (stopDetail && why === 'crashed') log('warn', `domain '${rec.doc.config.name}' crashed: ${stopDetail}`);
      // A guest that panicked had its 'crashed' event then.
      const panicked = rec.state === 'crashed';
      registry.setState(rec, 'shutoff', why, null);
      if (why === 'shutdown') registry.emitLifecycle(rec, 'shutdown');
      if (why === 'crashed' && !panicked) registry.emitLifecycle(rec, 'crashed', stopDetail);
      registry.emitLifecycle(rec, 'stopped', stopDetail);
      if (!rec.persistent) {
        registry.remove(rec.doc.config.uuid);
        this.events.emit('domain.undefined', { uuid: rec.doc.config.uuid, name: rec.doc.config.name });
      } else if (restart) {
        this.start(rec.doc.config.uuid).catch((err: Error) => log('error', `start of '${rec.doc.config.name}' after its ${restart} failed: ${err.message}`));
      }
    });
  }

  /**
   * The guest panicked and its engine paused it: state crashed/panicked, then what <on_crash> says
   * (libvirt's actions): preserve keeps it so (it can be dumped, then destroyed); coredump-destroy and
   * coredump-restart first dump it to <home>/dump/; every other action stops it with reason crashed,
   * and restart, rename-restart and coredump-restart then start it again.
   */
  private async crashed(rec: DomainRecord, live: LiveDomain, detail: string): Promise<void> {
    if (rec.live !== live) return;
    const name = rec.doc.config.name;
    const action = (rec.liveDoc ?? rec.doc).config.onCrash;
    log('warn', `domain '${name}' panicked (${detail}); <on_crash> is ${action}`);
    this.registry.setState(rec, 'crashed', 'panicked', null);
    this.registry.emitLifecycle(rec, 'crashed', detail);
    if (action === 'preserve') return;
    let why = detail;
    if (action === 'coredump-destroy' || action === 'coredump-restart') {
      try {
        const { file, job } = await this.dumps.crashDump(rec);
        why = job.status === 'completed' ? `${detail}; core dumped to ${file}` : `${detail}; the core dump failed: ${job.error}`;
      } catch (err) {
        why = `${detail}; the core dump failed: ${(err as Error).message}`;
      }
      log('info', `domain '${name}': ${why}`);
    }
    if (rec.live !== live) return;
    rec.stopping = 'crashed';
    rec.stopDetail = why;
    if (action === 'restart' || action === 'rename-restart' || action === 'coredump-restart') rec.restartAfter = 'crash';
    await live.destroy();
  }

  /**
   * The install is over: the persistent definition loses its pending-install note. False when the
   * definition could not be written (a full disk): it keeps the note, and the error is logged,
   * since this runs on the runner's events with no caller to tell.
   */
  private finishInstall(rec: DomainRecord): boolean {
    if (!pendingInstall(rec.doc)) return true;
    try {
      this.registry.persist(rec, completeInstall(rec.doc));
    } catch (err) {
      log('error', `domain '${rec.doc.config.name}': install finished, but the final definition could not be saved: ${(err as Error).message}`);
      return false;
    }
    log('info', `domain '${rec.doc.config.name}': install finished, next boot from the final definition`);
    return true;
  }
}
