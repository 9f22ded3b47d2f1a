// osinfo.detect and osinfo.list: the ISO's volume descriptor is read in the image reader's worker
// thread (a hostile image cannot block or exhaust the host), then matched against osinfo-db.
import type { NewDomainSpec, OsinfoDetection, ParsedParams, Results } from '../../../shared/api.js';
import { osEngineProblem } from '../../../shared/osinfo.js';
import { checkInputFile, InputFileError } from '../../common/input-file.js';
import type { IsoIdentity } from '../../fsimage/iso-identity.js';
import { HostError, invalidArg } from '../errors.js';
import { FsimageJobError, runFsimageJob } from '../images/reader-client.js';
import { osinfoDb } from './db.js';

export async function detectOs(file: string): Promise<OsinfoDetection> {
  const { db, problem } = await osinfoDb();
  if (!db) return { path: file, available: false, problem };
  try {
    checkInputFile(file, { blockDevices: true });
  } catch (err) {
    if (err instanceof InputFileError) throw invalidArg(`cannot read '${file}': ${err.kind ? 'it ' : ''}${err.reason}`);
    throw err;
  }
  let identity: IsoIdentity;
  try {
    identity = await runFsimageJob<IsoIdentity>({ op: 'identify', path: file }, 20_000);
  } catch (err) {
    if (err instanceof FsimageJobError) throw new HostError(err.expected ? 'OPERATION_UNSUPPORTED' : 'INTERNAL_ERROR', `cannot read '${file}': ${err.message}`);
    throw err;
  }
  const [first, ...rest] = db.identify(identity);
  if (!first) return { path: file, available: true, identity };
  return {
    path: file,
    available: true,
    identity,
    os: db.entry(first.os, first.media.arch),
    arch: first.media.arch,
    media: { live: first.media.live, variant: first.media.variant },
    others: rest.length ? rest.map((m) => m.os.id) : undefined,
  };
}

export async function listOses(p: ParsedParams<'osinfo.list'>): Promise<Results['osinfo.list']> {
  const { db, problem } = await osinfoDb();
  if (!db) return { oses: [], total: 0, available: false, problem };
  const found = db.search(p.query);
  return { oses: found.slice(0, p.limit).map((os) => db.entry(os)), total: found.length, available: true };
}

/**
 * domain.create's check of the OS the spec names (an osinfo-db id): it must exist, and the engine
 * must run it, on the architecture of the ISO when the ISO is one of that OS's media. Without
 * osinfo-db there is nothing to check against; the image's own kernel check still applies.
 */
export async function osSpecProblem(spec: NewDomainSpec): Promise<string | undefined> {
  if (!spec.os?.includes('://')) return undefined;
  const { db } = await osinfoDb();
  if (!db) return undefined;
  const os = db.byId.get(spec.os);
  if (!os) return `OS '${spec.os}' is not in osinfo-db (${db.dir})`;
  let arch: string | undefined;
  const { boot } = spec;
  if (boot.kind === 'install' || boot.kind === 'cdrom') {
    const identity = await runFsimageJob<IsoIdentity>({ op: 'identify', path: boot.iso }, 20_000).catch(() => undefined);
    arch = identity && db.identify(identity).find((m) => m.os === os)?.media.arch;
  }
  return osEngineProblem(spec.engine, db.entry(os), arch);
}
