// How each domain's console is viewed, remembered per domain in this browser profile (as
// virt-manager keeps its per-VM console scaling in gsettings).

export type ScaleMode = 'fit' | 'actual';

const KEY = 'domus.console.scale.';

export function loadScale(uuid: string): ScaleMode {
  try {
    return localStorage.getItem(KEY + uuid) === 'actual' ? 'actual' : 'fit';
  } catch {
    return 'fit'; // Storage refused (private mode, policy): the default is fine.
  }
}

export function saveScale(uuid: string, mode: ScaleMode): void {
  try {
    localStorage.setItem(KEY + uuid, mode);
  } catch {
    // Not remembered, still applied.
  }
}
