// The title/description editor of the Details panel (virsh desc). Edits are checked against the
// definition they started from: Apply sends the generation read with them, and a host that has a
// newer definition (changed by another window or the CLI) answers 'conflict' instead of
// overwriting that change.
import { computed, reactive, ref, watch, type Ref } from 'vue';
import type { DomainSummary, Params } from '@shared/api';
import { ApiCallError } from '@shared/client';
import { host } from '../api';
import { isActive } from '../lib/domainState';
import { errorMessage } from '../lib/format';
import { useDomainsStore } from '../stores/domains';

interface Snapshot {
  title: string;
  description: string;
  generation: number;
}

export function useMetadataEditor(uuid: string, domain: Ref<DomainSummary | undefined>) {
  const domains = useDomainsStore();

  /** What the host had when the fields were last loaded or applied. */
  const base = ref<Snapshot | null>(null);
  const fields = reactive({ title: '', description: '' });
  /** Where Apply writes: the running guest, the definition used at next boot, or both. */
  const scope = reactive({ live: false, config: false });
  /** Once the person picks a scope, a state change no longer resets it to the default. */
  const scopeChosen = ref(false);
  const loading = ref(false);
  const loadError = ref('');
  const applying = ref(false);
  const applyError = ref('');
  const conflict = ref(false);
  /** Shown after a successful Apply until the next edit. */
  const applied = ref(false);

  const dirty = computed(
    () => base.value !== null && (fields.title !== base.value.title || fields.description !== base.value.description),
  );
  /** Live needs a running guest; config needs a definition (a transient domain has none). */
  const canLive = computed(() => !!domain.value && isActive(domain.value.state));
  const canConfig = computed(() => !!domain.value && domain.value.persistent);
  const canApply = computed(
    () =>
      dirty.value &&
      !applying.value &&
      !conflict.value &&
      ((scope.live && canLive.value) || (scope.config && canConfig.value)),
  );

  /** virt-manager's default: change the running guest and keep it; only the definition when off. */
  function defaultScope(): void {
    scope.live = canLive.value;
    scope.config = canConfig.value;
  }

  async function load(): Promise<void> {
    loading.value = true;
    loadError.value = '';
    try {
      const info = await host.call('domain.info', { domain: uuid });
      base.value = {
        title: info.config.title ?? '',
        description: info.config.description ?? '',
        generation: info.generation,
      };
      fields.title = base.value.title;
      fields.description = base.value.description;
      conflict.value = false;
      applyError.value = '';
      applied.value = false;
    } catch (err) {
      loadError.value = errorMessage(err);
    } finally {
      loading.value = false;
    }
  }

  async function apply(): Promise<void> {
    const start = base.value;
    if (!start || !canApply.value) return;
    applying.value = true;
    applyError.value = '';
    const sent = { title: fields.title, description: fields.description };
    const params: Params<'domain.setMetadata'> = {
      domain: uuid,
      live: scope.live && canLive.value,
      config: scope.config && canConfig.value,
      expectGeneration: start.generation,
    };
    // Only what changed, so an untouched field is not rewritten in a scope it did not come from.
    if (sent.title !== start.title) params.title = sent.title;
    if (sent.description !== start.description) params.description = sent.description;
    try {
      const { generation } = await domains.setMetadata(params);
      base.value = { ...sent, generation };
      applied.value = fields.title === sent.title && fields.description === sent.description;
    } catch (err) {
      if (err instanceof ApiCallError && err.code === 'conflict') conflict.value = true;
      else applyError.value = errorMessage(err);
    } finally {
      applying.value = false;
    }
  }

  function revert(): void {
    if (!base.value) return;
    fields.title = base.value.title;
    fields.description = base.value.description;
    applyError.value = '';
  }

  /**
   * This window changed something else (autostart, on-stop policy) that bumped the generation.
   * If nobody else had changed the definition, the open edits still start from current data.
   */
  function ownChange(before: number, after: number): void {
    if (base.value && base.value.generation === before) base.value.generation = after;
  }

  watch(fields, () => {
    applied.value = false;
    applyError.value = '';
  });

  // Changes made elsewhere flow into an untouched form; a form with edits keeps them, and Apply
  // then reports the conflict.
  watch(
    () => domain.value?.generation,
    (generation) => {
      if (generation === undefined || !base.value || dirty.value || applying.value || loading.value) return;
      if (generation !== base.value.generation) void load();
    },
  );

  watch([canLive, canConfig], () => {
    if (!scopeChosen.value) defaultScope();
  });

  defaultScope();
  void load();

  return {
    fields,
    scope,
    scopeChosen,
    loading,
    loadError,
    applying,
    applyError,
    conflict,
    applied,
    dirty,
    canLive,
    canConfig,
    canApply,
    load,
    apply,
    revert,
    ownChange,
  };
}
