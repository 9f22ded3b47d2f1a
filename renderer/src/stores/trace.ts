// The live trace: who asked what of which domain. The host filters and only sends records while
// this window is subscribed, so the subscription lives exactly as long as the trace view is open.
import { defineStore } from 'pinia';
import { reactive, ref, shallowRef, watch } from 'vue';
import type { TraceRecord } from '@shared/api';
import { DOMAIN_STATES, type DomainState, type StateReason } from '@shared/libvirt/states';
import { stateWithReason } from '../lib/domainState';
import { errorMessage, formatByteProgress, formatClock, formatDuration } from '../lib/format';
import { hostConnection } from './api';

/** Rows kept on screen; older ones scroll away for good. */
export const TRACE_ROW_LIMIT = 2000;
/** Records are drawn in batches: a busy host can send hundreds a second. */
const FLUSH_MS = 100;
/** Typing in a filter re-subscribes once the typing pauses. */
const FILTER_DEBOUNCE_MS = 300;
/** Longer argument lists are cut in the cell; the full text is in its tooltip. */
const ARGS_CELL_CHARS = 160;

/** A record as the table shows it, formatted once when it arrives. */
export interface TraceRow {
  seq: number;
  /** Epoch ms, for ordering; `time` is its display. */
  at: number;
  kind: TraceRecord['kind'];
  time: string;
  client: string;
  clientTitle: string;
  domain: string;
  op: string;
  args: string;
  argsFull: string;
  outcome: 'ok' | 'error' | 'pending' | 'event';
  result: string;
  duration: string;
}

function describeArgs(args: unknown): { short: string; full: string } {
  if (args === undefined || (typeof args === 'object' && args !== null && Object.keys(args).length === 0)) {
    return { short: '', full: '' };
  }
  const short = JSON.stringify(args);
  return {
    short: short.length > ARGS_CELL_CHARS ? `${short.slice(0, ARGS_CELL_CHARS)}…` : short,
    full: JSON.stringify(args, null, 2),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An event record carries its payload (redacted) as `args` and no result; this says in one line
 * what it reports, as the host's reply summaries do: "started: running (booted)",
 * "managedsave running · 80.1 / 256.0 MiB", "3 domains". Unknown shapes give an empty cell.
 */
function summarizeEvent(args: unknown): string {
  if (!isRecord(args)) return '';
  const { domain, event, job, domains } = args;
  if (isRecord(domain) && DOMAIN_STATES.includes(domain.state as DomainState)) {
    const state = stateWithReason({ state: domain.state as DomainState, reason: domain.reason as StateReason });
    const step = typeof domain.step === 'string' ? ` · ${domain.step}` : '';
    return `${typeof event === 'string' ? `${event}: ` : ''}${state}${step}`;
  }
  if (isRecord(job) && typeof job.operation === 'string' && typeof job.status === 'string') {
    const { processedBytes, totalBytes } = job;
    const bytes =
      typeof processedBytes === 'number' && typeof totalBytes === 'number' && totalBytes > 0
        ? ` · ${formatByteProgress(processedBytes, totalBytes)}`
        : '';
    return `${job.operation} ${job.status}${bytes}${typeof job.error === 'string' ? `: ${job.error}` : ''}`;
  }
  if (Array.isArray(domains)) return `${domains.length} ${domains.length === 1 ? 'domain' : 'domains'}`;
  return '';
}

function toRow(record: TraceRecord): TraceRow {
  const args = describeArgs(record.args);
  const client = record.client;
  let outcome: TraceRow['outcome'];
  let result: string;
  if (record.kind === 'event') {
    outcome = 'event';
    result = record.result ?? summarizeEvent(record.args);
  } else if (record.ok === false) {
    outcome = 'error';
    result = record.error ?? 'failed';
  } else if (record.ok === true) {
    outcome = 'ok';
    result = record.result ?? 'ok';
  } else {
    outcome = 'pending';
    result = '…';
  }
  return {
    seq: record.seq,
    at: record.time,
    kind: record.kind,
    time: formatClock(record.time),
    client: client?.label ?? (record.kind === 'event' ? 'host' : ''),
    clientTitle: client ? `${client.kind}${client.pid !== undefined ? `, pid ${client.pid}` : ''}` : '',
    domain: record.domain ?? '',
    op: record.op,
    args: args.short,
    argsFull: args.full,
    outcome,
    result,
    duration: record.durationMs !== undefined ? formatDuration(record.durationMs) : '',
  };
}

function byTime(a: TraceRow, b: TraceRow): number {
  return a.at - b.at || a.seq - b.seq;
}

/**
 * Adds rows in time order, keeping the last TRACE_ROW_LIMIT. A request is recorded when it
 * completes but stamped with its start, so it arrives after the events it caused; merging puts it
 * back before them. Only the tail from the earliest newcomer on is re-sorted.
 */
function merge(rows: readonly TraceRow[], added: TraceRow[]): TraceRow[] {
  if (added.length === 0) return rows.slice(-TRACE_ROW_LIMIT);
  const earliest = added.reduce((min, r) => (byTime(r, min) < 0 ? r : min));
  let from = rows.length;
  while (from > 0 && byTime(rows[from - 1], earliest) > 0) from--;
  const tail = [...rows.slice(from), ...added].sort(byTime);
  return [...rows.slice(0, from), ...tail].slice(-TRACE_ROW_LIMIT);
}

export const useTraceStore = defineStore('trace', () => {
  const host = hostConnection();
  const rows = shallowRef<TraceRow[]>([]);
  const filters = reactive({ domain: '', op: '' });
  const paused = ref(false);
  /** Records that arrived while paused, shown on resume. */
  const heldCount = ref(0);
  const live = ref(false);
  const loading = ref(false);
  const problem = ref('');

  let watching = false;
  /** Bumped by every subscribe/close, so a late trace.subscribe answer can tell it was overtaken. */
  let generation = 0;
  let incoming: TraceRecord[] = [];
  let held: TraceRecord[] = [];
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  let filterTimer: ReturnType<typeof setTimeout> | undefined;
  /** Clear hides everything up to here, also from the backlog of a later re-subscribe. */
  let clearedThrough = -1;

  function filterParams(): { domain?: string; op?: string } {
    const domain = filters.domain.trim();
    const op = filters.op.trim();
    return { domain: domain || undefined, op: op || undefined };
  }

  async function subscribe(): Promise<void> {
    const gen = ++generation;
    loading.value = true;
    try {
      // Replaces any earlier subscription of this session, with history matching the new filters.
      const { backlog } = await host.call('trace.subscribe', { ...filterParams(), backlog: true });
      if (gen !== generation) return;
      // Records that arrived while the answer was on its way matched either the old filters or
      // are already in the backlog; dropping them keeps the table true to the new filters.
      incoming = [];
      held = [];
      heldCount.value = 0;
      rows.value = merge([], backlog.filter((r) => r.seq > clearedThrough).map(toRow));
      live.value = true;
      problem.value = '';
    } catch (err) {
      if (gen !== generation) return;
      live.value = false;
      problem.value = `The trace is not available: ${errorMessage(err)}`;
    } finally {
      if (gen === generation) loading.value = false;
    }
  }

  function flush(): void {
    flushTimer = undefined;
    const batch = incoming;
    incoming = [];
    if (paused.value) {
      held = [...held, ...batch].slice(-TRACE_ROW_LIMIT);
      heldCount.value = held.length;
    } else {
      rows.value = merge(rows.value, batch.map(toRow));
    }
  }

  host.on('trace.record', ({ record }) => {
    if (!watching || loading.value) return;
    incoming.push(record);
    flushTimer ??= setTimeout(flush, FLUSH_MS);
  });

  host.onState((state) => {
    if (state === 'connected') {
      // A restarted host numbers its records afresh.
      clearedThrough = -1;
      if (watching) void subscribe();
    } else {
      // The subscription died with the connection.
      generation++;
      live.value = false;
      loading.value = false;
    }
  });

  watch(filters, () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      if (watching && host.state === 'connected') void subscribe();
    }, FILTER_DEBOUNCE_MS);
  });

  /** The trace view opened. */
  function open(): void {
    if (watching) return;
    watching = true;
    if (host.state === 'connected') void subscribe();
  }

  /** The trace view closed: tell the host to stop recording for this window, and let go of the rows. */
  function close(): void {
    if (!watching) return;
    watching = false;
    generation++;
    clearTimeout(flushTimer);
    clearTimeout(filterTimer);
    flushTimer = undefined;
    incoming = [];
    held = [];
    heldCount.value = 0;
    rows.value = [];
    paused.value = false;
    live.value = false;
    loading.value = false;
    if (host.state === 'connected') host.call('trace.unsubscribe', {}).catch(() => undefined);
  }

  function togglePause(): void {
    paused.value = !paused.value;
    if (paused.value) return;
    rows.value = merge(rows.value, held.map(toRow));
    held = [];
    heldCount.value = 0;
  }

  function clear(): void {
    // Rows are in time order, so the newest record by number can be anywhere near the end.
    const seqs = [...rows.value, ...held, ...incoming].map((r) => r.seq);
    clearedThrough = Math.max(clearedThrough, ...seqs);
    rows.value = [];
    held = [];
    incoming = [];
    heldCount.value = 0;
  }

  return { rows, filters, paused, heldCount, live, loading, problem, open, close, togglePause, clear };
});
