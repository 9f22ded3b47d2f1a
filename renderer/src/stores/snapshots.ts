// A domain's snapshots for its Details page (virt-manager's Snapshots tab): the tree in display
// order, the thumbnails, and Take / Revert / Delete with their pending state and errors. Kept
// fresh by snapshot.changed (another window, the CLI). This computer's domains only.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { SnapshotInfo } from '@shared/api';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

export interface SnapshotRow {
  snapshot: SnapshotInfo;
  /** Nesting in the tree (0 for a root). */
  depth: number;
}

/** The snapshots as a tree, parents before their children, each level oldest first. */
export function snapshotRows(snapshots: readonly SnapshotInfo[]): SnapshotRow[] {
  const rows: SnapshotRow[] = [];
  const byTime = [...snapshots].sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name));
  const walk = (parent: string | undefined, depth: number): void => {
    for (const s of byTime) {
      const isRoot = parent === undefined && (!s.parent || !snapshots.some((o) => o.name === s.parent));
      if (isRoot || (parent !== undefined && s.parent === parent)) {
        rows.push({ snapshot: s, depth });
        walk(s.name, depth + 1);
      }
    }
  };
  walk(undefined, 0);
  return rows;
}

export const useSnapshotsStore = defineStore('snapshots', () => {
  const host = hostConnection();
  /** By domain UUID: its snapshots, once loaded. */
  const byDomain = ref<Record<string, SnapshotInfo[]>>({});
  /** "uuid/name" → a data: URL of the snapshot's screen. */
  const thumbnails = ref<Record<string, string>>({});
  /** What a domain's page is doing now. */
  const busy = ref<Record<string, 'take' | 'revert' | 'delete'>>({});
  const loadError = ref<Record<string, string>>({});
  /** Why a domain's snapshots cannot be taken or reverted to (its engine, a disk's format). */
  const unavailable = ref<Record<string, string>>({});

  async function load(uuid: string): Promise<void> {
    try {
      const r = await host.call('snapshot.list', { domain: uuid });
      byDomain.value[uuid] = r.snapshots;
      if (r.unavailable) unavailable.value[uuid] = r.unavailable;
      else delete unavailable.value[uuid];
      delete loadError.value[uuid];
    } catch (err) {
      loadError.value[uuid] = (err as Error).message;
    }
  }

  async function thumbnail(uuid: string, name: string): Promise<void> {
    const key = `${uuid}/${name}`;
    if (thumbnails.value[key]) return;
    const { png } = await host.call('snapshot.thumbnail', { domain: uuid, snapshot: name }).catch(() => ({ png: undefined }));
    if (png) thumbnails.value[key] = `data:image/png;base64,${png}`;
  }

  /** Runs one action of the page; a refusal becomes a toast naming the domain. Returns whether it worked. */
  async function act(uuid: string, kind: 'take' | 'revert' | 'delete', what: string, run: () => Promise<unknown>): Promise<boolean> {
    busy.value[uuid] = kind;
    try {
      await run();
      return true;
    } catch (err) {
      useToastStore().push('error', `Could not ${what}`, (err as Error).message);
      return false;
    } finally {
      delete busy.value[uuid];
      await load(uuid);
    }
  }

  const take = (uuid: string, name: string | undefined, description: string | undefined) =>
    act(uuid, 'take', 'take the snapshot', () => host.call('snapshot.create', { domain: uuid, ...(name && { name }), ...(description && { description }) }));
  const revert = (uuid: string, name: string) => act(uuid, 'revert', `revert to “${name}”`, () => host.call('snapshot.revert', { domain: uuid, snapshot: name }));
  const remove = (uuid: string, name: string) => act(uuid, 'delete', `delete “${name}”`, () => host.call('snapshot.delete', { domain: uuid, snapshot: name }));

  host.on('snapshot.changed', (e) => {
    if (e.event === 'deleted') delete thumbnails.value[`${e.uuid}/${e.snapshot}`];
    if (byDomain.value[e.uuid] && !busy.value[e.uuid]) void load(e.uuid);
  });

  return { byDomain, thumbnails, busy, loadError, unavailable, load, thumbnail, take, revert, remove };
});
