// What the Memory page says about a balloon target, and which definitions a change of it touches.
// No DOM, no stores: the page's decisions, tested on their own (balloon.test.ts).
import type { CatalogueEntry, MemoryStats, OsinfoEntry } from '@shared/api';

export type BalloonStateKind = 'applied' | 'pending' | 'no-driver' | 'absent';

export interface BalloonState {
  kind: BalloonStateKind;
  /** One short word or two for the state line. */
  label: string;
  /** What the state means for the guest, in one or two sentences. */
  meaning: string;
}

/**
 * The state of the running guest's balloon target. The host answers 'no-driver' only after a bounded
 * wait (its balloon timeout after the request, or after the guest's virtio device showed up); even
 * then the target stays set, so the words say what is known (no answer yet), not that the guest can
 * never follow it.
 */
export function balloonState(stats: Pick<MemoryStats, 'balloon' | 'targetKiB' | 'actualKiB'>, format: (kib: number) => string): BalloonState {
  switch (stats.balloon) {
    case 'ok':
      return { kind: 'applied', label: 'Applied in the guest', meaning: `The guest holds the target, ${format(stats.targetKiB)}.` };
    case 'pending':
      return {
        kind: 'pending',
        label: 'Pending',
        meaning: `The guest has not reached the target yet: it holds ${format(stats.actualKiB)}. Its balloon driver (virtio_balloon) may still be loading, or is handing memory back.`,
      };
    case 'no-driver':
      return {
        kind: 'no-driver',
        label: 'No driver answered',
        meaning:
          `No balloon driver answered within the wait: the guest has not loaded virtio_balloon (yet), so it keeps ${format(stats.actualKiB)} for now. ` +
          'The target stays set: if the driver loads later, the guest follows it then.',
      };
    case 'absent':
      return { kind: 'absent', label: 'No balloon device', meaning: "This domain has no balloon device (<memballoon model='none'>): its allocation can only change at next boot." };
  }
}

/**
 * Which definitions a new allocation goes to, as virsh setmem's flags. A running guest's change is
 * live only unless the user also asked for the next boot (a lowered live target written into the
 * next boot left an installer without memory); shut off, only the next boot exists.
 */
export function setMemoryScope(running: boolean, persistent: boolean, alsoNextBoot: boolean): { live: boolean; config: boolean } {
  if (!running) return { live: false, config: true };
  return { live: true, config: persistent && alsoNextBoot };
}

/**
 * Below this, a general-purpose guest OS of unknown kind may run out of memory: Debian 12's installer
 * needs 256 MiB (its installation guide's minimum without a desktop).
 */
export const UNKNOWN_OS_FLOOR_MIB = 256;

export interface MemoryFloor {
  mib: number;
  /** Where the figure comes from, said with the warning. */
  source: string;
}

/**
 * The least memory the guest's OS wants: osinfo-db's minimum for the OS its definition records
 * (libosinfo metadata as virt-install writes it, looked up by the page), else the catalogue's figure
 * (`domus:<catalogue id>` as the wizard writes it for a download), else a general floor, said so.
 */
export function memoryFloor(
  osId: string | undefined,
  catalogue: Pick<CatalogueEntry, 'id' | 'name' | 'version' | 'memoryMiB'>[],
  osinfo?: Pick<OsinfoEntry, 'id' | 'name' | 'minimumMemoryMiB'>,
): MemoryFloor {
  if (osinfo && osinfo.id === osId && osinfo.minimumMemoryMiB !== undefined) {
    return { mib: osinfo.minimumMemoryMiB, source: `the minimum of ${osinfo.name} (osinfo-db, from its libosinfo metadata)` };
  }
  const id = osId?.startsWith('domus:') ? osId.slice('domus:'.length) : osId;
  const entry = id ? catalogue.find((e) => e.id === id) : undefined;
  if (entry) return { mib: entry.memoryMiB, source: `what ${entry.name} ${entry.version} needs (its libosinfo metadata)` };
  return {
    mib: UNKNOWN_OS_FLOOR_MIB,
    source: `a general floor: the definition names no OS Domus knows (no libosinfo metadata), and ${UNKNOWN_OS_FLOOR_MIB} MiB is what Debian 12's installer needs`,
  };
}

/** Whether a new target deserves a warning: lowered, and below the OS's floor. */
export function belowFloor(newKiB: number, beforeKiB: number, floor: MemoryFloor): boolean {
  return newKiB < beforeKiB && newKiB < floor.mib * 1024;
}

/** The OS id recorded in a domain definition's libosinfo metadata (as virt-install writes it). */
export function libosinfoId(doc: XMLDocument): string | undefined {
  const LIBOSINFO_NS = 'http://libosinfo.org/xmlns/libvirt/domain/1.0';
  const os = doc.getElementsByTagNameNS(LIBOSINFO_NS, 'os')[0];
  return os?.getAttribute('id') ?? undefined;
}
