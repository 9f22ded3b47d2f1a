// The storage volumes of a libvirt connection, for the volume pickers of the New VM wizard and the
// Details window (the files a guest uses must be on that host), new volumes for new disks, and
// uploads of files on this computer into its pools, with their progress from the connection's job
// events.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { JobInfo, VolumeInfo } from '@shared/api';
import { connectionLabel } from '../lib/connections';
import { errorMessage } from '../lib/format';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

/** A volume name from a file name: what libvirt's names may hold (letters, digits, _ . + -). */
export function volumeNameOf(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? '';
  const name = base.replace(/[^A-Za-z0-9_.+-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  return name || 'upload.img';
}

/**
 * A new disk's volume name, as virt-manager picks one: `<base>.<ext>`, else `<base>-1.<ext>`,
 * `<base>-2.<ext>`… the first one no volume of the pool has. `base` is made a valid volume name.
 */
export function freeVolumeName(base: string, ext: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const stem = volumeNameOf(base).replace(/\.+$/, '') || 'disk';
  for (let n = 0; ; n++) {
    const name = `${stem}${n ? `-${n}` : ''}.${ext}`;
    if (!used.has(name)) return name;
  }
}

/** One pool's volumes as last listed, or why they could not be. */
export interface PoolListing {
  volumes: VolumeInfo[];
  problem: string;
}

export const useVolumesStore = defineStore('volumes', () => {
  const host = hostConnection();
  const toasts = useToastStore();
  /** Running uploads by connection and volume ("URI pool/name"). */
  const uploads = ref<Record<string, JobInfo>>({});
  /** The last listing of each pool, by "URI pool". */
  const listings = ref<Record<string, PoolListing>>({});
  const pending = new Map<string, Promise<void>>();
  const keyOf = (connection: string, pool: string, name: string): string => `${connection} ${pool}/${name}`;
  const poolKey = (connection: string, pool: string): string => `${connection} ${pool}`;

  host.onRemote('job.progress', ({ job }, connection) => {
    if (job.operation === 'upload' && job.volume && job.status === 'running') uploads.value[keyOf(connection, job.volume.pool, job.volume.name)] = job;
  });
  host.onRemote('job.completed', ({ job }, connection) => {
    if (job.operation === 'upload' && job.volume) delete uploads.value[keyOf(connection, job.volume.pool, job.volume.name)];
  });

  function warn(connection: string, warnings: string[] | undefined): void {
    for (const w of warnings ?? []) toasts.push('info', `Storage on ${connectionLabel(connection)}`, w);
  }

  /**
   * Lists the pool again into `listings`; pickers opened together share one request. The host makes
   * the default pool of a fresh libvirt host on first use, and says so in a toast.
   */
  function refresh(connection: string, pool = 'default'): Promise<void> {
    const key = poolKey(connection, pool);
    const running = pending.get(key);
    if (running) return running;
    const done = (async () => {
      try {
        const { volumes, warnings } = await host.call('volume.list', { pool }, { connection });
        listings.value[key] = { volumes, problem: '' };
        warn(connection, warnings);
      } catch (err) {
        listings.value[key] = { volumes: listings.value[key]?.volumes ?? [], problem: errorMessage(err) };
      } finally {
        pending.delete(key);
      }
    })();
    pending.set(key, done);
    return done;
  }

  function listing(connection: string, pool = 'default'): PoolListing | undefined {
    return listings.value[poolKey(connection, pool)];
  }

  /** virsh vol-create-as: a new, sparse volume for a new disk. */
  async function create(connection: string, name: string, capacityBytes: number, format: 'raw' | 'qcow2', pool = 'default'): Promise<VolumeInfo> {
    const { volume, warnings } = await host.call('volume.create', { pool, name, capacityBytes, format }, { connection });
    warn(connection, warnings);
    await refresh(connection, pool);
    return volume;
  }

  async function remove(connection: string, name: string, pool = 'default'): Promise<void> {
    await host.call('volume.delete', { pool, name }, { connection });
    await refresh(connection, pool);
  }

  /** Uploads a file on this computer into a new volume named after it; resolves when it is all there. */
  async function upload(connection: string, file: string, pool = 'default'): Promise<VolumeInfo> {
    const { volume, warnings } = await host.call('volume.upload', { pool, name: volumeNameOf(file), file }, { connection });
    warn(connection, warnings);
    await refresh(connection, pool);
    return volume;
  }

  function progress(connection: string, file: string, pool = 'default'): JobInfo | undefined {
    return uploads.value[keyOf(connection, pool, volumeNameOf(file))];
  }

  async function cancel(connection: string, job: number): Promise<void> {
    await host.call('volume.uploadAbort', { job }, { connection });
  }

  return { uploads, listings, refresh, listing, create, remove, upload, progress, cancel };
});
