// What a starting guest's NICs plug into: for each <interface type='network'>, the network's
// running switch and the MAC, model and link state the engine gives the NIC.
import { createHash } from 'node:crypto';
import type { DomainConfig, InterfaceConfig } from '../../../shared/domain.js';
import type { NetworkSwitches } from './switches.js';

export interface NicAttachment {
  network: string;
  mac: string;
  /** <model type>, absent when the definition names none (each engine has its default). */
  model?: string;
  /** The switch's port socket (QEMU `-netdev stream` framing). */
  socket: string;
  link: 'up' | 'down';
}

/** The interfaces engines connect: those on a virtual network. */
export function networkInterfaces(config: DomainConfig): InterfaceConfig[] {
  return config.interfaces.filter((i) => i.type === 'network' && i.source);
}

/**
 * A MAC for an interface of a definition written before Domus added MACs at define: stable for the
 * domain and the interface's position, so a guest keeps its DHCP lease across boots.
 */
function derivedMac(uuid: string, index: number): string {
  const h = createHash('sha256').update(`${uuid}/${index}`).digest();
  return `52:54:00:${[h[0]!, h[1]!, h[2]!].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

/** The NICs a domain's network interfaces become, with `socketOf` giving each network's port socket. */
export function planNics(config: DomainConfig, socketOf: (network: string) => string): NicAttachment[] {
  return networkInterfaces(config).map((iface, index) => ({
    network: iface.source!,
    mac: iface.mac ?? derivedMac(config.uuid, index),
    ...(iface.model && { model: iface.model }),
    socket: socketOf(iface.source!),
    link: iface.link ?? 'up',
  }));
}

/** Finds the switches a domain's interfaces need (their networks must be active) and sets each NIC's link state on its switch. */
export async function attachInterfaces(networks: NetworkSwitches, config: DomainConfig): Promise<NicAttachment[]> {
  const nics = planNics(config, (network) => networks.paths(network).ports);
  for (const nic of nics) {
    await networks.require(nic.network);
    // By MAC, before the NIC connects: the state then holds from its first frame.
    await networks.setLink(nic.network, nic.mac, nic.link);
  }
  return nics;
}
