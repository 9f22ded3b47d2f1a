// v86 snapshots: per writable disk a copy-before-write store (common/cow-store.ts) in the snapshot's
// directory, and for a running guest its saved state (the runner's `save`, as virsh save writes it)
// taken while paused, the store switched on before the guest runs again. Revert writes the store
// back into the image and restores the state file; delete drops the store from the runner and
// removes the files.
import fs from 'node:fs';
import path from 'node:path';
import type { DomainConfig } from '../../../../shared/domain.js';
import { CowStore, revertDisk } from '../../../common/cow-store.js';
import type { SnapshotStores } from '../../../runner/protocol.js';
import type { DomainDocument } from '../../domain/xml.js';
import type { EngineSnapshots, LiveDomain, SnapshotRef } from '../driver.js';

type Slot = 'hda' | 'hdb';
const SLOTS: readonly Slot[] = ['hda', 'hdb'];
const MEMORY_FILE = 'memory.state';

/** The hard disks v86 is given, in its drive order (hda, hdb): raw images only, as runnerConfig takes them. */
export function v86HardDisks(config: DomainConfig): { slot: Slot; target: string; source: string }[] {
  return config.disks
    .filter((d): d is typeof d & { source: string } => d.device === 'disk' && d.format === 'raw' && d.source !== undefined)
    .slice(0, 2)
    .map((d, i) => ({ slot: SLOTS[i], target: d.target, source: d.source }));
}

function storeFile(snap: SnapshotRef, slot: Slot): string {
  return path.join(snap.dir, `${slot}.cow`);
}

/** The stores a runner keeps for the domain's snapshots (those that have one for the slot). */
export function v86StoreFiles(snaps: SnapshotRef[]): SnapshotStores {
  const out: SnapshotStores = {};
  for (const slot of SLOTS) {
    const files = snaps.map((s) => storeFile(s, slot)).filter((f) => fs.existsSync(f));
    if (files.length) out[slot] = files;
  }
  return out;
}

/** A v86 runner's live domain, which keeps the stores (driver.ts's V86Live). */
export interface StoreKeeper {
  setSnapshotStores(stores: SnapshotStores): Promise<void>;
}

function keeper(live: LiveDomain): StoreKeeper {
  if (!('setSnapshotStores' in live)) throw new Error('not a v86 guest');
  return live as LiveDomain & StoreKeeper;
}

export const v86Snapshots: EngineSnapshots = {
  cannot(doc) {
    const other = doc.config.disks.find((d) => d.device === 'disk' && d.source && d.format !== 'raw');
    return other ? `v86 snapshots raw disks only, and disk '${other.target}' is ${other.format}` : undefined;
  },

  async create({ doc, snap, others, live, memory, header, onProgress }) {
    const disks = v86HardDisks(doc.config);
    fs.mkdirSync(snap.dir, { recursive: true, mode: 0o700 });
    const wasRunning = live?.state === 'running';
    if (live) await live.pause();
    try {
      if (live && memory) await live.save(path.join(snap.dir, MEMORY_FILE), header, onProgress);
      for (const d of disks) CowStore.create(storeFile(snap, d.slot), fs.statSync(d.source).size).close();
      // From here on the guest's writes keep the snapshot's chunks (it is paused: none came meanwhile).
      if (live) await keeper(live).setSnapshotStores(v86StoreFiles([...others, snap]));
    } catch (err) {
      fs.rmSync(snap.dir, { recursive: true, force: true });
      if (live && wasRunning) await live.resume();
      throw err;
    }
    if (live && wasRunning) await live.resume();
    return { memory: live && memory ? 'internal' : 'no', disks: disks.map((d) => ({ name: d.target, snapshot: 'internal' as const })) };
  },

  memoryRevert: 'state-file',
  memoryFile: (snap) => path.join(snap.dir, MEMORY_FILE),
  loadLive() {
    return Promise.reject(new Error('v86 restores a snapshot from its state file'));
  },

  async revertDisks(doc, snap, others) {
    for (const d of v86HardDisks(doc.config)) {
      const file = storeFile(snap, d.slot);
      if (!fs.existsSync(file)) continue;
      const size = fs.statSync(d.source).size;
      const target = CowStore.open(file, size);
      const rest = others.map((o) => storeFile(o, d.slot)).filter((f) => fs.existsSync(f)).map((f) => CowStore.open(f, size));
      try {
        revertDisk(d.source, target, rest);
      } finally {
        for (const s of [target, ...rest]) s.close();
      }
    }
  },

  async remove(_doc, _snap, others, live) {
    if (live) await keeper(live).setSnapshotStores(v86StoreFiles(others));
  },
};
