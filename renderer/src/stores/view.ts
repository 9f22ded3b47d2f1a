// Which screen is showing and what is selected. The console is a route in the address hash
// (#/console/<uuid>) so reloading the page or going back behaves as a person expects. A console in
// its own window is the same app on #/console/<uuid>/window: that page shows only the console.
import { defineStore } from 'pinia';
import { ref } from 'vue';

const CONSOLE_ROUTE = /^#\/console\/([^/]+)(\/window)?$/;

function consoleFromHash(hash: string): string | null {
  const match = CONSOLE_ROUTE.exec(hash);
  return match ? decodeURIComponent(match[1]) : null;
}

/** The address of a domain's console in a window of its own. */
export function consoleWindowUrl(uuid: string): string {
  return `${location.pathname}${location.search}#/console/${encodeURIComponent(uuid)}/window`;
}

export const useViewStore = defineStore('view', () => {
  const selectedUuid = ref<string | null>(null);
  const consoleUuid = ref<string | null>(consoleFromHash(location.hash));
  /** This page is a console window: it never shows the manager, and closing the console closes it. */
  const consoleWindow = CONSOLE_ROUTE.exec(location.hash)?.[2] !== undefined;
  const newVmOpen = ref(false);
  /** The domain waiting for the user to confirm its deletion. */
  const confirmDeleteUuid = ref<string | null>(null);
  /** The Details side panel (selected domain) beside the list or the console. */
  const detailsOpen = ref(false);
  /** The trace drawer at the bottom of the window. */
  const traceOpen = ref(false);

  window.addEventListener('hashchange', () => {
    consoleUuid.value = consoleFromHash(location.hash);
    if (consoleUuid.value) selectedUuid.value = consoleUuid.value;
  });
  if (consoleUuid.value) selectedUuid.value = consoleUuid.value;

  function select(uuid: string | null): void {
    selectedUuid.value = uuid;
  }

  function openConsole(uuid: string): void {
    selectedUuid.value = uuid;
    consoleUuid.value = uuid;
    location.hash = `#/console/${encodeURIComponent(uuid)}`;
  }

  function closeConsole(): void {
    if (consoleWindow) {
      window.close();
      return;
    }
    if (consoleUuid.value === null) return;
    consoleUuid.value = null;
    location.hash = '#/';
  }

  return {
    selectedUuid,
    consoleUuid,
    consoleWindow,
    newVmOpen,
    confirmDeleteUuid,
    detailsOpen,
    traceOpen,
    select,
    openConsole,
    closeConsole,
  };
});
