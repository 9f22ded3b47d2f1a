// A domain's devices as the engine offers them: its capabilities (virsh domcapabilities, kept per
// domain key so every form greys the same choices with the same reasons), the host's USB devices,
// and the device edits from libvirt device XML (attach-device, detach-device, update-device,
// domblkinfo, blockresize). Edits report errors to the caller, which shows them where it asked.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { Result } from '@shared/api';
import type { DomainCapabilities, HostUsbDevice } from '@shared/capabilities';
import { parseDomainKey, type DomainKey } from '../lib/connections';
import { hostConnection } from './api';
import { useDomainsStore } from './domains';

type DeviceEdit = 'domain.attachDevice' | 'domain.detachDevice' | 'domain.updateDevice';

export const useDevicesStore = defineStore('devices', () => {
  const host = hostConnection();
  const domains = useDomainsStore();
  const capabilities = ref<Record<DomainKey, DomainCapabilities>>({});
  const capabilityErrors = ref<Record<DomainKey, string>>({});
  /** Per domain: the definition generation the last ask was for, and how many asks
   * there were, so that an older answer arriving late does not replace a newer one. */
  const askedFor = new Map<DomainKey, { generation: number; asks: number }>();

  /** The generation capabilities were last asked for; undefined: never. */
  const capabilitiesGeneration = (key: DomainKey): number | undefined => askedFor.get(key)?.generation;

  /** Asks the host again (the definition is at `generation`); the answer, or why there is none, is kept under the domain's key. */
  async function refreshCapabilities(key: DomainKey, generation: number): Promise<void> {
    const { connection, uuid } = parseDomainKey(key);
    const ask = { generation, asks: (askedFor.get(key)?.asks ?? 0) + 1 };
    askedFor.set(key, ask);
    const latest = (): boolean => askedFor.get(key)?.asks === ask.asks;
    try {
      const { capabilities: caps } = await host.call('domain.capabilities', { domain: uuid }, { connection });
      if (!latest()) return;
      capabilities.value[key] = caps;
      delete capabilityErrors.value[key];
    } catch (err) {
      if (latest()) capabilityErrors.value[key] = err instanceof Error ? err.message : String(err);
    }
  }

  async function edit(method: DeviceEdit, key: DomainKey, xml: string, where: { live: boolean; config: boolean }): Promise<void> {
    const { connection, uuid } = parseDomainKey(key);
    const { domain } = await host.call(method, { domain: uuid, xml, ...where }, { connection });
    domains.upsert(domain, connection);
  }

  const attach = (key: DomainKey, xml: string, where: { live: boolean; config: boolean }): Promise<void> => edit('domain.attachDevice', key, xml, where);
  const detach = (key: DomainKey, xml: string, where: { live: boolean; config: boolean }): Promise<void> => edit('domain.detachDevice', key, xml, where);
  const update = (key: DomainKey, xml: string, where: { live: boolean; config: boolean }): Promise<void> => edit('domain.updateDevice', key, xml, where);

  function blockInfo(key: DomainKey, target: string): Promise<Result<'domain.blockInfo'>> {
    const { connection, uuid } = parseDomainKey(key);
    return host.call('domain.blockInfo', { domain: uuid, target }, { connection });
  }

  async function blockResize(key: DomainKey, target: string, sizeBytes: number): Promise<number> {
    const { connection, uuid } = parseDomainKey(key);
    const { domain, capacity } = await host.call('domain.blockResize', { domain: uuid, target, sizeBytes }, { connection });
    domains.upsert(domain, connection);
    return capacity;
  }

  /** The USB devices of the host the domain is on. */
  async function usbDevices(key: DomainKey): Promise<HostUsbDevice[]> {
    const { connection } = parseDomainKey(key);
    return (await host.call('host.usbDevices', {}, { connection })).devices;
  }

  return { capabilities, capabilityErrors, capabilitiesGeneration, refreshCapabilities, attach, detach, update, blockInfo, blockResize, usbDevices };
});
