// Which screen is showing and what is selected. The console is a route in the address hash
// (#/console/<domain key>) so reloading the page or going back behaves as a person expects. A console in
// its own window is the same app on #/console/<domain key>/window: that page shows only the console.
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { DomainKey } from '../lib/connections';

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
  /** The selected domain, of this computer or of a libvirt connection. */
  const selectedKey = ref<DomainKey | null>(null);
  /** The connection row selected in the manager's tree instead of a domain ('' is this computer). */
  const selectedConnection = ref<string | null>(null);
  const consoleUuid = ref<string | null>(consoleFromHash(location.hash));
  /** This page is a console window: it never shows the manager, and closing the console closes it. */
  const consoleWindow = CONSOLE_ROUTE.exec(location.hash)?.[2] !== undefined;
  const newVmOpen = ref(false);
  /** The domain waiting for the user to confirm its deletion. */
  const confirmDeleteKey = ref<DomainKey | null>(null);
  /** The domain whose Dump Memory dialog is open. */
  const dumpKey = ref<DomainKey | null>(null);
  /** The domain whose Clone dialog is open. */
  const cloneKey = ref<DomainKey | null>(null);
  /**
   * Force Off asked first; with the host's reason, an offer for a guest that cannot be asked to shut down.
   */
  const forceOffOffer = ref<{ key: DomainKey; reason?: string } | null>(null);
  const addConnectionOpen = ref(false);
  /** The libvirt connection waiting for the user to confirm its removal. */
  const confirmRemoveConnection = ref<string | null>(null);
  /** The connection whose Connection Details window is open ('' is this computer). */
  const connectionDetails = ref<string | null>(null);
  const detailsShown = ref(false);
  /**
   * Set by an open Details window with unapplied edits: asks the person first, runs `then` once
   * they applied or discarded them, and returns false meanwhile; true means leave now.
   */
  let detailsGuard: ((then: () => void) => boolean) | null = null;
  function guardDetails(guard: ((then: () => void) => boolean) | null): void {
    detailsGuard = guard;
  }
  function leaveDetails(then: () => void): void {
    if (!detailsShown.value || !detailsGuard || detailsGuard(then)) then();
  }
  /** Details of the selected domain: a panel beside the manager's list, or the console window's Details view. */
  const detailsOpen = computed({
    get: () => detailsShown.value,
    set: (open: boolean) => {
      if (open) detailsShown.value = true;
      else leaveDetails(() => (detailsShown.value = false));
    },
  });
  /** The trace drawer at the bottom of the window. */
  const traceOpen = ref(false);
  const preferencesOpen = ref(false);

  window.addEventListener('hashchange', () => {
    consoleUuid.value = consoleFromHash(location.hash);
    if (consoleUuid.value) selectedKey.value = consoleUuid.value;
  });
  if (consoleUuid.value) selectedKey.value = consoleUuid.value;

  function select(key: DomainKey | null): void {
    if (key === selectedKey.value && selectedConnection.value === null) return;
    leaveDetails(() => {
      selectedKey.value = key;
      selectedConnection.value = null;
    });
  }

  function selectConnection(uri: string): void {
    if (uri === selectedConnection.value && selectedKey.value === null) return;
    leaveDetails(() => {
      selectedKey.value = null;
      selectedConnection.value = uri;
    });
  }

  /** The console of a domain of this computer or of a libvirt connection, by its key (its Console view, not Details). */
  function openConsole(key: DomainKey): void {
    leaveDetails(() => {
      detailsShown.value = false;
      selectedKey.value = key;
      selectedConnection.value = null;
      consoleUuid.value = key;
      location.hash = `#/console/${encodeURIComponent(key)}`;
    });
  }

  function closeConsole(): void {
    if (consoleWindow) {
      window.close();
      return;
    }
    if (consoleUuid.value === null) return;
    leaveDetails(() => {
      consoleUuid.value = null;
      location.hash = '#/';
    });
  }

  return {
    selectedKey,
    selectedConnection,
    consoleUuid,
    consoleWindow,
    newVmOpen,
    confirmDeleteKey,
    dumpKey,
    cloneKey,
    forceOffOffer,
    addConnectionOpen,
    confirmRemoveConnection,
    connectionDetails,
    detailsOpen,
    guardDetails,
    traceOpen,
    preferencesOpen,
    select,
    selectConnection,
    openConsole,
    closeConsole,
  };
});
