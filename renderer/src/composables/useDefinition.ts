// The definition a Details window edits: the persistent (next-boot) XML with its generation, and
// while the domain runs, the live XML. Reloaded when the host reports a new generation or a state
// change; the pages read their fields from `inactiveDoc` and write through `define`.
import { computed, inject, provide, ref, shallowRef, watch, type InjectionKey, type Ref } from 'vue';
import type { DomainSummary } from '@shared/api';
import { ApiCallError } from '@shared/client';
import { parseDomainKey, type DomainKey } from '../lib/connections';
import { isActive } from '../lib/domainState';
import { parseDomainXml } from '../lib/domainXml';
import { errorMessage } from '../lib/format';
import { useDefinitionsStore } from '../stores/definitions';
import { useDomainsStore } from '../stores/domains';

export interface Definition {
  key: DomainKey;
  uuid: string;
  /** The libvirt connection the domain is on; undefined: this computer. */
  connection: string | undefined;
  domain: Ref<DomainSummary | undefined>;
  /** The next-boot XML as the host wrote it, and the generation it had. */
  inactiveXml: Ref<string>;
  generation: Ref<number>;
  /** The running definition ('' while shut off). */
  liveXml: Ref<string>;
  inactiveDoc: Ref<XMLDocument | null>;
  loading: Ref<boolean>;
  loadError: Ref<string>;
  /** Set when a define was refused because someone else changed the definition meanwhile. */
  conflict: Ref<boolean>;
  load(): Promise<void>;
  /** Defines `xml` if the host's definition is still at `expectGeneration`; reloads after. */
  define(xml: string, expectGeneration: number): Promise<void>;
}

const KEY: InjectionKey<Definition> = Symbol('definition');

export function provideDefinition(key: DomainKey): Definition {
  const domains = useDomainsStore();
  const definitions = useDefinitionsStore();
  const { connection, uuid } = parseDomainKey(key);
  const domain = computed(() => domains.get(key));
  const inactiveXml = ref('');
  const generation = ref(-1);
  const liveXml = ref('');
  const inactiveDoc = shallowRef<XMLDocument | null>(null);
  const loading = ref(false);
  const loadError = ref('');
  const conflict = ref(false);
  let loads = 0;

  async function load(): Promise<void> {
    const mine = ++loads;
    loading.value = true;
    try {
      const active = domain.value ? isActive(domain.value.state) : false;
      const [inactive, live] = await Promise.all([definitions.xml(key, 'inactive'), active ? definitions.xml(key, 'live') : Promise.resolve(null)]);
      if (mine !== loads) return;
      inactiveXml.value = inactive.xml;
      generation.value = inactive.generation;
      liveXml.value = live?.xml ?? '';
      inactiveDoc.value = parseDomainXml(inactive.xml);
      loadError.value = '';
      conflict.value = false;
    } catch (err) {
      if (mine === loads) loadError.value = errorMessage(err);
    } finally {
      if (mine === loads) loading.value = false;
    }
  }

  async function define(xml: string, expectGeneration: number): Promise<void> {
    try {
      await definitions.define(xml, expectGeneration, connection);
    } catch (err) {
      if (err instanceof ApiCallError && err.code === 'DEFINITION_CHANGED') conflict.value = true;
      throw err;
    }
    await load();
  }

  // The host bumps the generation on every change of the definition (this window's or another's)
  // and the live XML changes with the state.
  watch(
    () => domain.value && `${domain.value.generation}:${domain.value.state}`,
    (now) => {
      if (now !== undefined) void load();
    },
  );

  const def: Definition = { key, uuid, connection, domain, inactiveXml, generation, liveXml, inactiveDoc, loading, loadError, conflict, load, define };
  provide(KEY, def);
  void load();
  return def;
}

export function useDefinition(): Definition {
  const def = inject(KEY);
  if (!def) throw new Error('useDefinition() outside a Details window');
  return def;
}
