// A domain's definition and its devices: the XML the Details window reads, and every edit of it
// (a define from the generation the edit started at, disks and CD-ROM media, memory, title and
// description). Edits report errors to the caller, which shows them next to what was edited; the
// summaries they answer with are applied at once, ahead of their events. The XML is read and
// defined on the domain's connection; the device edits are this computer's.
import { defineStore } from 'pinia';
import type { DomainInterface, Params, Result } from '@shared/api';
import { parseDomainKey, type DomainKey } from '../lib/connections';
import { hostConnection } from './api';
import { useDomainsStore } from './domains';

export const useDefinitionsStore = defineStore('definitions', () => {
  const host = hostConnection();
  const domains = useDomainsStore();

  /**
   * The next-boot definition (`inactive`) or the running one, with its generation. Secure: the
   * Details window saves this XML back, and a password left out would be dropped.
   */
  function xml(key: DomainKey, which: 'inactive' | 'live'): Promise<Result<'domain.xml'>> {
    const { connection, uuid } = parseDomainKey(key);
    return host.call('domain.xml', { domain: uuid, inactive: which === 'inactive', secure: true }, { connection });
  }

  /**
   * Refused with DEFINITION_CHANGED when the definition is no longer at `expectGeneration`.
   * `connection`: the libvirt connection to define it on; absent: this computer.
   */
  async function define(xml: string, expectGeneration: number, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.define', { xml, expectGeneration }, { connection });
    domains.upsert(domain, connection);
  }

  /** virsh attach-disk on the domain's connection; answers the target device the disk got. */
  async function attachDisk(params: Params<'domain.attachDisk'>, connection?: string): Promise<string> {
    const { domain, target } = await host.call('domain.attachDisk', params, { connection });
    domains.upsert(domain, connection);
    return target;
  }

  async function detachDisk(params: Params<'domain.detachDisk'>, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.detachDisk', params, { connection });
    domains.upsert(domain, connection);
  }

  async function changeMedia(params: Params<'domain.changeMedia'>, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.changeMedia', params, { connection });
    domains.upsert(domain, connection);
  }

  /** virsh setmem on the domain's connection (`connection`; absent: this computer). */
  async function setMemory(params: Params<'domain.setMemory'>, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.setMemory', params, { connection });
    domains.upsert(domain, connection);
  }

  async function setMaxMemory(params: Params<'domain.setMaxMemory'>, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.setMaxMemory', params, { connection });
    domains.upsert(domain, connection);
  }

  /** virsh desc: title and description, live and/or in the definition. */
  async function setMetadata(params: Params<'domain.setMetadata'>, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.setMetadata', params, { connection });
    domains.upsert(domain, connection);
  }

  /** virsh domiflist: the running guest's interfaces (link state as the switch has it), or the definition's. */
  async function interfaces(key: DomainKey, inactive: boolean): Promise<DomainInterface[]> {
    const { connection, uuid } = parseDomainKey(key);
    return (await host.call('domain.interfaces', { domain: uuid, inactive }, { connection })).interfaces;
  }

  /** virsh domifaddr: the addresses the guest's networks leased to its interfaces. */
  async function interfaceAddresses(key: DomainKey): Promise<Result<'domain.interfaceAddresses'>['interfaces']> {
    const { connection, uuid } = parseDomainKey(key);
    return (await host.call('domain.interfaceAddresses', { domain: uuid }, { connection })).interfaces;
  }

  /** virsh domif-setlink. */
  async function setLinkState(params: Params<'domain.setLinkState'>, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.setLinkState', params, { connection });
    domains.upsert(domain, connection);
  }

  /** virsh attach-interface; answers the MAC address the NIC got. */
  async function attachInterface(params: Params<'domain.attachInterface'>, connection?: string): Promise<string> {
    const { domain, mac } = await host.call('domain.attachInterface', params, { connection });
    domains.upsert(domain, connection);
    return mac;
  }

  /** virsh detach-interface, by MAC. */
  async function detachInterface(params: Params<'domain.detachInterface'>, connection?: string): Promise<void> {
    const { domain } = await host.call('domain.detachInterface', params, { connection });
    domains.upsert(domain, connection);
  }

  return { xml, define, attachDisk, detachDisk, changeMedia, setMemory, setMaxMemory, setMetadata, interfaces, interfaceAddresses, setLinkState, attachInterface, detachInterface };
});
