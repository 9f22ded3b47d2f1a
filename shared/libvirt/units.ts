// libvirt's scaled integers: the units virScaleInteger accepts, in domain XML (<memory unit='MiB'>)
// and in virsh's size arguments (vol-create-as NAME 10G), and virsh's way of printing a size.
// No Node, no DOM.

/** A size that is not a number, has an unknown unit or is out of range; the message says which. */
export class ScaledValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScaledValueError';
  }
}

/**
 * Bytes per unit, case-insensitive: b, byte, bytes; K or KiB (1024) and KB (1000), likewise M, G,
 * T, P and E. Undefined for any other unit.
 */
export function unitBytes(unit: string): bigint | undefined {
  const lower = unit.toLowerCase();
  if (lower === 'b' || lower === 'byte' || lower === 'bytes') return 1n;
  const suffix = lower.slice(1);
  const base = suffix === '' || suffix === 'ib' ? 1024n : suffix === 'b' ? 1000n : undefined;
  const power = lower === '' ? 0 : 'kmgtpe'.indexOf(lower[0]) + 1;
  return base === undefined || power === 0 ? undefined : base ** BigInt(power);
}

/**
 * A domain XML size (the text and unit attribute of <memory>, <currentMemory>…) in KiB: a whole
 * number, KiB when there is no unit, bytes rounded up to a KiB as virDomainParseMemory does.
 */
export function scaledToKiB(value: string, unit: string | undefined): number {
  const digits = value.trim();
  if (!/^\d+$/.test(digits)) throw new ScaledValueError(`value '${value}' is not a number`);
  const scale = unitBytes(unit ?? 'KiB');
  if (scale === undefined) throw new ScaledValueError(`unit '${unit}' is not a known unit`);
  const kib = (BigInt(digits) * scale + 1023n) / 1024n;
  if (kib > BigInt(Number.MAX_SAFE_INTEGER)) throw new ScaledValueError(`value '${digits} ${unit ?? 'KiB'}' is too large`);
  return Number(kib);
}

/**
 * virsh's size argument (vshCommandOptScaledInt) in bytes: a positive number of bytes, or with a
 * unit as above written after it ("512K", "10MiB", "1.5G").
 */
export function parseCapacity(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) throw new ScaledValueError(`invalid capacity '${text}': expected a number of bytes, optionally with a suffix (K, M, G, T)`);
  const scale = m[2] === '' ? 1n : unitBytes(m[2]);
  if (scale === undefined) {
    throw new ScaledValueError(`invalid capacity '${text}': unknown suffix '${m[2]}' (use K, M, G, T, P, E; KB… for powers of 1000)`);
  }
  const bytes = Math.round(Number(m[1]) * Number(scale));
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ScaledValueError(`invalid capacity '${text}': out of range`);
  return bytes;
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** virsh's vshPrettyCapacity: two decimals (domblkinfo --human: three) in the largest binary unit below the value. */
export function prettyCapacity(bytes: number, decimals = 2): string {
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < BINARY_UNITS.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(decimals)} ${BINARY_UNITS[i]}`;
}

/** A size as the definition would say it: GiB or MiB when whole, else KiB. */
export function formatKiB(kib: number): string {
  if (kib % (1024 * 1024) === 0) return `${kib / (1024 * 1024)} GiB`;
  if (kib % 1024 === 0) return `${kib / 1024} MiB`;
  return `${kib} KiB`;
}
