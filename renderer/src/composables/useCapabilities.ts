// The capabilities of the domain a Details window shows (the store keeps them per domain key, so every
// page and Add Hardware grey the same choices). Asked again when the definition's generation changes:
// a machine type or a controller changes what the engine can give.
import { computed, watch, type ComputedRef } from 'vue';
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
  watch(
    def.generation,
    (generation) => {
      // -1: the definition is not loaded yet; the first generation it loads at asks.
      if (generation >= 0 && devices.capabilitiesGeneration(def.key) !== generation) void devices.refreshCapabilities(def.key, generation);
    },
    { immediate: true },
  );
  const caps = computed(() => devices.capabilities[def.key]);
  return {
    caps,
    error: computed(() => devices.capabilityErrors[def.key]),
    cacheChoices: computed(() => caps.value?.disk.cache.map((c) => (c.value === 'default' ? { ...c, value: '' } : c))),
  };
}
