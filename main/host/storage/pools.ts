// Storage pools and volumes, libvirt style: a pool is a host directory (type 'dir'), its volumes
// are the image files in it. The `default` pool lives in the data dir and is created on first use;
// other pools are defined by a small JSON file each under storage/pools/ (written atomically).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { PoolInfo, StorageRemoval, VolumeInfo } from '../../../shared/api.js';
import type { DiskConfig } from '../../../shared/domain.js';
import { fsyncPath, isRegularFile, writeFileAtomic } from '../../common/fsutil.js';
import { HostError, invalidArg, noStoragePool, noStorageVol, operationFailed, operationInvalid } from '../errors.js';
import { log } from '../log.js';
import { cloneImage, createImage, ImageError, probeImage, resizeImage } from './image.js';
import { samePath, writable, type DiskUser } from './in-use.js';

export const DEFAULT_POOL = 'default';

/** A pool definition as stored (storage/pools/<name>.json). */
export const PoolDefinition = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/),
    type: z.literal('dir'),
    path: z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path'),
    autostart: z.boolean().default(true),
  })
  .strict();
export type PoolDefinition = z.infer<typeof PoolDefinition>;

export interface StoragePaths {
  /** The default pool's directory. */
  images: string;
  /** Pool definitions. */
  pools: string;
}

export class Storage {
  constructor(
    private readonly paths: StoragePaths,
    /** Every domain's disks (persistent and live definitions), for usedBy and in-use checks. */
    private readonly users: () => DiskUser[],
  ) {}

  /** The default pool first, then the others by name. */
  definitions(): PoolDefinition[] {
    const defs = new Map<string, PoolDefinition>([[DEFAULT_POOL, { name: DEFAULT_POOL, type: 'dir', path: this.paths.images, autostart: true }]]);
    let files: string[] = [];
    try {
      files = fs.readdirSync(this.paths.pools).filter((f) => f.endsWith('.json'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const file of files.sort()) {
      const parsed = PoolDefinition.safeParse(readJson(path.join(this.paths.pools, file)));
      if (parsed.success) defs.set(parsed.data.name, parsed.data);
      else log('warn', `skipping unreadable pool definition ${path.join(this.paths.pools, file)}`);
    }
    return [...defs.values()];
  }

  /** Defines (or redefines) a directory pool; the directory is created when the pool is first used. */
  definePool(def: PoolDefinition): PoolInfo {
    const parsed = PoolDefinition.parse(def);
    writeFileAtomic(path.join(this.paths.pools, `${parsed.name}.json`), `${JSON.stringify(parsed, null, 2)}\n`);
    return this.poolInfo(parsed);
  }

  listPools(): PoolInfo[] {
    return this.definitions().map((d) => this.poolInfo(d));
  }

  pool(name: string): PoolDefinition {
    const def = this.definitions().find((d) => d.name === name);
    if (!def) throw noStoragePool(`no storage pool with matching name '${name}'`);
    return def;
  }

  /** The pool's directory, made when missing (the default pool on first use). */
  poolDir(name: string): string {
    const def = this.pool(name);
    fs.mkdirSync(def.path, { recursive: true });
    return def.path;
  }

  listVolumes(pool: string): VolumeInfo[] {
    const dir = this.poolDir(pool);
    const users = this.users();
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort()
      .map((name) => this.describe(pool, name, path.join(dir, name), users));
  }

  async createVolume(pool: string, name: string, capacityBytes: number, format: 'raw' | 'qcow2'): Promise<VolumeInfo> {
    const file = this.volumePath(pool, name);
    await imageOp(`cannot create volume '${name}'`, () => createImage(file, capacityBytes, format));
    return this.describe(pool, name, file);
  }

  async cloneVolume(pool: string, source: string, name: string): Promise<VolumeInfo> {
    const from = this.resolve(source, pool);
    const file = this.volumePath(from.pool, name);
    const writer = this.runningWriter(from.path);
    // A disk a guest is writing is not a consistent copy (libvirt refuses the same way).
    if (writer) throw operationInvalid(`volume '${from.name}' is in use by running domain '${writer}'; shut it down first`);
    await imageOp(`cannot clone volume '${from.name}'`, () => cloneImage(from.path, file));
    return this.describe(from.pool, name, file);
  }

  async resizeVolume(pool: string, volume: string, capacityBytes: number): Promise<VolumeInfo> {
    const vol = this.resolve(volume, pool);
    const user = this.runningUsers(vol.path)[0];
    if (user) throw operationInvalid(`volume '${vol.name}' is in use by running domain '${user.name}'; v86 cannot grow a disk under a running guest`);
    await imageOp(`cannot resize volume '${vol.name}'`, () => resizeImage(vol.path, capacityBytes));
    return this.describe(vol.pool, vol.name, vol.path);
  }

  deleteVolume(pool: string, volume: string): void {
    const vol = this.resolve(volume, pool);
    const user = this.runningUsers(vol.path)[0];
    if (user) throw operationInvalid(`volume '${vol.name}' is in use by running domain '${user.name}'`);
    fs.rmSync(vol.path);
    fsyncPath(path.dirname(vol.path));
  }

  /**
   * Which of domain `owner`'s disks go with it (virsh undefine --storage / --remove-all-storage):
   * those named (by target or path), or all. A file outside every pool is not a volume and is kept,
   * as virsh keeps it; so is one another domain's definition uses.
   */
  removalPlan(owner: string, disks: DiskConfig[], named: string[], all: boolean): { remove: StorageRemoval[]; kept: StorageRemoval[] } {
    const withSource = disks.filter((d): d is DiskConfig & { source: string } => d.source !== undefined);
    for (const ref of named) {
      if (!withSource.some((d) => d.target === ref || samePath(d.source, ref))) throw invalidArg(`no disk '${ref}' in the domain to delete`);
    }
    const chosen = withSource.filter((d) => all || named.some((ref) => d.target === ref || samePath(d.source, ref)));
    const users = this.users();
    const remove: StorageRemoval[] = [];
    const kept: StorageRemoval[] = [];
    const poolDirs = this.definitions().flatMap((def) => realDir(def.path) ?? []);
    for (const d of chosen) {
      // The file the kernel would delete: its directory with every symlink and '..' resolved (a
      // textual path.resolve would let 'pool/link/../x' pass as 'pool/x'); the name itself stays,
      // so a symlinked volume loses the link, not its target.
      const dir = realDir(path.dirname(d.source));
      const file = dir === undefined ? d.source : path.join(dir, path.basename(d.source));
      const entry = { target: d.target, file };
      const others = [...new Set(users.filter((u) => u.uuid !== owner && u.disks.some((x) => x.source && samePath(x.source, d.source))).map((u) => u.name))];
      if (others.length) kept.push({ ...entry, reason: `also used by ${others.map((n) => `'${n}'`).join(', ')}` });
      else if (dir === undefined || !isRegularFile(file)) kept.push({ ...entry, reason: 'no such file' });
      else if (!poolDirs.includes(dir)) kept.push({ ...entry, reason: 'not a volume of a storage pool: remove it yourself' });
      else if (!remove.some((r) => samePath(r.file, file))) remove.push(entry);
    }
    return { remove, kept };
  }

  /** Deletes the files of a removal plan; one that cannot go is reported as kept. */
  removeFiles(plan: { remove: StorageRemoval[]; kept: StorageRemoval[] }): { removed: StorageRemoval[]; kept: StorageRemoval[] } {
    const removed: StorageRemoval[] = [];
    const kept = [...plan.kept];
    for (const entry of plan.remove) {
      try {
        fs.rmSync(entry.file);
        removed.push(entry);
      } catch (err) {
        kept.push({ ...entry, reason: (err as Error).message });
      }
    }
    for (const dir of new Set(removed.map((r) => path.dirname(r.file)))) fsyncPath(dir);
    return { removed, kept };
  }

  /** A volume by pool + name, by name in any pool, or by the path of a file in a pool. */
  volumeInfo(volume: string, pool?: string): VolumeInfo {
    const vol = this.resolve(volume, pool);
    return this.describe(vol.pool, vol.name, vol.path);
  }

  /** Finds a volume the way virsh does: a path (of a file inside a pool), else a name in `pool` (or in any pool). */
  resolve(volume: string, pool?: string): { pool: string; name: string; path: string } {
    if (volume.includes('/')) {
      const file = path.resolve(volume);
      const owner = this.definitions().find((d) => path.dirname(file) === path.resolve(d.path) && (!pool || d.name === pool));
      if (owner && isRegularFile(file)) return { pool: owner.name, name: path.basename(file), path: file };
      throw noStorageVol(`no storage vol with matching path '${volume}'${pool ? ` in pool '${pool}'` : ''}`);
    }
    const pools = pool ? [this.pool(pool)] : this.definitions();
    for (const def of pools) {
      const file = path.join(def.path, volume);
      if (isRegularFile(file)) return { pool: def.name, name: volume, path: file };
    }
    throw noStorageVol(`no storage vol with matching name '${volume}'${pool ? ` in pool '${pool}'` : ''}`);
  }

  private volumePath(pool: string, name: string): string {
    if (name.includes('/') || name.startsWith('.')) throw invalidArg(`invalid volume name '${name}'`);
    return path.join(this.poolDir(pool), name);
  }

  private runningUsers(file: string): DiskUser[] {
    return this.users().filter((u) => u.running && u.disks.some((d) => d.source && samePath(d.source, file)));
  }

  private runningWriter(file: string): string | undefined {
    return this.users().find((u) => u.running && u.disks.some((d) => d.source && samePath(d.source, file) && writable(d)))?.name;
  }

  private describe(pool: string, name: string, file: string, users = this.users()): VolumeInfo {
    let probe;
    try {
      probe = probeImage(file);
    } catch {
      probe = { format: 'unknown' as const, capacityBytes: 0, allocationBytes: 0 };
    }
    const usedBy = users.filter((u) => u.disks.some((d) => d.source && samePath(d.source, file))).map((u) => u.name);
    return { pool, name, path: file, ...probe, usedBy: [...new Set(usedBy)] };
  }

  private poolInfo(def: PoolDefinition): PoolInfo {
    let capacityBytes = 0;
    let availableBytes = 0;
    let allocationBytes = 0;
    let state: PoolInfo['state'] = 'inactive';
    try {
      fs.mkdirSync(def.path, { recursive: true });
      const st = fs.statfsSync(def.path);
      capacityBytes = st.blocks * st.bsize;
      availableBytes = st.bavail * st.bsize;
      // libvirt's dir pool reports the filesystem's used space as the allocation.
      allocationBytes = (st.blocks - st.bfree) * st.bsize;
      state = 'running';
    } catch {
      // An unusable directory (gone, no permission) is an inactive pool, as libvirt shows it.
    }
    return { name: def.name, type: def.type, path: def.path, state, autostart: def.autostart, capacityBytes, allocationBytes, availableBytes };
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Runs an image operation; its errors become API errors naming the volume. */
export async function imageOp(context: string, op: () => Promise<void>): Promise<void> {
  try {
    await op();
  } catch (err) {
    if (err instanceof ImageError) {
      const codes = { unsupported: 'OPERATION_UNSUPPORTED', exists: 'OPERATION_FAILED', io: 'SYSTEM_ERROR', invalid: 'INVALID_ARG', 'not-found': 'INVALID_ARG' } as const;
      throw new HostError(codes[err.kind], `${context}: ${err.message}`);
    }
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw operationFailed(`${context}: ${(e.stderr || e.message).trim()}`);
  }
}

/** A directory's real path (symlinks and '..' resolved), or undefined if it does not exist. */
function realDir(dir: string): string | undefined {
  try {
    return fs.realpathSync(dir);
  } catch {
    return undefined;
  }
}
