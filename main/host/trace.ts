// The live trace (the seed's xenstore-snoop): every API request with its reply, and every
// management event, as one record each. Unwatched, a record is a few fields pushed into a ring;
// redaction and formatting happen only for a watcher.
import type { TraceRecord } from '../../shared/api.js';

export interface TraceFilter {
  domain?: string;
  op?: string;
}

interface Raw {
  seq: number;
  time: number;
  kind: 'request' | 'event';
  client?: TraceRecord['client'];
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
/** Data streams, not management operations: they would drown the trace. */
const UNTRACED_EVENTS = new Set(['domain.serial', 'domain.stats', 'trace.record']);
const SECRET_KEYS = /passw|secret|token/i;

export class TraceLog {
  private readonly ring: (Raw | undefined)[] = new Array(RING);
  private next = 0;
  private seq = 0;
  private readonly watchers = new Set<{ filter: TraceFilter; deliver: (r: TraceRecord) => void }>();

  /** Takes ownership of `raw` (a fresh object from the caller): no copy on the unwatched path. */
  request(raw: Omit<Raw, 'seq' | 'kind'>): void {
    const rec = raw as Raw;
    rec.seq = ++this.seq;
    rec.kind = 'request';
    this.push(rec);
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

  recent(filter: TraceFilter = {}): TraceRecord[] {
    const out: TraceRecord[] = [];
    for (let i = 0; i < RING; i++) {
      const raw = this.ring[(this.next + i) % RING];
      if (raw && matches(raw, filter)) out.push(format(raw));
    }
    return out;
  }

  private push(raw: Raw): void {
    this.ring[this.next] = raw;
    this.next = (this.next + 1) % RING;
    if (this.watchers.size === 0) return;
    let record: TraceRecord | undefined;
    for (const w of this.watchers) {
      if (!matches(raw, w.filter)) continue;
      record ??= format(raw);
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
  if (raw.domain) rec.domain = raw.domain;
  if (raw.job !== undefined) rec.job = raw.job;
  if (raw.args !== undefined) rec.args = redact(raw.args);
  if (raw.ok !== undefined) rec.ok = raw.ok;
  if (raw.result !== undefined) rec.result = summarize(raw.result);
  if (raw.error !== undefined) rec.error = raw.error;
  if (raw.durationMs !== undefined) rec.durationMs = raw.durationMs;
  return rec;
}

/** Secrets never reach a trace watcher: passwords, tokens, and bytes typed into a guest. */
export function redact(value: unknown, key = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_KEYS.test(key)) return '***';
    if (key === 'data' || key === 'text' || key === 'png' || key === 'backlog') return `<${value.length} chars>`;
    if (key === 'xml') return value.replace(/passwd=(['"])[^'"]*\1/g, "passwd='***'");
    return value.length > 200 ? `${value.slice(0, 200)}…` : value;
  }
  if (Array.isArray(value)) return value.length > 20 ? `<${value.length} items>` : value.map((v) => redact(v));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redact(v, k);
    return out;
  }
  return value;
}

/** A reply as one short line: enough to see what happened, never a whole screenshot. */
function summarize(result: unknown): string {
  if (result && typeof result === 'object') {
    const r = result as Record<string, unknown>;
    const domain = r.domain as { name?: string; state?: string; reason?: string } | undefined;
    if (domain?.name) return `${domain.name}: ${domain.state} (${domain.reason})`;
    if (Array.isArray(r.domains)) return `${r.domains.length} domains`;
    if (r.job && typeof r.job === 'object') {
      const j = r.job as { id: number; status: string };
      return `job ${j.id} ${j.status}`;
    }
  }
  const text = JSON.stringify(redact(result));
  return text === undefined ? '' : text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
