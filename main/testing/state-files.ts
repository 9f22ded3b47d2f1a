// Test support for saved-state files: copying one with its header edited (to craft hostile files,
// and to hand a post-boot state to another domain of the same hardware), and the suite's cache of
// post-boot states that lets tests not about booting skip the boot.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PREFIX_BYTES, headBytes } from '../common/statefile.js';

/** Copies a state file with its JSON header edited, the header length and checksum made right again. */
export async function rewriteStateHeader(from: string, to: string, edit: (header: Record<string, unknown>) => void): Promise<void> {
  // One descriptor for the header and the payload: a file renamed over `from` meanwhile is not mixed in.
  const fd = fs.openSync(from, 'r');
  let raw: Buffer;
  try {
    const prefix = Buffer.alloc(PREFIX_BYTES);
    fs.readSync(fd, prefix, 0, PREFIX_BYTES, 0);
    raw = Buffer.alloc(prefix.readUInt32LE(12));
    fs.readSync(fd, raw, 0, raw.length, PREFIX_BYTES);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  const header = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  edit(header);
  fs.writeFileSync(to, headBytes(header));
  const out = fs.createWriteStream(to, { flags: 'a' });
  await new Promise<void>((resolve, reject) => fs.createReadStream('', { fd, start: PREFIX_BYTES + raw.length }).on('error', reject).pipe(out).on('finish', resolve).on('error', reject));
}

/**
 * Where post-boot states are kept for the whole test run: `npm test` names a directory for the run
 * (DOMUS_TEST_STATE_CACHE) and removes it after; a file run on its own keeps them for its process.
 */
let ownDir: string | undefined;
function cacheDir(): string {
  const named = process.env.DOMUS_TEST_STATE_CACHE;
  if (named) {
    fs.mkdirSync(named, { recursive: true, mode: 0o700 });
    return named;
  }
  if (!ownDir) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-test-states-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    ownDir = dir;
  }
  return ownDir;
}

/**
 * What a post-boot state depends on: the engine and the definition but for its name and UUID,
 * title, description, Domus's host-side settings, the VNC listeners of <graphics> and the
 * whitespace between elements; and the size, mtime and inode of every file it names (kernel,
 * initrd, loader, NVRAM, disks), so a rebuilt guest never matches. The guest sees no name; it could
 * read its UUID from QEMU's SMBIOS tables, which no test does. A disk from a storage pool has no
 * path here to stat: such a definition gets no key (undefined).
 */
export function postBootKey(inactiveXml: string): string | undefined {
  if (/<source\b[^>]*\bpool=/.test(inactiveXml)) return undefined;
  const hardware = inactiveXml
    .replace(/<(name|uuid|title|description)>[^<]*<\/\1>/g, '')
    .replace(/<domus:settings\b[^>]*\/>|<domus:settings\b[\s\S]*?<\/domus:settings>/, '')
    .replace(/<graphics\b[^>]*\/>|<graphics\b[\s\S]*?<\/graphics>/g, '')
    .replace(/>\s+</g, '><');
  const files = [...inactiveXml.matchAll(/<(?:kernel|initrd|loader|nvram)\b[^>]*>([^<]+)<\/|<source\b[^>]*\b(?:file|dev)=(['"])([^'"]+)\2/g)].map((m) => m[1] ?? m[3]);
  const stamps = files.map((f) => {
    try {
      const st = fs.statSync(f);
      return `${f}:${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      return `${f}:missing`;
    }
  });
  return crypto.createHash('sha256').update(JSON.stringify([hardware, stamps])).digest('hex');
}

/** The cached post-boot state for `key`, copied to `to` as the state of domain `name`/`uuid` defined by `xml`; false when none is cached. */
export async function takeCachedState(key: string, to: string, domain: { name: string; uuid: string; xml: string }): Promise<boolean> {
  const cached = path.join(cacheDir(), `${key}.state`);
  if (!fs.existsSync(cached)) return false;
  await rewriteStateHeader(cached, to, (h) => {
    h.name = domain.name;
    h.uuid = domain.uuid;
    h.domainXml = domain.xml;
  });
  return true;
}

/** Keeps a copy of a post-boot state for later tests; the first one kept for a key stays (a test may be reading it). */
export function cacheState(key: string, file: string): void {
  const dir = cacheDir();
  const tmp = path.join(dir, `${key}.${process.pid}.tmp`);
  fs.copyFileSync(file, tmp);
  try {
    fs.linkSync(tmp, path.join(dir, `${key}.state`));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
