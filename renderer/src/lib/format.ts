export function formatMemory(kib: number): string {
  const mib = kib / 1024;
  if (mib < 1024) return `${Math.round(mib)} MiB`;
  const gib = mib / 1024;
  return `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** The binary unit that suits `bytes`, as a power of 1024. */
function byteUnit(bytes: number): number {
  let unit = 0;
  while (bytes >= 1024 ** (unit + 1) && unit < BYTE_UNITS.length - 1) unit++;
  return unit;
}

function inUnit(bytes: number, unit: number): string {
  return unit === 0 ? String(bytes) : (bytes / 1024 ** unit).toFixed(1);
}

/** Bytes in binary units, one decimal above bytes. */
export function formatBytes(bytes: number): string {
  const unit = byteUnit(bytes);
  return `${inUnit(bytes, unit)} ${BYTE_UNITS[unit]}`;
}

/** Progress in the total's unit, so the two numbers compare at a glance: "80.1 / 256.0 MiB". */
export function formatByteProgress(done: number, total: number): string {
  const unit = byteUnit(total);
  return `${inUnit(done, unit)} / ${inUnit(total, unit)} ${BYTE_UNITS[unit]}`;
}

/** Local wall-clock time with milliseconds (14:25:01.042), for trace lines. */
export function formatClock(epochMs: number): string {
  const d = new Date(epochMs);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function formatDuration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatPercent(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}%`;
}

/** Local time as 20250131-142501, for file names. */
export function fileTimestamp(date = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}` +
    `-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`
  );
}

export function errorMessage(err: unknown): string {
  // ApiCallError carries the host's ApiError.message, which is written for people.
  return err instanceof Error ? err.message : String(err);
}

/** Splits host prose on `backticks` so commands it mentions can be shown as code. */
export function codeSpans(text: string): { code: boolean; text: string }[] {
  return text
    .split('`')
    .map((part, i) => ({ code: i % 2 === 1, text: part }))
    .filter((part) => part.text !== '');
}
