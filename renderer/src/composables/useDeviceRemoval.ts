// Remove device… on a Details page: after asking, the device the definition has goes from the next
// boot on (virsh detach-device --config with the device's own XML); the page then gives way.
import { computed, ref } from 'vue';
import { deviceXmlOf } from '../lib/deviceXml';
import { isActive } from '../lib/domainState';
import { errorMessage } from '../lib/format';
import { useDevicesStore } from '../stores/devices';
import { useDefinition } from './useDefinition';

export function useDeviceRemoval(element: () => Element | undefined, what: () => string, removed: () => void) {
  const def = useDefinition();
  const devices = useDevicesStore();
  const busy = ref(false);
  const error = ref('');
  const running = computed(() => !!def.domain.value && isActive(def.domain.value.state));

  async function remove(): Promise<void> {
    const d = def.domain.value;
    const el = element();
    if (!d || !el || !window.confirm(`Remove the ${what()} from “${d.name}”${running.value ? ' at its next boot' : ''}?`)) return;
    busy.value = true;
    error.value = '';
    try {
      await devices.detach(def.key, deviceXmlOf(el), { live: false, config: true });
      removed();
    } catch (err) {
      error.value = errorMessage(err);
    } finally {
      busy.value = false;
    }
  }
  return { busy, error, remove };
}
