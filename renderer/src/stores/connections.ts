// The libvirt hosts the person added (virt-manager's connections), kept live from connection.state
// events after one connection.list. This computer's own engines are not among them: they are the
// Domus host's, always there. Connecting, disconnecting and removing are actions with a pending
// mark and a toast on failure; adding reports to the dialog that asked.
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { ConnectionState } from '@shared/api';
import { connectionLabel } from '../lib/connections';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

export type ConnectionAction = 'open' | 'close' | 'remove';

export const useConnectionsStore = defineStore('connections', () => {
  const host = hostConnection();
  /** In the host's order, which is the order they were added in. */
  const list = ref<ConnectionState[]>([]);
  /** The action in flight per connection, so its buttons can be disabled meanwhile. */
  const pending = ref<Record<string, ConnectionAction>>({});
  const adding = ref(false);
  const loaded = ref(false);

  const byUri = computed(() => Object.fromEntries(list.value.map((c) => [c.uri, c])) as Record<string, ConnectionState>);
  /** add() calls waiting for the host to announce their connection. */
  const announced = new Map<string, () => void>();

  function apply(state: ConnectionState): void {
    const i = list.value.findIndex((c) => c.uri === state.uri);
    if (i < 0) list.value = [...list.value, state];
    else list.value[i] = state;
    announced.get(state.uri)?.();
  }

  async function load(): Promise<void> {
    try {
      list.value = (await host.call('connection.list', {})).connections;
      loaded.value = true;
    } catch (err) {
      if (host.state === 'connected') useToastStore().failure('Could not list the connections', err);
    }
  }

  /**
   * Adds a connection, and with autoconnect opens it. A refusal (a malformed URI, one already
   * there) is thrown to the dialog. The host announces the connection before it opens it, which
   * may take long (an SSH host that does not answer): from then on the connection is in the tree,
   * with its state, and the dialog's work is done. One that could not be opened is not a refusal:
   * the tree shows its error and its retry.
   */
  async function add(uri: string, autoconnect: boolean): Promise<void> {
    if (adding.value) return;
    adding.value = true;
    const known = uri in byUri.value;
    const appeared = new Promise<void>((resolve) => {
      if (!known) announced.set(uri, resolve);
    });
    const call = host.call('connection.add', { uri, autoconnect }).then(
      ({ connection }) => apply(connection),
      async (err: unknown) => {
        await load();
        if (known || !(uri in byUri.value)) throw err;
        useToastStore().failure(`Added ${connectionLabel(uri)}, but could not connect`, err);
      },
    );
    // Once the race is over, a late refusal has no dialog to go to (and cannot follow an announcement).
    call.catch(() => undefined);
    try {
      await (known ? call : Promise.race([call, appeared]));
    } finally {
      announced.delete(uri);
      adding.value = false;
    }
  }

  async function act(action: ConnectionAction, uri: string, failureTitle: string): Promise<boolean> {
    if (pending.value[uri]) return false;
    pending.value[uri] = action;
    try {
      if (action === 'remove') {
        await host.call('connection.remove', { uri });
        list.value = list.value.filter((c) => c.uri !== uri);
      } else {
        const { connection } = await host.call(action === 'open' ? 'connection.open' : 'connection.close', { uri });
        apply(connection);
      }
      return true;
    } catch (err) {
      useToastStore().failure(failureTitle, err);
      return false;
    } finally {
      delete pending.value[uri];
    }
  }

  host.on('connection.state', ({ connection }) => {
    apply(connection);
    // A connection a client opened without adding it (domus -c URI) leaves the host's list when it
    // closes, which its last state does not say: the list does.
    if (connection.state === 'disconnected') void load();
  });
  host.onState((state) => {
    if (state === 'connected') void load();
  });
  if (host.state === 'connected') void load();

  return {
    list,
    byUri,
    pending,
    adding,
    loaded,
    load,
    add,
    open: (uri: string) => act('open', uri, `Could not connect to ${connectionLabel(uri)}`),
    close: (uri: string) => act('close', uri, `Could not disconnect from ${connectionLabel(uri)}`),
    remove: (uri: string) => act('remove', uri, `Could not remove ${connectionLabel(uri)}`),
  };
});
