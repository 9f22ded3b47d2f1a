// A generator for rpcgen's language (RFC 4506 plus rpcgen's char/short): turns libvirt's .x files
// into typed codecs (main/host/libvirt/xdr.ts) and a procedure table per program.
//
//   node --import tsx build/libvirt/xdrgen.ts      # rewrites main/host/libvirt/protocol/*.ts
//
// The output is committed rather than generated at build time: the type checker, tsx, esbuild and
// editors then read it like any other source with no build step in between, and a change of
// protocol shows up as a reviewable diff. xdrgen.test.ts regenerates it and fails when it is stale.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Inputs and outputs, with the C constants each .x uses without defining (values from libvirt's headers). */
export const UNITS: { input: string; output: string; externals: Record<string, number> }[] = [
  { input: 'build/libvirt/virnetprotocol.x', output: 'main/host/libvirt/protocol/virnet.ts', externals: { VIR_UUID_BUFLEN: 16 } },
  { input: 'build/libvirt/virkeepaliveprotocol.x', output: 'main/host/libvirt/protocol/keepalive.ts', externals: {} },
  {
    input: 'build/libvirt/remote_protocol.x',
    output: 'main/host/libvirt/protocol/remote.ts',
    // libvirt-host.h (buffer lengths) and libvirt-common.h (virTypedParameterType)
    externals: {
      VIR_UUID_BUFLEN: 16,
      VIR_SECURITY_LABEL_BUFLEN: 4097,
      VIR_SECURITY_MODEL_BUFLEN: 257,
      VIR_SECURITY_DOI_BUFLEN: 257,
      VIR_TYPED_PARAM_INT: 1,
      VIR_TYPED_PARAM_UINT: 2,
      VIR_TYPED_PARAM_LLONG: 3,
      VIR_TYPED_PARAM_ULLONG: 4,
      VIR_TYPED_PARAM_DOUBLE: 5,
      VIR_TYPED_PARAM_BOOLEAN: 6,
      VIR_TYPED_PARAM_STRING: 7,
    },
  },
];

interface Token {
  text: string;
  line: number;
  /** The block comment right before this token (procedure annotations live there). */
  doc?: string;
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  const re = /\/\*[\s\S]*?\*\/|^%.*$|\s+|0x[0-9a-fA-F]+|-?\d+|[A-Za-z_]\w*|[{}();,=<>[\]*:]|(.)/gm;
  let doc: string | undefined;
  let line = 1;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src))) {
    if (m[1] !== undefined) throw new Error(`line ${line}: unexpected character '${m[1]}'`);
    if (m[0].startsWith('/*')) doc = m[0];
    else if (!/^\s|^%/.test(m[0]) && m[0]) {
      out.push({ text: m[0], line, doc });
      doc = undefined;
    }
    line += m[0].split('\n').length - 1;
    if (!m[0]) re.lastIndex++;
  }
  return out;
}

type Prim = 'int' | 'uint' | 'hyper' | 'uhyper' | 'char' | 'uchar' | 'short' | 'ushort' | 'float' | 'double' | 'bool';
type Base = { prim: Prim } | { named: string } | { str: true } | { opaque: true };
/** A declaration: its base type and shape (`x`, `x[N]`, `x<N>`, `*x`). */
interface Decl {
  name: string;
  base: Base;
  shape: 'plain' | 'fixed' | 'var' | 'optional';
  size?: string;
}
interface UnionArm {
  cases: string[];
  decl: Decl | null;
}
type Def =
  | { kind: 'const'; name: string; value: string }
  | { kind: 'typedef'; decl: Decl }
  | { kind: 'enum'; name: string; members: { name: string; value: string; doc?: string }[] }
  | { kind: 'struct'; name: string; fields: Decl[] }
  | { kind: 'union'; name: string; disc: Decl; arms: UnionArm[]; dflt?: Decl | null };

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}
  private peek(): Token | undefined {
    return this.toks[this.i];
  }
  private next(): Token {
    const t = this.toks[this.i++];
    if (!t) throw new Error('unexpected end of file');
    return t;
  }
  private expect(text: string): Token {
    const t = this.next();
    if (t.text !== text) throw new Error(`line ${t.line}: expected '${text}', got '${t.text}'`);
    return t;
  }
  private ident(): string {
    const t = this.next();
    if (!/^[A-Za-z_]\w*$/.test(t.text)) throw new Error(`line ${t.line}: expected a name, got '${t.text}'`);
    return t.text;
  }
  private value(): string {
    const t = this.next();
    if (!/^(0x[0-9a-fA-F]+|-?\d+|[A-Za-z_]\w*)$/.test(t.text)) throw new Error(`line ${t.line}: expected a value, got '${t.text}'`);
    return t.text;
  }
  private eat(text: string): boolean {
    if (this.peek()?.text !== text) return false;
    this.i++;
    return true;
  }

  definitions(): Def[] {
    const defs: Def[] = [];
    while (this.peek()) {
      const t = this.next();
      if (t.text === 'const') {
        const name = this.ident();
        this.expect('=');
        defs.push({ kind: 'const', name, value: this.value() });
      } else if (t.text === 'typedef') defs.push({ kind: 'typedef', decl: this.declaration() });
      else if (t.text === 'enum') defs.push(this.enumBody(this.ident()));
      else if (t.text === 'struct') {
        const name = this.ident();
        const fields: Decl[] = [];
        this.expect('{');
        while (!this.eat('}')) {
          fields.push(this.declaration());
          this.expect(';');
        }
        defs.push({ kind: 'struct', name, fields });
      } else if (t.text === 'union') defs.push(this.unionBody());
      else throw new Error(`line ${t.line}: unsupported definition '${t.text}'`);
      this.expect(';');
    }
    return defs;
  }

  private enumBody(name: string): Def {
    const members: { name: string; value: string; doc?: string }[] = [];
    this.expect('{');
    do {
      const doc = this.peek()?.doc;
      const member = this.ident();
      this.expect('=');
      members.push({ name: member, value: this.value(), doc });
    } while (this.eat(','));
    this.expect('}');
    return { kind: 'enum', name, members };
  }

  private unionBody(): Def {
    const name = this.ident();
    this.expect('switch');
    this.expect('(');
    const disc = this.declaration();
    this.expect(')');
    this.expect('{');
    const arms: UnionArm[] = [];
    let dflt: Decl | null | undefined;
    while (!this.eat('}')) {
      if (this.eat('default')) {
        this.expect(':');
        dflt = this.armDecl();
        continue;
      }
      const cases: string[] = [];
      while (this.eat('case')) {
        cases.push(this.value());
        this.expect(':');
      }
      if (!cases.length) throw new Error(`line ${this.peek()?.line}: union ${name}: expected 'case' or 'default'`);
      arms.push({ cases, decl: this.armDecl() });
    }
    return { kind: 'union', name, disc, arms, dflt };
  }

  private armDecl(): Decl | null {
    const decl = this.eat('void') ? null : this.declaration();
    this.expect(';');
    return decl;
  }

  private declaration(): Decl {
    const t = this.next();
    let base: Base;
    if (t.text === 'opaque') base = { opaque: true };
    else if (t.text === 'string') base = { str: true };
    else if (t.text === 'unsigned') {
      const n = this.peek()?.text;
      const sized = n === 'int' || n === 'hyper' || n === 'char' || n === 'short' ? this.next().text : 'int';
      base = { prim: ({ int: 'uint', hyper: 'uhyper', char: 'uchar', short: 'ushort' } as const)[sized as 'int'] };
    } else if (['int', 'hyper', 'char', 'short', 'float', 'double', 'bool'].includes(t.text)) base = { prim: t.text as Prim };
    else if (t.text === 'struct' || t.text === 'enum' || t.text === 'union') {
      throw new Error(`line ${t.line}: inline ${t.text} definitions are not supported; name the type`);
    } else base = { named: t.text };
    if (this.eat('*')) return { name: this.ident(), base, shape: 'optional' };
    const name = this.ident();
    if (this.eat('[')) {
      const size = this.value();
      this.expect(']');
      return { name, base, shape: 'fixed', size };
    }
    if (this.eat('<')) {
      const size = this.peek()?.text === '>' ? undefined : this.value();
      this.expect('>');
      return { name, base, shape: 'var', size };
    }
    if ('str' in base || 'opaque' in base) throw new Error(`line ${t.line}: ${name}: ${t.text} needs [size] or <max>`);
    return { name, base, shape: 'plain' };
  }
}

const PRIM_TS: Record<Prim, string> = {
  int: 'number', uint: 'number', char: 'number', uchar: 'number', short: 'number', ushort: 'number',
  float: 'number', double: 'number', hyper: 'bigint', uhyper: 'bigint', bool: 'boolean',
};

/** `head items tail` on one line when short, else the items packed into lines of about 120 columns. */
function list(head: string, items: string[], sep: string, tail: string): string {
  const flat = `${head}${items.join(sep)}${tail}`;
  if (flat.length <= 140) return flat;
  const lines: string[] = [];
  for (const item of items) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + sep.length + item.length <= 120) lines[last] += sep.trimEnd() + ' ' + item;
    else lines.push(`  ${item}`);
  }
  return `${head.trimEnd()}\n${lines.join(`${sep.trimEnd()}\n`)}\n${tail.trimStart()}`;
}

/** The TypeScript source for one .x file. */
export function generate(src: string, source: string, externals: Record<string, number>): string {
  const defs = new Parser(tokenize(src)).definitions();
  const consts = new Map<string, number>(Object.entries(externals));
  const types = new Set<string>();
  const num = (v: string): number => {
    const n = /^[A-Za-z_]/.test(v) ? consts.get(v) : Number(v);
    if (n === undefined || !Number.isSafeInteger(n)) throw new Error(`unknown constant '${v}'`);
    return n;
  };
  const typeName = (name: string): string => {
    if (!types.has(name)) throw new Error(`type '${name}' is used before it is defined`);
    return name;
  };
  const baseTs = (b: Base): string => ('prim' in b ? PRIM_TS[b.prim] : 'str' in b ? 'string' : 'opaque' in b ? 'Buffer' : typeName(b.named));
  const declTs = (d: Decl): string => {
    if ('str' in d.base || 'opaque' in d.base) return baseTs(d.base);
    const t = baseTs(d.base);
    return d.shape === 'optional' ? `${t} | null` : d.shape === 'plain' ? t : `${t}[]`;
  };
  const size = (d: Decl): string => {
    if (d.size === undefined) return '0xffffffff';
    num(d.size);
    return d.size;
  };
  const declCodec = (d: Decl): string => {
    if ('str' in d.base) return `x.string(${size(d)})`;
    if ('opaque' in d.base) return d.shape === 'fixed' ? `x.fixedOpaque(${size(d)})` : `x.opaque(${size(d)})`;
    const c = 'prim' in d.base ? `x.${d.base.prim}` : typeName(d.base.named);
    if (d.shape === 'fixed') return `x.fixedArray(${c}, ${size(d)})`;
    if (d.shape === 'var') return `x.array(${c}, ${size(d)})`;
    return d.shape === 'optional' ? `x.optional(${c})` : c;
  };

  const out: string[] = [
    `// Generated by build/libvirt/xdrgen.ts from ${source} (libvirt 9.0.0, LGPL-2.1-or-later). Do not edit:`,
    '// `node --import tsx build/libvirt/xdrgen.ts` regenerates it; build/libvirt/xdrgen.test.ts fails when it is stale.',
    "import * as x from '../xdr.js';",
    '',
  ];
  for (const [name, value] of Object.entries(externals)) out.push(`export const ${name} = ${value};`);
  const procedureEnums: { name: string; members: { name: string; value: string; doc?: string }[] }[] = [];
  for (const def of defs) {
    if (def.kind === 'const') {
      consts.set(def.name, num(def.value));
      out.push(`export const ${def.name} = ${def.value};`);
    } else if (def.kind === 'enum') {
      for (const m of def.members) {
        consts.set(m.name, num(m.value));
        out.push(`export const ${m.name} = ${m.value};`);
      }
      out.push(list(`export type ${def.name} = `, [...new Set(def.members.map((m) => String(num(m.value))))], ' | ', ';'));
      out.push(list(`export const ${def.name}: x.Codec<${def.name}> = x.enumeration('${def.name}', [`, def.members.map((m) => m.name), ', ', ']);'));
      types.add(def.name);
      if (def.name.endsWith('_procedure')) procedureEnums.push(def);
    } else if (def.kind === 'typedef') {
      const d = def.decl;
      out.push(`export type ${d.name} = ${declTs(d)};`, `export const ${d.name}: x.Codec<${d.name}> = ${declCodec(d)};`);
      types.add(d.name);
    } else if (def.kind === 'struct') {
      out.push(`export interface ${def.name} {`, ...def.fields.map((f) => `  ${f.name}: ${declTs(f)};`), '}');
      out.push(list(`export const ${def.name}: x.Codec<${def.name}> = x.struct('${def.name}', { `, def.fields.map((f) => `${f.name}: ${declCodec(f)}`), ', ', ' });'));
      types.add(def.name);
    } else {
      const disc = def.disc;
      if (disc.shape !== 'plain' || !('prim' in disc.base ? ['int', 'uint'].includes(disc.base.prim) : 'named' in disc.base)) {
        throw new Error(`union ${def.name}: the discriminant must be an int, unsigned int or enum`);
      }
      const variant = (d: string, arm: Decl | null): string => `{ ${disc.name}: ${d}${arm ? `; ${arm.name}: ${declTs(arm)}` : ''} }`;
      const armCodec = (arm: Decl | null): string => (arm ? `['${arm.name}', ${declCodec(arm)}]` : 'null');
      const variants = def.arms.flatMap((a) => a.cases.map((c) => variant(String(num(c)), a.decl)));
      if (def.dflt !== undefined) variants.push(variant('number', def.dflt));
      out.push(`export type ${def.name} =`, ...variants.map((v) => `  | ${v}`));
      out[out.length - 1] += ';';
      const arms = def.arms.flatMap((a) => a.cases.map((c) => `${num(c)}: ${armCodec(a.decl)}`));
      const dflt = def.dflt !== undefined ? `, ${armCodec(def.dflt)}` : '';
      out.push(list(`export const ${def.name}: x.Codec<${def.name}> = x.union('${def.name}', '${disc.name}', ${declCodec(disc)}, { `, arms, ', ', ` }${dflt});`));
      types.add(def.name);
    }
  }

  for (const e of procedureEnums) {
    const program = e.name.slice(0, -'_procedure'.length);
    const prefix = `${program.toUpperCase()}_PROC_`;
    out.push('', `/** ${e.name}: number, argument, reply and (for server messages) message codecs, and libvirt's stream annotation. */`);
    out.push(`export const ${program}_procedures = {`);
    for (const m of e.members) {
      if (!m.name.startsWith(prefix)) throw new Error(`${m.name}: a procedure of ${e.name} must start with ${prefix}`);
      const base = `${program}_${m.name.slice(prefix.length).toLowerCase()}`;
      const part = (suffix: string): string => (types.has(`${base}_${suffix}`) ? `${base}_${suffix}` : 'x.void_');
      const stream = /@readstream:/.test(m.doc ?? '') ? ", stream: 'read'" : /@writestream:/.test(m.doc ?? '') ? ", stream: 'write'" : '';
      const msg = types.has(`${base}_msg`) ? `, msg: ${base}_msg` : '';
      out.push(`  ${m.name}: { number: ${m.name}, args: ${part('args')}, ret: ${part('ret')}${msg}${stream} },`);
    }
    out.push('} as const;');
  }
  return out.join('\n') + '\n';
}

/** Every unit's generated text, keyed by output path relative to the repository. */
export function generateAll(): Map<string, string> {
  return new Map(UNITS.map((u) => [u.output, generate(fs.readFileSync(path.join(ROOT, u.input), 'utf8'), u.input, u.externals)]));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [file, text] of generateAll()) {
    fs.mkdirSync(path.dirname(path.join(ROOT, file)), { recursive: true });
    fs.writeFileSync(path.join(ROOT, file), text);
    console.log(`xdrgen: wrote ${file} (${text.split('\n').length} lines)`);
  }
}
