// ISO 9660 with Rock Ridge (NM names, SL symlinks, PX modes, CE continuations, CL/RE relocated
// directories) and Joliet (UCS-2 names). Rock Ridge wins when present, then Joliet, then the plain
// 8.3 names (shown lowercased without ";1", as Linux does).
import { corrupt, FsImageError, guarded, limit } from './errors.js';
import { MiB, type Slice } from './reader.js';
import { DirCache, type DirEntry, type FsDriver, type NodeInfo, type NodeKind } from './vfs.js';

const SECTOR = 2048;
const MAX_DESCRIPTORS = 64;
const MAX_DIR_BYTES = 16 * MiB;
const MAX_DIR_ENTRIES = 100_000;
const MAX_SUSP_BYTES = 64 * 1024;

export interface IsoNode {
  extents: { lba: number; length: number }[];
  size: number;
  dir: boolean;
  mode?: number;
  symlink?: string;
  mtimeMs?: number;
  /** The record's location, as a directory identity. */
  key: number;
}

export function isIso(slice: Slice): boolean {
  if (slice.size < 17 * SECTOR) return false;
  return slice.read(16 * SECTOR + 1, 5).toString('latin1') === 'CD001';
}

export class IsoFs implements FsDriver<IsoNode> {
  readonly type = 'iso9660';
  readonly label?: string;
  readonly caseInsensitive: boolean;
  /** 'rockridge' | 'joliet' | 'plain': how names are read. */
  readonly naming: 'rockridge' | 'joliet' | 'plain';
  private readonly blockSize: number;
  private readonly rootNode: IsoNode;
  private suspSkip = 0;
  private readonly dirs = new DirCache<number, IsoNode>();

  constructor(private readonly slice: Slice) {
    let pvd: Buffer | undefined;
    let joliet: Buffer | undefined;
    for (let i = 0; i < MAX_DESCRIPTORS; i++) {
      if ((16 + i + 1) * SECTOR > slice.size) break;
      const d = slice.read((16 + i) * SECTOR, SECTOR);
      if (d.toString('latin1', 1, 6) !== 'CD001') break;
      const type = d[0];
      if (type === 255) break;
      if (type === 1 && !pvd) pvd = d;
      if (type === 2 && !joliet && d[88] === 0x25 && d[89] === 0x2f && [0x40, 0x43, 0x45].includes(d[90])) joliet = d;
    }
    if (!pvd) throw corrupt('iso9660: no primary volume descriptor');
    this.blockSize = pvd.readUInt16LE(128);
    if (![512, 1024, 2048].includes(this.blockSize)) throw corrupt(`iso9660: logical block size ${this.blockSize} is invalid`);
    const pvdRoot = this.record(pvd, 156, 'root');
    if (!pvdRoot?.dir) throw corrupt('iso9660: the root directory record is invalid');
    this.label = pvd.toString('latin1', 40, 72).trim() || undefined;
    // Rock Ridge is announced by an SP entry (and an ER) in the root's "." record.
    const rr = this.detectRockRidge(pvdRoot);
    if (rr) {
      this.naming = 'rockridge';
      this.rootNode = pvdRoot;
    } else if (joliet) {
      const jroot = this.record(joliet, 156, 'Joliet root');
      if (!jroot?.dir) throw corrupt('iso9660: the Joliet root directory record is invalid');
      this.naming = 'joliet';
      this.rootNode = jroot;
    } else {
      this.naming = 'plain';
      this.rootNode = pvdRoot;
    }
    this.caseInsensitive = this.naming !== 'rockridge';
  }

  root(): IsoNode {
    return this.rootNode;
  }

  info(node: IsoNode): NodeInfo {
    const kind: NodeKind = node.symlink !== undefined ? 'symlink' : node.dir ? 'dir' : 'file';
    return { kind, size: node.size, mode: node.mode, mtimeMs: node.mtimeMs };
  }

  list(dir: IsoNode): DirEntry<IsoNode>[] {
    return this.dirs.get(dir.key, () => guarded('iso9660: directory', () => this.readDir(dir)));
  }

  read(node: IsoNode, maxBytes: number): Buffer {
    if (node.size > maxBytes) throw limit(`file of ${node.size} bytes is larger than the limit of ${maxBytes}`);
    return guarded('iso9660: file', () => {
      const parts = node.extents.map((e) => this.slice.read(e.lba * this.blockSize, e.length));
      return parts.length === 1 ? parts[0] : Buffer.concat(parts);
    });
  }

  readlink(node: IsoNode): string {
    if (node.symlink === undefined) throw new FsImageError('unsupported', 'iso9660: not a symbolic link');
    return node.symlink;
  }

  // ---- records ----

  private record(buf: Buffer, off: number, where: string): IsoNode | undefined {
    const len = buf[off];
    if (len < 34 || off + len > buf.length) return undefined;
    const lba = buf.readUInt32LE(off + 2);
    const length = buf.readUInt32LE(off + 10);
    const flags = buf[off + 25];
    const dir = (flags & 2) !== 0;
    if (lba * this.blockSize + length > this.slice.size) throw corrupt(`iso9660: ${where} extent is beyond the end of the image`);
    return { extents: [{ lba, length }], size: length, dir, key: lba, mtimeMs: recordTime(buf, off + 18) };
  }

  private detectRockRidge(root: IsoNode): boolean {
    if (root.size < 34) return false;
    const first = this.slice.read(root.extents[0].lba * this.blockSize, Math.min(SECTOR, root.size));
    const len = first[0];
    if (len < 34) return false;
    const nameLen = first[32];
    let su = 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0);
    const end = len;
    while (su + 4 <= end) {
      const sig = first.toString('latin1', su, su + 2);
      const l = first[su + 2];
      if (l < 4) break;
      if (sig === 'SP' && first[su + 4] === 0xbe && first[su + 5] === 0xef) {
        this.suspSkip = first[su + 6];
        return true;
      }
      su += l;
    }
    return false;
  }

  private readDir(dir: IsoNode): DirEntry<IsoNode>[] {
    if (dir.size > MAX_DIR_BYTES) throw limit(`iso9660: directory of ${dir.size} bytes is too large`);
    const data = this.read(dir, MAX_DIR_BYTES);
    const out: DirEntry<IsoNode>[] = [];
    const byName = new Map<string, IsoNode>();
    let pendingMulti: IsoNode | undefined;
    let off = 0;
    while (off < data.length) {
      const len = data[off];
      if (len === 0) {
        // Records do not cross sectors: a zero length pads to the next one.
        off = (Math.floor(off / SECTOR) + 1) * SECTOR;
        continue;
      }
      if (len < 34 || off + len > data.length) throw corrupt(`iso9660: malformed directory record at byte ${off}`);
      const nameLen = data[off + 32];
      if (33 + nameLen > len) throw corrupt(`iso9660: directory record name overruns at byte ${off}`);
      const rawName = data.subarray(off + 33, off + 33 + nameLen);
      const node = this.record(data, off, 'directory record');
      const recOff = off;
      off += len;
      if (!node) continue;
      if (nameLen === 1 && (rawName[0] === 0 || rawName[0] === 1)) continue;
      const multi = (data[recOff + 25] & 0x80) !== 0;
      let name: string;
      let hidden = false;
      if (this.naming === 'rockridge') {
        const su = recOff + 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0) + this.suspSkip;
        const rr = this.rockRidge(data.subarray(Math.min(su, recOff + len), recOff + len));
        name = rr.name ?? plainName(rawName, node.dir);
        if (rr.mode !== undefined) node.mode = rr.mode & 0o7777;
        if (rr.symlink !== undefined) node.symlink = rr.symlink;
        if (rr.relocated) hidden = true;
        if (rr.childLink !== undefined) {
          // A deep directory moved elsewhere (CL): its "." record there describes it.
          const sec = this.slice.read(rr.childLink * this.blockSize, SECTOR);
          const moved = this.record(sec, 0, 'relocated directory');
          if (!moved) throw corrupt('iso9660: relocated directory record is invalid');
          node.extents = moved.extents;
          node.size = moved.size;
          node.dir = true;
          node.key = moved.extents[0].lba;
        }
      } else if (this.naming === 'joliet') {
        name = ucs2(rawName).replace(/;\d*$/, '');
      } else {
        name = plainName(rawName, node.dir);
      }
      if (pendingMulti) {
        // Files over 4 GiB come as several records of one name with the multi-extent flag.
        pendingMulti.extents.push(...node.extents);
        pendingMulti.size += node.size;
        if (!multi) pendingMulti = undefined;
        continue;
      }
      if (hidden || name === '' || name.includes('/') || byName.has(name)) continue;
      if (out.length >= MAX_DIR_ENTRIES) throw limit('iso9660: too many directory entries');
      byName.set(name, node);
      out.push({ name, node });
      if (multi) pendingMulti = node;
    }
    return out;
  }

  /** The Rock Ridge entries of one record's system use area, following CE continuations. */
  private rockRidge(area: Buffer): { name?: string; mode?: number; symlink?: string; relocated?: boolean; childLink?: number } {
    const r: { name?: string; mode?: number; symlink?: string; relocated?: boolean; childLink?: number } = {};
    let nameParts: string[] | undefined;
    let linkParts: string[] | undefined;
    let linkContinues = false;
    let total = 0;
    let buf = area;
    for (let hops = 0; hops < 32; hops++) {
      let next: Buffer | undefined;
      let off = 0;
      while (off + 4 <= buf.length) {
        const sig = buf.toString('latin1', off, off + 2);
        const len = buf[off + 2];
        if (len < 4 || off + len > buf.length) break;
        total += len;
        if (total > MAX_SUSP_BYTES) throw limit('iso9660: Rock Ridge entries too long');
        const body = buf.subarray(off + 4, off + len);
        switch (sig) {
          case 'NM':
            if (body.length >= 1) {
              const flags = body[0];
              if (flags & 2) nameParts = ['.'];
              else if (flags & 4) nameParts = ['..'];
              else (nameParts ??= []).push(body.subarray(1).toString('utf8'));
            }
            break;
          case 'PX':
            if (body.length >= 4) r.mode = body.readUInt32LE(0);
            break;
          case 'SL': {
            linkParts ??= [];
            let c = 1;
            while (c + 2 <= body.length) {
              const cflags = body[c];
              const clen = body[c + 1];
              if (c + 2 + clen > body.length) throw corrupt('iso9660: Rock Ridge SL component overruns');
              let part = body.subarray(c + 2, c + 2 + clen).toString('utf8');
              if (cflags & 2) part = '.';
              else if (cflags & 4) part = '..';
              else if (cflags & 8) part = '';
              if (linkContinues && linkParts.length) linkParts[linkParts.length - 1] += part;
              else linkParts.push(cflags & 8 && linkParts.length === 0 ? '' : part);
              linkContinues = (cflags & 1) !== 0;
              c += 2 + clen;
            }
            break;
          }
          case 'RE':
            r.relocated = true;
            break;
          case 'CL':
            if (body.length >= 4) r.childLink = body.readUInt32LE(0);
            break;
          case 'CE':
            if (body.length >= 24) {
              const lba = body.readUInt32LE(0);
              const ceOff = body.readUInt32LE(8);
              const ceLen = body.readUInt32LE(16);
              if (ceLen > MAX_SUSP_BYTES || ceOff >= this.blockSize * 4) throw corrupt('iso9660: Rock Ridge continuation is invalid');
              next = this.slice.read(lba * this.blockSize + ceOff, ceLen);
            }
            break;
          case 'ST':
            off = buf.length;
            continue;
        }
        off += len;
      }
      if (!next) break;
      buf = next;
    }
    if (nameParts) r.name = nameParts.join('');
    if (linkParts) r.symlink = linkParts.length === 1 && linkParts[0] === '' ? '/' : linkParts.join('/');
    return r;
  }
}

function plainName(raw: Buffer, dir: boolean): string {
  let name = raw.toString('latin1').replace(/;\d*$/, '');
  if (!dir && name.endsWith('.')) name = name.slice(0, -1);
  return name.toLowerCase();
}

function ucs2(raw: Buffer): string {
  const chars: number[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) chars.push(raw.readUInt16BE(i));
  return String.fromCharCode(...chars);
}

function recordTime(buf: Buffer, off: number): number | undefined {
  const [y, mo, d, h, mi, s] = [buf[off], buf[off + 1], buf[off + 2], buf[off + 3], buf[off + 4], buf[off + 5]];
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  const tz = (buf.readInt8(off + 6) * 15) / 60;
  return Date.UTC(1900 + y, mo - 1, d, h - tz, mi, s);
}
