// The primary volume descriptor's identifiers of an ISO 9660 image, as libosinfo reads them to tell
// which OS a medium installs (osinfo_media_create_from_location): volume, system, publisher and
// application ids, and the volume's size in bytes. Only the descriptor set is read (at most
// MAX_DESCRIPTORS sectors from sector 16), so a hostile image costs a few KiB of reading.
import { corrupt, FsImageError } from './errors.js';
import { ImageFile, Slice } from './reader.js';

const SECTOR = 2048;
const MAX_DESCRIPTORS = 64;

export interface IsoIdentity {
  volumeId: string;
  systemId: string;
  publisherId: string;
  applicationId: string;
  /** Volume space size × logical block size, as the descriptor states it (not the file's size). */
  volumeSizeBytes: number;
}

/** Fields are d-characters or a-characters padded with spaces; libosinfo drops the padding. */
function field(d: Buffer, start: number, length: number): string {
  return d
    .toString('latin1', start, start + length)
    .replace(/[\0 ]+$/, '')
    .replace(/[^\x20-\x7e]/g, '?');
}

export function isoIdentityOf(slice: Slice): IsoIdentity {
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    if ((16 + i + 1) * SECTOR > slice.size) break;
    const d = slice.read((16 + i) * SECTOR, SECTOR);
    if (d.toString('latin1', 1, 6) !== 'CD001' || d[0] === 255) break;
    if (d[0] !== 1) continue;
    return {
      systemId: field(d, 8, 32),
      volumeId: field(d, 40, 32),
      publisherId: field(d, 318, 128),
      applicationId: field(d, 574, 128),
      volumeSizeBytes: d.readUInt32LE(80) * d.readUInt16LE(128),
    };
  }
  throw new FsImageError('unsupported', 'not an ISO 9660 image (no primary volume descriptor)');
}

/** Reads the identifiers of the ISO at `path` (bounded reads through ImageFile). */
export function readIsoIdentity(path: string): IsoIdentity {
  const file = ImageFile.open(path, { maxBytesRead: MAX_DESCRIPTORS * SECTOR, timeoutMs: 10_000 });
  try {
    if (file.size < 17 * SECTOR) throw corrupt(`${file.size} bytes is too small for an ISO 9660 image`);
    return isoIdentityOf(new Slice(file, 0, file.size));
  } finally {
    file.close();
  }
}
