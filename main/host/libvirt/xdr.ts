// XDR (RFC 4506) codecs as rpcgen lays them out, composed into one typed codec per libvirt type by
// the generated files in protocol/. Decoding is for untrusted bytes (Domus also serves libvirt's
// protocol): every length is checked against its declared maximum and against the bytes actually
// left before anything is allocated, and errors name the field path.

/** Malformed or out-of-range XDR data; `message` names the field path. */
export class XdrError extends Error {
  override name = 'XdrError';
}

export class XdrReader {
  private offset = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get remaining(): number {
    return this.buf.length - this.offset;
  }
  private take(n: number, what: string): number {
    if (n > this.remaining) throw new XdrError(`truncated: ${what} needs ${n} bytes at offset ${this.offset}, ${this.remaining} left`);
    const at = this.offset;
    this.offset += n;
    return at;
  }
  int(): number {
    return this.view.getInt32(this.take(4, 'int'));
  }
  uint(): number {
    return this.view.getUint32(this.take(4, 'unsigned int'));
  }
  hyper(): bigint {
    return this.view.getBigInt64(this.take(8, 'hyper'));
  }
  uhyper(): bigint {
    return this.view.getBigUint64(this.take(8, 'unsigned hyper'));
  }
  float(): number {
    return this.view.getFloat32(this.take(4, 'float'));
  }
  double(): number {
    return this.view.getFloat64(this.take(8, 'double'));
  }
  /** `n` bytes plus padding to a multiple of 4, copied out of the message buffer. */
  bytes(n: number): Buffer {
    const at = this.take(n + ((4 - (n % 4)) % 4), `${n} bytes of data`);
    return Buffer.from(this.buf.subarray(at, at + n));
  }
  /** A length word no larger than `max` whose items (at least `unit` bytes each) fit in what is left. */
  length(max: number, unit: number, what: string): number {
    const n = this.uint();
    if (n > max) throw new XdrError(`${what} length ${n} exceeds the maximum ${max}`);
    if (n * unit > this.remaining) throw new XdrError(`truncated: ${what} of ${n} needs ${n * unit} bytes, ${this.remaining} left`);
    return n;
  }
}

export class XdrWriter {
  // Every write takes its offset from room() before reading this.buf: room() may replace the buffer.
  private buf = Buffer.alloc(256);
  private used = 0;
  private room(n: number): number {
    if (this.used + n > this.buf.length) {
      const grown = Buffer.alloc(Math.max(this.buf.length * 2, this.used + n));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    const at = this.used;
    this.used += n;
    return at;
  }
  int(v: number): void {
    const at = this.room(4);
    this.buf.writeInt32BE(v, at);
  }
  uint(v: number): void {
    const at = this.room(4);
    this.buf.writeUInt32BE(v, at);
  }
  hyper(v: bigint): void {
    const at = this.room(8);
    this.buf.writeBigInt64BE(v, at);
  }
  uhyper(v: bigint): void {
    const at = this.room(8);
    this.buf.writeBigUInt64BE(v, at);
  }
  float(v: number): void {
    const at = this.room(4);
    this.buf.writeFloatBE(v, at);
  }
  double(v: number): void {
    const at = this.room(8);
    this.buf.writeDoubleBE(v, at);
  }
  bytes(data: Uint8Array): void {
    const at = this.room(data.length + ((4 - (data.length % 4)) % 4));
    this.buf.set(data, at);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}

/** One XDR type: its encoder and decoder. */
export interface Codec<T> {
  readonly name: string;
  enc(w: XdrWriter, v: T): void;
  dec(r: XdrReader): T;
}

/** A value's wire bytes (XdrError when it does not fit its type). */
export function encode<T>(codec: Codec<T>, value: T): Buffer {
  const w = new XdrWriter();
  codec.enc(w, value);
  return w.result();
}

/** Decodes exactly `buf`: trailing bytes are an error, as they would hide a type mismatch. */
export function decode<T>(codec: Codec<T>, buf: Uint8Array): T {
  const r = new XdrReader(buf);
  const v = codec.dec(r);
  if (r.remaining) throw new XdrError(`${codec.name}: ${r.remaining} bytes left over after the value`);
  return v;
}

function at<R>(path: string, f: () => R): R {
  try {
    return f();
  } catch (err) {
    if (err instanceof XdrError) err.message = `${path}: ${err.message}`;
    throw err;
  }
}

function integer(name: string, min: number, max: number, signed: boolean): Codec<number> {
  return {
    name,
    enc(w, v) {
      if (!Number.isInteger(v) || v < min || v > max) throw new XdrError(`${String(v)} is not a valid ${name}`);
      if (signed) w.int(v);
      else w.uint(v);
    },
    dec(r) {
      const v = signed ? r.int() : r.uint();
      if (v < min || v > max) throw new XdrError(`${v} is out of range for ${name}`);
      return v;
    },
  };
}

export const int = integer('int', -0x80000000, 0x7fffffff, true);
export const uint = integer('unsigned int', 0, 0xffffffff, false);
// rpcgen sends char and short as a full 4-byte word each (xdr_char, xdr_short).
export const char = integer('char', -128, 127, true);
export const uchar = integer('unsigned char', 0, 255, false);
export const short = integer('short', -32768, 32767, true);
export const ushort = integer('unsigned short', 0, 65535, false);

function bigInteger(name: string, signed: boolean): Codec<bigint> {
  const [min, max] = signed ? [-(1n << 63n), (1n << 63n) - 1n] : [0n, (1n << 64n) - 1n];
  return {
    name,
    enc(w, v) {
      if (typeof v !== 'bigint' || v < min || v > max) throw new XdrError(`${String(v)} is not a valid ${name}`);
      if (signed) w.hyper(v);
      else w.uhyper(v);
    },
    dec: (r) => (signed ? r.hyper() : r.uhyper()),
  };
}

export const hyper = bigInteger('hyper', true);
export const uhyper = bigInteger('unsigned hyper', false);

export const float: Codec<number> = { name: 'float', enc: (w, v) => w.float(v), dec: (r) => r.float() };
export const double: Codec<number> = { name: 'double', enc: (w, v) => w.double(v), dec: (r) => r.double() };

export const bool: Codec<boolean> = {
  name: 'bool',
  enc: (w, v) => w.int(v ? 1 : 0),
  dec(r) {
    const v = r.int();
    if (v !== 0 && v !== 1) throw new XdrError(`bool must be 0 or 1, got ${v}`);
    return v === 1;
  },
};

export const void_: Codec<void> = { name: 'void', enc: () => {}, dec: () => undefined };

/** `string<max>`: UTF-8; no NUL byte, as the C peer's strings cannot hold one. */
export function string(max: number): Codec<string> {
  return {
    name: `string<${max}>`,
    enc(w, v) {
      if (typeof v !== 'string') throw new XdrError(`expected a string, got ${typeof v}`);
      const data = Buffer.from(v, 'utf8');
      if (data.length > max) throw new XdrError(`string of ${data.length} bytes exceeds the maximum ${max}`);
      if (data.includes(0)) throw new XdrError('string contains a NUL byte');
      w.uint(data.length);
      w.bytes(data);
    },
    dec(r) {
      const data = r.bytes(r.length(max, 1, 'string'));
      if (data.includes(0)) throw new XdrError('string contains a NUL byte');
      return data.toString('utf8');
    },
  };
}

/** `opaque name<max>` */
export function opaque(max: number): Codec<Buffer> {
  return {
    name: `opaque<${max}>`,
    enc(w, v) {
      if (!(v instanceof Uint8Array)) throw new XdrError('expected bytes');
      if (v.length > max) throw new XdrError(`opaque of ${v.length} bytes exceeds the maximum ${max}`);
      w.uint(v.length);
      w.bytes(v);
    },
    dec: (r) => r.bytes(r.length(max, 1, 'opaque')),
  };
}

/** `opaque name[size]` */
export function fixedOpaque(size: number): Codec<Buffer> {
  return {
    name: `opaque[${size}]`,
    enc(w, v) {
      if (!(v instanceof Uint8Array) || v.length !== size) throw new XdrError(`expected exactly ${size} bytes`);
      w.bytes(v);
    },
    dec: (r) => r.bytes(size),
  };
}

function items<T>(item: Codec<T>, w: XdrWriter, v: T[]): void {
  v.forEach((x, i) => at(`[${i}]`, () => item.enc(w, x)));
}
function readItems<T>(item: Codec<T>, r: XdrReader, n: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(at(`[${i}]`, () => item.dec(r)));
  return out;
}

/** `T name<max>`; every XDR item takes at least 4 bytes, which bounds a count before it is trusted. */
export function array<T>(item: Codec<T>, max: number): Codec<T[]> {
  return {
    name: `${item.name}<${max}>`,
    enc(w, v) {
      if (!Array.isArray(v)) throw new XdrError('expected an array');
      if (v.length > max) throw new XdrError(`array of ${v.length} exceeds the maximum ${max}`);
      w.uint(v.length);
      items(item, w, v);
    },
    dec: (r) => readItems(item, r, r.length(max, 4, 'array')),
  };
}

/** `T name[size]` */
export function fixedArray<T>(item: Codec<T>, size: number): Codec<T[]> {
  return {
    name: `${item.name}[${size}]`,
    enc(w, v) {
      if (!Array.isArray(v) || v.length !== size) throw new XdrError(`expected an array of exactly ${size}`);
      items(item, w, v);
    },
    dec(r) {
      if (size * 4 > r.remaining) throw new XdrError(`truncated: ${size} items need ${size * 4} bytes, ${r.remaining} left`);
      return readItems(item, r, size);
    },
  };
}

/** `T *name`: null when absent. */
export function optional<T>(item: Codec<T>): Codec<T | null> {
  return {
    name: `${item.name} *`,
    enc(w, v) {
      w.uint(v === null || v === undefined ? 0 : 1);
      if (v !== null && v !== undefined) item.enc(w, v);
    },
    dec(r) {
      const present = r.uint();
      if (present > 1) throw new XdrError(`optional-data flag must be 0 or 1, got ${present}`);
      return present ? item.dec(r) : null;
    },
  };
}

/** An enum: decoding refuses values the definition does not list. */
export function enumeration<T extends number>(name: string, values: readonly T[]): Codec<T> {
  const known = new Set<number>(values);
  return {
    name,
    enc(w, v) {
      if (!known.has(v)) throw new XdrError(`${String(v)} is not a value of enum ${name}`);
      w.int(v);
    },
    dec(r) {
      const v = r.int();
      if (!known.has(v)) throw new XdrError(`${v} is not a value of enum ${name}`);
      return v as T;
    },
  };
}

// The generated code types each struct and union codec; inside, fields are checked by their own codecs.
type AnyCodec = Codec<any>;

export function struct<T>(name: string, fields: Record<string, AnyCodec>): Codec<T> {
  const list = Object.entries(fields);
  return {
    name,
    enc(w, v) {
      if (typeof v !== 'object' || v === null) throw new XdrError(`${name}: expected an object`);
      const o = v as Record<string, unknown>;
      for (const [field, codec] of list) at(`${name}.${field}`, () => codec.enc(w, o[field]));
    },
    dec(r) {
      const o: Record<string, unknown> = {};
      for (const [field, codec] of list) o[field] = at(`${name}.${field}`, () => codec.dec(r));
      return o as T;
    },
  };
}

/** An arm: the field that holds the value, and its codec; null for a `void` arm. */
export type Arm = [field: string, codec: AnyCodec] | null;

/** `union name switch (disc) { case …; default: … }`; the value is `{ [disc]: N, [arm field]: value }`. */
export function union<T>(name: string, disc: string, discCodec: Codec<number>, arms: Record<number, Arm>, dflt?: Arm): Codec<T> {
  const armFor = (d: number): Arm => {
    if (Object.hasOwn(arms, d)) return arms[d];
    if (dflt !== undefined) return dflt;
    throw new XdrError(`${name}: ${d} is not a case of the union`);
  };
  return {
    name,
    enc(w, v) {
      const o = v as Record<string, unknown>;
      const d = o?.[disc] as number;
      const arm = armFor(d);
      discCodec.enc(w, d);
      if (arm) at(`${name}.${arm[0]}`, () => arm[1].enc(w, o[arm[0]]));
    },
    dec(r) {
      const d = discCodec.dec(r);
      const arm = armFor(d);
      return (arm ? { [disc]: d, [arm[0]]: at(`${name}.${arm[0]}`, () => arm[1].dec(r)) } : { [disc]: d }) as T;
    },
  };
}
