// QEMU snapshots: qcow2 internal snapshots. A running guest's through QMP jobs (snapshot-save with
// its memory in the first disk, snapshot-load, snapshot-delete; each awaited to its concluded
// JOB_STATUS_CHANGE, then dismissed) or, disks only, blockdev-snapshot-internal-sync in one
// transaction; a shut-off guest's with qemu-img snapshot -c/-a/-d on each disk. Raw disks would
// need external overlays that change the definition's disks; they are refused with the reason.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DomainDocument } from '../../domain/xml.js';
import type { EngineSnapshots, LiveDomain } from '../driver.js';
import type { QmpClient, QmpEvent } from './qmp.js';
import { driveId } from './argv.js';

const run = promisify(execFile);
const JOB_TIMEOUT_MS = 10 * 60_000;

/** The disks a snapshot covers: the writable hard disks (a CD-ROM or read-only disk never changes). */
function snapshotDisks(doc: DomainDocument) {
  return doc.config.disks.filter((d): d is typeof d & { source: string } => d.device === 'disk' && !d.readonly && d.source !== undefined);
}

/** A QEMU live domain, whose QMP the snapshot jobs go through (driver.ts's QemuLive). */
export interface QmpHolder {
  readonly monitor: QmpClient;
}

function qmpOf(live: LiveDomain): QmpClient {
  if (!('monitor' in live)) throw new Error('not a QEMU guest');
  return (live as LiveDomain & QmpHolder).monitor;
}

/** The block nodes of the snapshot's disks, as QEMU named them (-drive gives automatic node names). */
async function nodes(qmp: QmpClient, doc: DomainDocument): Promise<string[]> {
  const devices = await qmp.execute<{ device: string; inserted?: { 'node-name': string } }[]>('query-block');
  return snapshotDisks(doc).map((d) => {
    const node = devices.find((b) => b.device === driveId(d.target))?.inserted?.['node-name'];
    if (!node) throw new Error(`QEMU has no block node for disk '${d.target}'`);
    return node;
  });
}

let jobs = 0;

/** Runs a snapshot-* job and waits until it concludes; its error, if any, is thrown. */
async function runJob(qmp: QmpClient, command: string, args: Record<string, unknown>): Promise<void> {
  const id = `domus-${command}-${++jobs}`;
  const concluded = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      qmp.off('event', listen);
      reject(new Error(`${command} did not finish within ${JOB_TIMEOUT_MS / 1000} s`));
    }, JOB_TIMEOUT_MS);
    const listen = (e: QmpEvent): void => {
      const data = e.data as { id?: string; status?: string } | undefined;
      if (e.event !== 'JOB_STATUS_CHANGE' || data?.id !== id || data.status !== 'concluded') return;
      clearTimeout(timer);
      qmp.off('event', listen);
      resolve();
    };
    qmp.on('event', listen);
  });
  await qmp.execute(command, { 'job-id': id, ...args });
  await concluded;
  const all = await qmp.execute<{ id: string; error?: string }[]>('query-jobs');
  const error = all.find((j) => j.id === id)?.error;
  await qmp.execute('job-dismiss', { id });
  if (error) throw new Error(`${command}: ${error}`);
}

async function qemuImg(args: string[]): Promise<void> {
  try {
    await run('qemu-img', args);
  } catch (err) {
    throw new Error(((err as { stderr?: string }).stderr || (err as Error).message).trim());
  }
}

export const qemuSnapshots: EngineSnapshots = {
  cannot(doc, running) {
    const disks = snapshotDisks(doc);
    const raw = disks.find((d) => d.format !== 'qcow2');
    if (raw) return `QEMU snapshots are kept inside qcow2 images, and disk '${raw.target}' is ${raw.format} (convert it with qemu-img convert -O qcow2)`;
    if (!disks.length && running) return 'QEMU keeps a snapshot\'s memory in a qcow2 disk, and this guest has none';
    if (doc.config.os.firmware === 'efi') return 'the UEFI variable store is a raw file, which QEMU cannot snapshot';
    return undefined;
  },

  async create({ doc, snap, live, memory }) {
    const disks = snapshotDisks(doc);
    if (live) {
      const qmp = qmpOf(live);
      const names = await nodes(qmp, doc);
      if (memory) await runJob(qmp, 'snapshot-save', { tag: snap.name, vmstate: names[0], devices: names });
      else await qmp.execute('transaction', { actions: names.map((device) => ({ type: 'blockdev-snapshot-internal-sync', data: { device, name: snap.name } })) });
    } else {
      for (const d of disks) await qemuImg(['snapshot', '-c', snap.name, d.source]);
    }
    return { memory: live && memory ? 'internal' : 'no', disks: disks.map((d) => ({ name: d.target, snapshot: 'internal' as const })) };
  },

  memoryRevert: 'live',
  memoryFile() {
    throw new Error('QEMU keeps a snapshot\'s memory inside its qcow2 disk');
  },
  async loadLive(live, doc, snap) {
    const qmp = qmpOf(live);
    const names = await nodes(qmp, doc);
    await runJob(qmp, 'snapshot-load', { tag: snap.name, vmstate: names[0], devices: names });
  },

  async revertDisks(doc, snap) {
    for (const d of snapshotDisks(doc)) await qemuImg(['snapshot', '-a', snap.name, d.source]);
  },

  async remove(doc, snap, _others, live) {
    if (live) {
      const qmp = qmpOf(live);
      await runJob(qmp, 'snapshot-delete', { tag: snap.name, devices: await nodes(qmp, doc) });
      return;
    }
    for (const d of snapshotDisks(doc)) await qemuImg(['snapshot', '-d', snap.name, d.source]);
  },
};
