// The live trace (the seed's xenstore-snoop): every API request with its reply, and every
// management event, as one record each. A record keeps a redacted, size-capped copy of its
// arguments and a one-line summary of its result, made when it is pushed: the ring must never hold
// a megabyte of XML per define, nor a password. The ring is bounded in records and in bytes.
import type { TraceRecord } from '../../shared/api.js';
import { parseXmlTree, serializeXmlTree, type XmlNode } from './domain/xml-tree.js';

export interface TraceFilter {
  domain?: string;
  op?: string;
}

interface Raw {
  seq: number;
  time: number;
  kind: 'request' | 'event';
  client?: TraceRecord['client'];
  connection?: string;
  domain?: string;
  job?: number;
  op: string;
  args?: unknown;
  ok?: boolean;
  result?: unknown;
  error?: string;
  durationMs?: number;
}

const RING = 2000;
/** The ring's budget for what its records keep; the oldest records go first. */
export const MAX_RING_BYTES = 8 * 1024 * 1024;
/** One record's arguments beyond this are replaced by a note of their size. */
const MAX_RECORD_BYTES = 64 * 1024;
/** A string argument is kept up to this many characters, then "… (N bytes)". */
const MAX_STRING = 200;
/** Domain XML up to this size is kept (redacted) whole; longer XML only as a note of its size. */
export const MAX_XML = 4096;
const MAX_ITEMS = 20;
const MAX_KEYS = 50;
const MAX_DEPTH = 6;
/** Data streams, not management operations: they would drown the trace. */
const UNTRACED_EVENTS = new Set(['domain.serial', 'domain.stats', 'trace.record']);
const SECRET_KEYS = /passw|secret|token/i;
/** Bytes typed into a guest, screenshots, serial backlogs: only their size is kept. */
const OPAQUE_KEYS = new Set(['data', 'text', 'png', 'backlog']);

interface Kept {
  raw: Raw;
  /** About what the record holds in memory (UTF-16 strings, plus a little per value). */
  bytes: number;
}

export class TraceLog {
  private readonly ring: (Kept | undefined)[] = new Array(RING);
  /** Index of the oldest record. */
  private first = 0;
  private count = 0;
  private bytes = 0;
  private seq = 0;
  private readonly watchers = new Set<{ filter: TraceFilter; deliver: (r: TraceRecord) => void }>();

  request(raw: Omit<Raw, 'seq' | 'kind'>): void {
    this.push({ ...raw, seq: ++this.seq, kind: 'request' });
  }

  event(op: string, data: unknown, domain?: string, job?: number): void {
    if (UNTRACED_EVENTS.has(op)) return;
    this.push({ seq: ++this.seq, time: Date.now(), kind: 'event', op, args: data, domain, job });
  }

  /** Streams matching records from now on; with backlog, the recent ones first. */
  subscribe(filter: TraceFilter, deliver: (r: TraceRecord) => void): { unsubscribe: () => void; backlog: TraceRecord[] } {
    const watcher = { filter, deliver };
    this.watchers.add(watcher);
    return { unsubscribe: () => this.watchers.delete(watcher), backlog: this.recent(filter) };
  }

  get watched(): boolean {
    return this.watchers.size > 0;
  }

  /** What the ring holds: records and about how many bytes they keep. */
  get size(): { records: number; bytes: number } {
    return { records: this.count, bytes: this.bytes };
  }

  recent(filter: TraceFilter = {}): TraceRecord[] {
    const out: TraceRecord[] = [];
    for (let i = 0; i < this.count; i++) {
      const kept = this.ring[(this.first + i) % RING]!;
      if (matches(kept.raw, filter)) out.push(format(kept.raw));
    }
    return out;
  }

  private push(raw: Raw): void {
    const kept = keepRecord(raw);
    while (this.count > 0 && (this.count === RING || this.bytes + kept.bytes > MAX_RING_BYTES)) {
      this.bytes -= this.ring[this.first]!.bytes;
      this.ring[this.first] = undefined;
      this.first = (this.first + 1) % RING;
      this.count--;
    }
    this.ring[(this.first + this.count) % RING] = kept;
    this.count++;
    this.bytes += kept.bytes;
    if (this.watchers.size === 0) return;
    let record: TraceRecord | undefined;
    for (const w of this.watchers) {
      if (!matches(kept.raw, w.filter)) continue;
      record ??= format(kept.raw);
      w.deliver(record);
    }
  }
}

function matches(raw: Raw, filter: TraceFilter): boolean {
  if (filter.domain && raw.domain !== filter.domain) return false;
  if (filter.op && !raw.op.startsWith(filter.op)) return false;
  return true;
}

function format(raw: Raw): TraceRecord {
  const rec: TraceRecord = { seq: raw.seq, time: raw.time, kind: raw.kind, op: raw.op };
  if (raw.client) rec.client = raw.client;
  if (raw.connection) rec.connection = raw.connection;
  if (raw.domain) rec.domain = raw.domain;
  if (raw.job !== undefined) rec.job = raw.job;
  if (raw.args !== undefined) rec.args = raw.args;
  if (raw.ok !== undefined) rec.ok = raw.ok;
  if (raw.result !== undefined) rec.result = raw.result as string;
  if (raw.error !== undefined) rec.error = raw.error;
  if (raw.durationMs !== undefined) rec.durationMs = raw.durationMs;
  return rec;
}

/** The record as kept: arguments redacted and capped, the result as its one-line summary. */
function keepRecord(raw: Raw): Kept {
  const size = { bytes: 0 };
  if (raw.args !== undefined) {
    raw.args = redact(raw.args, '', 0, size);
    if (size.bytes > MAX_RECORD_BYTES) {
      raw.args = `<arguments of ${size.bytes} bytes, too large to keep>`;
      size.bytes = 100;
    }
  }
  if (raw.result !== undefined) {
    raw.result = summarize(raw.result);
    size.bytes += (raw.result as string).length * 2;
  }
  if (raw.error !== undefined) {
    raw.error = clip(raw.error, MAX_XML);
    size.bytes += raw.error.length * 2;
  }
  return { raw, bytes: size.bytes + 200 };
}

/**
 * Secrets never reach the trace: passwords, tokens, VNC passwords inside domain XML, and bytes
 * typed into a guest. Returns a new value (the caller's is left alone), every string capped.
 */
export function redact(value: unknown, key = '', depth = 0, size = { bytes: 0 }): unknown {
  size.bytes += 16;
  if (typeof value === 'string') {
    let out: string;
    if (SECRET_KEYS.test(key)) out = '***';
    else if (OPAQUE_KEYS.has(key)) out = `<${value.length} chars>`;
    else if (key === 'xml') out = value.length > MAX_XML ? `<XML of ${byteLength(value)} bytes, too long to keep>` : redactXml(value);
    else out = clip(value, MAX_STRING);
    size.bytes += out.length * 2;
    return out;
  }
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '<nested too deep>';
  if (Array.isArray(value)) return value.length > MAX_ITEMS ? `<${value.length} items>` : value.map((v) => redact(v, '', depth + 1, size));
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value);
  for (const [k, v] of entries.slice(0, MAX_KEYS)) out[k] = redact(v, k, depth + 1, size);
  if (entries.length > MAX_KEYS) out['…'] = `<${entries.length - MAX_KEYS} more keys>`;
  return out;
}

/**
 * Domain XML with the value of every password-like attribute (<graphics passwd=…>) replaced, found
 * by parsing, so that no quoting, entity or whitespace spelling slips through. XML that does not
 * parse is redacted whole.
 */
export function redactXml(xml: string): string {
  let nodes: XmlNode[];
  try {
    nodes = parseXmlTree(xml);
  } catch {
    return `<XML of ${byteLength(xml)} bytes that does not parse, redacted>`;
  }
  const hide = (node: XmlNode): void => {
    if (node.type !== 'element') return;
    for (const name of Object.keys(node.attributes)) if (SECRET_KEYS.test(name)) node.attributes[name] = '***';
    node.children.forEach(hide);
  };
  nodes.forEach(hide);
  return serializeXmlTree(nodes).trimEnd();
}

/**
 * A string cut to `max` characters with its full size said. The cut is copied into a string of
 * its own: a slice could keep the whole original alive.
 */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return Buffer.from(`${text.slice(0, max)}… (${byteLength(text)} bytes)`, 'utf8').toString('utf8');
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** A reply as one short line: enough to see what happened, never a whole screenshot. */
function summarize(result: unknown): string {
  if (result && typeof result === 'object') {
    const r = result as Record<string, unknown>;
    const domain = r.domain as { name?: string; state?: string; reason?: string } | undefined;
    if (domain?.name) return clip(`${domain.name}: ${domain.state} (${domain.reason})`, MAX_STRING);
    if (Array.isArray(r.domains)) return `${r.domains.length} domains`;
    if (r.job && typeof r.job === 'object') {
      const j = r.job as { id: number; status: string };
      return `job ${j.id} ${j.status}`;
    }
  }
  const text = JSON.stringify(redact(result));
  return text === undefined ? '' : clip(text, MAX_STRING);
}
