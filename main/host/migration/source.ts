// The source side of a migration between Domus hosts, driven peer to peer as libvirt's
// qemuMigrationSrcPerformPeer2Peer3 does: Begin3 here (the live XML and the engine's cookie), a
// libvirt RPC connection to the destination host for Prepare3 (it checks the cookie and starts a
// waiting engine), Perform3 here (the engine streams the guest straight to that engine), Finish3
// there (the guest runs there), Confirm3 here (the guest here goes). It is one job with migration
// progress; domjobabort works until the guest has arrived. Whatever fails, the guest runs on here
// and the destination is told to drop what it prepared (or drops it itself when our connection ends).
import type { JobInfo, MigrationOutcome, MigrationProgressInfo, Results } from '../../../shared/api.js';
import type { StateReason } from '../../../shared/libvirt/states.js';
import type { DomainState } from '../../../shared/libvirt/states.js';
import { serializeDomainXml } from '../domain/xml.js';
import type { MigrationProgress, MigrationResult } from '../drivers/driver.js';
import { HostError, operationFailed, operationInvalid, operationUnsupported } from '../errors.js';
import { JobError, type JobHandle, type Jobs } from '../jobs/tracker.js';
import { RpcClient } from '../libvirt/rpc-client.js';
import { parseUri } from '../libvirt/uri.js';
import { unixSocketPath } from '../libvirt/transports.js';
import { log } from '../log.js';
import type { DomainRecord, DomainRegistry } from '../registry.js';
import type { TraceLog } from '../trace.js';
import { decodeDestinationCookie, encodeSourceCookie, PARAM, stringParam, ullParam, VIR_MIGRATE } from './protocol.js';

export interface MigrateRequest {
  destination: string;
  live: boolean;
  postcopy: boolean;
  persistent: boolean;
  undefineSource: boolean;
  copyStorageAll: boolean;
  timeoutS?: number;
  bandwidthMiBs?: number;
}

/** The longest pause the engines aim for at switchover (libvirt's default is 300 ms; v86 idles at ≤ 20). */
export const MAX_DOWNTIME_MS = 100;
/** How long a silent destination may take before it is declared dead (5 s keepalive, 5 misses). */
const KEEPALIVE = { keepaliveInterval: 5, keepaliveCount: 5 };

export class MigrationSource {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly jobs: Jobs,
    private readonly trace: TraceLog,
    /** This host's own libvirt socket: a migration to it is refused. */
    private readonly ownSocket: string,
    /** Undefines the domain here (--undefinesource), once it runs there. */
    private readonly undefine: (uuid: string) => void,
  ) {}

  async migrate(ref: string, req: MigrateRequest): Promise<Results['domain.migrate']> {
    const rec = this.registry.lookup(ref);
    const live = this.registry.requireLive(rec);
    const { uuid, name } = rec.doc.config;
    if (rec.step) throw operationInvalid(`domain '${name}' is busy (${rec.step})`);
    if (rec.state !== 'running' && rec.state !== 'paused') throw operationInvalid(`domain '${name}' is ${rec.state}; only a running or paused guest migrates`);
    if (req.undefineSource && !rec.persistent) throw operationInvalid(`domain '${name}' is transient: there is no definition to undefine (drop --undefinesource)`);
    if (req.copyStorageAll) throw operationUnsupported('--copy-storage-all: Domus hosts do not copy disks yet; keep the disks on storage both hosts reach at the same path');
    const driver = this.registry.driverOf(rec);
    if (!driver.migrationCookie || !live.migrateOut) throw operationUnsupported(`the ${driver.label} engine cannot migrate a guest`);
    let target;
    try {
      target = parseUri(req.destination);
    } catch (err) {
      throw new HostError('INVALID_ARG', (err as Error).message);
    }
    if (target.transport === 'unix' && unixSocketPath(target) === this.ownSocket) throw operationInvalid(`${req.destination} is this host: a domain migrates to another host`);

    let job: JobHandle;
    let client: RpcClient | undefined;
    let performing = false;
    let connecting: { cancel(): void } | undefined;
    try {
      job = this.jobs.begin(uuid, name, 'migrate', async () => {
        if (performing) await live.abortJob();
        else if (client) client.close();
        else connecting?.cancel();
        if (job.info.migration && ['finish', 'confirm'].includes(job.info.migration.phase)) throw operationInvalid(`the migration of '${name}' is finishing: the guest already runs on the destination`);
      });
    } catch (err) {
      if (err instanceof JobError) throw operationInvalid(err.message);
      throw err;
    }
    const before: { state: DomainState; reason: StateReason } = { state: rec.state, reason: rec.reason };
    const started = Date.now();
    let suspendedHere = false;
    let prepared = false;
    let result: MigrationResult | undefined;
    const step = async <T>(p: MigrationProgressInfo['phase'], op: string, f: () => Promise<T>): Promise<T> => {
      job.info.migration = { ...(job.info.migration ?? { iteration: 0, remainingBytes: 0 }), phase: p };
      job.progress(job.info.processedBytes, job.info.totalBytes);
      const t0 = Date.now();
      try {
        const r = await f();
        this.trace.request({ time: t0, client: { kind: 'host', label: 'migration' }, domain: name, job: job.info.id, op, args: { destination: req.destination }, ok: true, durationMs: Date.now() - t0 });
        return r;
      } catch (err) {
        this.trace.request({ time: t0, client: { kind: 'host', label: 'migration' }, domain: name, job: job.info.id, op, args: { destination: req.destination }, ok: false, error: (err as Error).message, durationMs: Date.now() - t0 });
        throw err;
      }
    };
    // libvirt's paused/migrating: the guest stopped here for the last of its copy.
    const suspendHere = (): void => {
      if (suspendedHere || rec.live !== live) return;
      suspendedHere = true;
      this.registry.setState(rec, 'paused', 'migrating', 'migrating');
      this.registry.emitLifecycle(rec, 'suspended');
    };
    const flags = (req.live ? VIR_MIGRATE.LIVE : 0) | VIR_MIGRATE.PEER2PEER | (req.persistent ? VIR_MIGRATE.PERSIST_DEST : 0) | (req.undefineSource ? VIR_MIGRATE.UNDEFINE_SOURCE : 0) | (req.postcopy ? VIR_MIGRATE.POSTCOPY : 0);
    const liveDoc = rec.liveDoc ?? rec.doc;
    const params = [
      stringParam(PARAM.DEST_NAME, name),
      stringParam(PARAM.DEST_XML, serializeDomainXml(liveDoc)),
      ...(req.persistent ? [stringParam(PARAM.PERSIST_XML, serializeDomainXml(rec.doc))] : []),
      ...(req.bandwidthMiBs ? [ullParam(PARAM.BANDWIDTH, req.bandwidthMiBs)] : []),
    ];
    let timeout: NodeJS.Timeout | undefined;
    try {
      const cookie = await step('begin', 'migrate.begin', async () => encodeSourceCookie(driver.migrationCookie!(liveDoc, live)));
      const endpoint = await step('prepare', 'migrate.prepare', async () => {
        client = await new Promise<RpcClient>((resolve, reject) => {
          connecting = { cancel: () => reject(new HostError('OPERATION_ABORTED', 'migration job: canceled by client')) };
          RpcClient.connect(req.destination, KEEPALIVE).then((c) => {
            if (job.aborted) c.close();
            resolve(c);
          }, reject);
        });
        if (job.aborted) throw new HostError('OPERATION_ABORTED', 'migration job: canceled by client');
        client.onClose((err) => {
          if (err && performing) void live.abortJob().catch(() => undefined);
        });
        const r = await client.call('REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS', { params, cookie_in: cookie, flags });
        prepared = true;
        if (!r.uri_out) throw operationFailed('the destination host gave no migration endpoint');
        return { uri: r.uri_out, token: decodeDestinationCookie(r.cookie_out) };
      });
      this.registry.setState(rec, rec.state, rec.reason, 'migrating');
      if (!req.live) suspendHere();
      if (req.timeoutS && req.live) {
        timeout = setTimeout(() => {
          log('info', `migration of '${name}': still copying after ${req.timeoutS} s; pausing the guest to finish (virsh --timeout)`);
          suspendHere();
          void live.pause().catch((err: Error) => log('warn', `migration of '${name}': pause at --timeout failed: ${err.message}`));
        }, req.timeoutS * 1000);
      }
      result = await step('precopy', 'migrate.perform', async () => {
        performing = true;
        try {
          return await live.migrateOut!(endpoint, { live: req.live, postcopy: req.postcopy, bandwidthMiBs: req.bandwidthMiBs, maxDowntimeMs: MAX_DOWNTIME_MS }, (p) => this.progress(job, p, suspendHere));
        } finally {
          performing = false;
          clearTimeout(timeout);
        }
      });
      suspendHere();
      const c = client!;
      await step('finish', 'migrate.finish', () => c.call('REMOTE_PROC_DOMAIN_MIGRATE_FINISH3_PARAMS', { params, cookie_in: Buffer.alloc(0), flags, cancelled: 0 }));
    } catch (err) {
      clearTimeout(timeout);
      const why = job.aborted ? 'job aborted by the user' : (err as Error).message;
      if (prepared && client && !client.closed) {
        await client.call('REMOTE_PROC_DOMAIN_MIGRATE_FINISH3_PARAMS', { params, cookie_in: Buffer.alloc(0), flags, cancelled: 1 }).catch(() => undefined);
      }
      client?.close();
      await this.stayHere(rec, before, suspendedHere);
      this.trace.request({ time: Date.now(), client: { kind: 'host', label: 'migration' }, domain: name, job: job.info.id, op: 'migrate.confirm', args: { cancelled: true }, ok: true, durationMs: 0 });
      if (job.aborted) {
        job.finish('aborted', why);
        throw new HostError('OPERATION_ABORTED', `migration of '${name}' aborted by the user; it runs on here`);
      }
      job.finish('failed', why);
      throw operationFailed(`migration of '${name}' to ${req.destination} failed: ${why}`);
    }
    client!.close();
    await step('confirm', 'migrate.confirm', async () => {
      rec.stopping = 'migrated';
      await live.destroy();
      if (req.undefineSource) {
        try {
          this.undefine(uuid);
        } catch (err) {
          log('error', `domain '${name}' migrated, but undefining it here failed: ${(err as Error).message}`);
        }
      }
    });
    const outcome: MigrationOutcome = { downtimeMs: result!.downtimeMs, totalMs: Date.now() - started, transferredBytes: result!.transferredBytes, iterations: result!.iterations, postcopy: result!.postcopy };
    job.info.migration = { ...job.info.migration!, phase: 'confirm', remainingBytes: 0, iteration: outcome.iterations, downtimeMs: outcome.downtimeMs };
    job.info.processedBytes = outcome.transferredBytes;
    const info: JobInfo = job.finish('completed');
    return { job: info, destination: req.destination, result: outcome };
  }

  private progress(job: JobHandle, p: MigrationProgress, suspendHere: () => void): void {
    if (p.phase === 'stopcopy' || p.phase === 'postcopy') suspendHere();
    job.info.migration = {
      phase: p.phase === 'setup' ? 'precopy' : p.phase,
      iteration: p.iteration,
      remainingBytes: p.remainingBytes,
      ...(p.dirtyRateBytesPerSec !== undefined && { dirtyRateBytesPerSec: p.dirtyRateBytesPerSec }),
    };
    job.progress(p.transferredBytes, p.totalBytes);
  }

  /** The migration failed or was cancelled: the guest runs on here as it did (libvirt's Confirm3 with cancelled). */
  private async stayHere(rec: DomainRecord, before: { state: DomainState; reason: StateReason }, suspendedHere: boolean): Promise<void> {
    const live = rec.live;
    if (!live) return;
    // Paused by the engine after its last byte, or by us at --timeout: it runs on.
    if (before.state === 'running' && live.state === 'paused') {
      await live.resume().catch((err: Error) => log('error', `domain '${rec.doc.config.name}' stays here after a failed migration, but would not resume: ${err.message}`));
    }
    const state = live.state;
    this.registry.setState(rec, state, state === before.state ? before.reason : state === 'running' ? 'unpaused' : 'user', null);
    if (suspendedHere && state === 'running') this.registry.emitLifecycle(rec, 'resumed');
  }
}
