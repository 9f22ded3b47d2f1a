// Fast start, as Firecracker's snapshots: a domain keeps the state of its guest just after boot and
// later starts restore it instead of booting. The first start (or the first after a change) boots
// cold; once the guest is ready the host saves its state beside the definition (paused for the save,
// then resumed) and the next starts restore it (running reason 'restored', summary.fastStarted).
//
// Ready means: the guest printed READY_LINE on a serial port (the sample guests' init does; any guest
// can, from a unit that runs once it is up), or, for a guest that prints nothing, a set number of
// seconds after boot (fast-start-after). The guest agent is not used: v86 guests have no channel.
//
// A kept state holds RAM only, so it pairs with the files the guest was booted from exactly as they
// were: its file name carries a fingerprint of the definition (metadata aside) and of the size, mtime
// and inode of each disk, kernel, initrd and loader. Any change gives another fingerprint: the state
// no longer matches, is never restored, and is removed (at the change, or at the next start).
// Writable disks are refused: the guest writes them after the state is taken, and restoring older RAM
// over newer disk contents corrupts the filesystem. A guest with such a disk takes a snapshot instead.
import fs from 'node:fs';
import path from 'node:path';
import type { DomainSummary, FastStartAction } from '../../shared/api.js';
import { fastStart, setFastStart } from './domain/domus-metadata.js';
import { statesOf } from './fast-start-file.js';
import { pendingInstall } from './domain/install-boot.js';
import { parseDomainXml, serializeDomainXml, type DomainDocument } from './domain/xml.js';
import type { LiveDomain } from './drivers/driver.js';
import { invalidArg, operationInvalid } from './errors.js';
import type { Jobs } from './jobs/tracker.js';
import { log } from './log.js';
import { removeHostFile, type DomainRecord, type DomainRegistry } from './registry.js';

/** The line a guest prints on a serial port when it is up (the sample guests' init prints it). */
export const READY_LINE = 'DOMUS-GUEST-READY';
/** A guest not ready within this long keeps no state (it is logged); the next start tries again. */
const READY_TIMEOUT_MS = 10 * 60_000;
/** Longest fast-start-after accepted (seconds). */
export const MAX_AFTER_SEC = 3600;

export class FastStart {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly jobs: Jobs,
    private readonly dir: string,
  ) {}

  /** Why fast start cannot be used with this definition, or undefined. */
  cannot(doc: DomainDocument): string | undefined {
    const writable = doc.config.disks.find((d) => d.device !== 'cdrom' && d.source && !d.readonly);
    if (writable) {
      return `disk '${writable.target}' is writable, and a kept state restored over disk contents the guest changed since would corrupt them; make the disk <readonly/> or use snapshots`;
    }
    if (pendingInstall(doc)) return 'its install is not finished';
    return undefined;
  }

  /** domus fast-start: enable (optionally `afterSec` after boot instead of the ready line), disable (the state goes), refresh (the state goes, the next start takes a new one). */
  set(ref: string, action: FastStartAction, afterSec?: number): DomainSummary {
    const rec = this.registry.lookup(ref);
    const { name } = rec.doc.config;
    if (afterSec !== undefined && action !== 'enable') throw invalidArg('a delay after boot is given only with enable');
    if (afterSec !== undefined && !(Number.isInteger(afterSec) && afterSec >= 1 && afterSec <= MAX_AFTER_SEC)) {
      throw invalidArg(`the delay after boot must be a whole number of seconds from 1 to ${MAX_AFTER_SEC}, not ${afterSec}`);
    }
    if (action === 'refresh') {
      if (!fastStart(rec.doc)) throw operationInvalid(`domain '${name}' does not use fast start`);
      this.dropAll(rec.doc.config.uuid);
    } else {
      if (!rec.persistent) throw operationInvalid(`cannot set fast start of transient domain '${name}'`);
      const refused = action === 'enable' ? this.cannot(rec.doc) : undefined;
      if (refused) throw operationInvalid(`domain '${name}' cannot use fast start: ${refused}`);
      const draft = parseDomainXml(serializeDomainXml(rec.doc));
      setFastStart(draft, action === 'enable' ? { afterSec } : undefined);
      this.registry.persist(rec, draft);
      if (action === 'disable') this.dropAll(rec.doc.config.uuid);
    }
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  /** The kept state this definition may start from (stale ones are removed), or undefined. */
  keptState(rec: DomainRecord): string | undefined {
    if (!fastStart(rec.doc) || this.cannot(rec.doc)) {
      this.dropAll(rec.doc.config.uuid);
      return undefined;
    }
    const file = this.registry.fastStartFile(rec.doc);
    this.dropOthers(rec.doc.config.uuid, file);
    return fs.existsSync(file) ? file : undefined;
  }

  /**
   * A cold boot of `doc` (the definition as booted): once the guest is ready, its state is saved for
   * that definition. A change meanwhile gives another fingerprint, so the state is never used for it.
   */
  watch(rec: DomainRecord, live: LiveDomain, doc: DomainDocument): void {
    const setting = fastStart(doc);
    if (!setting || this.cannot(doc)) return;
    const file = this.registry.fastStartFile(doc);
    let carry = '';
    let done = false;
    const stop = (): void => {
      done = true;
      clearTimeout(timer);
      live.off('serial', onSerial);
      live.off('exit', stop);
    };
    const ready = (): void => {
      if (done) return;
      stop();
      this.capture(rec, live, file).catch((err: Error) => log('warn', `domain '${rec.doc.config.name}': no fast-start state kept: ${err.message}`));
    };
    // Only the tail of the last chunk is kept: the line may be split across chunks.
    const onSerial = (data: Buffer): void => {
      const text = carry + data.toString('latin1');
      if (text.includes(READY_LINE)) ready();
      else carry = text.slice(-READY_LINE.length);
    };
    const timer = setTimeout(() => {
      if (setting.afterSec !== undefined) return ready();
      stop();
      log('warn', `domain '${rec.doc.config.name}': the guest did not print ${READY_LINE} within ${READY_TIMEOUT_MS / 1000} s; no fast-start state kept`);
    }, setting.afterSec !== undefined ? setting.afterSec * 1000 : READY_TIMEOUT_MS);
    if (setting.afterSec === undefined) live.on('serial', onSerial);
    live.on('exit', stop);
  }

  private async capture(rec: DomainRecord, live: LiveDomain, file: string): Promise<void> {
    const { uuid, name } = rec.doc.config;
    if (rec.live !== live || rec.step || live.state !== 'running') throw new Error('the guest was busy or not running when it became ready');
    const job = this.jobs.begin(uuid, name, 'save', () => Promise.resolve());
    const before = { state: rec.state, reason: rec.reason };
    this.registry.setState(rec, 'paused', before.reason, 'saving');
    try {
      // The state file is written atomically (statefile.ts): a crash leaves no half state behind.
      await live.save(file, { domainXml: serializeDomainXml(rec.liveDoc ?? rec.doc), name, uuid }, (d, t) => job.progress(d, t));
      await live.resume();
    } catch (err) {
      if (rec.live === live) await live.resume().catch(() => undefined);
      job.finish('failed', (err as Error).message);
      throw err;
    } finally {
      if (rec.live === live) this.registry.setState(rec, before.state, before.reason, null);
    }
    job.finish('completed');
    // Stale when the definition changed while the guest booted: it is then never restored.
    this.dropOthers(uuid, this.registry.fastStartFile(rec.doc));
    this.registry.emitLifecycle(rec, 'defined');
    log('info', `domain '${name}': fast-start state kept (${path.basename(file)})`);
  }

  private dropOthers(uuid: string, keep: string): void {
    for (const f of statesOf(this.dir, uuid)) if (f !== keep) removeHostFile(f);
  }

  dropAll(uuid: string): void {
    for (const f of statesOf(this.dir, uuid)) removeHostFile(f);
  }
}
