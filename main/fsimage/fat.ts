// FAT12/16/32 with long file names (VFAT). Cluster chains are walked with a step bound and cycle
// detection; names are matched case-insensitively, as on the FAT drivers of every OS.
import { corrupt, guarded, limit } from './errors.js';
import { BlockCache, MiB, type Slice } from './reader.js';
import type { DirEntry, FsDriver, NodeInfo } from './vfs.js';

const MAX_DIR_BYTES = 8 * MiB;
const MAX_CACHED_DIRS = 256;

export interface FatNode {
  cluster: number;
  size: number;
  dir: boolean;
  /** FAT12/16 fixed root directory. */
  fixedRoot?: boolean;
  mtimeMs?: number;
}

/** A plausible FAT boot sector (BPB values in range and a "FAT" file-system type string). */
export function isFat(head: Buffer): boolean {
  if (head.length < 512 || head.readUInt16LE(510) !== 0xaa55) return false;
  const bps = head.readUInt16LE(11);
  const spc = head[13];
  if (![512, 1024, 2048, 4096].includes(bps) || spc === 0 || (spc & (spc - 1)) !== 0) return false;
  if (head.readUInt16LE(14) === 0 || head[16] === 0 || head[16] > 4) return false;
  return head.toString('latin1', 54, 57) === 'FAT' || head.toString('latin1', 82, 85) === 'FAT';
}

export class FatFs implements FsDriver<FatNode> {
  readonly type: 'fat12' | 'fat16' | 'fat32';
  readonly label?: string;
  readonly caseInsensitive = true;
  private readonly bps: number;
  private readonly clusterBytes: number;
  private readonly fatStart: number;
  private readonly rootStart: number;
  private readonly rootBytes: number;
  private readonly dataStart: number;
  private readonly clusters: number;
  private readonly rootCluster: number;
  private readonly fatCache: BlockCache;
  private readonly dirs = new Map<number, DirEntry<FatNode>[]>();

  constructor(private readonly slice: Slice) {
    const b = slice.read(0, 512);
    if (!isFat(b)) throw corrupt('not a FAT filesystem (bad boot sector)');
    this.bps = b.readUInt16LE(11);
    const spc = b[13];
    const reserved = b.readUInt16LE(14);
    const nfats = b[16];
    const rootEntries = b.readUInt16LE(17);
    const total = b.readUInt16LE(19) || b.readUInt32LE(32);
    const fatSectors = b.readUInt16LE(22) || b.readUInt32LE(36);
    if (fatSectors === 0 || total === 0) throw corrupt('FAT: boot sector sizes are zero');
    this.clusterBytes = this.bps * spc;
    this.fatStart = reserved * this.bps;
    this.rootStart = this.fatStart + nfats * fatSectors * this.bps;
    this.rootBytes = rootEntries * 32;
    this.dataStart = this.rootStart + Math.ceil(this.rootBytes / this.bps) * this.bps;
    if (this.dataStart >= total * this.bps) throw corrupt('FAT: no room for data after the FATs');
    this.clusters = Math.floor((total * this.bps - this.dataStart) / this.clusterBytes);
    this.type = this.clusters < 4085 ? 'fat12' : this.clusters < 65525 ? 'fat16' : 'fat32';
    const fatBits = this.type === 'fat12' ? 12 : this.type === 'fat16' ? 16 : 32;
    if (Math.ceil(((this.clusters + 2) * fatBits) / 8) > fatSectors * this.bps) throw corrupt('FAT: the FAT is too small for the clusters');
    this.rootCluster = this.type === 'fat32' ? b.readUInt32LE(44) & 0x0fffffff : 0;
    if (this.type === 'fat32' && !this.validCluster(this.rootCluster)) throw corrupt(`FAT: root cluster ${this.rootCluster} is invalid`);
    if (this.type !== 'fat32' && rootEntries === 0) throw corrupt('FAT: no root directory entries');
    const labelOff = this.type === 'fat32' ? 71 : 43;
    const label = b.toString('latin1', labelOff, labelOff + 11).trim();
    this.label = label && label !== 'NO NAME' ? label : undefined;
    this.fatCache = new BlockCache(slice, this.bps, 256);
  }

  root(): FatNode {
    return this.type === 'fat32' ? { cluster: this.rootCluster, size: 0, dir: true } : { cluster: 0, size: this.rootBytes, dir: true, fixedRoot: true };
  }

  info(node: FatNode): NodeInfo {
    return { kind: node.dir ? 'dir' : 'file', size: node.dir ? 0 : node.size, mtimeMs: node.mtimeMs };
  }

  list(dir: FatNode): DirEntry<FatNode>[] {
    const key = dir.fixedRoot ? -1 : dir.cluster;
    const cached = this.dirs.get(key);
    if (cached) return cached;
    const entries = guarded('FAT: directory', () => this.readDir(dir));
    if (this.dirs.size >= MAX_CACHED_DIRS) this.dirs.delete(this.dirs.keys().next().value as number);
    this.dirs.set(key, entries);
    return entries;
  }

  read(node: FatNode, maxBytes: number): Buffer {
    if (node.size > maxBytes) throw limit(`file of ${node.size} bytes is larger than the limit of ${maxBytes}`);
    return guarded('FAT: file', () => this.readChain(node.cluster, node.size, node.size));
  }

  readlink(): string {
    throw corrupt('FAT has no symbolic links');
  }

  private validCluster(c: number): boolean {
    return c >= 2 && c < this.clusters + 2;
  }

  private next(c: number): number {
    const byte = this.type === 'fat12' ? c + (c >> 1) : this.type === 'fat16' ? c * 2 : c * 4;
    const read8 = (o: number): number => this.fatCache.block(Math.floor((this.fatStart + o) / this.bps))[(this.fatStart + o) % this.bps];
    if (this.type === 'fat12') {
      const v = read8(byte) | (read8(byte + 1) << 8);
      const e = c & 1 ? v >> 4 : v & 0xfff;
      return e >= 0xff8 ? -1 : e;
    }
    if (this.type === 'fat16') {
      const e = read8(byte) | (read8(byte + 1) << 8);
      return e >= 0xfff8 ? -1 : e;
    }
    const e = (read8(byte) | (read8(byte + 1) << 8) | (read8(byte + 2) << 16) | (read8(byte + 3) << 24)) & 0x0fffffff;
    return e >= 0x0ffffff8 ? -1 : e;
  }

  /** Reads a chain: `size` bytes of it (files), or until the end of chain (directories, size < 0). */
  private readChain(first: number, size: number, cap: number): Buffer {
    if (size === 0) return Buffer.alloc(0);
    const wantClusters = size >= 0 ? Math.ceil(size / this.clusterBytes) : Math.ceil(cap / this.clusterBytes);
    const chain: number[] = [];
    const seen = new Set<number>();
    let c = first;
    while (c !== -1 && chain.length < wantClusters) {
      if (!this.validCluster(c)) throw corrupt(`FAT: cluster chain points at invalid cluster ${c}`);
      if (seen.has(c)) throw corrupt(`FAT: cluster chain loops at cluster ${c}`);
      seen.add(c);
      chain.push(c);
      c = this.next(c);
    }
    if (size >= 0 && chain.length < wantClusters) throw corrupt('FAT: cluster chain is shorter than the file');
    if (size < 0 && c !== -1) throw limit(`FAT: directory is larger than ${cap} bytes`);
    const total = size >= 0 ? size : chain.length * this.clusterBytes;
    const out = Buffer.alloc(total);
    for (let i = 0; i < chain.length; ) {
      // Consecutive clusters are read at once.
      let n = 1;
      while (i + n < chain.length && chain[i + n] === chain[i] + n && n * this.clusterBytes < 16 * MiB) n++;
      const at = i * this.clusterBytes;
      const len = Math.min(n * this.clusterBytes, total - at);
      this.slice.read(this.dataStart + (chain[i] - 2) * this.clusterBytes, len).copy(out, at);
      i += n;
    }
    return out;
  }

  private readDir(dir: FatNode): DirEntry<FatNode>[] {
    const data = dir.fixedRoot ? this.slice.read(this.rootStart, this.rootBytes) : this.readChain(dir.cluster, -1, MAX_DIR_BYTES);
    const out: DirEntry<FatNode>[] = [];
    const names = new Set<string>();
    let lfn: string[] = [];
    let lfnSum = -1;
    for (let off = 0; off + 32 <= data.length; off += 32) {
      const first = data[off];
      if (first === 0) break;
      const attr = data[off + 11];
      if (first === 0xe5) {
        lfn = [];
        continue;
      }
      if (attr === 0x0f) {
        const ord = first & 0x3f;
        if (first & 0x40) {
          lfn = [];
          lfnSum = data[off + 13];
        }
        if (ord === 0 || ord > 20 || data[off + 13] !== lfnSum) {
          lfn = [];
          continue;
        }
        lfn[ord - 1] = lfnChars(data, off);
        continue;
      }
      if (attr & 0x08) {
        lfn = [];
        continue;
      }
      const short = data.subarray(off, off + 11);
      const name = lfn.length && checksum(short) === lfnSum && lfn.every((p) => p !== undefined) ? lfn.join('') : shortName(short, data[off + 12]);
      lfn = [];
      if (name === '.' || name === '..' || name === '' || name.includes('/')) continue;
      if (names.has(name.toLowerCase())) continue;
      names.add(name.toLowerCase());
      const cluster = (this.type === 'fat32' ? data.readUInt16LE(off + 20) << 16 : 0) + data.readUInt16LE(off + 26);
      const isDir = (attr & 0x10) !== 0;
      const size = data.readUInt32LE(off + 28);
      out.push({ name, node: { cluster, size: isDir ? 0 : size, dir: isDir, mtimeMs: fatTime(data.readUInt16LE(off + 24), data.readUInt16LE(off + 22)) } });
    }
    return out;
  }
}

function lfnChars(d: Buffer, off: number): string {
  const codes: number[] = [];
  for (const [s, n] of [
    [1, 5],
    [14, 6],
    [28, 2],
  ]) {
    for (let i = 0; i < n; i++) codes.push(d.readUInt16LE(off + s + i * 2));
  }
  const end = codes.indexOf(0);
  return String.fromCharCode(...(end >= 0 ? codes.slice(0, end) : codes));
}

function checksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short[i]) & 0xff;
  return sum;
}

function shortName(raw: Buffer, ntres: number): string {
  let base = raw.toString('latin1', 0, 8).trimEnd();
  let ext = raw.toString('latin1', 8, 11).trimEnd();
  if (raw[0] === 0x05) base = '\xe5' + base.slice(1);
  if (ntres & 0x08) base = base.toLowerCase();
  if (ntres & 0x10) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}

function fatTime(date: number, time: number): number | undefined {
  if (date === 0) return undefined;
  return Date.UTC(1980 + (date >> 9), ((date >> 5) & 15) - 1, date & 31, time >> 11, (time >> 5) & 63, (time & 31) * 2);
}
