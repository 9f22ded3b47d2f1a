// Where a domain's snapshots live and how they relate: <snapshots>/<uuid>/snaps/<name>/ holds one
// snapshot (snapshot.xml, libvirt's <domainsnapshot>; the engine's data beside it), and
// <snapshots>/<uuid>/current names the current one. Every metadata write is atomic; names given by
// clients are matched against the stored ones, never joined into paths as they come.
import fs from 'node:fs';
import path from 'node:path';
import type { SnapshotInfo } from '../../../shared/api.js';
import { writeFileAtomic } from '../../common/fsutil.js';
import { noSnapshot, systemError } from '../errors.js';
import { log } from '../log.js';
import { parseSnapshotXml, snapshotXml, type SnapshotMeta } from './xml.js';

const META = 'snapshot.xml';
const CURRENT = 'current';

export class SnapshotTree {
  constructor(private readonly root: string) {}

  domainDir(uuid: string): string {
    return path.join(this.root, uuid);
  }

  /** The snapshot's own directory (its engine's files go there too). */
  dir(uuid: string, name: string): string {
    return path.join(this.root, uuid, 'snaps', name);
  }

  list(uuid: string): SnapshotMeta[] {
    const snaps = path.join(this.root, uuid, 'snaps');
    if (!fs.existsSync(snaps)) return [];
    const out: SnapshotMeta[] = [];
    for (const entry of fs.readdirSync(snaps, { withFileTypes: true })) {
      const file = path.join(snaps, entry.name, META);
      if (!entry.isDirectory() || !fs.existsSync(file)) continue;
      try {
        out.push(parseSnapshotXml(fs.readFileSync(file, 'utf8'), file));
      } catch (err) {
        log('warn', `ignoring snapshot '${entry.name}': ${(err as Error).message}`);
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name));
  }

  get(uuid: string, name: string): SnapshotMeta {
    const found = this.list(uuid).find((m) => m.name === name);
    if (!found) throw noSnapshot(name);
    return found;
  }

  has(uuid: string, name: string): boolean {
    return this.list(uuid).some((m) => m.name === name);
  }

  write(uuid: string, meta: SnapshotMeta): void {
    const file = path.join(this.dir(uuid, meta.name), META);
    try {
      writeFileAtomic(file, snapshotXml(meta));
    } catch (err) {
      throw systemError((err as Error).message);
    }
  }

  current(uuid: string): string | undefined {
    const file = path.join(this.root, uuid, CURRENT);
    const name = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
    return name && this.has(uuid, name) ? name : undefined;
  }

  setCurrent(uuid: string, name: string | undefined): void {
    const file = path.join(this.root, uuid, CURRENT);
    if (name === undefined) fs.rmSync(file, { force: true });
    else writeFileAtomic(file, `${name}\n`);
  }

  /** Removes one snapshot's directory (metadata and data). */
  remove(uuid: string, name: string): void {
    fs.rmSync(this.dir(uuid, name), { recursive: true, force: true });
  }

  removeDomain(uuid: string): void {
    fs.rmSync(this.domainDir(uuid), { recursive: true, force: true });
  }

  /** The snapshot as the API shows it, with its place in the tree. */
  info(uuid: string, meta: SnapshotMeta, all: SnapshotMeta[] = this.list(uuid)): SnapshotInfo {
    return snapshotInfo(meta, all, this.current(uuid), fs.existsSync(path.join(this.dir(uuid, meta.name), 'thumbnail.png')));
  }
}

/** A snapshot's metadata as the API shows it: its place among `all`, and whether it is `current`. */
export function snapshotInfo(meta: SnapshotMeta, all: SnapshotMeta[], current: string | undefined, thumbnail: boolean): SnapshotInfo {
  return {
    name: meta.name,
    ...(meta.description && { description: meta.description }),
    createdAt: meta.createdAt,
    state: meta.state,
    ...(meta.parent && { parent: meta.parent }),
    current: current === meta.name,
    memory: meta.memory !== 'no',
    children: all.filter((m) => m.parent === meta.name).length,
    descendants: descendants(all, meta.name).length,
    location: meta.memory === 'external' || meta.disks.some((d) => d.snapshot === 'external') ? 'external' : 'internal',
    thumbnail,
  };
}

/** Names of every snapshot below `name`, children before their own children. */
export function descendants(all: SnapshotMeta[], name: string): string[] {
  const out: string[] = [];
  const queue = [name];
  while (queue.length) {
    const next = queue.shift() as string;
    for (const m of all) {
      if (m.parent === next) {
        out.push(m.name);
        queue.push(m.name);
      }
    }
  }
  return out;
}
