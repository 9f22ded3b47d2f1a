// The management layer: persistent definitions, live state with libvirt's states and reasons,
// lifecycle operations and events. Every client (GUI, CLI, web shell) goes through this object.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { DomainInfo, DomainSummary, ErrorCode, Events, HostStatus, LifecycleEvent, NewDomainSpec } from '../../shared/api.js';
import type { DefinitionWarning, DomainConfig, DomainState, DomainStep, StateReason } from '../../shared/domain.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { DomainXmlError, ensureUuid, parseDomainXml, serializeDomainXml, type DomainDocument } from './domain/xml.js';
import type { EngineDriver, LiveDomain } from './drivers/driver.js';
import { V86Driver } from './drivers/v86/driver.js';
import { findFirmware } from './drivers/v86/firmware.js';
import { log } from './log.js';
import { specToXml } from './new-domain.js';
import type { HostPaths } from './paths.js';

export const VERSION = '0.1.0';
/** Serial output kept per domain for viewers that open the console later (scrollback). */
const SERIAL_HISTORY_BYTES = 256 * 1024;

export class HostError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HostError';
  }
}

interface DomainRecord {
  doc: DomainDocument;
  config: DomainConfig;
  warnings: DefinitionWarning[];
  persistent: boolean;
  state: DomainState;
  reason: StateReason;
  step: DomainStep;
  id?: number;
  live?: LiveDomain;
  cpuPercent: number;
  cpuTimeMs: number;
  lastStats?: { cpuTimeMs: number; at: number };
  serialHistory: Buffer[];
  serialHistoryBytes: number;
}

type HostEvents = { [E in keyof Events]: [Events[E]] };

export class Host extends EventEmitter<HostEvents> {
  private readonly domains = new Map<string, DomainRecord>();
  private readonly driver: EngineDriver;
  private nextId = 1;
  readonly startedAt = Date.now();

  constructor(readonly paths: HostPaths) {
    super();
    this.setMaxListeners(0);
    this.driver = new V86Driver(paths.run);
  }

  /** Loads the persistent definitions and re-attaches to guests an earlier host left running. */
  async init(): Promise<void> {
    fs.mkdirSync(this.paths.domains, { recursive: true });
    fs.mkdirSync(this.paths.run, { recursive: true, mode: 0o700 });
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
    const live = await this.driver.reattachAll();
    for (const [uuid, handle] of live) {
      const rec = this.domains.get(uuid);
      if (!rec) {
        log('warn', `runner for unknown domain ${uuid} left running; destroying it`);
        await handle.destroy().catch(() => undefined);
        continue;
      }
      this.adopt(rec, handle);
      rec.state = handle.state;
      rec.reason = handle.state === 'paused' ? 'user' : 'booted';
      this.appendSerial(rec, handle.attachBacklog);
    }
  }

  status(): HostStatus {
    let firmware: HostStatus['firmware'];
    try {
      firmware = findFirmware();
    } catch (err) {
      firmware = { problem: (err as Error).message };
    }
    return {
      pid: process.pid,
      version: VERSION,
      uri: this.driver.uri,
      home: this.paths.home,
      startedAt: this.startedAt,
      firmware,
    };
  }

  list(): DomainSummary[] {
    return [...this.domains.values()]
      .map((r) => this.summary(r))
      .sort((a, b) => (a.id ?? Infinity) - (b.id ?? Infinity) || a.name.localeCompare(b.name));
  }

  lookup(ref: string): DomainRecord {
    const byUuid = this.domains.get(ref.toLowerCase());
    if (byUuid) return byUuid;
    for (const r of this.domains.values()) if (r.config.name === ref) return r;
    if (/^\d+$/.test(ref)) for (const r of this.domains.values()) if (r.id === Number(ref)) return r;
    throw new HostError('no-domain', `Domain not found: no domain with matching name '${ref}'`);
  }

  define(xml: string): { domain: DomainSummary; warnings: DefinitionWarning[] } {
    let doc: DomainDocument;
    try {
      doc = parseDomainXml(xml);
    } catch (err) {
      if (err instanceof DomainXmlError) throw new HostError('xml-invalid', err.message);
      throw err;
    }
    ensureUuid(doc, randomUUID);
    const { config } = doc;
    const support = this.driver.support(doc);
    if (support.errors.length) {
      throw new HostError('unsupported', `unsupported configuration: ${support.errors.join('; ')}`);
    }
    const byName = [...this.domains.values()].find((r) => r.config.name === config.name);
    const existing = this.domains.get(config.uuid);
    if (byName && byName.config.uuid !== config.uuid) {
      throw new HostError('operation-invalid', `domain '${config.name}' already exists with uuid ${byName.config.uuid}`);
    }
    if (existing && existing.config.name !== config.name) {
      throw new HostError('operation-invalid', `domain '${existing.config.name}' is already defined with uuid ${config.uuid}`);
    }
    writeFileAtomic(this.definitionPath(config.uuid), serializeDomainXml(doc));
    let rec: DomainRecord;
    if (existing) {
      // Redefining a running domain changes the next boot only, as with virsh define.
      existing.doc = doc;
      existing.config = config;
      existing.warnings = support.warnings;
      existing.persistent = true;
      rec = existing;
    } else {
      rec = this.newRecord(doc, true);
      rec.warnings = support.warnings;
      this.domains.set(config.uuid, rec);
    }
    this.emitLifecycle(rec, 'defined');
    this.emit('domain.defined', { domain: this.summary(rec) });
    return { domain: this.summary(rec), warnings: support.warnings };
  }

  create(spec: NewDomainSpec): { domain: DomainSummary; warnings: DefinitionWarning[] } {
    return this.define(specToXml(spec));
  }

  undefine(ref: string): void {
    const rec = this.lookup(ref);
    if (rec.live) {
      throw new HostError('operation-invalid', `Requested operation is not valid: domain '${rec.config.name}' is running; destroy it first`);
    }
    fs.rmSync(this.definitionPath(rec.config.uuid), { force: true });
    this.domains.delete(rec.config.uuid);
    this.emit('domain.undefined', { uuid: rec.config.uuid, name: rec.config.name });
  }

  async start(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    if (rec.live || rec.step === 'starting') {
      throw new HostError('operation-invalid', `Requested operation is not valid: domain '${rec.config.name}' is already active`);
    }
    rec.step = 'starting';
    this.emitLifecycle(rec, 'defined');
    try {
      const handle = await this.driver.start(rec.doc);
      rec.serialHistory = [];
      rec.serialHistoryBytes = 0;
      this.adopt(rec, handle);
      rec.state = 'running';
      rec.reason = 'booted';
      rec.step = null;
      this.emitLifecycle(rec, 'started');
    } catch (err) {
      rec.step = null;
      rec.state = 'shutoff';
      rec.reason = 'failed';
      this.emitLifecycle(rec, 'stopped');
      throw new HostError('engine-failed', (err as Error).message);
    }
    return this.summary(rec);
  }

  async destroy(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    await live.destroy();
    return this.summary(rec);
  }

  async suspend(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    if (rec.state === 'paused') throw new HostError('operation-invalid', `Requested operation is not valid: domain '${rec.config.name}' is already paused`);
    await live.pause();
    return this.summary(rec);
  }

  async resume(ref: string): Promise<DomainSummary> {
    const rec = this.lookup(ref);
    const live = this.requireLive(rec);
    if (rec.state !== 'paused') throw new HostError('operation-invalid', `Requested operation is not valid: domain '${rec.config.name}' is not paused`);
    await live.resume();
    return this.summary(rec);
  }

  info(ref: string): DomainInfo {
    const rec = this.lookup(ref);
    return {
      ...this.summary(rec),
      osType: rec.config.os.type,
      cpuTimeMs: rec.cpuTimeMs,
      autostart: false,
      config: redact(rec.config),
      warnings: rec.warnings,
    };
  }

  xml(ref: string): string {
    return serializeDomainXml(this.lookup(ref).doc);
  }

  async screenshot(ref: string): Promise<{ png: Buffer; width: number; height: number }> {
    return this.requireLive(this.lookup(ref)).screenshot();
  }

  async sendKeys(ref: string, keys: { text?: string; scancodes?: number[] }): Promise<void> {
    const live = this.requireLive(this.lookup(ref));
    if (keys.text !== undefined) await live.sendText(keys.text);
    if (keys.scancodes !== undefined) await live.sendScancodes(keys.scancodes);
  }

  async serialWrite(ref: string, data: Buffer): Promise<void> {
    await this.requireLive(this.lookup(ref)).serialWrite(data);
  }

  /** What a newly opened serial viewer sees first: the recent output of this boot. */
  serialHistory(ref: string): { uuid: string; history: Buffer } {
    const rec = this.lookup(ref);
    if (!rec.live) throw new HostError('operation-invalid', `Requested operation is not valid: domain '${rec.config.name}' is not running`);
    return { uuid: rec.config.uuid, history: Buffer.concat(rec.serialHistory) };
  }

  vncSocket(ref: string): string {
    return this.requireLive(this.lookup(ref)).vncSocket;
  }

  /** Host stop: guests keep running in their runners and the next host re-attaches. */
  detachAll(): void {
    for (const rec of this.domains.values()) rec.live?.detach();
  }

  private requireLive(rec: DomainRecord): LiveDomain {
    if (!rec.live) throw new HostError('operation-invalid', `Requested operation is not valid: domain '${rec.config.name}' is not running`);
    return rec.live;
  }

  private adopt(rec: DomainRecord, handle: LiveDomain): void {
    rec.live = handle;
    rec.id = this.nextId++;
    rec.cpuPercent = 0;
    rec.lastStats = undefined;
    handle.on('serial', (data) => {
      this.appendSerial(rec, data);
      this.emit('domain.serial', { uuid: rec.config.uuid, data: data.toString('base64') });
    });
    handle.on('state', (state) => {
      rec.state = state;
      rec.reason = state === 'paused' ? 'user' : 'unpaused';
      this.emitLifecycle(rec, state === 'paused' ? 'suspended' : 'resumed');
    });
    handle.on('stats', (s) => {
      if (rec.lastStats && s.at > rec.lastStats.at) {
        rec.cpuPercent = Math.max(0, ((s.cpuTimeMs - rec.lastStats.cpuTimeMs) / (s.at - rec.lastStats.at)) * 100);
      }
      rec.lastStats = { cpuTimeMs: s.cpuTimeMs, at: s.at };
      rec.cpuTimeMs = s.cpuTimeMs;
      this.emit('domain.stats', { uuid: rec.config.uuid, cpuPercent: Math.round(rec.cpuPercent * 10) / 10, rssBytes: s.rssBytes });
    });
    handle.on('exit', ({ reason, detail }) => {
      rec.live = undefined;
      rec.id = undefined;
      rec.state = 'shutoff';
      rec.reason = reason;
      rec.step = null;
      rec.cpuPercent = 0;
      if (detail && reason === 'crashed') log('warn', `domain '${rec.config.name}' crashed: ${detail}`);
      this.emitLifecycle(rec, 'stopped');
      if (!rec.persistent) {
        this.domains.delete(rec.config.uuid);
        this.emit('domain.undefined', { uuid: rec.config.uuid, name: rec.config.name });
      }
    });
  }

  private appendSerial(rec: DomainRecord, data: Buffer): void {
    if (!data.length) return;
    rec.serialHistory.push(data);
    rec.serialHistoryBytes += data.length;
    while (rec.serialHistoryBytes > SERIAL_HISTORY_BYTES && rec.serialHistory.length > 1) {
      rec.serialHistoryBytes -= rec.serialHistory.shift()!.length;
    }
  }

  private emitLifecycle(rec: DomainRecord, event: LifecycleEvent): void {
    this.emit('domain.lifecycle', { domain: this.summary(rec), event });
  }

  private newRecord(doc: DomainDocument, persistent: boolean): DomainRecord {
    return {
      doc,
      config: doc.config,
      warnings: this.driver.support(doc).warnings,
      persistent,
      state: 'shutoff',
      reason: 'unknown',
      step: null,
      cpuPercent: 0,
      cpuTimeMs: 0,
      serialHistory: [],
      serialHistoryBytes: 0,
    };
  }

  private summary(rec: DomainRecord): DomainSummary {
    const c = rec.config;
    return {
      uuid: c.uuid,
      name: c.name,
      id: rec.id,
      state: rec.state,
      reason: rec.reason,
      step: rec.step,
      persistent: rec.persistent,
      engine: this.driver.engine,
      memoryKiB: c.memoryKiB,
      currentMemoryKiB: c.currentMemoryKiB,
      vcpus: c.vcpus,
      cpuPercent: Math.round(rec.cpuPercent * 10) / 10,
      title: c.title,
    };
  }

  private definitionPath(uuid: string): string {
    return path.join(this.paths.domains, `${uuid}.xml`);
  }
}

/** Secrets never leave the host in clear (VNC passwords). */
function redact(config: DomainConfig): DomainConfig {
  return { ...config, graphics: config.graphics.map((g) => (g.passwd ? { ...g, passwd: '********' } : g)) };
}
