// What every filesystem driver provides, and the path walk on top of it (symlinks followed with a
// bounded depth, ".." kept inside the filesystem), so each driver only reads its own structures.
import { FsImageError, corrupt, limit } from './errors.js';
import { MiB } from './reader.js';

export type NodeKind = 'file' | 'dir' | 'symlink' | 'other';

export interface NodeInfo {
  kind: NodeKind;
  size: number;
  /** POSIX mode bits when the filesystem has them. */
  mode?: number;
  mtimeMs?: number;
}

export interface DirEntry<N> {
  name: string;
  node: N;
}

/** One filesystem driver; `N` is its handle for a file or directory. */
export interface FsDriver<N> {
  readonly type: string;
  readonly label?: string;
  /** The filesystem UUID, as root=UUID= names it. */
  readonly uuid?: string;
  readonly caseInsensitive: boolean;
  root(): N;
  info(node: N): NodeInfo;
  list(dir: N): DirEntry<N>[];
  /** The whole content of a file, at most `maxBytes` (FsImageError 'limit' beyond). */
  read(node: N, maxBytes: number): Buffer;
  readlink(node: N): string;
}

export interface Stat extends NodeInfo {
  path: string;
}

export interface ListedEntry {
  name: string;
  kind: NodeKind;
  size: number;
}

/** Defaults: a kernel or initrd fits in 256 MiB; a symlink chain ends within 16 hops. */
export const MAX_FILE_BYTES = 256 * MiB;
const MAX_SYMLINKS = 16;
const MAX_PATH_COMPONENTS = 256;
const MAX_LINK_BYTES = 4096;

/** A read-only view of one filesystem with path-based calls. */
export class Filesystem {
  constructor(private readonly driver: FsDriver<unknown>) {}

  get type(): string {
    return this.driver.type;
  }
  get label(): string | undefined {
    return this.driver.label;
  }
  get uuid(): string | undefined {
    return this.driver.uuid;
  }

  stat(path: string, followLast = true): Stat {
    const { node, path: real } = this.walk(path, followLast);
    return { path: real, ...this.driver.info(node) };
  }

  exists(path: string): boolean {
    try {
      this.walk(path, true);
      return true;
    } catch (err) {
      if (err instanceof FsImageError && (err.code === 'not-found' || err.code === 'not-dir' || err.code === 'loop')) return false;
      throw err;
    }
  }

  readdir(path: string): ListedEntry[] {
    const { node, path: real } = this.walk(path, true);
    if (this.driver.info(node).kind !== 'dir') throw new FsImageError('not-dir', `${real}: not a directory`);
    return this.driver.list(node).map((e) => {
      const info = this.driver.info(e.node);
      return { name: e.name, kind: info.kind, size: info.size };
    });
  }

  readFile(path: string, maxBytes = MAX_FILE_BYTES): Buffer {
    const { node, path: real } = this.walk(path, true);
    const info = this.driver.info(node);
    if (info.kind === 'dir') throw new FsImageError('is-dir', `${real}: is a directory`);
    if (info.kind !== 'file') throw new FsImageError('unsupported', `${real}: not a regular file`);
    if (info.size > maxBytes) throw limit(`${real}: ${info.size} bytes is more than the limit of ${maxBytes}`);
    return this.driver.read(node, maxBytes);
  }

  readlink(path: string): string {
    const { node, path: real } = this.walk(path, false);
    if (this.driver.info(node).kind !== 'symlink') throw new FsImageError('unsupported', `${real}: not a symbolic link`);
    return this.driver.readlink(node);
  }

  /** Resolves `path` (absolute inside the filesystem) to a node and its canonical path. */
  private walk(path: string, followLast: boolean): { node: unknown; path: string } {
    const d = this.driver;
    let pending = split(path);
    let stack: { name: string; node: unknown }[] = [];
    let hops = 0;
    let steps = 0;
    const here = (): string => '/' + stack.map((s) => s.name).join('/');
    while (pending.length) {
      if (++steps > MAX_PATH_COMPONENTS * (MAX_SYMLINKS + 1)) throw limit(`${path}: path too long`);
      const part = pending.shift() as string;
      if (part === '.') continue;
      if (part === '..') {
        stack.pop();
        continue;
      }
      const dir = stack.length ? stack[stack.length - 1].node : d.root();
      if (d.info(dir).kind !== 'dir') throw new FsImageError('not-dir', `${here()}: not a directory`);
      const entry = this.find(dir, part);
      if (!entry) throw new FsImageError('not-found', `${joinPath(here(), part)}: no such file or directory`);
      const kind = d.info(entry.node).kind;
      if (kind === 'symlink' && (pending.length > 0 || followLast)) {
        if (++hops > MAX_SYMLINKS) throw new FsImageError('loop', `${path}: too many levels of symbolic links`);
        const target = d.readlink(entry.node);
        if (target.length === 0 || target.length > MAX_LINK_BYTES) throw corrupt(`${joinPath(here(), part)}: invalid symbolic link`);
        if (target.startsWith('/')) stack = [];
        pending = [...split(target), ...pending];
        continue;
      }
      stack.push({ name: entry.name, node: entry.node });
    }
    return { node: stack.length ? stack[stack.length - 1].node : d.root(), path: here() };
  }

  private find(dir: unknown, name: string): DirEntry<unknown> | undefined {
    const entries = this.driver.list(dir);
    const exact = entries.find((e) => e.name === name);
    if (exact || !this.driver.caseInsensitive) return exact;
    const lower = name.toLowerCase();
    return entries.find((e) => e.name.toLowerCase() === lower);
  }
}

function split(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length > MAX_PATH_COMPONENTS) throw limit(`path has more than ${MAX_PATH_COMPONENTS} components`);
  return parts;
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}
