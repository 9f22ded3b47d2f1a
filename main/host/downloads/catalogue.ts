// The OS catalogue the wizard offers for download: the list shipped with Domus, or the one named
// by DOMUS_CATALOGUE_URL (an http(s) URL or a file path), so a site, or a test, serves its own.
import fs from 'node:fs';
import { z } from 'zod';
import type { CatalogueEntry } from '../../../shared/api.js';
import shipped from './catalogue.json' with { type: 'json' };

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/i, 'sha256 must be 64 hex digits');

const Entry = z
  .object({
    id: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'id may hold letters, digits and _ . -'),
    name: z.string().min(1),
    version: z.string(),
    arch: z.enum(['i686', 'x86_64']),
    url: z.string().url(),
    sha256: Sha256.optional(),
    sha256Url: z.string().url().optional(),
    sizeBytes: z.number().int().positive().optional(),
    kind: z.enum(['iso', 'disk']),
    memoryMiB: z.number().int().min(16),
    diskGiB: z.number().positive(),
    boot: z.enum(['hvm', 'pv']),
  })
  .strict()
  .refine((e) => e.sha256 !== undefined || e.sha256Url !== undefined, 'an entry needs sha256 or sha256Url: every download is verified');

const Catalogue = z.object({ entries: z.array(Entry) });

export const SHIPPED_SOURCE = 'shipped catalogue';

/** Reads and validates the catalogue; a bad one is an error naming the source and the field. */
export async function loadCatalogue(source = process.env.DOMUS_CATALOGUE_URL): Promise<{ entries: CatalogueEntry[]; source: string }> {
  let raw: unknown;
  if (!source) {
    raw = shipped;
  } else if (/^https?:\/\//.test(source)) {
    const res = await fetch(source, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`catalogue ${source}: HTTP ${res.status} ${res.statusText}`);
    raw = await res.json();
  } else {
    raw = JSON.parse(fs.readFileSync(source, 'utf8'));
  }
  const parsed = Catalogue.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`catalogue ${source || SHIPPED_SOURCE} is invalid: ${issue.path.join('.')}: ${issue.message}`);
  }
  const ids = new Set<string>();
  for (const e of parsed.data.entries) {
    if (ids.has(e.id)) throw new Error(`catalogue ${source || SHIPPED_SOURCE} is invalid: entry id '${e.id}' appears twice`);
    ids.add(e.id);
  }
  return { entries: parsed.data.entries, source: source || SHIPPED_SOURCE };
}

/** The file name a download gets in the pool: the last part of its URL. */
export function imageFileName(entry: Pick<CatalogueEntry, 'url' | 'id'>): string {
  const base = decodeURIComponent(new URL(entry.url).pathname.split('/').pop() ?? '');
  return /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(base) ? base : `${entry.id}.${entry.url.endsWith('.iso') ? 'iso' : 'img'}`;
}

/** Finds the hash of `fileName` in a SHA256SUMS-style file ("<hash>  <name>" lines, or a lone hash). */
export function hashFromSums(text: string, fileName: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const line of lines) {
    const m = /^([0-9a-f]{64})\s+\*?(?:\.\/)?(.+)$/i.exec(line);
    if (m && m[2] === fileName) return m[1]!.toLowerCase();
  }
  if (lines.length === 1 && /^[0-9a-f]{64}$/i.test(lines[0]!)) return lines[0]!.toLowerCase();
  return undefined;
}
