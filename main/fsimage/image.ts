// Opening an image: partition table (if any), then a filesystem probe of each partition (or of the
// whole image). Nothing is mounted; everything is read through the bounded ImageFile.
import { FsImageError, guarded } from './errors.js';
import { ExtFs, isExt } from './ext.js';
import { FatFs, isFat } from './fat.js';
import { IsoFs, isIso } from './iso9660.js';
import { readPartitionTable, type Partition } from './partitions.js';
import { DEFAULT_BUDGET, ImageFile, Slice } from './reader.js';
import { Filesystem } from './vfs.js';

export interface Volume {
  /** The partition, or undefined for a filesystem that spans the whole image. */
  partition?: Partition;
  /** "partition 1", or "whole image". */
  where: string;
  fs?: Filesystem;
  /** Why no filesystem was opened (unknown type, or the error met while opening it). */
  problem?: string;
}

export class DiskImage {
  private constructor(
    readonly file: ImageFile,
    readonly format: 'iso' | 'disk',
    readonly partitionTable: 'mbr' | 'gpt' | 'none',
    readonly partitions: Partition[],
    readonly volumes: Volume[],
    readonly problems: string[],
  ) {}

  static open(path: string, budget: Partial<typeof DEFAULT_BUDGET> = {}): DiskImage {
    const file = ImageFile.open(path, budget);
    try {
      return guarded('image', () => DiskImage.probe(file));
    } catch (err) {
      file.close();
      throw err;
    }
  }

  private static probe(file: ImageFile): DiskImage {
    const whole = new Slice(file, 0, file.size);
    const problems: string[] = [];
    let table;
    try {
      table = readPartitionTable(file);
    } catch (err) {
      if (!(err instanceof FsImageError)) throw err;
      problems.push(`partition table: ${err.message}`);
    }
    if (table) problems.push(...table.problems);
    const partitions = table?.partitions ?? [];
    const iso = isIso(whole);
    const volumes: Volume[] = [];
    // An ISO (hybrid or not) is read as one filesystem; its MBR only points back at it.
    if (iso || partitions.length === 0) {
      volumes.push(openVolume(whole, undefined, 'whole image'));
    } else {
      for (const p of partitions) {
        if (p.typeId === '0x05' || p.typeId === '0x0f' || p.typeId === '0x85') continue;
        let slice: Slice;
        try {
          slice = new Slice(file, p.startBytes, p.sizeBytes);
        } catch (err) {
          volumes.push({ partition: p, where: `partition ${p.index}`, problem: (err as Error).message });
          continue;
        }
        volumes.push(openVolume(slice, p, `partition ${p.index}`));
      }
    }
    return new DiskImage(file, iso ? 'iso' : 'disk', table?.kind ?? 'none', partitions, volumes, problems);
  }

  /** The volumes that hold a readable filesystem, in partition order. */
  filesystems(): { volume: Volume; fs: Filesystem }[] {
    return this.volumes.filter((v): v is Volume & { fs: Filesystem } => v.fs !== undefined).map((v) => ({ volume: v, fs: v.fs }));
  }

  close(): void {
    this.file.close();
  }
}

function openVolume(slice: Slice, partition: Partition | undefined, where: string): Volume {
  try {
    const fs = probeFilesystem(slice);
    return fs ? { partition, where, fs } : { partition, where, problem: 'no known filesystem' };
  } catch (err) {
    if (!(err instanceof FsImageError)) throw err;
    if (err.code === 'io' || err.code === 'limit') throw err;
    return { partition, where, problem: err.message };
  }
}

export function probeFilesystem(slice: Slice): Filesystem | undefined {
  if (slice.size >= 17 * 2048 && isIso(slice)) return new Filesystem(new IsoFs(slice));
  const head = slice.read(0, Math.min(slice.size, 2048));
  if (isExt(head)) return new Filesystem(new ExtFs(slice));
  if (isFat(head)) return new Filesystem(new FatFs(slice));
  return undefined;
}
