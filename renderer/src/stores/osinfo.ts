// OS detection and the OS list (osinfo-db, read by the host): for the New VM wizard's presets and
// the Memory page's floor.
import { defineStore } from 'pinia';
import type { OsinfoDetection, OsinfoEntry, Results } from '@shared/api';
import { hostConnection } from './api';

export const useOsinfoStore = defineStore('osinfo', () => {
  const host = hostConnection();
  /** Entries looked up by id, kept: an OS's figures do not change while the app runs. */
  const byId = new Map<string, OsinfoEntry | null>();

  function detect(path: string): Promise<OsinfoDetection> {
    return host.call('osinfo.detect', { path });
  }

  function list(query: string, limit = 50): Promise<Results['osinfo.list']> {
    return host.call('osinfo.list', { query, limit });
  }

  /** The entry with exactly this id, or undefined when osinfo-db does not have it (or is absent). */
  async function lookup(id: string): Promise<OsinfoEntry | undefined> {
    if (!byId.has(id)) {
      const { oses } = await list(id, 1);
      byId.set(id, oses.find((o) => o.id === id) ?? null);
    }
    return byId.get(id) ?? undefined;
  }

  return { detect, list, lookup };
});
