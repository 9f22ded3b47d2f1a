// Partition tables: MBR (primary, and logical partitions in the extended partition's EBR chain)
// and GPT (primary header; its CRCs are checked and a mismatch is reported, not fatal).
import zlib from 'node:zlib';
import { corrupt, limit } from './errors.js';
import type { ImageFile } from './reader.js';

export interface Partition {
  /** 1-based, as Linux numbers them (logical MBR partitions start at 5). */
  index: number;
  type: string;
  /** MBR type byte (hex) or GPT type GUID. */
  typeId: string;
  startBytes: number;
  sizeBytes: number;
  bootable?: boolean;
  name?: string;
}

export interface PartitionTable {
  kind: 'mbr' | 'gpt';
  partitions: Partition[];
  problems: string[];
}

const MAX_LOGICAL = 128;
const MAX_GPT_ENTRIES = 1024;

const MBR_TYPES: Record<number, string> = {
  0x01: 'FAT12',
  0x04: 'FAT16 <32M',
  0x05: 'Extended',
  0x06: 'FAT16',
  0x07: 'NTFS/exFAT',
  0x0b: 'W95 FAT32',
  0x0c: 'W95 FAT32 (LBA)',
  0x0e: 'W95 FAT16 (LBA)',
  0x0f: 'W95 Extended (LBA)',
  0x17: 'Hidden NTFS/ISO',
  0x82: 'Linux swap',
  0x83: 'Linux',
  0x85: 'Linux extended',
  0x8e: 'Linux LVM',
  0xa5: 'FreeBSD',
  0xa6: 'OpenBSD',
  0xa9: 'NetBSD',
  0xbf: 'Solaris',
  0xcd: 'ISO9660',
  0xee: 'GPT protective',
  0xef: 'EFI (FAT-12/16/32)',
  0xfd: 'Linux raid autodetect',
};
const EXTENDED = new Set([0x05, 0x0f, 0x85]);

const GPT_TYPES: Record<string, string> = {
  'C12A7328-F81F-11D2-BA4B-00A0C93EC93B': 'EFI System',
  '21686148-6449-6E6F-744E-656564454649': 'BIOS boot',
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4': 'Linux filesystem',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'Linux swap',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'Linux LVM',
  'A19D880F-05FC-4D3B-A006-743F0F84911E': 'Linux RAID',
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709': 'Linux root (x86-64)',
  '44479540-F297-41B2-9AF7-D131D5F0458A': 'Linux root (x86)',
  'BC13C2FF-59E6-4262-A352-B275FD6F7172': 'Linux extended boot',
  '933AC7E1-2EB4-4F13-B844-0E14E2AEF915': 'Linux home',
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'Microsoft basic data',
  'E3C9E316-0B5C-4DB8-817D-F92DF00215AE': 'Microsoft reserved',
};

/** Reads the partition table, or returns undefined when sector 0 holds none. */
export function readPartitionTable(img: ImageFile): PartitionTable | undefined {
  if (img.size < 1024) return undefined;
  const mbr = img.read(0, 512);
  if (mbr.readUInt16LE(510) !== 0xaa55) return undefined;
  const entries = [0, 1, 2, 3].map((i) => mbrEntry(mbr, 446 + i * 16));
  if (entries.some((e) => e.type === 0xee)) {
    for (const sector of [512, 4096]) {
      if (img.size >= sector * 2 && img.read(sector, 8).toString('latin1') === 'EFI PART') return readGpt(img, sector);
    }
  }
  // A FAT or NTFS boot sector also ends in 55AA: its "partition entries" are code and fail these checks.
  const valid = entries.every((e) => (e.status === 0 || e.status === 0x80) && (e.type === 0 || e.count > 0));
  if (!valid || entries.every((e) => e.type === 0)) return undefined;
  const table: PartitionTable = { kind: 'mbr', partitions: [], problems: [] };
  entries.forEach((e, i) => {
    if (e.type === 0) return;
    const p = makeMbrPartition(i + 1, e, 0, img.size, table.problems);
    if (p) table.partitions.push(p);
    if (EXTENDED.has(e.type)) readLogical(img, e.start, table);
  });
  return table;
}

interface MbrEntry {
  status: number;
  type: number;
  start: number;
  count: number;
}

function mbrEntry(buf: Buffer, off: number): MbrEntry {
  return { status: buf[off], type: buf[off + 4], start: buf.readUInt32LE(off + 8), count: buf.readUInt32LE(off + 12) };
}

function makeMbrPartition(index: number, e: MbrEntry, base: number, imageSize: number, problems: string[]): Partition | undefined {
  const startBytes = (base + e.start) * 512;
  let sizeBytes = e.count * 512;
  if (startBytes >= imageSize) {
    problems.push(`partition ${index} starts beyond the end of the image`);
    return undefined;
  }
  if (startBytes + sizeBytes > imageSize) {
    problems.push(`partition ${index} extends beyond the end of the image; truncated`);
    sizeBytes = imageSize - startBytes;
  }
  return {
    index,
    type: MBR_TYPES[e.type] ?? `type 0x${e.type.toString(16)}`,
    typeId: `0x${e.type.toString(16).padStart(2, '0')}`,
    startBytes,
    sizeBytes,
    bootable: e.status === 0x80,
  };
}

/** Logical partitions: a chain of EBRs, each relative to the extended partition's start. */
function readLogical(img: ImageFile, extStart: number, table: PartitionTable): void {
  const seen = new Set<number>();
  let ebr = extStart;
  let index = 5;
  while (index < 5 + MAX_LOGICAL) {
    if (seen.has(ebr)) {
      table.problems.push('the extended partition chain loops');
      return;
    }
    seen.add(ebr);
    if ((ebr + 1) * 512 > img.size) {
      table.problems.push('an extended boot record lies beyond the end of the image');
      return;
    }
    const buf = img.read(ebr * 512, 512);
    if (buf.readUInt16LE(510) !== 0xaa55) {
      table.problems.push(`extended boot record at sector ${ebr} has no signature`);
      return;
    }
    const logical = mbrEntry(buf, 446);
    const next = mbrEntry(buf, 462);
    if (logical.type !== 0 && logical.count > 0) {
      const p = makeMbrPartition(index, logical, ebr, img.size, table.problems);
      if (p) table.partitions.push(p);
      index++;
    }
    if (next.type === 0 || next.start === 0) return;
    ebr = extStart + next.start;
  }
  throw limit(`more than ${MAX_LOGICAL} logical partitions`);
}

function readGpt(img: ImageFile, sector: number): PartitionTable {
  const table: PartitionTable = { kind: 'gpt', partitions: [], problems: [] };
  const hdr = img.read(sector, sector);
  const hdrSize = hdr.readUInt32LE(12);
  if (hdrSize < 92 || hdrSize > sector) throw corrupt(`GPT header size ${hdrSize} is invalid`);
  const copy = Buffer.from(hdr.subarray(0, hdrSize));
  const wantCrc = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  if (zlib.crc32(copy) !== wantCrc) table.problems.push('GPT header checksum mismatch');
  const entriesLba = Number(hdr.readBigUInt64LE(72));
  const count = hdr.readUInt32LE(80);
  const entrySize = hdr.readUInt32LE(84);
  if (count > MAX_GPT_ENTRIES) throw limit(`GPT claims ${count} partition entries (at most ${MAX_GPT_ENTRIES} are read)`);
  if (entrySize < 128 || entrySize > 4096 || entrySize % 8 !== 0) throw corrupt(`GPT entry size ${entrySize} is invalid`);
  const entries = img.read(entriesLba * sector, count * entrySize);
  if (zlib.crc32(entries) !== hdr.readUInt32LE(88)) table.problems.push('GPT partition entries checksum mismatch');
  for (let i = 0; i < count; i++) {
    const e = entries.subarray(i * entrySize, (i + 1) * entrySize);
    const typeId = guid(e, 0);
    if (typeId === '00000000-0000-0000-0000-000000000000') continue;
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    if (last < first || (first + 1) * sector > img.size) {
      table.problems.push(`GPT partition ${i + 1} has an invalid range`);
      continue;
    }
    const startBytes = first * sector;
    const sizeBytes = Math.min((last - first + 1) * sector, img.size - startBytes);
    const name = e.subarray(56, 128).toString('utf16le').replace(/\0.*$/s, '');
    table.partitions.push({ index: i + 1, type: GPT_TYPES[typeId] ?? typeId, typeId, startBytes, sizeBytes, name: name || undefined });
  }
  return table;
}

function guid(b: Buffer, off: number): string {
  const hex = (start: number, end: number, reverse: boolean): string => {
    const bytes = [...b.subarray(off + start, off + end)];
    return (reverse ? bytes.reverse() : bytes).map((x) => x.toString(16).padStart(2, '0')).join('');
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)].join('-').toUpperCase();
}
