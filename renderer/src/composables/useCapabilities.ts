// The capabilities of the domain a Details window shows (asked once per window; the store keeps
// them per domain key, so every page and Add Hardware grey the same choices).
import { computed, type ComputedRef } from 'vue';
import type { CapabilityChoice, DomainCapabilities } from '@shared/capabilities';
import { useDevicesStore } from '../stores/devices';
import { useDefinition } from './useDefinition';

export function useCapabilities(): {
  caps: ComputedRef<DomainCapabilities | undefined>;
  error: ComputedRef<string | undefined>;
  /** The disk cache modes, 'default' as '' (the XML leaves <driver cache> out). */
  cacheChoices: ComputedRef<CapabilityChoice[] | undefined>;
} {
  const def = useDefinition();
  const devices = useDevicesStore();
  if (!devices.capabilities[def.key]) void devices.refreshCapabilities(def.key);
  const caps = computed(() => devices.capabilities[def.key]);
  return {
    caps,
    error: computed(() => devices.capabilityErrors[def.key]),
    cacheChoices: computed(() => caps.value?.disk.cache.map((c) => (c.value === 'default' ? { ...c, value: '' } : c))),
  };
}
