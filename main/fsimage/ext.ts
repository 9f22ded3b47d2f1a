// ext2/ext3/ext4, read-only: superblock, group descriptors (32- or 64-byte, meta_bg), inodes,
// block maps (direct/indirect and extent trees of any depth), directories (linear, which also
// walks htree directories), fast and slow symlinks, inline data. The journal is not replayed: a
// filesystem that needs recovery is read as it is on disk.
import { corrupt, FsImageError, guarded, limit } from './errors.js';
import { BlockCache, MiB, type Slice } from './reader.js';
import type { DirEntry, FsDriver, NodeInfo, NodeKind } from './vfs.js';

const EXT_MAGIC = 0xef53;
const INCOMPAT_FILETYPE = 0x2;
const INCOMPAT_META_BG = 0x10;
const INCOMPAT_EXTENTS = 0x40;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_INLINE_DATA = 0x8000;
const INCOMPAT_COMPRESSION = 0x1;
const INCOMPAT_ENCRYPT = 0x10000;
/** Incompatible features this reader understands; anything else is refused up front. */
const INCOMPAT_KNOWN = 0x2 | 0x4 | 0x8 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x20000;

const FL_EXTENTS = 0x80000;
const FL_INLINE_DATA = 0x10000000;
const EXTENT_MAGIC = 0xf30a;
const MAX_EXTENT_DEPTH = 5;
const MAX_DIR_BYTES = 64 * MiB;
const MAX_DIR_ENTRIES = 200_000;
const MAX_CACHED_DIRS = 256;

export interface ExtInode {
  ino: number;
  mode: number;
  size: number;
  flags: number;
  blocks512: number;
  fileAcl: number;
  mtime: number;
  iblock: Buffer;
  raw: Buffer;
}

/** Checks the superblock magic at 1024 (cheap probe used before opening). */
export function isExt(head: Buffer): boolean {
  return head.length >= 2048 && head.readUInt16LE(1024 + 56) === EXT_MAGIC;
}

export class ExtFs implements FsDriver<ExtInode> {
  readonly type: string;
  readonly label?: string;
  readonly uuid?: string;
  readonly caseInsensitive = false;
  private readonly bs: number;
  private readonly cache: BlockCache;
  private readonly inodesCount: number;
  private readonly inodesPerGroup: number;
  private readonly blocksPerGroup: number;
  private readonly groupCount: number;
  private readonly inodeSize: number;
  private readonly descSize: number;
  private readonly firstDataBlock: number;
  private readonly blocksCount: number;
  private readonly incompat: number;
  private readonly firstMetaBg: number;
  private readonly dirs = new Map<number, DirEntry<ExtInode>[]>();

  constructor(private readonly slice: Slice) {
    const sb = slice.read(1024, 1024);
    if (sb.readUInt16LE(56) !== EXT_MAGIC) throw corrupt('not an ext2/3/4 filesystem (bad superblock magic)');
    const logBs = sb.readUInt32LE(24);
    if (logBs > 6) throw corrupt(`ext: block size 2^${10 + logBs} is invalid`);
    this.bs = 1024 << logBs;
    this.incompat = sb.readUInt32LE(96);
    const compat = sb.readUInt32LE(92);
    const revLevel = sb.readUInt32LE(76);
    if (this.incompat & INCOMPAT_COMPRESSION) throw new FsImageError('unsupported', 'ext: compressed filesystems are not supported');
    if (this.incompat & INCOMPAT_ENCRYPT) throw new FsImageError('unsupported', 'ext: encrypted filesystems are not supported');
    if (this.incompat & ~INCOMPAT_KNOWN) {
      throw new FsImageError('unsupported', `ext: unknown incompatible features 0x${(this.incompat & ~INCOMPAT_KNOWN).toString(16)}`);
    }
    this.inodesCount = sb.readUInt32LE(0);
    const is64 = (this.incompat & INCOMPAT_64BIT) !== 0;
    this.blocksCount = sb.readUInt32LE(4) + (is64 ? sb.readUInt32LE(336) * 2 ** 32 : 0);
    this.firstDataBlock = sb.readUInt32LE(20);
    this.blocksPerGroup = sb.readUInt32LE(32);
    this.inodesPerGroup = sb.readUInt32LE(40);
    this.inodeSize = revLevel >= 1 ? sb.readUInt16LE(88) : 128;
    this.descSize = is64 ? sb.readUInt16LE(254) : 32;
    this.firstMetaBg = sb.readUInt32LE(260);
    if (this.blocksPerGroup === 0 || this.blocksPerGroup > this.bs * 8) throw corrupt(`ext: ${this.blocksPerGroup} blocks per group is invalid`);
    if (this.inodesPerGroup === 0 || this.inodesPerGroup > this.bs * 8) throw corrupt(`ext: ${this.inodesPerGroup} inodes per group is invalid`);
    if (this.inodeSize < 128 || this.inodeSize > this.bs || (this.inodeSize & (this.inodeSize - 1)) !== 0) {
      throw corrupt(`ext: inode size ${this.inodeSize} is invalid`);
    }
    if (this.descSize < 32 || this.descSize > 1024 || (this.descSize & (this.descSize - 1)) !== 0) {
      throw corrupt(`ext: group descriptor size ${this.descSize} is invalid`);
    }
    if (this.firstDataBlock >= this.blocksCount) throw corrupt('ext: first data block is beyond the end');
    this.groupCount = Math.ceil((this.blocksCount - this.firstDataBlock) / this.blocksPerGroup);
    if (this.inodesCount > this.groupCount * this.inodesPerGroup) throw corrupt('ext: inode count exceeds the groups');
    this.cache = new BlockCache(slice, this.bs);
    const hasJournal = (compat & 0x4) !== 0;
    const ext4ish = (this.incompat & (INCOMPAT_EXTENTS | INCOMPAT_64BIT | 0x200)) !== 0;
    this.type = ext4ish ? 'ext4' : hasJournal ? 'ext3' : 'ext2';
    const label = sb.subarray(120, 136).toString('utf8').replace(/\0.*$/s, '');
    this.label = label || undefined;
    const u = sb.subarray(104, 120).toString('hex');
    if (!/^0+$/.test(u)) this.uuid = `${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20)}`;
  }

  root(): ExtInode {
    return this.inode(2);
  }

  info(node: ExtInode): NodeInfo {
    return { kind: kindOf(node.mode), size: node.size, mode: node.mode & 0o7777, mtimeMs: node.mtime * 1000 };
  }

  list(dir: ExtInode): DirEntry<ExtInode>[] {
    const cached = this.dirs.get(dir.ino);
    if (cached) return cached;
    const entries = guarded(`ext: directory inode ${dir.ino}`, () => this.readDir(dir));
    if (this.dirs.size >= MAX_CACHED_DIRS) this.dirs.delete(this.dirs.keys().next().value as number);
    this.dirs.set(dir.ino, entries);
    return entries;
  }

  read(node: ExtInode, maxBytes: number): Buffer {
    if (node.size > maxBytes) throw limit(`file of ${node.size} bytes is larger than the limit of ${maxBytes}`);
    return guarded(`ext: inode ${node.ino}`, () => this.content(node));
  }

  readlink(node: ExtInode): string {
    if (node.size > 4096) throw corrupt(`ext: symlink inode ${node.ino} is ${node.size} bytes long`);
    const eaBlocks = node.fileAcl ? this.bs / 512 : 0;
    const fast = node.size < 60 && !(node.flags & (FL_EXTENTS | FL_INLINE_DATA)) && node.blocks512 - eaBlocks <= 0;
    const data = fast ? node.iblock.subarray(0, node.size) : this.content(node);
    return data.toString('utf8');
  }

  // ---- inodes ----

  inode(ino: number): ExtInode {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.inodesCount) throw corrupt(`ext: inode number ${ino} is out of range`);
    const group = Math.floor((ino - 1) / this.inodesPerGroup);
    const index = (ino - 1) % this.inodesPerGroup;
    const table = this.inodeTable(group);
    const byte = index * this.inodeSize;
    const block = table + Math.floor(byte / this.bs);
    this.checkBlock(block, `inode ${ino}`);
    const raw = Buffer.from(this.cache.block(block).subarray(byte % this.bs, (byte % this.bs) + this.inodeSize));
    const mode = raw.readUInt16LE(0);
    const flags = raw.readUInt32LE(32);
    const sizeHi = raw.readUInt32LE(108);
    const size = raw.readUInt32LE(4) + sizeHi * 2 ** 32;
    if (!Number.isSafeInteger(size)) throw corrupt(`ext: inode ${ino} has an impossible size`);
    return {
      ino,
      mode,
      size,
      flags,
      blocks512: raw.readUInt32LE(28) + raw.readUInt16LE(116) * 2 ** 32,
      fileAcl: raw.readUInt32LE(104) + raw.readUInt16LE(118) * 2 ** 32,
      mtime: raw.readUInt32LE(16),
      iblock: raw.subarray(40, 100),
      raw,
    };
  }

  private inodeTable(group: number): number {
    const perBlock = this.bs / this.descSize;
    let descBlock: number;
    const metaGroup = Math.floor(group / perBlock);
    if (this.incompat & INCOMPAT_META_BG && metaGroup >= this.firstMetaBg) {
      // meta_bg: each meta group's descriptors sit in the first block(s) of its first group.
      const first = metaGroup * perBlock;
      descBlock = this.firstDataBlock + first * this.blocksPerGroup + (this.hasSuper(first) ? 1 : 0);
    } else {
      descBlock = this.firstDataBlock + 1 + metaGroup;
    }
    this.checkBlock(descBlock, `group descriptor ${group}`);
    const desc = this.cache.block(descBlock);
    const off = (group % perBlock) * this.descSize;
    const table = desc.readUInt32LE(off + 8) + (this.descSize >= 64 ? desc.readUInt32LE(off + 0x28) * 2 ** 32 : 0);
    this.checkBlock(table, `inode table of group ${group}`);
    return table;
  }

  private hasSuper(group: number): boolean {
    if (group <= 1) return true;
    for (const base of [3, 5, 7]) {
      let p = base;
      while (p < group) p *= base;
      if (p === group) return true;
    }
    return false;
  }

  private checkBlock(block: number, what: string): void {
    if (!Number.isSafeInteger(block) || block < this.firstDataBlock || block >= this.blocksCount) {
      throw corrupt(`ext: ${what} points at block ${block}, outside the filesystem`);
    }
  }

  // ---- content ----

  private content(node: ExtInode): Buffer {
    if (node.flags & FL_INLINE_DATA) return this.inlineData(node).subarray(0, node.size);
    const out = Buffer.alloc(node.size);
    const nblocks = Math.ceil(node.size / this.bs);
    for (const run of this.blockRuns(node, nblocks)) {
      // Coalesced runs are read in pieces of at most 16 MiB.
      let done = 0;
      while (done < run.count) {
        const n = Math.min(run.count - done, Math.max(1, Math.floor((16 * MiB) / this.bs)));
        const first = run.physical + done;
        this.checkBlock(first, `inode ${node.ino} data`);
        this.checkBlock(first + n - 1, `inode ${node.ino} data`);
        const bytesAt = (run.logical + done) * this.bs;
        const want = Math.min(n * this.bs, node.size - bytesAt);
        if (want <= 0) break;
        this.slice.read(first * this.bs, want).copy(out, bytesAt);
        done += n;
      }
    }
    return out;
  }

  /** Physical runs of the first `nblocks` logical blocks; holes are simply absent. */
  private blockRuns(node: ExtInode, nblocks: number): { logical: number; physical: number; count: number }[] {
    const runs: { logical: number; physical: number; count: number }[] = [];
    const add = (logical: number, physical: number, count: number): void => {
      if (count <= 0 || logical >= nblocks) return;
      count = Math.min(count, nblocks - logical);
      const last = runs[runs.length - 1];
      if (last && last.logical + last.count === logical && last.physical + last.count === physical) last.count += count;
      else runs.push({ logical, physical, count });
    };
    if (node.flags & FL_EXTENTS) this.walkExtents(node, nblocks, add);
    else this.walkIndirect(node, nblocks, add);
    return runs;
  }

  private walkExtents(node: ExtInode, nblocks: number, add: (l: number, p: number, c: number) => void): void {
    let visited = 0;
    const maxNodes = nblocks + 16;
    const visit = (buf: Buffer, depthExpected: number | undefined, where: string): void => {
      if (++visited > maxNodes) throw limit(`ext: inode ${node.ino} extent tree has too many nodes`);
      if (buf.length < 12 || buf.readUInt16LE(0) !== EXTENT_MAGIC) throw corrupt(`ext: inode ${node.ino} ${where}: bad extent header`);
      const entries = buf.readUInt16LE(2);
      const max = buf.readUInt16LE(4);
      const depth = buf.readUInt16LE(6);
      if (entries > max || 12 + max * 12 > buf.length) throw corrupt(`ext: inode ${node.ino} ${where}: extent header counts are invalid`);
      if (depth > MAX_EXTENT_DEPTH || (depthExpected !== undefined && depth !== depthExpected)) {
        throw corrupt(`ext: inode ${node.ino} ${where}: extent tree depth ${depth} is invalid`);
      }
      for (let i = 0; i < entries; i++) {
        const e = 12 + i * 12;
        const logical = buf.readUInt32LE(e);
        if (depth === 0) {
          let len = buf.readUInt16LE(e + 4);
          const uninit = len > 32768;
          if (uninit) len -= 32768;
          const physical = buf.readUInt16LE(e + 6) * 2 ** 32 + buf.readUInt32LE(e + 8);
          // Unwritten extents read as zeros, like a hole.
          if (!uninit && len > 0) {
            this.checkBlock(physical, `inode ${node.ino} extent`);
            this.checkBlock(physical + len - 1, `inode ${node.ino} extent`);
            add(logical, physical, len);
          }
        } else {
          if (logical >= nblocks) continue;
          const child = buf.readUInt32LE(e + 4) + buf.readUInt16LE(e + 8) * 2 ** 32;
          this.checkBlock(child, `inode ${node.ino} extent index`);
          visit(this.cache.block(child), depth - 1, `extent node at block ${child}`);
        }
      }
    };
    visit(node.iblock, undefined, 'extent root');
  }

  private walkIndirect(node: ExtInode, nblocks: number, add: (l: number, p: number, c: number) => void): void {
    const per = this.bs / 4;
    let logical = 0;
    for (let i = 0; i < 12 && logical < nblocks; i++, logical++) {
      const b = node.iblock.readUInt32LE(i * 4);
      if (b) add(logical, b, 1);
    }
    const walk = (block: number, level: number): void => {
      const span = per ** level;
      if (block === 0) {
        logical += span;
        return;
      }
      this.checkBlock(block, `inode ${node.ino} indirect block`);
      const ptrs = this.cache.block(block);
      for (let i = 0; i < per && logical < nblocks; i++) {
        const b = ptrs.readUInt32LE(i * 4);
        if (level === 1) {
          if (b) add(logical, b, 1);
          logical++;
        } else {
          walk(b, level - 1);
        }
      }
    };
    for (let level = 1; level <= 3 && logical < nblocks; level++) walk(node.iblock.readUInt32LE((11 + level) * 4), level);
  }

  /** Inline data: the 60 bytes of i_block, then the "system.data" attribute in the inode. */
  private inlineData(node: ExtInode): Buffer {
    return Buffer.concat([node.iblock, this.inlineXattr(node) ?? Buffer.alloc(0)]);
  }

  private inlineXattr(node: ExtInode): Buffer | undefined {
    const raw = node.raw;
    if (raw.length <= 128 + 4) return undefined;
    const extra = raw.readUInt16LE(128);
    const base = 128 + extra;
    if (extra < 4 || base + 4 > raw.length || raw.readUInt32LE(base) !== 0xea020000) return undefined;
    const first = base + 4;
    let off = first;
    for (let n = 0; n < 256 && off + 16 <= raw.length && raw.readUInt32LE(off) !== 0; n++) {
      const nameLen = raw[off];
      const index = raw[off + 1];
      const valueOff = raw.readUInt16LE(off + 2);
      const valueSize = raw.readUInt32LE(off + 8);
      if (off + 16 + nameLen > raw.length) break;
      const name = raw.subarray(off + 16, off + 16 + nameLen).toString('latin1');
      if (index === 7 && name === 'data') {
        if (first + valueOff + valueSize > raw.length) throw corrupt(`ext: inode ${node.ino} inline data attribute is out of bounds`);
        return raw.subarray(first + valueOff, first + valueOff + valueSize);
      }
      off += (16 + nameLen + 3) & ~3;
    }
    return undefined;
  }

  // ---- directories ----

  private readDir(dir: ExtInode): DirEntry<ExtInode>[] {
    if (kindOf(dir.mode) !== 'dir') throw new FsImageError('not-dir', `ext: inode ${dir.ino} is not a directory`);
    if (dir.size > MAX_DIR_BYTES) throw limit(`ext: directory inode ${dir.ino} is larger than ${MAX_DIR_BYTES} bytes`);
    const out: DirEntry<ExtInode>[] = [];
    const seen = new Set<string>();
    const push = (ino: number, name: string): void => {
      if (name === '.' || name === '..' || seen.has(name)) return;
      if (out.length >= MAX_DIR_ENTRIES) throw limit(`ext: directory inode ${dir.ino} has more than ${MAX_DIR_ENTRIES} entries`);
      seen.add(name);
      out.push({ name, node: this.inode(ino) });
    };
    if (dir.flags & FL_INLINE_DATA) {
      // Inline directories: the parent's inode number, then entries; more entries in the xattr.
      this.parseEntries(dir.iblock.subarray(4), push, dir.ino);
      const more = this.inlineXattr(dir);
      if (more && more.length) this.parseEntries(more, push, dir.ino);
      return out;
    }
    const data = this.content(dir);
    for (let off = 0; off < data.length; off += this.bs) this.parseEntries(data.subarray(off, off + this.bs), push, dir.ino);
    return out;
  }

  private parseEntries(buf: Buffer, push: (ino: number, name: string) => void, dirIno: number): void {
    const hasType = (this.incompat & INCOMPAT_FILETYPE) !== 0;
    let off = 0;
    while (off + 8 <= buf.length) {
      const ino = buf.readUInt32LE(off);
      let recLen = buf.readUInt16LE(off + 4);
      if (this.bs === 65536 && (recLen === 65535 || recLen === 0)) recLen = 65536;
      const nameLen = hasType ? buf[off + 6] : buf.readUInt16LE(off + 6) & 0xff;
      if (recLen < 8 || recLen % 4 !== 0 || off + recLen > buf.length || 8 + nameLen > recLen) {
        throw corrupt(`ext: directory inode ${dirIno} has a malformed entry at byte ${off}`);
      }
      if (ino !== 0 && nameLen > 0) {
        const name = buf.subarray(off + 8, off + 8 + nameLen).toString('utf8');
        if (name.includes('/') || name.includes('\0')) throw corrupt(`ext: directory inode ${dirIno} has an invalid name`);
        push(ino, name);
      }
      off += recLen;
    }
  }
}

function kindOf(mode: number): NodeKind {
  switch (mode & 0xf000) {
    case 0x8000:
      return 'file';
    case 0x4000:
      return 'dir';
    case 0xa000:
      return 'symlink';
    default:
      return 'other';
  }
}
