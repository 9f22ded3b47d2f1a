// osinfo-db, the XML database libosinfo (and so virt-install and virt-manager) uses to tell which OS
// an install medium holds and what that OS needs. Debian's `osinfo-db` package installs it in
// /usr/share/osinfo (OSINFO_SYSTEM_DIR overrides, as it does for libosinfo). The files are read
// with the project's XML parser, never through osinfo-detect; each file and the whole set are
// bounded, since the directory can be replaced by anyone who can write it.
import fs from 'node:fs';
import path from 'node:path';
import type { OsinfoEntry, OsinfoPresets } from '../../../shared/api.js';
import { parseXmlTree, XmlSyntaxError, type XmlElement } from '../domain/xml-tree.js';

export const DEFAULT_OSINFO_DIR = '/usr/share/osinfo';
const MAX_FILES = 5000;
const MAX_FILE_BYTES = 1 << 20;
const MAX_TOTAL_BYTES = 64 << 20;
const MAX_DIR_DEPTH = 2;
const MAX_REGEX_CHARS = 512;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** One <iso> block of a <media>: regexes (GLib's, which JavaScript reads the same for these) and an exact size. */
export interface IsoMatch {
  volumeId?: RegExp;
  systemId?: RegExp;
  publisherId?: RegExp;
  applicationId?: RegExp;
  volumeSize?: number;
}

export interface OsMedia {
  arch: string;
  live: boolean;
  variant?: string;
  iso?: IsoMatch;
}

interface Resources {
  ramBytes?: number;
  storageBytes?: number;
  cpus?: number;
}

export interface OsRecord {
  id: string;
  shortIds: string[];
  name: string;
  version?: string;
  vendor?: string;
  family?: string;
  releaseDate?: string;
  eolDate?: string;
  derivesFrom?: string;
  resources: { arch: string; minimum: Resources; recommended: Resources }[];
  /** Device ids (http://pcisig.com/pci/1af4/1000…) with supported="false" ones marked. */
  devices: { id: string; supported: boolean }[];
  media: OsMedia[];
  file: string;
}

export class OsinfoDb {
  readonly byId = new Map<string, OsRecord>();
  /** Files skipped, with the reason (a bad file does not hide the others). */
  readonly problems: string[] = [];

  constructor(
    readonly dir: string,
    readonly oses: OsRecord[],
    problems: string[],
  ) {
    for (const os of oses) this.byId.set(os.id, os);
    this.problems.push(...problems);
  }

  /** Walks derives-from, the OS itself first; bounded against loops in a hostile database. */
  lineage(os: OsRecord): OsRecord[] {
    const chain = [os];
    for (let next = os.derivesFrom; next && chain.length < 32; ) {
      const parent = this.byId.get(next);
      if (!parent || chain.includes(parent)) break;
      chain.push(parent);
      next = parent.derivesFrom;
    }
    return chain;
  }

  /** The architectures an OS's media are published for, x86 first. */
  arches(os: OsRecord): string[] {
    const set = [...new Set(os.media.map((m) => m.arch))];
    const rank = (a: string): number => (a === 'i686' ? 0 : a === 'x86_64' ? 1 : 2);
    return set.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }

  /**
   * What the wizard presets: recommended resources, else minimum, for `arch` (else "all"); an OS
   * without any takes those of the OS it derives from (Fedora 37 states none and derives from 36),
   * and a device list is inherited the same way, as libosinfo's osinfo_os_get_all_devices does.
   */
  presets(os: OsRecord, arch: string | undefined): OsinfoPresets {
    let memoryMiB: number | undefined;
    let diskGiB: number | undefined;
    let vcpus: number | undefined;
    let source = 'no resources in osinfo-db: general defaults';
    for (const o of this.lineage(os)) {
      const res = o.resources.find((r) => r.arch === arch) ?? o.resources.find((r) => r.arch === 'all');
      if (!res) continue;
      const ram = res.recommended.ramBytes ?? res.minimum.ramBytes;
      const storage = res.recommended.storageBytes ?? res.minimum.storageBytes;
      if (ram === undefined && storage === undefined) continue;
      memoryMiB = ram !== undefined ? Math.round(ram / MiB) : undefined;
      diskGiB = storage !== undefined ? Math.ceil(storage / GiB) : undefined;
      vcpus = res.recommended.cpus ?? res.minimum.cpus;
      const which = res.recommended.ramBytes !== undefined || res.recommended.storageBytes !== undefined ? 'recommended' : 'minimum';
      source = `${which} for ${o.name}${o === os ? '' : ` (${os.name} derives from it)`}`;
      break;
    }
    const devices = new Map<string, boolean>();
    for (const o of this.lineage(os)) for (const d of o.devices) if (!devices.has(d.id)) devices.set(d.id, d.supported);
    const virtioNet = devices.get('http://pcisig.com/pci/1af4/1000') === true || devices.get('http://pcisig.com/pci/1af4/1041') === true;
    return { memoryMiB: memoryMiB ?? 256, diskGiB: diskGiB ?? 2, vcpus: vcpus ?? 1, source, nic: virtioNet ? 'virtio' : 'emulated' };
  }

  minimumMemoryMiB(os: OsRecord, arch?: string): number | undefined {
    for (const o of this.lineage(os)) {
      const res = o.resources.find((r) => r.arch === arch) ?? o.resources.find((r) => r.arch === 'all') ?? o.resources[0];
      if (res?.minimum.ramBytes !== undefined) return Math.round(res.minimum.ramBytes / MiB);
    }
    return undefined;
  }

  entry(os: OsRecord, arch?: string): OsinfoEntry {
    const arches = this.arches(os);
    const presetArch = arch ?? arches[0];
    return {
      id: os.id,
      shortId: os.shortIds[0] ?? os.id,
      name: os.name,
      version: os.version,
      vendor: os.vendor,
      family: os.family,
      arches,
      minimumMemoryMiB: this.minimumMemoryMiB(os, presetArch),
      presets: this.presets(os, presetArch),
      eolDate: os.eolDate,
    };
  }

  /**
   * libosinfo's media match (osinfo_media_matches): every identifier the entry gives must match
   * (an unanchored regex search; an identifier the ISO lacks never matches), its volume size must
   * equal the ISO's where given, and an entry with no identifiers matches nothing. Every OS in
   * file order; libosinfo takes the first.
   */
  identify(id: IsoIdentityLike): { os: OsRecord; media: OsMedia }[] {
    const found: { os: OsRecord; media: OsMedia }[] = [];
    const has = (re: RegExp | undefined, value: string): boolean => re === undefined || (value !== '' && re.test(value));
    for (const os of this.oses) {
      for (const media of os.media) {
        const iso = media.iso;
        if (!iso || (!iso.volumeId && !iso.systemId && !iso.publisherId && !iso.applicationId)) continue;
        if (
          has(iso.volumeId, id.volumeId) &&
          has(iso.systemId, id.systemId) &&
          has(iso.publisherId, id.publisherId) &&
          has(iso.applicationId, id.applicationId) &&
          (iso.volumeSize === undefined || iso.volumeSize === id.volumeSizeBytes)
        ) {
          found.push({ os, media });
          break;
        }
      }
    }
    return found;
  }

  /** Name, short id or id containing `query` (case-insensitive); exact short ids first, then newest releases. */
  search(query: string): OsRecord[] {
    const q = query.trim().toLowerCase();
    const hit = (os: OsRecord): number => {
      if (!q) return 1;
      if (os.shortIds.includes(q) || os.id.toLowerCase() === q) return 3;
      if (os.name.toLowerCase().includes(q)) return 2;
      return os.shortIds.some((s) => s.includes(q)) || os.id.toLowerCase().includes(q) ? 1 : 0;
    };
    return this.oses
      .map((os) => ({ os, score: hit(os) }))
      .filter((x) => x.score > 0)
      .sort((a, b) => b.score - a.score || (b.os.releaseDate ?? '').localeCompare(a.os.releaseDate ?? '') || a.os.name.localeCompare(b.os.name, 'en', { numeric: true }))
      .map((x) => x.os);
  }
}

export type IsoIdentityLike = { volumeId: string; systemId: string; publisherId: string; applicationId: string; volumeSizeBytes: number };

function children(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c): c is XmlElement => c.type === 'element' && c.name === name);
}

function text(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  const t = el.children.map((c) => (c.type === 'text' ? c.text : '')).join('').trim();
  return t || undefined;
}

/** The untranslated value (elements without xml:lang): names come in many languages. */
function plain(el: XmlElement, name: string): string | undefined {
  return text(children(el, name).find((c) => c.attributes['xml:lang'] === undefined));
}

function bytes(el: XmlElement | undefined, name: string): number | undefined {
  if (!el) return undefined;
  const v = plain(el, name);
  if (v === undefined || !/^\d{1,20}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function regex(el: XmlElement, name: string, where: string, problems: string[]): RegExp | undefined {
  const v = plain(el, name);
  if (v === undefined) return undefined;
  if (v.length > MAX_REGEX_CHARS) {
    problems.push(`${where}: <${name}> is longer than ${MAX_REGEX_CHARS} characters; the medium is skipped`);
    return /(?!)/;
  }
  try {
    return new RegExp(v);
  } catch (err) {
    problems.push(`${where}: <${name}> ${JSON.stringify(v)} is not a regular expression JavaScript reads (${(err as Error).message}); the medium is skipped`);
    return /(?!)/;
  }
}

function parseOs(el: XmlElement, file: string, problems: string[]): OsRecord | undefined {
  const id = el.attributes.id;
  const name = plain(el, 'name');
  if (!id || !name) {
    problems.push(`${file}: an <os> without id or name is skipped`);
    return undefined;
  }
  const media: OsMedia[] = children(el, 'media').map((m, i) => {
    const isoEl = children(m, 'iso')[0];
    const where = `${file}: ${id} media ${i + 1}`;
    return {
      arch: m.attributes.arch ?? 'all',
      live: m.attributes.live === 'true',
      variant: children(m, 'variant')[0]?.attributes.id,
      iso: isoEl && {
        volumeId: regex(isoEl, 'volume-id', where, problems),
        systemId: regex(isoEl, 'system-id', where, problems),
        publisherId: regex(isoEl, 'publisher-id', where, problems),
        applicationId: regex(isoEl, 'application-id', where, problems),
        volumeSize: bytes(isoEl, 'volume-size'),
      },
    };
  });
  const res = (r: XmlElement | undefined): Resources => ({ ramBytes: bytes(r, 'ram'), storageBytes: bytes(r, 'storage'), cpus: bytes(r, 'n-cpus') });
  return {
    id,
    shortIds: children(el, 'short-id').map(text).filter((s): s is string => s !== undefined),
    name,
    version: plain(el, 'version'),
    vendor: plain(el, 'vendor'),
    family: plain(el, 'family'),
    releaseDate: plain(el, 'release-date'),
    eolDate: plain(el, 'eol-date'),
    derivesFrom: children(el, 'derives-from')[0]?.attributes.id,
    resources: children(el, 'resources').map((r) => ({
      arch: r.attributes.arch ?? 'all',
      minimum: res(children(r, 'minimum')[0]),
      recommended: res(children(r, 'recommended')[0]),
    })),
    devices: children(el, 'devices').flatMap((d) =>
      children(d, 'device')
        .filter((x) => x.attributes.id)
        .map((x) => ({ id: x.attributes.id!, supported: x.attributes.supported !== 'false' })),
    ),
    media,
    file,
  };
}

/** The XML files under <dir>/os (vendor folders, as osinfo-db lays them out), sorted, bounded. */
function osFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (out.length >= MAX_FILES) throw new Error(`more than ${MAX_FILES} files under ${path.join(dir, 'os')}`);
      const p = path.join(d, e.name);
      if (e.isDirectory() && depth < MAX_DIR_DEPTH) walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.xml')) out.push(p);
    }
  };
  walk(path.join(dir, 'os'), 1);
  return out;
}

/**
 * Reads the database; throws when the directory has no os/ folder (osinfo-db not installed). About
 * 1.5 s of CPU for Debian's 800 files, so it gives the event loop a turn after each file: running
 * guests' consoles and other clients' calls are never held up by more than one file's parse.
 */
export async function loadOsinfoDb(dir: string): Promise<OsinfoDb> {
  if (!fs.existsSync(path.join(dir, 'os'))) throw new Error(`no osinfo-db in ${dir} (no os/ folder)`);
  const oses: OsRecord[] = [];
  const problems: string[] = [];
  let total = 0;
  for (const file of osFiles(dir)) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const size = fs.statSync(file).size;
    if (size > MAX_FILE_BYTES) {
      problems.push(`${file}: ${size} bytes is more than ${MAX_FILE_BYTES}; skipped`);
      continue;
    }
    total += size;
    if (total > MAX_TOTAL_BYTES) throw new Error(`${dir}: more than ${MAX_TOTAL_BYTES} bytes of OS files`);
    let root: XmlElement | undefined;
    try {
      root = parseXmlTree(fs.readFileSync(file, 'utf8')).find((n): n is XmlElement => n.type === 'element');
    } catch (err) {
      if (!(err instanceof XmlSyntaxError)) throw err;
      problems.push(`${file}: ${err.message}; skipped`);
      continue;
    }
    if (root?.name !== 'libosinfo') {
      problems.push(`${file}: not a <libosinfo> document; skipped`);
      continue;
    }
    for (const el of children(root, 'os')) {
      const os = parseOs(el, path.relative(dir, file), problems);
      if (os) oses.push(os);
    }
  }
  return new OsinfoDb(dir, oses, problems);
}

/** libosinfo's system directory: OSINFO_SYSTEM_DIR, else Debian's /usr/share/osinfo. */
export function osinfoDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.OSINFO_SYSTEM_DIR || DEFAULT_OSINFO_DIR;
}

let cached: { dir: string; loading: Promise<OsinfoDb> } | undefined;

/**
 * The database, read once per directory (concurrent callers share the read; a missing one is looked
 * for again next time); `problem` says plainly why there is none.
 */
export async function osinfoDb(dir = osinfoDir()): Promise<{ db?: OsinfoDb; problem?: string }> {
  if (cached?.dir !== dir) cached = { dir, loading: loadOsinfoDb(dir) };
  const mine = cached;
  try {
    return { db: await mine.loading };
  } catch (err) {
    if (cached === mine) cached = undefined;
    return {
      problem: `OS detection is off: ${(err as Error).message}. Install Debian's osinfo-db package (apt-get install osinfo-db) or set OSINFO_SYSTEM_DIR`,
    };
  }
}
