// What two Domus hosts say to each other during a migration, in libvirt's terms: the flags of
// virDomainMigrateFlags, the typed parameters of the *_PARAMS procedures (libvirt-domain.h's
// VIR_MIGRATE_PARAM_*), and the cookies. libvirt's cookies are its own XML; between Domus hosts the
// source's cookie is the engine's MigrationCookie and the destination's carries the endpoint's token,
// both JSON, checked field by field since they come from the other host.
import { z } from 'zod';
import type { MigrationCookie } from '../drivers/driver.js';
import { invalidArg } from '../errors.js';
import type { remote_typed_param } from '../libvirt/protocol/remote.js';

/** virDomainMigrateFlags. */
export const VIR_MIGRATE = {
  LIVE: 1,
  PEER2PEER: 2,
  TUNNELLED: 4,
  PERSIST_DEST: 8,
  UNDEFINE_SOURCE: 16,
  PAUSED: 32,
  NON_SHARED_DISK: 64,
  NON_SHARED_INC: 128,
  OFFLINE: 1024,
  POSTCOPY: 32768,
} as const;

/** VIR_MIGRATE_PARAM_*: the names of the typed parameters. */
export const PARAM = {
  URI: 'migrate_uri',
  DEST_NAME: 'destination_name',
  DEST_XML: 'destination_xml',
  PERSIST_XML: 'persistent_xml',
  BANDWIDTH: 'bandwidth',
} as const;

/** The typed parameter types (virTypedParameterType) the migration parameters use. */
const TYPED_ULLONG = 4;
const TYPED_STRING = 7;

/** Cookies are small JSON documents; anything bigger is not from a Domus host. */
const COOKIE_MAX = 64 * 1024;

export function stringParam(field: string, s: string): remote_typed_param {
  return { field, value: { type: TYPED_STRING, s } };
}

export function ullParam(field: string, ul: number): remote_typed_param {
  return { field, value: { type: TYPED_ULLONG, ul: BigInt(ul) } };
}

/** The parameters a peer sent, by name; a name given twice or with the wrong type is refused. */
export class Params {
  private readonly byName = new Map<string, remote_typed_param['value']>();

  constructor(params: remote_typed_param[]) {
    for (const p of params) {
      if (this.byName.has(p.field)) throw invalidArg(`migration parameter '${p.field}' given twice`);
      this.byName.set(p.field, p.value);
    }
  }

  string(field: string): string | undefined {
    const v = this.byName.get(field);
    if (v === undefined) return undefined;
    if (v.type !== TYPED_STRING) throw invalidArg(`migration parameter '${field}' must be a string`);
    return v.s;
  }

  ull(field: string): number | undefined {
    const v = this.byName.get(field);
    if (v === undefined) return undefined;
    if (v.type !== TYPED_ULLONG) throw invalidArg(`migration parameter '${field}' must be an unsigned long long`);
    return Number(v.ul);
  }
}

const EngineCookie = z
  .object({
    engine: z.string().min(1).max(64),
    engineVersion: z.string().max(256),
    machine: z.string().max(256).optional(),
    cpu: z.object({ model: z.string().max(256), features: z.array(z.string().max(64)).max(1024) }).strict(),
    vcpus: z.number().int().positive().max(4096),
    memoryKiB: z.number().int().positive(),
  })
  .strict();

const DestinationCookie = z.object({ token: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

function readJson<T>(schema: z.ZodType<T>, buf: Buffer, what: string): T {
  if (buf.length > COOKIE_MAX) throw invalidArg(`the ${what} is ${buf.length} bytes; a Domus host sends at most ${COOKIE_MAX}`);
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8'));
  } catch {
    throw invalidArg(`the ${what} is not JSON: the peer is not a Domus host of this version`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw invalidArg(`the ${what} is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export const encodeSourceCookie = (cookie: MigrationCookie): Buffer => Buffer.from(JSON.stringify(cookie));
export const decodeSourceCookie = (buf: Buffer): MigrationCookie => readJson(EngineCookie, buf, 'source host\'s migration cookie');
export const encodeDestinationCookie = (token: string): Buffer => Buffer.from(JSON.stringify({ token }));
export const decodeDestinationCookie = (buf: Buffer): string => readJson(DestinationCookie, buf, 'destination host\'s migration cookie').token;
