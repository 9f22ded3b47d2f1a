// The destination side of a migration between Domus hosts (libvirt's Prepare3 and Finish3): the
// other host's cookie is checked by the engine before anything is sent, an engine process waits for
// the stream, and only once the whole guest has arrived does a domain exist here. Until then the
// incoming guest is held here alone: a cancel, a broken stream, or the source's connection going
// away (the source host died or gave up) ends it and leaves nothing behind.
import fs from 'node:fs';
import type { DomainSummary } from '../../../shared/api.js';
import { childElements, firstChild, parseDomainXml, serializeDomainXml, type DomainDocument } from '../domain/xml.js';
import type { IncomingMigration } from '../drivers/driver.js';
import type { DriverRegistry } from '../drivers/registry.js';
import { configUnsupported, operationFailed, operationInvalid, operationUnsupported } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import { log } from '../log.js';
import { assignTargets } from '../network/interface-xml.js';
import type { Networks } from '../network/networks.js';
import type { DomainRegistry } from '../registry.js';
import { decodeSourceCookie, encodeDestinationCookie } from './protocol.js';

export type ListenKind = { kind: 'unix' } | { kind: 'tcp'; address: string };

interface Incoming {
  doc: DomainDocument;
  /** The inactive definition to keep here (--persistent), as the source sent it. */
  persistentXml?: string;
  migration: IncomingMigration;
  /** Set once Finish3 has taken it: the source's connection closing no longer cancels it. */
  finishing: boolean;
}

export class MigrationDestination {
  private readonly incoming = new Map<string, Incoming>();

  constructor(
    private readonly registry: DomainRegistry,
    private readonly drivers: DriverRegistry,
    private readonly lifecycle: Lifecycle,
    private readonly networks: Networks,
  ) {}

  /**
   * Prepare3: checks that this host can run the guest the source describes, then starts an engine
   * process waiting for it. `onPeerGone` registers what to do when the source's connection ends.
   */
  async prepare(
    p: { xml: string; persistentXml?: string; cookie: Buffer; sharedStorage: boolean; listen: ListenKind },
    onPeerGone: (f: () => void) => void,
  ): Promise<{ uri: string; cookie: Buffer }> {
    const cookie = decodeSourceCookie(p.cookie);
    const doc = this.registry.parse(p.xml);
    const { uuid, name } = doc.config;
    if (p.persistentXml !== undefined) {
      const persistent = parseDomainXml(p.persistentXml);
      if (persistent.config.uuid !== uuid || persistent.config.name !== name) throw operationInvalid(`the persistent definition sent for '${name}' names another domain ('${persistent.config.name}', ${persistent.config.uuid})`);
    }
    if (this.incoming.has(uuid)) throw operationInvalid(`domain '${name}' is already being migrated to this host`);
    const existing = this.registry.clash(doc.config);
    if (existing?.live || existing?.step) throw operationInvalid(`domain '${name}' is already active on this host`);
    if (p.sharedStorage) {
      for (const disk of doc.config.disks) {
        if (disk.source !== undefined && !fs.existsSync(disk.source)) {
          throw operationInvalid(`disk '${disk.target}' of domain '${name}': '${disk.source}' does not exist on this host (migrate with --copy-storage-all, or keep the disk on storage both hosts share)`);
        }
      }
    }
    checkHostPaths(doc);
    const { driver } = this.drivers.driverFor(doc);
    if (driver.engine !== cookie.engine) {
      throw operationUnsupported(`domain '${name}' runs on ${cookie.engine} ${cookie.engineVersion} on the source; this host would run it on ${driver.label}, which cannot take its state`);
    }
    if (!driver.prepareIncoming || !driver.checkIncoming) throw operationUnsupported(`the ${driver.label} engine of this host cannot receive a migrated guest`);
    const cannotStart = this.drivers.cannotStart(doc);
    if (cannotStart) throw configUnsupported(`domain '${name}' ${cannotStart}`);
    const reasons = driver.checkIncoming(cookie, doc);
    if (reasons.length) throw operationFailed(`this host cannot take domain '${name}': ${reasons.join('; ')}`);
    const unavailable = await this.networks.checkInterfaces(doc.config);
    if (unavailable) throw unavailable;
    assignTargets(doc, this.registry.runningTargets());
    const migration = await driver.prepareIncoming(doc, p.listen);
    const entry: Incoming = { doc, persistentXml: p.persistentXml, migration, finishing: false };
    this.incoming.set(uuid, entry);
    onPeerGone(() => {
      if (this.incoming.get(uuid) !== entry || entry.finishing) return;
      log('warn', `incoming migration of '${name}': the source host went away; giving up`);
      void this.drop(uuid, entry);
    });
    return { uri: migration.endpoint.uri, cookie: encodeDestinationCookie(migration.endpoint.token) };
  }

  /**
   * Finish3: with `cancelled` (the source gave up, or failed after Prepare3) the waiting engine goes;
   * otherwise the guest, once all of it has arrived, becomes a domain here (started/migrated).
   */
  async finish(name: string, cancelled: boolean): Promise<DomainSummary> {
    const found = [...this.incoming].find(([, e]) => e.doc.config.name === name);
    if (!found) throw operationInvalid(`no incoming migration of domain '${name}' on this host`);
    const [uuid, entry] = found;
    entry.finishing = true;
    if (cancelled) {
      await this.drop(uuid, entry);
      throw operationFailed(`migration of domain '${name}' was cancelled by the source host; nothing was kept here`);
    }
    let started;
    try {
      started = await entry.migration.finished();
    } catch (err) {
      await this.drop(uuid, entry);
      throw operationFailed(`domain '${name}' did not arrive: ${(err as Error).message}`);
    } finally {
      this.incoming.delete(uuid);
    }
    let rec = this.registry.get(uuid);
    if (!rec) {
      rec = this.registry.newRecord(parseDomainXml(serializeDomainXml(entry.doc)), false);
      this.registry.add(rec);
    }
    this.lifecycle.adoptMigrated(rec, started, entry.doc);
    if (entry.persistentXml !== undefined) {
      try {
        this.registry.persist(rec, this.registry.parse(entry.persistentXml), true);
        rec.persistent = true;
        this.registry.emitLifecycle(rec, 'defined');
      } catch (err) {
        // The guest runs here already: it stays, transient, and the log says why.
        log('error', `domain '${name}' arrived, but its definition could not be kept: ${(err as Error).message}`);
      }
    }
    return this.registry.summary(rec);
  }

  /** Host stop: every guest still on its way is given up. */
  async abortAll(): Promise<void> {
    await Promise.all([...this.incoming].map(([uuid, entry]) => this.drop(uuid, entry)));
  }

  private async drop(uuid: string, entry: Incoming): Promise<void> {
    if (this.incoming.get(uuid) === entry) this.incoming.delete(uuid);
    try {
      await entry.migration.abort();
    } catch (err) {
      log('error', `incoming migration of '${entry.doc.config.name}': the waiting engine did not go cleanly: ${(err as Error).message}`);
    }
  }
}

/**
 * What an incoming definition may name on this host besides its disks. A port's file must already
 * be here as a regular file, as a disk must: a migration does not create or write files where the
 * source's definition says. A <hostdev> names one of the source host's devices, not one here.
 */
function checkHostPaths(doc: DomainDocument): void {
  const { name } = doc.config;
  const devices = firstChild(doc.root, 'devices');
  if (!devices) return;
  if (firstChild(devices, 'hostdev')) throw operationInvalid(`domain '${name}' has a host device (<hostdev>): a host's device is not migrated, and this host would hand over one of its own; detach it before migrating`);
  for (const port of ['serial', 'console', 'channel'].flatMap((kind) => childElements(devices, kind))) {
    if (port.attributes.type !== 'file') continue;
    const file = firstChild(port, 'source')?.attributes.path ?? '';
    let regular = false;
    try {
      regular = fs.statSync(file).isFile();
    } catch {
      // Absent or unreadable: refused below like a disk that is not here.
    }
    if (!regular) {
      throw operationInvalid(`<${port.name} type='file'> of domain '${name}': '${file}' is not a regular file on this host; a migrated guest's port files, like its disks, must already exist here (create it, or use another port type)`);
    }
  }
}
