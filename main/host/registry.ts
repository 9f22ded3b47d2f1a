// The domain registry (libvirt's src/conf for Domus): every domain the host knows, persistent or
// transient, with its next-boot definition, its running one, and its state and reason; the files
// that persist them (definitions, autostart marks, managed saves); and the summaries and lifecycle
// events clients see. The operations (lifecycle.ts, save-restore.ts, devices.ts, …) change records
// only through it.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { DomainSummary, Events, LifecycleEvent } from '../../shared/api.js';
import type { DefinitionWarning, DomainConfig, DomainStep } from '../../shared/domain.js';
import type { DomainState, StateReason } from '../../shared/libvirt/states.js';
import { FileWriteError, systemErrorText, writeFileAtomic } from '../common/fsutil.js';
import { fastStart, onHostStop } from './domain/domus-metadata.js';
import { stateFile, statesOf } from './fast-start-file.js';
import { DomainXmlError, ensureInterfaceMacs, ensureUuid, parseDomainXml, serializeDomainXml, type DomainDocument } from './domain/xml.js';
import type { BalloonInfo, EngineDriver, ExitReason, LiveDomain } from './drivers/driver.js';
import type { DriverRegistry } from './drivers/registry.js';
import { definitionChanged, noDomain, operationFailed, operationInvalid, systemError, xmlError } from './errors.js';
import { log } from './log.js';
import { interfaceTargets } from './network/interface-xml.js';
import type { HostPaths } from '../common/paths.js';
import type { PreviousSample } from './stats.js';
import type { DiskUser } from './storage/in-use.js';
import { SerialHistory } from './serial-history.js';

export interface DomainRecord {
  /** The persistent definition (next boot). */
  doc: DomainDocument;
  /** generation(doc), kept so that summaries do not serialize the XML. */
  generation: number;
  /** The running definition (libvirt's live XML); set while active. */
  liveDoc?: DomainDocument;
  warnings: DefinitionWarning[];
  /** Why the definition cannot start here (registry.supported); start refuses it with this reason. */
  cannotStart?: string;
  persistent: boolean;
  state: DomainState;
  reason: StateReason;
  step: DomainStep;
  id?: number;
  live?: LiveDomain;
  /** Why the runner is being stopped by us, so its exit gets the right reason. */
  stopping?: ExitReason | 'saved' | 'from snapshot' | 'migrated';
  /**
   * Start again once the guest has stopped: install (the install boot ended with a guest reboot; the
   * next boot is the final definition's), crash (<on_crash> restart, rename-restart, coredump-restart).
   */
  restartAfter?: 'install' | 'crash';
  shutdownTimer?: NodeJS.Timeout;
  /** Why the host forced the domain off, for its 'stopped' event. */
  stopDetail?: string;
  cpuPercent: number;
  cpuTimeMs: number;
  /** Counters of the last statistics sample (for rates). */
  lastSample?: PreviousSample;
  /** The balloon as the engine last reported it. */
  balloon?: BalloonInfo;
  serialHistory: SerialHistory;
  /** The running guest was started from its fast-start state (fast-start.ts). */
  fastStarted?: boolean;
  /** Which engine (and accelerator) runs the domain, told by domain.start. */
  startNotes?: DefinitionWarning[];
}

export type HostEvents = { [E in keyof Events]: [Events[E]] };

/** The host's event bus: every emit is traced (Host.emit). */
export type HostEventBus = EventEmitter<HostEvents>;

/** What the engines say of a definition: what it loses, and why it cannot start here (if so). */
export interface Support {
  warnings: DefinitionWarning[];
  cannotStart?: string;
}

export class DomainRegistry {
  private readonly domains = new Map<string, DomainRecord>();

  constructor(
    private readonly paths: HostPaths,
    private readonly drivers: DriverRegistry,
    private readonly events: HostEventBus,
  ) {}

  /** Reads the persistent definitions; an unreadable one is skipped and logged. */
  load(): void {
    for (const file of fs.readdirSync(this.paths.domains)) {
      if (!file.endsWith('.xml')) continue;
      const full = path.join(this.paths.domains, file);
      try {
        const doc = parseDomainXml(fs.readFileSync(full, 'utf8'));
        this.domains.set(doc.config.uuid, this.newRecord(doc, true));
      } catch (err) {
        log('error', `skipping unreadable definition ${full}: ${(err as Error).message}`);
      }
    }
  }

  records(): DomainRecord[] {
    return [...this.domains.values()];
  }

  get(uuid: string): DomainRecord | undefined {
    return this.domains.get(uuid);
  }

  add(rec: DomainRecord): void {
    this.domains.set(rec.doc.config.uuid, rec);
  }

  remove(uuid: string): void {
    this.domains.delete(uuid);
  }

  list(): DomainSummary[] {
    return this.records()
      .map((r) => this.summary(r))
      .sort((a, b) => (a.id ?? Infinity) - (b.id ?? Infinity) || a.name.localeCompare(b.name));
  }

  /** A domain by UUID, name or running id, as virsh looks them up. */
  lookup(ref: string): DomainRecord {
    const byUuid = this.domains.get(ref.toLowerCase());
    if (byUuid) return byUuid;
    for (const r of this.domains.values()) if (r.doc.config.name === ref) return r;
    if (/^\d+$/.test(ref)) for (const r of this.domains.values()) if (r.id === Number(ref)) return r;
    throw noDomain(ref);
  }

  requireLive(rec: DomainRecord): LiveDomain {
    if (!rec.live) throw operationInvalid(`domain '${rec.doc.config.name}' is not running`);
    return rec.live;
  }

  /** A definition from a client or a file, with a UUID given when it has none. */
  parse(xml: string): DomainDocument {
    try {
      const doc = parseDomainXml(xml);
      ensureUuid(doc, randomUUID);
      ensureInterfaceMacs(doc, () => randomBytes(3));
      return doc;
    } catch (err) {
      if (err instanceof DomainXmlError) throw xmlError(err.message);
      throw err;
    }
  }

  /**
   * The engines' verdict on a definition. As with libvirt, what the schema accepts is defined
   * whether or not an engine here can run it: what it cannot run becomes `cannotStart`, which start
   * refuses, and is also the last of the warnings (define prints it).
   */
  supported(doc: DomainDocument): Support {
    const report = this.drivers.validate(doc);
    const cannotStart = this.drivers.cannotStart(doc, report);
    if (!cannotStart) return { warnings: report.warnings };
    return { warnings: [...report.warnings, { element: 'domain', message: cannotStart }], cannotStart };
  }

  /** Records a definition's verdict on its record (the summary's cannotStart, dominfo's warnings). */
  judge(rec: DomainRecord, support: Support = this.supported(rec.doc)): Support {
    rec.warnings = support.warnings;
    rec.cannotStart = support.cannotStart;
    return support;
  }

  /** The engine that runs (or would run) the domain. */
  engineOf(rec: DomainRecord): string {
    return this.driverOf(rec).engine;
  }

  driverOf(rec: DomainRecord): EngineDriver {
    return this.driverFor(rec.liveDoc ?? rec.doc);
  }

  /** The engine that would run this definition. */
  driverFor(doc: DomainDocument): EngineDriver {
    return this.drivers.driverFor(doc).driver;
  }

  /** The record this definition would replace; an error when name and UUID point at different domains. */
  clash(config: DomainConfig): DomainRecord | undefined {
    const byName = this.records().find((r) => r.doc.config.name === config.name);
    const byUuid = this.domains.get(config.uuid);
    if (byName && byName.doc.config.uuid !== config.uuid) {
      throw operationFailed(`domain '${config.name}' already exists with uuid ${byName.doc.config.uuid}`);
    }
    if (byUuid && byUuid.doc.config.name !== config.name) {
      throw operationFailed(`domain '${byUuid.doc.config.name}' is already defined with uuid ${config.uuid}`);
    }
    return byUuid;
  }

  /** The error for an edit made against an older generation of the definition. */
  conflict(rec: DomainRecord, expected: number): Error {
    return definitionChanged(
      `domain '${rec.doc.config.name}' was changed by another client since you loaded it (your copy is generation ${expected}, the host has ${rec.generation}); reload it and make your change again`,
    );
  }

  /** virsh's --live/--config/--current (with virsh's errors): neither flag means the running domain if active, else the definition. */
  scope(rec: DomainRecord, p: { live: boolean; config: boolean }): { live: boolean; config: boolean } {
    let { live, config } = p;
    if (!live && !config) {
      live = Boolean(rec.live);
      config = !rec.live;
    }
    if (live && !rec.live) throw operationInvalid('domain is not running');
    if (config && !rec.persistent) throw operationInvalid('cannot change persistent config of a transient domain');
    return { live, config };
  }

  newRecord(doc: DomainDocument, persistent: boolean, support: Support = this.supported(doc)): DomainRecord {
    const { warnings, cannotStart } = support;
    return {
      doc,
      generation: generationOf(serializeDomainXml(doc)),
      warnings,
      cannotStart,
      persistent,
      state: 'shutoff',
      // What a new host can know of a domain it did not stop: a managed save means it was saved.
      reason: fs.existsSync(this.managedSavePath(doc.config.uuid)) ? 'saved' : 'unknown',
      step: null,
      cpuPercent: 0,
      cpuTimeMs: 0,
      serialHistory: new SerialHistory(),
    };
  }

  summary(rec: DomainRecord): DomainSummary {
    const c = (rec.liveDoc ?? rec.doc).config;
    const uuid = rec.doc.config.uuid;
    return {
      uuid,
      name: c.name,
      id: rec.id,
      state: rec.state,
      reason: rec.reason,
      step: rec.step,
      persistent: rec.persistent,
      engine: this.engineOf(rec),
      memoryKiB: c.memoryKiB,
      currentMemoryKiB: c.currentMemoryKiB,
      vcpus: c.vcpus,
      cpuPercent: Math.round(rec.cpuPercent * 10) / 10,
      title: c.title,
      autostart: this.autostart(uuid),
      onHostStop: onHostStop(rec.doc),
      managedSave: fs.existsSync(this.managedSavePath(uuid)),
      ...this.fastStartSummary(rec),
      generation: rec.generation,
      ...(rec.cannotStart !== undefined && { cannotStart: rec.cannotStart }),
    };
  }

  private fastStartSummary(rec: DomainRecord): Pick<DomainSummary, 'fastStart' | 'fastStarted'> {
    const setting = fastStart(rec.doc);
    return {
      ...(setting && { fastStart: { kept: fs.existsSync(this.fastStartFile(rec.doc)), ...setting } }),
      ...(rec.live && rec.fastStarted && { fastStarted: true }),
    };
  }

  setState(rec: DomainRecord, state: DomainState, reason: StateReason, step: DomainStep, detail?: string): void {
    const changedStep = rec.step !== step;
    rec.state = state;
    rec.reason = reason;
    rec.step = step;
    if (changedStep && (step || detail)) this.emitLifecycle(rec, 'step', detail);
  }

  emitLifecycle(rec: DomainRecord, event: LifecycleEvent, detail?: string): void {
    this.events.emit('domain.lifecycle', detail ? { domain: this.summary(rec), event, detail } : { domain: this.summary(rec), event });
  }

  /**
   * Makes `doc` the domain's persistent definition, on disk first (atomically): when the write
   * fails the record keeps its definition. `persistent` says whether there is a file to write.
   * The engines' verdict (warnings, cannotStart) follows the new definition.
   */
  persist(rec: DomainRecord, doc: DomainDocument, persistent = rec.persistent): void {
    const xml = serializeDomainXml(doc);
    if (persistent) writeHostFile(this.definitionPath(doc.config.uuid), xml);
    rec.doc = doc;
    rec.generation = generationOf(xml);
    this.judge(rec);
    // A fast-start state pairs with the definition it was taken from only.
    const keep = this.fastStartFile(doc);
    for (const f of statesOf(this.paths.saves, doc.config.uuid)) if (f !== keep) removeHostFile(f);
  }

  /**
   * An edit of both the definition and the running guest (--live --config): the file first, so that
   * a full disk changes nothing; if the guest then refuses, the definition goes back as it was.
   */
  async configThenLive(rec: DomainRecord, draft: DomainDocument | undefined, liveChange: () => Promise<void>): Promise<void> {
    const before = rec.doc;
    if (draft) this.persist(rec, draft);
    try {
      await liveChange();
    } catch (err) {
      if (draft) {
        try {
          this.persist(rec, before);
        } catch (undo) {
          log('error', `domain '${rec.doc.config.name}': the definition keeps a change the running guest refused: ${(undo as Error).message}`);
        }
      }
      throw err;
    }
  }

  /** Every domain's disks (the next-boot definition, and the running one while active). */
  diskUsers(): DiskUser[] {
    return this.records().flatMap((r) => {
      const base = { name: r.doc.config.name, uuid: r.doc.config.uuid };
      const users: DiskUser[] = [{ ...base, running: false, disks: r.doc.config.disks }];
      if (r.live && r.liveDoc) users.push({ ...base, running: true, disks: r.liveDoc.config.disks });
      return users;
    });
  }

  /** The vnetN names of running domains' interfaces (libvirt's target devs). */
  runningTargets(): Set<string> {
    return new Set(this.records().flatMap((r) => (r.live && r.liveDoc ? interfaceTargets(r.liveDoc) : [])).filter((t): t is string => t !== undefined));
  }

  autostart(uuid: string): boolean {
    return fs.existsSync(this.autostartPath(uuid));
  }

  setAutostart(rec: DomainRecord, enabled: boolean): void {
    if (enabled) writeHostFile(this.autostartPath(rec.doc.config.uuid), `${rec.doc.config.name}\n`);
    else removeHostFile(this.autostartPath(rec.doc.config.uuid));
  }

  /**
   * Removes a domain's files: the definition first (if that fails, nothing changed); once it is gone
   * the domain is undefined, and a side file (autostart mark, managed save, UEFI variables) that stays
   * is only logged.
   */
  removeFiles(rec: DomainRecord): void {
    const { uuid, name } = rec.doc.config;
    removeHostFile(this.definitionPath(uuid));
    // A UEFI variable store in Domus's own directory goes with the domain; one its <nvram> names is the user's.
    const sideFiles = [this.autostartPath(uuid), this.managedSavePath(uuid), path.join(this.paths.nvram, `${uuid}_VARS.fd`), ...statesOf(this.paths.saves, uuid)];
    for (const file of sideFiles) {
      try {
        removeHostFile(file);
      } catch (err) {
        log('warn', `domain '${name}' undefined, but ${(err as Error).message}`);
      }
    }
  }

  managedSavePath(uuid: string): string {
    return path.join(this.paths.saves, `${uuid}.state`);
  }

  /** The fast-start state of a definition (fast-start-file.ts: its name pairs it with the definition). */
  fastStartFile(doc: DomainDocument): string {
    return stateFile(this.paths.saves, doc);
  }

  private definitionPath(uuid: string): string {
    return path.join(this.paths.domains, `${uuid}.xml`);
  }

  private autostartPath(uuid: string): string {
    return path.join(this.paths.autostart, uuid);
  }
}

/** A definition's generation: a hash of its text, so it survives host restarts without a counter. */
function generationOf(xml: string): number {
  return createHash('sha256').update(xml).digest().readUInt32BE(0);
}

/** Writes one of the host's own files atomically; a failure (a full disk) is an error naming the file. */
export function writeHostFile(file: string, data: string): void {
  try {
    writeFileAtomic(file, data);
  } catch (err) {
    throw err instanceof FileWriteError ? systemError(err.message) : err;
  }
}

/** Removes one of the host's own files (none there is fine), durably: the directory is fsynced. */
export function removeHostFile(file: string): void {
  try {
    try {
      fs.unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const dfd = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (err) {
    throw systemError(`cannot remove '${file}': ${systemErrorText(err)}`);
  }
}
