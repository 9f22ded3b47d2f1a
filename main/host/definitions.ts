// Domain definitions: define (libvirt XML or the New VM wizard's spec), transient create, undefine,
// autostart, host-stop policy, title and description, and the definition as clients read it
// (dumpxml, dominfo, domxml-to-native).
import type { DomainInfo, DomainSummary, ImageInspection, NewDomainSpec, OnHostStop } from '../../shared/api.js';
import type { DefinitionWarning, DomainConfig } from '../../shared/domain.js';
import { setOnHostStop, setTitleAndDescription } from './domain/domus-metadata.js';
import { dumpDomainXml, parseDomainXml, serializeDomainXml } from './domain/xml.js';
import type { DriverRegistry } from './drivers/registry.js';
import { HostError, configUnsupported, invalidArg, operationFailed, operationInvalid, operationUnsupported } from './errors.js';
import { runFsimageJob } from './images/reader-client.js';
import type { Lifecycle } from './lifecycle.js';
import type { Snapshots } from './snapshots/snapshots.js';
import { checkSpec } from './new-vm/checks.js';
import { osSpecProblem } from './osinfo/detect.js';
import { specToXml } from './new-vm/spec-to-xml.js';
import type { DomainRecord, DomainRegistry, HostEventBus } from './registry.js';

type Defined = { domain: DomainSummary; warnings: DefinitionWarning[] };

export class Definitions {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly drivers: DriverRegistry,
    private readonly lifecycle: Lifecycle,
    private readonly events: HostEventBus,
    private readonly snapshots: Snapshots,
  ) {}

  define(xml: string, expectGeneration?: number): Defined {
    const { registry } = this;
    const doc = registry.parse(xml);
    const { config } = doc;
    const support = registry.supported(doc);
    const existing = registry.clash(config);
    if (existing && expectGeneration !== undefined && existing.generation !== expectGeneration) {
      throw registry.conflict(existing, expectGeneration);
    }
    // The file first: a definition that could not be written (a full disk) changes nothing.
    let rec: DomainRecord;
    if (existing) {
      // Redefining a running domain changes the next boot only, as with virsh define.
      registry.persist(existing, doc, true);
      existing.persistent = true;
      rec = existing;
    } else {
      rec = registry.newRecord(doc, true, support);
      registry.persist(rec, doc);
      registry.add(rec);
    }
    // As at the host's start: an engine with a domain defined may well start it soon (a spare runner).
    if (!support.cannotStart) registry.driverFor(doc).warm?.();
    this.events.emit('domain.defined', { domain: registry.summary(rec) });
    registry.emitLifecycle(rec, 'defined');
    return { domain: registry.summary(rec), warnings: support.warnings };
  }

  /**
   * The New VM wizard's spec: refused when the guest could not start (missing files, wrong
   * architecture, nothing an engine here runs), since the wizard makes guests to run.
   */
  async create(spec: NewDomainSpec): Promise<Defined> {
    // The image is read in the reader's worker thread, as host.inspectImage does: it is untrusted.
    const problems = await checkSpec(spec, (file) => runFsimageJob<ImageInspection>({ op: 'inspect', path: file }));
    if (!problems.length) {
      const osProblem = await osSpecProblem(spec);
      if (osProblem) problems.push(osProblem);
    }
    if (problems.length) throw invalidArg(problems.join('; '));
    const xml = specToXml(spec);
    const { cannotStart } = this.registry.supported(this.registry.parse(xml));
    if (cannotStart) throw configUnsupported(cannotStart);
    return this.define(xml);
  }

  /** virsh create: a transient domain, started at once, gone when it stops. */
  async createTransient(xml: string, paused: boolean): Promise<Defined> {
    const { registry } = this;
    const doc = registry.parse(xml);
    const support = registry.supported(doc);
    if (registry.clash(doc.config)) throw operationFailed(`domain '${doc.config.name}' already exists; use start for a defined domain`);
    const rec = registry.newRecord(doc, false, support);
    registry.add(rec);
    try {
      await this.lifecycle.boot(rec, { paused });
    } catch (err) {
      registry.remove(doc.config.uuid);
      throw err;
    }
    return { domain: registry.summary(rec), warnings: support.warnings };
  }

  undefine(ref: string, force = false, snapshotsMetadata = false): void {
    const { registry } = this;
    const rec = registry.lookup(ref);
    const name = rec.doc.config.name;
    if (rec.live && !force) throw operationInvalid(`domain '${name}' is running; destroy it first, or undefine with --force to make it transient`);
    if (!rec.persistent) throw operationInvalid(`cannot undefine transient domain '${name}'`);
    this.snapshots.checkUndefine(rec, snapshotsMetadata);
    registry.removeFiles(rec);
    this.snapshots.forget(rec.doc.config.uuid);
    if (rec.live) {
      rec.persistent = false;
      registry.emitLifecycle(rec, 'undefined');
      return;
    }
    registry.remove(rec.doc.config.uuid);
    this.events.emit('domain.undefined', { uuid: rec.doc.config.uuid, name });
  }

  setAutostart(ref: string, enabled: boolean): DomainSummary {
    const rec = this.registry.lookup(ref);
    if (!rec.persistent) throw operationInvalid(`cannot set autostart for transient domain '${rec.doc.config.name}'`);
    this.registry.setAutostart(rec, enabled);
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  setOnHostStop(ref: string, policy: OnHostStop): DomainSummary {
    const rec = this.registry.lookup(ref);
    const draft = parseDomainXml(serializeDomainXml(rec.doc));
    setOnHostStop(draft, policy);
    this.registry.persist(rec, draft);
    if (rec.liveDoc) setOnHostStop(rec.liveDoc, policy);
    this.registry.emitLifecycle(rec, 'defined');
    return this.registry.summary(rec);
  }

  /** virsh desc: --live edits the running domain, --config the next boot; neither means --current. */
  setMetadata(ref: string, edit: { title?: string; description?: string; live: boolean; config: boolean; expectGeneration?: number }): { domain: DomainSummary; generation: number } {
    const { registry } = this;
    const rec = registry.lookup(ref);
    const { live, config } = registry.scope(rec, edit);
    if (edit.expectGeneration !== undefined && rec.generation !== edit.expectGeneration) throw registry.conflict(rec, edit.expectGeneration);
    if (config) {
      const draft = parseDomainXml(serializeDomainXml(rec.doc));
      setTitleAndDescription(draft, edit);
      registry.persist(rec, draft);
    }
    if (live && rec.liveDoc) {
      const draft = parseDomainXml(serializeDomainXml(rec.liveDoc));
      setTitleAndDescription(draft, edit);
      rec.liveDoc = draft;
    }
    registry.emitLifecycle(rec, 'defined');
    return { domain: registry.summary(rec), generation: rec.generation };
  }

  /** virsh dumpxml: the running definition while active (unless inactive), secrets only when asked. */
  xml(ref: string, opts: { inactive?: boolean; secure?: boolean } = {}): { xml: string; generation: number } {
    const rec = this.registry.lookup(ref);
    const live = !opts.inactive && rec.liveDoc !== undefined;
    const xml = dumpDomainXml(live ? rec.liveDoc! : rec.doc, { secure: opts.secure ?? false, vncTcp: live ? rec.live?.vncTcp : undefined });
    return { xml, generation: rec.generation };
  }

  info(ref: string): DomainInfo {
    const rec = this.registry.lookup(ref);
    const doc = rec.liveDoc ?? rec.doc;
    return { ...this.registry.summary(rec), osType: doc.config.os.type, cpuTimeMs: rec.cpuTimeMs, config: redact(doc.config), warnings: rec.warnings };
  }

  /** The engine notes of the domain's last start (which engine and accelerator run it). */
  startNotes(ref: string): DefinitionWarning[] {
    return this.registry.lookup(ref).startNotes ?? [];
  }

  /** virsh domxml-to-native qemu-argv, for a defined domain or a definition given as XML. */
  async toNative(ref: string | undefined, xml: string | undefined): Promise<string[]> {
    if ((ref === undefined) === (xml === undefined)) throw invalidArg('give either a domain or a definition (xml), not both');
    const rec = ref !== undefined ? this.registry.lookup(ref) : undefined;
    const doc = rec ? (rec.liveDoc ?? rec.doc) : this.registry.parse(xml!);
    try {
      return await this.drivers.toNative(doc);
    } catch (err) {
      if (err instanceof HostError) throw err;
      throw operationUnsupported((err as Error).message);
    }
  }
}

/** Secrets never leave the host in clear (VNC passwords). */
function redact(config: DomainConfig): DomainConfig {
  return { ...config, graphics: config.graphics.map((g) => (g.passwd ? { ...g, passwd: '********' } : g)) };
}
