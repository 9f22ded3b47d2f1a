// How far a toolbar too narrow for its controls gives way, in steps (the toolbar says what each
// step does: labels dropped, then controls folded into its overflow menu "⋯"): the fewest steps
// that let the rest fit its width. The toolbar scrolls rather than squeezes its items (flex: none), so a
// toolbar too narrow shows as scrollWidth > clientWidth. Fitting unfolds everything and folds one
// control at a time until the rest fit; it runs in microtasks, before the browser paints, so the
// steps never show.
import { nextTick, onBeforeUnmount, onMounted, ref, type Ref } from 'vue';

export function useToolbarFold(toolbar: Ref<HTMLElement | undefined>, steps: number): Ref<number> {
  const step = ref(0);
  let fitting = false;

  async function fit(): Promise<void> {
    const el = toolbar.value;
    // An open menu of the toolbar would close if its button were refolded under it.
    if (!el || fitting || el.clientWidth === 0 || el.querySelector(':popover-open')) return;
    fitting = true;
    try {
      step.value = 0;
      await nextTick();
      while (step.value < steps && el.scrollWidth > el.clientWidth) {
        step.value++;
        await nextTick();
      }
    } finally {
      // Folding changed the toolbar's content too: that is no reason to fit again.
      changed.takeRecords();
      fitting = false;
    }
  }

  // The window's width, and the toolbar's own content (a name loading, a state's label changing).
  const resized = new ResizeObserver(() => void fit());
  const changed = new MutationObserver(() => void fit());
  onMounted(() => {
    if (!toolbar.value) return;
    resized.observe(toolbar.value);
    changed.observe(toolbar.value, { childList: true, subtree: true, characterData: true });
  });
  onBeforeUnmount(() => {
    resized.disconnect();
    changed.disconnect();
  });
  return step;
}
