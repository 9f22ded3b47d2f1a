import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { BrowseListing, ConnectionInfo, HostStatus, ImageInspection, Params, SampleGuest } from '@shared/api';
import type { ConnectionState } from '../api/connection';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

export const useHostStore = defineStore('host', () => {
  const host = hostConnection();
  const connection = ref<ConnectionState>(host.state);
  const problem = ref('');
  const status = ref<HostStatus | null>(null);
  const samples = ref<SampleGuest[]>([]);
  /** Why sample guests are unavailable (e.g. "run `npm run guests`"), as the host words it. */
  const samplesMissing = ref<string | undefined>();
  const samplesLoaded = ref(false);

  async function refresh(): Promise<void> {
    try {
      const [st, sm] = await Promise.all([host.call('host.status', {}), host.call('host.samples', {})]);
      status.value = st;
      samples.value = sm.samples;
      samplesMissing.value = sm.missing;
      samplesLoaded.value = true;
    } catch (err) {
      // A dropped connection is already on the banner; anything else deserves a message.
      if (host.state === 'connected') useToastStore().failure('Could not read the host status', err);
    }
  }

  /** The engines' connections and whether each is available here. */
  async function connections(): Promise<ConnectionInfo[]> {
    return (await host.call('host.connections', {})).connections;
  }

  /** A folder on the host, listed for the file chooser (the page cannot read the host's disks). */
  function browse(params: Params<'host.browse'>): Promise<BrowseListing> {
    return host.call('host.browse', params);
  }

  /** What an image holds (architecture, kernels, bootloader entries), as the host reads it. */
  function inspectImage(path: string): Promise<ImageInspection> {
    return host.call('host.inspectImage', { path });
  }

  host.onState((state) => {
    connection.value = state;
    problem.value = host.problem;
    if (state === 'connected') void refresh();
  });
  if (host.state === 'connected') void refresh();

  return { connection, problem, status, samples, samplesMissing, samplesLoaded, refresh, connections, browse, inspectImage };
});
