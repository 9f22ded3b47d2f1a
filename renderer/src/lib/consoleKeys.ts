// Keys for the console: the Send Key menu's combinations (virt-manager's list) in libvirt's
// 'linux' codeset, and the shortcuts that stay with Domus while the guest has the keyboard.

export interface KeyCombo {
  id: string;
  label: string;
  /** Pressed in order, released together (virsh send-key). */
  keys: string[];
}

const FUNCTION_KEYS: KeyCombo[] = Array.from({ length: 12 }, (_, i) => ({
  id: `ctrl-alt-f${i + 1}`,
  label: `Ctrl+Alt+F${i + 1}`,
  keys: ['KEY_LEFTCTRL', 'KEY_LEFTALT', `KEY_F${i + 1}`],
}));

export const SEND_KEY_COMBOS: KeyCombo[] = [
  { id: 'ctrl-alt-del', label: 'Ctrl+Alt+Delete', keys: ['KEY_LEFTCTRL', 'KEY_LEFTALT', 'KEY_DELETE'] },
  { id: 'ctrl-alt-backspace', label: 'Ctrl+Alt+Backspace', keys: ['KEY_LEFTCTRL', 'KEY_LEFTALT', 'KEY_BACKSPACE'] },
  ...FUNCTION_KEYS,
  // The PC keyboard's Print Screen key is KEY_SYSRQ in Linux's numbering.
  { id: 'printscreen', label: 'Print Screen', keys: ['KEY_SYSRQ'] },
];

/**
 * Domus's own shortcuts (Ctrl+Shift+Q quit, Ctrl+Shift+N new window): never sent to the guest,
 * so they work while it has the keyboard. Plain Ctrl+Q, Ctrl+N… go to the guest.
 */
export function isDomusShortcut(ev: KeyboardEvent): boolean {
  return ev.ctrlKey && ev.shiftKey && !ev.altKey && (ev.code === 'KeyQ' || ev.code === 'KeyN');
}

/** The release combination of a keyboard grab, as in virt-manager: Ctrl and Alt held together. */
export function isGrabRelease(ev: KeyboardEvent): boolean {
  return (
    ev.ctrlKey &&
    ev.altKey &&
    (ev.key === 'Control' || ev.key === 'Alt' || ev.code.startsWith('Control') || ev.code.startsWith('Alt'))
  );
}
