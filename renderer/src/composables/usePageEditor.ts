// One Details page's edit: fields read from the next-boot definition, Apply writes them back into
// that XML and defines it with the generation the edit started from (someone else's change in
// between is a conflict, not an overwrite), Revert puts the fields back. The Details window asks
// the page on screen whether it has unapplied edits before it is left.
import { computed, inject, onBeforeUnmount, provide, ref, shallowRef, watch, type InjectionKey, type Ref } from 'vue';
import { ApiCallError } from '@shared/client';
import { editXml } from '../lib/domainXml';
import { errorMessage } from '../lib/format';
import { useDefinition } from './useDefinition';

export interface PageEditor {
  dirty: Ref<boolean>;
  applying: Ref<boolean>;
  error: Ref<string>;
  applied: Ref<boolean>;
  /** True when the edit was applied (false: refused or failed; the error says why). */
  apply(): Promise<boolean>;
  revert(): void;
}

/** The page on screen, for the unsaved-changes check of the Details window. */
export interface PageGuard {
  current: PageEditor | null;
}
const GUARD: InjectionKey<PageGuard> = Symbol('page-guard');

export function providePageGuard(): PageGuard {
  const guard: PageGuard = { current: null };
  provide(GUARD, guard);
  return guard;
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

interface Base<T> {
  value: T;
  xml: string;
  generation: number;
}

export function usePageEditor<T>(opts: {
  /** The page's fields from the definition; null when what the page shows is gone. */
  read: (doc: XMLDocument) => T | null;
  write: (doc: XMLDocument, fields: T) => void;
  /** Live work after the definition is saved (a running guest's title, its CD-ROM medium…). */
  live?: (fields: T, before: T) => Promise<void>;
  /** A custom apply instead of the XML edit (e.g. memory through setMemory on a running guest). */
  custom?: (fields: T, before: T, base: { xml: string; generation: number }) => Promise<void>;
}) {
  const def = useDefinition();
  const base = shallowRef<Base<T> | null>(null);
  const fields = ref(null) as Ref<T | null>;
  const applying = ref(false);
  const error = ref('');
  const applied = ref(false);

  const dirty = computed(() => base.value !== null && fields.value !== null && JSON.stringify(fields.value) !== JSON.stringify(base.value.value));

  function reset(): void {
    const doc = def.inactiveDoc.value;
    const value = doc ? opts.read(doc) : null;
    base.value = value === null ? null : { value, xml: def.inactiveXml.value, generation: def.generation.value };
    fields.value = value === null ? null : clone(value);
  }

  // A definition changed elsewhere flows into an untouched page; a page with edits keeps them
  // (and their starting point, so Apply reports the conflict).
  watch(def.inactiveDoc, () => {
    if (!dirty.value && !applying.value) reset();
  });
  reset();

  // A new edit hides the last outcome (the reload after Apply is not an edit).
  watch(
    fields,
    () => {
      if (!dirty.value || applying.value) return;
      applied.value = false;
      error.value = '';
    },
    { deep: true },
  );

  async function apply(): Promise<boolean> {
    const start = base.value;
    const now = fields.value;
    if (!start || !now || applying.value) return false;
    applying.value = true;
    error.value = '';
    const sent = clone(now);
    try {
      if (opts.custom) await opts.custom(sent, start.value, start);
      else {
        const xml = editXml(start.xml, (doc) => opts.write(doc, sent));
        if (xml !== start.xml) await def.define(xml, start.generation);
        await opts.live?.(sent, start.value);
      }
      await def.load();
      reset();
      applied.value = true;
      return true;
    } catch (err) {
      if (err instanceof ApiCallError && err.code === 'DEFINITION_CHANGED') {
        error.value = 'The definition was changed elsewhere after this page was loaded, so nothing was applied. Revert to see the current values.';
      } else error.value = errorMessage(err);
      return false;
    } finally {
      applying.value = false;
    }
  }

  function revert(): void {
    // Revert also picks up a definition changed meanwhile.
    reset();
    error.value = '';
    def.conflict.value = false;
  }

  const editor: PageEditor = { dirty, applying, error, applied, apply, revert };
  const guard = inject(GUARD, null);
  if (guard) {
    guard.current = editor;
    onBeforeUnmount(() => {
      if (guard.current === editor) guard.current = null;
    });
  }
  return { fields, editor, def };
}
