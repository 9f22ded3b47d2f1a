// X11 keysyms and QEMU/XT keycodes to PC scancode set 1 (what v86's PS/2 controller hands the
// guest; Linux's atkbd expects translated set 1), for a US keyboard layout.
//
// A key is identified by its make code: 0x00–0x7f, or 0xE0xx for the extended keys (arrows, right
// Ctrl/Alt, keypad Enter/Divide, Insert/Delete/Home/End/PageUp/PageDown, Windows keys…), plus PAUSE.

/** Pause/Break: its own make sequence and no break code. */
export const PAUSE = 0xe11d45;
const PAUSE_SEQUENCE = [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5];

export const LEFT_SHIFT = 0x2a;
export const RIGHT_SHIFT = 0x36;

/** Bytes for pressing (down) or releasing one key. */
export function scancodeBytes(key: number, down: boolean): number[] {
  if (key === PAUSE) return down ? PAUSE_SEQUENCE : [];
  const code = key & 0x7f;
  const bytes = key > 0xff ? [0xe0, down ? code : code | 0x80] : [down ? code : code | 0x80];
  return bytes;
}

const LEFT_CTRL = 0x1d;
const LEFT_ALT = 0x38;
const DELETE = 0xe053;

/** Ctrl+Alt+Del pressed and released (the PC's "three-finger salute"). */
export const CTRL_ALT_DEL: readonly number[] = [
  ...scancodeBytes(LEFT_CTRL, true),
  ...scancodeBytes(LEFT_ALT, true),
  ...scancodeBytes(DELETE, true),
  ...scancodeBytes(DELETE, false),
  ...scancodeBytes(LEFT_ALT, false),
  ...scancodeBytes(LEFT_CTRL, false),
];

/**
 * QEMU Extended Key Event keycode → key. QEMU numbers keys like XT scancodes with the 0xE0 prefix
 * folded into bit 7 (noVNC's xtscancodes 0xE048 = ArrowUp is sent as 0xC8); a few clients send the
 * 0xE0xx form unfolded. 0 means "no keycode". Pause is QEMU's 0xC6 (E0 46).
 */
export function keyFromQemuKeycode(keycode: number): number | undefined {
  let key: number;
  if (keycode > 0 && keycode < 0x80) key = keycode;
  else if (keycode >= 0x80 && keycode <= 0xff) key = 0xe000 | (keycode & 0x7f);
  else if (keycode >> 8 === 0xe0) key = keycode;
  else return undefined;
  return key === 0xe046 ? PAUSE : key;
}

export interface KeysymKey {
  key: number;
  /**
   * For printable characters: whether Shift must be down on a US keyboard to produce the keysym
   * (`!` needs it, `1` must not have it). Undefined for letters (Caps Lock decides their case, so
   * the client's own Shift state is passed through) and for non-character keys.
   */
  shift?: boolean;
}

// US layout: unshifted and shifted characters of each key.
const US_ROWS: [number, string, string][] = [
  [0x29, '`', '~'],
  [0x02, '1', '!'],
  [0x03, '2', '@'],
  [0x04, '3', '#'],
  [0x05, '4', '$'],
  [0x06, '5', '%'],
  [0x07, '6', '^'],
  [0x08, '7', '&'],
  [0x09, '8', '*'],
  [0x0a, '9', '('],
  [0x0b, '0', ')'],
  [0x0c, '-', '_'],
  [0x0d, '=', '+'],
  [0x1a, '[', '{'],
  [0x1b, ']', '}'],
  [0x2b, '\\', '|'],
  [0x27, ';', ':'],
  [0x28, "'", '"'],
  [0x33, ',', '<'],
  [0x34, '.', '>'],
  [0x35, '/', '?'],
];
const LETTERS: Record<string, number> = {
  q: 0x10, w: 0x11, e: 0x12, r: 0x13, t: 0x14, y: 0x15, u: 0x16, i: 0x17, o: 0x18, p: 0x19,
  a: 0x1e, s: 0x1f, d: 0x20, f: 0x21, g: 0x22, h: 0x23, j: 0x24, k: 0x25, l: 0x26,
  z: 0x2c, x: 0x2d, c: 0x2e, v: 0x2f, b: 0x30, n: 0x31, m: 0x32,
};

// Non-character keysyms (X11 keysymdef.h).
const SPECIAL: Record<number, number> = {
  0xff08: 0x0e, // BackSpace
  0xff09: 0x0f, // Tab
  0xff0d: 0x1c, // Return
  0xff13: PAUSE, // Pause
  0xff14: 0x46, // Scroll_Lock
  0xff15: 0x54, // Sys_Req (Alt+Print)
  0xff1b: 0x01, // Escape
  0xff50: 0xe047, // Home
  0xff51: 0xe04b, // Left
  0xff52: 0xe048, // Up
  0xff53: 0xe04d, // Right
  0xff54: 0xe050, // Down
  0xff55: 0xe049, // Prior (Page Up)
  0xff56: 0xe051, // Next (Page Down)
  0xff57: 0xe04f, // End
  0xff61: 0xe037, // Print
  0xff63: 0xe052, // Insert
  0xff67: 0xe05d, // Menu
  0xff7f: 0x45, // Num_Lock
  0xff8d: 0xe01c, // KP_Enter
  0xff95: 0x47, // KP_Home
  0xff96: 0x4b, // KP_Left
  0xff97: 0x48, // KP_Up
  0xff98: 0x4d, // KP_Right
  0xff99: 0x50, // KP_Down
  0xff9a: 0x49, // KP_Prior
  0xff9b: 0x51, // KP_Next
  0xff9c: 0x4f, // KP_End
  0xff9d: 0x4c, // KP_Begin
  0xff9e: 0x52, // KP_Insert
  0xff9f: 0x53, // KP_Delete
  0xffaa: 0x37, // KP_Multiply
  0xffab: 0x4e, // KP_Add
  0xffac: 0x53, // KP_Separator
  0xffad: 0x4a, // KP_Subtract
  0xffae: 0x53, // KP_Decimal
  0xffaf: 0xe035, // KP_Divide
  0xffb0: 0x52, // KP_0
  0xffb1: 0x4f,
  0xffb2: 0x50,
  0xffb3: 0x51,
  0xffb4: 0x4b,
  0xffb5: 0x4c,
  0xffb6: 0x4d,
  0xffb7: 0x47,
  0xffb8: 0x48,
  0xffb9: 0x49, // KP_9
  0xffbe: 0x3b, // F1
  0xffbf: 0x3c,
  0xffc0: 0x3d,
  0xffc1: 0x3e,
  0xffc2: 0x3f,
  0xffc3: 0x40,
  0xffc4: 0x41,
  0xffc5: 0x42,
  0xffc6: 0x43,
  0xffc7: 0x44, // F10
  0xffc8: 0x57, // F11
  0xffc9: 0x58, // F12
  0xffe1: LEFT_SHIFT, // Shift_L
  0xffe2: RIGHT_SHIFT, // Shift_R
  0xffe3: 0x1d, // Control_L
  0xffe4: 0xe01d, // Control_R
  0xffe5: 0x3a, // Caps_Lock
  0xffe7: 0xe05b, // Meta_L
  0xffe8: 0xe05c, // Meta_R
  0xffe9: 0x38, // Alt_L
  0xffea: 0xe038, // Alt_R
  0xffeb: 0xe05b, // Super_L
  0xffec: 0xe05c, // Super_R
  0xfe03: 0xe038, // ISO_Level3_Shift (AltGr)
  0xffff: 0xe053, // Delete
};

const KEYSYMS = new Map<number, KeysymKey>();
for (const [keysym, key] of Object.entries(SPECIAL)) KEYSYMS.set(Number(keysym), { key });
KEYSYMS.set(0xfe20, { key: 0x0f, shift: true }); // ISO_Left_Tab = Shift+Tab
KEYSYMS.set(0x20, { key: 0x39 }); // space, with or without Shift
for (const [key, plain, shifted] of US_ROWS) {
  KEYSYMS.set(plain.charCodeAt(0), { key, shift: false });
  if (shifted !== plain) KEYSYMS.set(shifted.charCodeAt(0), { key, shift: true });
}
for (const [letter, key] of Object.entries(LETTERS)) {
  KEYSYMS.set(letter.charCodeAt(0), { key });
  KEYSYMS.set(letter.toUpperCase().charCodeAt(0), { key });
}

export function keyFromKeysym(keysym: number): KeysymKey | undefined {
  return KEYSYMS.get(keysym);
}

/** Make/break bytes that type `text` on a US keyboard (\n = Enter, \t = Tab); throws on other characters. */
export function textToScancodes(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    const keysym = ch === '\n' ? 0xff0d : ch === '\t' ? 0xff09 : ch.codePointAt(0)!;
    const k = ch >= ' ' || ch === '\n' || ch === '\t' ? keyFromKeysym(keysym) : undefined;
    if (!k) {
      const cp = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      throw new Error(`cannot type U+${cp} ${JSON.stringify(ch)} on a US keyboard`);
    }
    const shift = k.shift ?? (ch >= 'A' && ch <= 'Z');
    if (shift) out.push(...scancodeBytes(LEFT_SHIFT, true));
    out.push(...scancodeBytes(k.key, true), ...scancodeBytes(k.key, false));
    if (shift) out.push(...scancodeBytes(LEFT_SHIFT, false));
  }
  return out;
}
