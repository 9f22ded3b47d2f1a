// The storage volumes of a libvirt connection, for the New VM wizard's volume pickers (the files a
// guest uses must be on that host), and uploads of files on this computer into its pools, with
// their progress from the connection's job events.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { JobInfo, Result } from '@shared/api';
import { hostConnection } from './api';

/** A volume name from a file name: what libvirt's names may hold (letters, digits, _ . + -). */
export function volumeNameOf(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? '';
  const name = base.replace(/[^A-Za-z0-9_.+-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  return name || 'upload.img';
}

export const useVolumesStore = defineStore('volumes', () => {
  const host = hostConnection();
  /** Running uploads by connection and volume ("URI pool/name"). */
  const uploads = ref<Record<string, JobInfo>>({});
  const keyOf = (connection: string, pool: string, name: string): string => `${connection} ${pool}/${name}`;

  host.onRemote('job.progress', ({ job }, connection) => {
    if (job.operation === 'upload' && job.volume && job.status === 'running') uploads.value[keyOf(connection, job.volume.pool, job.volume.name)] = job;
  });
  host.onRemote('job.completed', ({ job }, connection) => {
    if (job.operation === 'upload' && job.volume) delete uploads.value[keyOf(connection, job.volume.pool, job.volume.name)];
  });

  /** The pool's volumes; the host makes the default pool of a fresh libvirt host on first use, and says so in warnings. */
  function list(connection: string, pool = 'default'): Promise<Result<'volume.list'>> {
    return host.call('volume.list', { pool }, { connection });
  }

  /** Uploads a file on this computer into a new volume named after it; resolves when it is all there. */
  function upload(connection: string, file: string, pool = 'default'): Promise<Result<'volume.upload'>> {
    return host.call('volume.upload', { pool, name: volumeNameOf(file), file }, { connection });
  }

  function progress(connection: string, file: string, pool = 'default'): JobInfo | undefined {
    return uploads.value[keyOf(connection, pool, volumeNameOf(file))];
  }

  async function cancel(connection: string, job: number): Promise<void> {
    await host.call('volume.uploadAbort', { job }, { connection });
  }

  return { uploads, list, upload, progress, cancel };
});
