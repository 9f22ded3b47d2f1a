// Live migration on the QEMU engine, over QMP. The stream runs between two QEMUs through a relay
// each QEMU spawns itself (migrate-relay.ts, an 'exec:' URI), which checks the destination's token.
//
// TCG and pre-copy: QEMU before 9.0 loses dirty pages under TCG. The fast path of its dirty-bitmap
// sync clears the migration bits without re-arming the vCPUs' TLB write tracking, so stores through
// TLB entries made before a sync mark nothing (fixed upstream by 03bfc2188f, "physmem: Fix migration
// dirty bitmap coherency with TCG memory access"); no setting avoids that path. Here 7.2 broke a
// memory-dirtying guest in 14 of 21 pre-copy runs (qemu.md §6) and 2 of 4 with the engine test's
// workload (the destination's console dead). So a live migration on TCG switches to
// post-copy at once, before the first pass ends: the bits are then cleared only by the first sync,
// right after the tracking starts (and its TLB flush), and by the one at the switch, when the guest
// is already stopped here. Pre-copy (with post-copy after the first pass, if asked) is for KVM.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE_MODE } from '../../../common/fsutil.js';
import { APP_ROOT } from '../../../common/paths.js';
import { shellQuote } from '../../../common/shell.js';
import { sleep } from '../../../common/process.js';
import type { DomainDocument } from '../../domain/xml.js';
import type { MigrationCookie, MigrationEndpoint, MigrationOptions, MigrationProgress, MigrationResult } from '../driver.js';
import type { QmpClient, QmpEvent } from './qmp.js';
import { EngineFailure } from '../../errors.js';

export class QemuMigrationError extends EngineFailure {
  override name = 'QemuMigrationError';
}

const MiB = 1024 * 1024;
/** --bandwidth absent: as good as unlimited (QEMU's own default is 128 MiB/s). */
const UNLIMITED_BANDWIDTH = 10 * 1024 * MiB;
/** QEMU's upper bound for downtime-limit. */
const MAX_DOWNTIME_LIMIT_MS = 2_000_000;
const POLL_MS = 100;
const READY_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 20_000;

/** What a QEMU guest looks like to a destination: read once over QMP at start, kept in its meta file. */
export interface MigrationFacts {
  qemuVersion: string;
  /** The machine type the alias resolved to ('pc-i440fx-7.2'). */
  machine: string;
  cpu: { model: string; features: string[] };
}

/** The -cpu model argv.ts gives each accelerator, as query-cpu-model-expansion takes it. */
function cpuModel(accel: 'kvm' | 'tcg'): { name: string; props?: Record<string, boolean> } {
  return accel === 'kvm' ? { name: 'host', props: { 'arch-capabilities': false } } : { name: 'max' };
}

function featuresOf(props: Record<string, unknown>): string[] {
  return Object.entries(props)
    .filter(([, v]) => v === true)
    .map(([k]) => k.toLowerCase())
    .sort();
}

export async function readMigrationFacts(qmp: QmpClient, accel: 'kvm' | 'tcg'): Promise<MigrationFacts> {
  const v = await qmp.execute<{ qemu: { major: number; minor: number; micro: number } }>('query-version');
  const type = await qmp.execute<string>('qom-get', { path: '/machine', property: 'type' });
  const model = cpuModel(accel);
  const exp = await qmp.execute<{ model: { props: Record<string, unknown> } }>('query-cpu-model-expansion', { type: 'full', model });
  return {
    qemuVersion: `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}`,
    machine: type.replace(/-machine$/, ''),
    cpu: { model: accel === 'kvm' ? 'host' : 'max', features: featuresOf(exp.model.props) },
  };
}

export function cookieOf(doc: DomainDocument, facts: MigrationFacts): MigrationCookie {
  return { engine: 'qemu', engineVersion: facts.qemuVersion, machine: facts.machine, cpu: facts.cpu, vcpus: doc.config.vcpus, memoryKiB: doc.config.memoryKiB };
}

/** What this QEMU binary offers with one accelerator: its version, machine types, the CPU it would give. */
export interface QemuOffer {
  version: string;
  machines: { name: string; alias?: string }[];
  features: Set<string>;
}

/**
 * Asks the binary itself (-machine none, QMP on stdio), as libvirt probes QEMU's capabilities;
 * synchronous because checkIncoming is. The caller caches it.
 */
export function probeOffer(binary: string, accel: 'kvm' | 'tcg'): QemuOffer {
  const commands = [
    { execute: 'qmp_capabilities' },
    { execute: 'query-version', id: 'version' },
    { execute: 'query-machines', id: 'machines' },
    { execute: 'query-cpu-model-expansion', id: 'cpu', arguments: { type: 'full', model: cpuModel(accel) } },
    { execute: 'quit' },
  ];
  const r = spawnSync(binary, ['-machine', 'none', '-accel', accel, '-nodefaults', '-display', 'none', '-qmp', 'stdio'], {
    input: commands.map((c) => JSON.stringify(c)).join('\n') + '\n',
    timeout: PROBE_TIMEOUT_MS,
    maxBuffer: 16 * MiB,
    encoding: 'utf8',
  });
  const answers = new Map<string, unknown>();
  for (const line of (r.stdout ?? '').split('\n')) {
    try {
      const msg = JSON.parse(line) as { id?: string; return?: unknown };
      if (msg.id && 'return' in msg) answers.set(msg.id, msg.return);
    } catch {
      /* not a reply line */
    }
  }
  const version = answers.get('version') as { qemu: { major: number; minor: number; micro: number } } | undefined;
  const machines = answers.get('machines') as { name: string; alias?: string }[] | undefined;
  const cpu = answers.get('cpu') as { model: { props: Record<string, unknown> } } | undefined;
  if (!version || !machines || !cpu) {
    const why = r.error?.message ?? (r.stderr ?? '').trim().split('\n').pop() ?? 'no answer';
    throw new QemuMigrationError(`cannot ask ${binary} what it offers (${accel}): ${why}`);
  }
  return {
    version: `${version.qemu.major}.${version.qemu.minor}.${version.qemu.micro}`,
    machines: machines.map((m) => ({ name: m.name, alias: m.alias })),
    features: new Set(featuresOf(cpu.model.props)),
  };
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * Why this QEMU cannot take the guest: another engine, an older QEMU, a machine type it lacks or
 * would not start the guest with, CPU features it cannot give, a definition of another size.
 */
export function incomingProblems(cookie: MigrationCookie, doc: DomainDocument, offer: QemuOffer, accel: 'kvm' | 'tcg', machineAlias: string): string[] {
  if (cookie.engine !== 'qemu') return [`the guest runs on the ${cookie.engine} engine; QEMU cannot take its state`];
  const problems: string[] = [];
  if (compareVersions(offer.version, cookie.engineVersion) < 0) problems.push(`QEMU here is ${offer.version}, older than the source's ${cookie.engineVersion}`);
  if (cookie.machine) {
    const here = offer.machines.find((m) => m.alias === machineAlias)?.name ?? machineAlias;
    if (!offer.machines.some((m) => m.name === cookie.machine)) problems.push(`this QEMU has no machine type '${cookie.machine}'`);
    else if (here !== cookie.machine) problems.push(`the guest runs machine type '${cookie.machine}'; Domus starts '${machineAlias}' here, which is '${here}'`);
  }
  const missing = cookie.cpu.features.filter((f) => !offer.features.has(f.toLowerCase()));
  if (missing.length) problems.push(`QEMU here (${accel === 'kvm' ? 'KVM, -cpu host' : 'TCG, -cpu max'}) cannot give the guest CPU features it has seen: ${missing.join(', ')}`);
  if (cookie.vcpus !== doc.config.vcpus) problems.push(`the guest has ${cookie.vcpus} vCPUs, its definition here ${doc.config.vcpus}`);
  if (cookie.memoryKiB !== doc.config.memoryKiB) problems.push(`the guest has ${cookie.memoryKiB} KiB of memory, its definition here ${doc.config.memoryKiB} KiB`);
  return problems;
}

/** The relay as an 'exec:' command for QEMU (its /bin/sh execs it, so QEMU is its parent). */
function relayCommand(args: string[]): string {
  const entry = path.join(APP_ROOT, 'dist', 'qemu', 'migrate-relay.mjs');
  if (!fs.existsSync(entry)) throw new QemuMigrationError(`the migration relay ${entry} is missing (run the build)`);
  // Inside Electron's utility process execPath is Electron itself: it runs the relay as plain Node.
  const node = [...(process.versions.electron ? ['env', 'ELECTRON_RUN_AS_NODE=1'] : []), process.execPath];
  return `exec:exec ${[...node, entry, ...args].map(shellQuote).join(' ')}`;
}

function writeToken(file: string, token: string): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, token, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The relay's last words in QEMU's log (its stderr is QEMU's), from `from` on. */
function relayError(logFile: string, from: number): string | undefined {
  try {
    const lines = fs.readFileSync(logFile).subarray(from).toString('utf8').split('\n').filter((l) => l.startsWith('migration relay: '));
    return lines.pop()?.slice('migration relay: '.length);
  } catch {
    return undefined;
  }
}

interface QueryMigrate {
  status?: string;
  'error-desc'?: string;
  downtime?: number;
  'total-time'?: number;
  ram?: { transferred: number; remaining: number; total: number; 'dirty-sync-count': number; 'dirty-pages-rate': number; 'page-size': number };
}

/** The destination's side, once QEMU waits (-incoming defer): migrate-incoming through the relay. */
export async function listenIncoming(
  qmp: QmpClient,
  stateDir: string,
  logFile: string,
  listen: { kind: 'unix' } | { kind: 'tcp'; address: string },
): Promise<MigrationEndpoint> {
  const token = crypto.randomBytes(32).toString('hex');
  const tokenFile = path.join(stateDir, 'migrate-in.token');
  const readyFile = path.join(stateDir, 'migrate-in.endpoint');
  const listenUri = listen.kind === 'unix' ? `unix:${path.join(stateDir, 'migrate.sock')}` : `tcp:${listen.address.includes(':') ? `[${listen.address}]` : listen.address}:0`;
  writeToken(tokenFile, token);
  const logFrom = fileSize(logFile);
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  // The destination must have postcopy-ram before the stream starts, and only the source knows
  // whether it will switch: set always (harmless when unused). A kernel without userfaultfd
  // refuses it; pre-copy still works then, and a post-copy source fails cleanly.
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] }).catch(() => undefined);
  await qmp.execute('migrate-incoming', { uri: relayCommand(['in', listenUri, tokenFile, readyFile]) });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!fs.existsSync(readyFile)) {
    const m = await qmp.execute<QueryMigrate>('query-migrate');
    if (m.status === 'failed') throw new QemuMigrationError(`the incoming migration failed at once: ${relayError(logFile, logFrom) ?? m['error-desc'] ?? 'no reason given'}`);
    if (Date.now() > deadline) throw new QemuMigrationError(`the migration relay did not listen within ${READY_TIMEOUT_MS / 1000} s${relayError(logFile, logFrom) ? `: ${relayError(logFile, logFrom)}` : ''}`);
    await sleep(20);
  }
  return { uri: fs.readFileSync(readyFile, 'utf8'), token };
}

/**
 * Resolves once the whole guest is here and QEMU says it runs (or is paused, as the source was);
 * rejects when QEMU reports the stream failed or ends (a failed incoming migration exits QEMU).
 */
export async function awaitArrival(qmp: QmpClient): Promise<'running' | 'paused'> {
  for (;;) {
    const m = await qmp.execute<QueryMigrate>('query-migrate');
    if (m.status === 'completed') break;
    if (m.status === 'failed' || m.status === 'cancelled') throw new QemuMigrationError(`the incoming migration ${m.status}${m['error-desc'] ? `: ${m['error-desc']}` : ''}`);
    await sleep(POLL_MS);
  }
  const s = await qmp.execute<{ status: string }>('query-status');
  if (s.status === 'running' || s.status === 'paused') return s.status;
  throw new QemuMigrationError(`the guest arrived but QEMU reports it '${s.status}'`);
}

/** The source's migration, as QemuLive runs it; `switched` tells abortJob that cancelling is over. */
export interface OutgoingJob {
  cancel: boolean;
  switched: boolean;
}

function progressOf(m: QueryMigrate, live: boolean, inPostcopy: boolean): MigrationProgress {
  const ram = m.ram;
  let phase: MigrationProgress['phase'] = 'precopy';
  if (m.status === 'setup' || !ram) phase = 'setup';
  // Also where QEMU switched and finished between two polls (its MIGRATION event said so).
  else if (m.status === 'postcopy-active' || inPostcopy) phase = 'postcopy';
  else if (!live || m.status === 'device' || m.status === 'pre-switchover') phase = 'stopcopy';
  return {
    phase,
    iteration: Math.max(1, ram?.['dirty-sync-count'] ?? 1),
    totalBytes: ram?.total ?? 0,
    transferredBytes: ram?.transferred ?? 0,
    remainingBytes: ram?.remaining ?? 0,
    dirtyRateBytesPerSec: ram ? ram['dirty-pages-rate'] * (ram['page-size'] || 4096) : undefined,
  };
}

export async function migrateOut(
  q: { qmp: QmpClient; stateDir: string; logFile: string; accel: 'kvm' | 'tcg'; running: boolean },
  job: OutgoingJob,
  target: MigrationEndpoint,
  opts: MigrationOptions,
  onProgress: (p: MigrationProgress) => void,
): Promise<MigrationResult> {
  const { qmp } = q;
  if (!/^(unix:\/|tcp:)/.test(target.uri)) throw new QemuMigrationError(`'${target.uri}' is not a migration endpoint (unix:/PATH or tcp:HOST:PORT)`);
  if (!/^[0-9a-f]{64}$/.test(target.token)) throw new QemuMigrationError('the migration token is not 64 hex digits');
  // Post-copy needs the guest running to switch; a paused or stop-and-copy guest goes in one pass.
  const live = opts.live && q.running;
  const postcopy = live && (opts.postcopy || q.accel === 'tcg');
  const tokenFile = path.join(q.stateDir, 'migrate-out.token');
  let inPostcopy = false;
  const onEvent = (e: QmpEvent): void => {
    if (e.event === 'MIGRATION' && e.data?.status === 'postcopy-active') inPostcopy = true;
  };
  writeToken(tokenFile, target.token);
  const logFrom = fileSize(q.logFile);
  try {
    await qmp.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'events', state: true },
        { capability: 'postcopy-ram', state: postcopy },
      ],
    });
    await qmp.execute('migrate-set-parameters', {
      'max-bandwidth': opts.bandwidthMiBs ? Math.round(opts.bandwidthMiBs * MiB) : UNLIMITED_BANDWIDTH,
      'downtime-limit': Math.min(Math.max(1, Math.round(opts.maxDowntimeMs)), MAX_DOWNTIME_LIMIT_MS),
    });
    if (q.running && !live) await qmp.execute('stop');
    // Asked to switch, QEMU may still finish in pre-copy: only its status or event says it switched.
    qmp.on('event', onEvent);
    await qmp.execute('migrate', { uri: relayCommand(['out', target.uri, tokenFile]) });
    let m: QueryMigrate;
    let cancelSent = false;
    let postcopyAsked = false;
    for (;;) {
      m = await qmp.execute<QueryMigrate>('query-migrate');
      if (m.status === 'postcopy-active') job.switched = inPostcopy = true;
      onProgress(progressOf(m, live, inPostcopy));
      if (m.status === 'completed' || m.status === 'failed' || m.status === 'cancelled' || m.status === 'postcopy-paused') break;
      if (job.cancel && !cancelSent && !job.switched) {
        await qmp.execute('migrate_cancel');
        cancelSent = true;
      }
      // TCG: at once (see above); KVM: after the first pass (the second dirty sync). The rest comes on demand.
      const firstPassDone = (m.ram?.['dirty-sync-count'] ?? 0) >= 2;
      if (postcopy && !postcopyAsked && !job.cancel && (m.status === 'active' || m.status === 'setup') && (q.accel === 'tcg' || firstPassDone)) {
        job.switched = true;
        postcopyAsked = true;
        await qmp.execute('migrate-start-postcopy');
      }
      await sleep(POLL_MS);
    }
    if (m.status === 'postcopy-paused') {
      throw new QemuMigrationError(
        `the connection broke during post-copy (${relayError(q.logFile, logFrom) ?? m['error-desc'] ?? 'no reason given'}): the guest's memory is split between the two QEMUs, both paused; it cannot run on here`,
      );
    }
    if (m.status !== 'completed') {
      const relay = relayError(q.logFile, logFrom);
      const why = m.status === 'cancelled' ? 'was cancelled' : `failed: ${m['error-desc'] ?? 'QEMU gave no reason'}${relay ? ` (${relay})` : ''}`;
      throw new QemuMigrationError(`the migration ${why}; the guest runs on here`);
    }
    return { downtimeMs: m.downtime ?? 0, transferredBytes: m.ram?.transferred ?? 0, iterations: m.ram?.['dirty-sync-count'] ?? 1, postcopy: inPostcopy };
  } catch (err) {
    await resumeAfterFailure(qmp, q.running, job.switched);
    throw err;
  } finally {
    qmp.off('event', onEvent);
    fs.rmSync(tokenFile, { force: true });
  }
}

/**
 * QEMU restarts a guest it stopped for a failed pre-copy itself; a stop-and-copy's own stop (or one
 * QEMU left) is undone here. After a post-copy switch the guest is no longer whole here.
 */
async function resumeAfterFailure(qmp: QmpClient, wasRunning: boolean, switched: boolean): Promise<void> {
  if (!wasRunning || switched) return;
  const deadline = Date.now() + 2000;
  while (!qmp.closed && Date.now() < deadline) {
    const s = await qmp.execute<{ status: string }>('query-status').catch(() => undefined);
    if (!s || s.status === 'running') return;
    if (s.status !== 'finish-migrate') {
      await qmp.execute('cont').catch(() => undefined);
      return;
    }
    await sleep(20);
  }
}
