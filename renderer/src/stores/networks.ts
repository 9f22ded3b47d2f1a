// The virtual networks of each connection ('' is this computer, else a libvirt connection's URI):
// the Connection Details window's list, the NIC pickers of the Details window and the New VM
// wizard. Listed on demand and kept current by network.lifecycle events.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { NetworkInfo } from '@shared/api';
import { errorMessage } from '../lib/format';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

export interface NetworkListing {
  networks: NetworkInfo[];
  loaded: boolean;
  problem: string;
}

const byName = (a: NetworkInfo, b: NetworkInfo): number => a.name.localeCompare(b.name);

export const useNetworksStore = defineStore('networks', () => {
  const host = hostConnection();
  const toasts = useToastStore();
  const listings = ref<Record<string, NetworkListing>>({});
  const pending = new Map<string, Promise<void>>();
  const opts = (connection: string) => ({ connection: connection || undefined });

  /** The networks of a connection as last known (empty until listed). */
  function listing(connection: string): NetworkListing {
    return listings.value[connection] ?? { networks: [], loaded: false, problem: '' };
  }

  /** Puts one network's new state into its connection's list (kept sorted by name). */
  function upsert(connection: string, network: NetworkInfo): void {
    const current = listing(connection);
    const networks = [...current.networks.filter((n) => n.uuid !== network.uuid && n.name !== network.name), network].sort(byName);
    listings.value[connection] = { ...current, networks };
  }

  function drop(connection: string, name: string): void {
    const current = listings.value[connection];
    if (current) listings.value[connection] = { ...current, networks: current.networks.filter((n) => n.name !== name) };
  }

  function onLifecycle(connection: string, network: NetworkInfo, event: 'defined' | 'undefined' | 'started' | 'stopped'): void {
    // Undefined while running, a network goes on as transient; stopped and transient, it is gone.
    if ((event === 'undefined' && !network.active) || (event === 'stopped' && !network.persistent)) drop(connection, network.name);
    else upsert(connection, network);
  }
  host.on('network.lifecycle', ({ network, event }) => onLifecycle('', network, event));
  host.onRemote('network.lifecycle', ({ network, event }, connection) => onLifecycle(connection, network, event));

  /** Lists the connection's networks again; callers at the same time share one request. */
  function refresh(connection: string): Promise<void> {
    const running = pending.get(connection);
    if (running) return running;
    const done = (async () => {
      try {
        const { networks } = await host.call('network.list', {}, opts(connection));
        listings.value[connection] = { networks: [...networks].sort(byName), loaded: true, problem: '' };
      } catch (err) {
        listings.value[connection] = { ...listing(connection), loaded: true, problem: errorMessage(err) };
      } finally {
        pending.delete(connection);
      }
    })();
    pending.set(connection, done);
    return done;
  }

  function warn(warnings: string[] | undefined): void {
    for (const w of warnings ?? []) toasts.push('info', 'Virtual network', w);
  }

  /** virsh net-define; the network as the host now has it. */
  async function define(connection: string, xml: string): Promise<NetworkInfo> {
    const { network, warnings } = await host.call('network.define', { xml }, opts(connection));
    upsert(connection, network);
    warn(warnings);
    return network;
  }

  async function start(connection: string, name: string): Promise<void> {
    upsert(connection, (await host.call('network.start', { network: name }, opts(connection))).network);
  }

  async function stop(connection: string, name: string): Promise<void> {
    const { network } = await host.call('network.destroy', { network: name }, opts(connection));
    if (network.persistent) upsert(connection, network);
    else drop(connection, name);
  }

  /** virsh net-undefine; a network still running is stopped first, as virt-manager's Delete does. */
  async function remove(connection: string, name: string): Promise<void> {
    if (listing(connection).networks.find((n) => n.name === name)?.active) await stop(connection, name);
    await host.call('network.undefine', { network: name }, opts(connection));
    drop(connection, name);
  }

  async function setAutostart(connection: string, name: string, enabled: boolean): Promise<void> {
    upsert(connection, (await host.call('network.setAutostart', { network: name, enabled }, opts(connection))).network);
  }

  /** The persistent definition (what Apply in the XML tab replaces). */
  async function xml(connection: string, name: string): Promise<string> {
    return (await host.call('network.xml', { network: name, inactive: true }, opts(connection))).xml;
  }

  /** The form's network: defined, then started (a start that fails leaves it defined, as virt-manager's does). */
  async function create(connection: string, xmlText: string): Promise<NetworkInfo> {
    const network = await define(connection, xmlText);
    await start(connection, network.name);
    return listing(connection).networks.find((n) => n.name === network.name) ?? network;
  }

  return { listings, listing, refresh, define, start, stop, remove, setAutostart, xml, create };
});
