// The operating systems the New VM wizard can download (the host's catalogue) and the downloads
// this window started, kept live from download.progress.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { CatalogueEntry, DownloadInfo } from '@shared/api';
import { errorMessage } from '../lib/format';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

export const useCatalogueStore = defineStore('catalogue', () => {
  const host = hostConnection();
  const entries = ref<CatalogueEntry[]>([]);
  /** Why the catalogue could not be read ('' when it could). */
  const problem = ref('');
  /**
   * By id. A download the host refused to start is kept as a failed one under a negative id, so
   * its error shows where its progress would have.
   */
  const downloads = ref<Record<number, DownloadInfo>>({});
  let refused = 0;

  async function load(): Promise<void> {
    try {
      entries.value = (await host.call('catalogue.list', {})).entries;
      problem.value = '';
    } catch (err) {
      problem.value = errorMessage(err);
    }
  }

  /** Starts downloading `entry` into the default pool; answers the id its progress is kept under. */
  async function download(entry: CatalogueEntry): Promise<number> {
    try {
      const { download: started } = await host.call('download.start', { entry: entry.id });
      downloads.value[started.id] = started;
      return started.id;
    } catch (err) {
      const id = -++refused;
      downloads.value[id] = { id, entry: entry.id, url: entry.url, file: '', status: 'failed', receivedBytes: 0, totalBytes: 0, error: errorMessage(err) };
      return id;
    }
  }

  /** The outcome arrives as download.progress (status 'cancelled', or 'completed' if it won the race). */
  async function cancel(id: number): Promise<void> {
    if (downloads.value[id]?.status !== 'running') return;
    try {
      await host.call('download.cancel', { id });
    } catch (err) {
      useToastStore().failure('Could not cancel the download', err);
    }
  }

  host.on('download.progress', ({ download: progress }) => {
    // Another client's downloads are theirs to show.
    if (!downloads.value[progress.id]) return;
    downloads.value[progress.id] = progress;
    if (progress.status !== 'completed') return;
    const entry = entries.value.find((e) => e.id === progress.entry);
    if (entry) entry.file = progress.file;
  });

  return { entries, problem, downloads, load, download, cancel };
});
