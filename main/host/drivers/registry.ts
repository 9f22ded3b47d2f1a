// The driver table, as libvirt's: every engine registers one EngineDriver under its connection URI
// (v86:///session, qemu:///session; later qemu:///system, qemu+ssh://…), and the host reaches an
// engine only through this table. A domain goes to the driver that runs its <domain type>; when that
// driver is unavailable (no QEMU installed), or no driver claims the type ('xen' from a Xen config),
// the default connection (the first registered) runs it, and says so when it stands in for another.
import type { ConnectionInfo } from '../../../shared/api.js';
import type { DefinitionWarning } from '../../../shared/domain.js';
import { peekStateEngine } from '../../common/statefile.js';
import { operationUnsupported } from '../errors.js';
import { vncPasswordWarnings } from '../domain/features.js';
import type { DomainDocument } from '../domain/xml.js';
import type { AccelMode, EngineDriver, StartedDomain, SupportReport } from './driver.js';

export class DriverRegistry {
  private readonly drivers = new Map<string, EngineDriver>();

  /** Adds a driver; the first one registered is the default connection. */
  register(driver: EngineDriver): this {
    if (this.drivers.has(driver.uri)) throw new Error(`a driver for ${driver.uri} is already registered`);
    this.drivers.set(driver.uri, driver);
    return this;
  }

  all(): EngineDriver[] {
    return [...this.drivers.values()];
  }

  closeAll(): void {
    for (const driver of this.all()) driver.close?.();
  }

  get defaultDriver(): EngineDriver {
    const first = this.all()[0];
    if (!first) throw new Error('no engine driver is registered');
    return first;
  }

  byUri(uri: string): EngineDriver | undefined {
    return this.drivers.get(uri);
  }

  /** The driver that runs a definition, with a note when another stands in for the one it names. */
  driverFor(doc: DomainDocument): { driver: EngineDriver; notes: DefinitionWarning[] } {
    const type = doc.config.type;
    const claiming = this.all().filter((d) => d.domainTypes.includes(type));
    const usable = claiming.find((d) => d.connection().available);
    if (usable) return { driver: usable, notes: [] };
    const fallback = this.defaultDriver;
    if (!claiming.length) return { driver: fallback, notes: [] };
    const problem = claiming[0].connection().problem ?? 'not available';
    return {
      driver: fallback,
      notes: [{ element: 'domain[@type]', message: `<domain type='${type}'> runs on ${fallback.label}: ${claiming[0].label} is not available (${problem})` }],
    };
  }

  /** Whether the definition can run, and what it loses: the engine's own report plus what applies to every engine. */
  validate(doc: DomainDocument): SupportReport {
    const { driver, notes } = this.driverFor(doc);
    const report = driver.validate(doc);
    return { warnings: [...notes, ...report.warnings, ...vncPasswordWarnings(doc.config)], errors: report.errors };
  }

  /**
   * Why a definition cannot start here, undefined when it can: what its engine cannot run, and for
   * each other connection whether it could (and with which <domain type>) or why not. define keeps
   * such a definition (libvirt's schema accepts it) and start refuses it with this reason.
   */
  cannotStart(doc: DomainDocument, report: SupportReport = this.validate(doc)): string | undefined {
    if (!report.errors.length) return undefined;
    const { driver } = this.driverFor(doc);
    const others = this.all()
      .filter((d) => d !== driver)
      .map((d) => {
        const name = `${d.label} (${d.uri})`;
        const theirs = d.validate(doc).errors;
        if (theirs.length) return `${name} cannot either: ${theirs.join('; ')}`;
        const connection = d.connection();
        const [first, ...rest] = d.domainTypes;
        const as = `<domain type='${first}'>${rest.length ? ` (or ${rest.map((t) => `'${t}'`).join(', ')})` : ''}`;
        if (!connection.available) return `${name} could run it as ${as}, but is not available here (${connection.problem ?? 'not installed'})`;
        return `${name} could run it as ${as}`;
      });
    return [`cannot start on ${driver.label} (${driver.uri}): ${report.errors.join('; ')}`, ...others].join('. ');
  }

  /** Starts a definition on its driver; the notes say which engine (and accelerator) runs it. */
  async start(doc: DomainDocument, opts: { paused?: boolean; restoreFrom?: string }): Promise<StartedDomain> {
    const { driver, notes } = this.driverFor(doc);
    const started = await driver.start(doc, opts);
    return { live: started.live, notes: [...notes, ...started.notes] };
  }

  /** The driver a state file belongs to, from the engine its header names. */
  forStateFile(file: string): EngineDriver {
    const engine = peekStateEngine(file);
    return this.all().find((d) => d.engine === engine) ?? this.defaultDriver;
  }

  connections(): ConnectionInfo[] {
    return this.all().map((d) => d.connection());
  }

  /** host.setAccel: applies to the connections that choose an accelerator (QEMU's KVM or TCG). */
  async setAccel(mode: AccelMode): Promise<ConnectionInfo> {
    const driver = this.all().find((d) => d.setAccel);
    if (!driver?.setAccel) throw operationUnsupported('no engine of this host chooses an accelerator');
    await driver.setAccel(mode);
    return driver.connection();
  }

  /** virsh domxml-to-native: the command line of the first driver that has one. */
  async toNative(doc: DomainDocument): Promise<string[]> {
    const driver = this.all().find((d) => d.toNative);
    if (!driver?.toNative) throw operationUnsupported('no engine of this host has a native command line');
    return driver.toNative(doc);
  }
}
