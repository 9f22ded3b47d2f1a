// The driver table: which engine runs a domain, keyed by <domain type=...> as libvirt keys its
// drivers by URI. 'v86' → the embedded v86 engine; 'qemu' → QEMU with TCG; 'kvm' → QEMU with KVM
// when a probe guest proves it usable, else TCG with a notice. Without QEMU, 'qemu' and 'kvm'
// domains (virt-manager users import KVM XML) still run on v86, and say so.
import path from 'node:path';
import type { ConnectionInfo } from '../../../shared/api.js';
import type { DefinitionWarning } from '../../../shared/domain.js';
import { peekStateEngine, STATE_ENGINE_VERSION } from '../../common/statefile.js';
import { vncPasswordWarnings } from '../domain/engine-support.js';
import type { DomainDocument } from '../domain/xml.js';
import type { EngineDriver, SupportReport } from './driver.js';
import { Accel, type AccelMode, type AccelState } from './qemu/accel.js';
import type { QemuBinary } from './qemu/binary.js';
import { QemuDriver } from './qemu/driver.js';
import { V86Driver } from './v86/driver.js';

const QEMU_TYPES = new Set(['qemu', 'kvm']);

export class Engines {
  readonly v86: V86Driver;
  readonly qemu: QemuDriver;
  readonly accel: Accel;
  /** The accelerator each QEMU domain got at its last start, for start's notes. */
  private readonly accelUsed = new Map<string, AccelState>();

  constructor(home: string, runDir: string) {
    this.v86 = new V86Driver(runDir);
    this.accel = new Accel(home);
    this.qemu = new QemuDriver(runDir, path.join(home, 'logs'), (doc, qemu) => this.accelFor(doc, qemu));
  }

  all(): EngineDriver[] {
    return [this.v86, this.qemu];
  }

  driverFor(doc: DomainDocument): { driver: EngineDriver; notes: DefinitionWarning[] } {
    if (!QEMU_TYPES.has(doc.config.type)) return { driver: this.v86, notes: [] };
    const qemu = this.qemu.binary();
    if (qemu.path && qemu.version) return { driver: this.qemu, notes: [] };
    return {
      driver: this.v86,
      notes: [{ element: 'domain[@type]', message: `<domain type='${doc.config.type}'> runs on v86: QEMU is not available (${qemu.problem})` }],
    };
  }

  support(doc: DomainDocument): SupportReport {
    const { driver, notes } = this.driverFor(doc);
    const report = driver.support(doc);
    return { warnings: [...notes, ...report.warnings, ...vncPasswordWarnings(doc.config)], errors: report.errors };
  }

  /** What `domain.start` tells the user about the engine that runs the domain. */
  startNotes(doc: DomainDocument): DefinitionWarning[] {
    const { driver, notes } = this.driverFor(doc);
    if (driver !== this.qemu) return notes;
    const used = this.accelUsed.get(doc.config.uuid);
    if (!used) return notes;
    const how = used.using === 'kvm' ? 'QEMU with KVM' : 'QEMU with TCG (emulation, no KVM)';
    const why = doc.config.type === 'kvm' && used.using === 'tcg' ? `: ${used.reason ?? 'KVM is not usable'}` : '';
    return [...notes, { element: 'domain[@type]', message: `runs on ${how}${why}` }];
  }

  /** The driver a state file belongs to, from the engine its header names. */
  forStateFile(file: string): EngineDriver {
    return peekStateEngine(file) === this.qemu.engine ? this.qemu : this.v86;
  }

  connections(): ConnectionInfo[] {
    const qemu = this.qemu.binary();
    return [
      { uri: this.v86.uri, engine: this.v86.engine, available: true, version: STATE_ENGINE_VERSION },
      {
        uri: this.qemu.uri,
        engine: this.qemu.engine,
        available: Boolean(qemu.path && qemu.version),
        version: qemu.version,
        problem: qemu.problem,
        accel: qemu.version ? this.accel.state(qemu.version) : undefined,
      },
    ];
  }

  /** host.setAccel: 'auto' runs the KVM probe now (when not cached) so the answer is shown at once. */
  async setAccel(mode: AccelMode): Promise<ConnectionInfo> {
    this.accel.setMode(mode);
    const qemu = this.qemu.binary();
    if (mode === 'auto' && qemu.path && qemu.version) await this.accel.resolve(qemu.path, qemu.version);
    return this.connections()[1];
  }

  /** virsh domxml-to-native qemu-argv. */
  async toNative(doc: DomainDocument): Promise<string[]> {
    const qemu = this.qemu.binary();
    const using = doc.config.type === 'kvm' && qemu.version ? this.accel.state(qemu.version).using : 'tcg';
    return this.qemu.toNative(doc, using);
  }

  private async accelFor(doc: DomainDocument, qemu: QemuBinary): Promise<AccelState> {
    let state: AccelState;
    if (doc.config.type === 'kvm') {
      state = await this.accel.resolve(qemu.path!, qemu.version!);
    } else {
      state = { mode: 'tcg', kvmUsable: this.accel.state(qemu.version).kvmUsable, using: 'tcg', reason: "<domain type='qemu'> runs with TCG" };
    }
    this.accelUsed.set(doc.config.uuid, state);
    return state;
  }
}
