// virsh send-key: key codes in libvirt's codesets (linux, xt, atset1, qnum, usb) and Linux's KEY_*
// names, turned into the PC keys (scancode set 1, as keymap.ts numbers them) the guest's keyboard
// controller delivers. Names and numbers come from <linux/input-event-codes.h>; the USB column is
// the HID usage table as Linux's hid-input maps it.
import { PAUSE, scancodeBytes } from './keymap.js';

export type Codeset = 'linux' | 'xt' | 'atset1' | 'qnum' | 'usb';

/** Linux key code → set-1 key (0xE0xx for extended keys). Codes 1–83 and 86–88 equal their scancode. */
const LINUX_EXTENDED: Record<number, number> = {
  86: 0x56, 87: 0x57, 88: 0x58, 89: 0x73, 92: 0x79, 94: 0x7b, 96: 0xe01c, 97: 0xe01d, 98: 0xe035, 99: 0x54,
  100: 0xe038, 102: 0xe047, 103: 0xe048, 104: 0xe049, 105: 0xe04b, 106: 0xe04d, 107: 0xe04f, 108: 0xe050,
  109: 0xe051, 110: 0xe052, 111: 0xe053, 113: 0xe020, 114: 0xe02e, 115: 0xe030, 116: 0xe05e, 117: 0x59,
  119: PAUSE, 121: 0x7e, 124: 0x7d, 125: 0xe05b, 126: 0xe05c, 127: 0xe05d, 142: 0xe05f, 143: 0xe063, 210: 0xe037,
};

/** The KEY_ names of each Linux code we can type (aliases separated by spaces). */
const LINUX_NAMES: Record<number, string> = {
  1: 'ESC',
  2: '1',
  3: '2',
  4: '3',
  5: '4',
  6: '5',
  7: '6',
  8: '7',
  9: '8',
  10: '9',
  11: '0',
  12: 'MINUS',
  13: 'EQUAL',
  14: 'BACKSPACE',
  15: 'TAB',
  16: 'Q',
  17: 'W',
  18: 'E',
  19: 'R',
  20: 'T',
  21: 'Y',
  22: 'U',
  23: 'I',
  24: 'O',
  25: 'P',
  26: 'LEFTBRACE',
  27: 'RIGHTBRACE',
  28: 'ENTER',
  29: 'LEFTCTRL',
  30: 'A',
  31: 'S',
  32: 'D',
  33: 'F',
  34: 'G',
  35: 'H',
  36: 'J',
  37: 'K',
  38: 'L',
  39: 'SEMICOLON',
  40: 'APOSTROPHE',
  41: 'GRAVE',
  42: 'LEFTSHIFT',
  43: 'BACKSLASH',
  44: 'Z',
  45: 'X',
  46: 'C',
  47: 'V',
  48: 'B',
  49: 'N',
  50: 'M',
  51: 'COMMA',
  52: 'DOT',
  53: 'SLASH',
  54: 'RIGHTSHIFT',
  55: 'KPASTERISK',
  56: 'LEFTALT',
  57: 'SPACE',
  58: 'CAPSLOCK',
  59: 'F1',
  60: 'F2',
  61: 'F3',
  62: 'F4',
  63: 'F5',
  64: 'F6',
  65: 'F7',
  66: 'F8',
  67: 'F9',
  68: 'F10',
  69: 'NUMLOCK',
  70: 'SCROLLLOCK',
  71: 'KP7',
  72: 'KP8',
  73: 'KP9',
  74: 'KPMINUS',
  75: 'KP4',
  76: 'KP5',
  77: 'KP6',
  78: 'KPPLUS',
  79: 'KP1',
  80: 'KP2',
  81: 'KP3',
  82: 'KP0',
  83: 'KPDOT',
  86: '102ND',
  87: 'F11',
  88: 'F12',
  89: 'RO',
  92: 'HENKAN',
  94: 'MUHENKAN',
  96: 'KPENTER',
  97: 'RIGHTCTRL',
  98: 'KPSLASH',
  99: 'SYSRQ',
  100: 'RIGHTALT',
  102: 'HOME',
  103: 'UP',
  104: 'PAGEUP',
  105: 'LEFT',
  106: 'RIGHT',
  107: 'END',
  108: 'DOWN',
  109: 'PAGEDOWN',
  110: 'INSERT',
  111: 'DELETE',
  113: 'MUTE',
  114: 'VOLUMEDOWN',
  115: 'VOLUMEUP',
  116: 'POWER',
  117: 'KPEQUAL',
  119: 'PAUSE',
  121: 'KPCOMMA',
  124: 'YEN',
  125: 'LEFTMETA',
  126: 'RIGHTMETA',
  127: 'COMPOSE',
  142: 'SLEEP',
  143: 'WAKEUP',
  210: 'PRINT',
};

const NAME_TO_LINUX = new Map<string, number>();
for (const [code, names] of Object.entries(LINUX_NAMES)) for (const n of names.split(' ')) NAME_TO_LINUX.set(`KEY_${n}`, Number(code));

/** USB HID usage (keyboard page) → Linux code, as hid-input's hid_keyboard table. */
const USB_TO_LINUX: Record<number, number> = {
  0x04: 30, 0x05: 48, 0x06: 46, 0x07: 32, 0x08: 18, 0x09: 33, 0x0a: 34, 0x0b: 35, 0x0c: 23, 0x0d: 36, 0x0e: 37, 0x0f: 38,
  0x10: 50, 0x11: 49, 0x12: 24, 0x13: 25, 0x14: 16, 0x15: 19, 0x16: 31, 0x17: 20, 0x18: 22, 0x19: 47, 0x1a: 17, 0x1b: 45,
  0x1c: 21, 0x1d: 44, 0x1e: 2, 0x1f: 3, 0x20: 4, 0x21: 5, 0x22: 6, 0x23: 7, 0x24: 8, 0x25: 9, 0x26: 10, 0x27: 11,
  0x28: 28, 0x29: 1, 0x2a: 14, 0x2b: 15, 0x2c: 57, 0x2d: 12, 0x2e: 13, 0x2f: 26, 0x30: 27, 0x31: 43, 0x32: 43, 0x33: 39,
  0x34: 40, 0x35: 41, 0x36: 51, 0x37: 52, 0x38: 53, 0x39: 58, 0x3a: 59, 0x3b: 60, 0x3c: 61, 0x3d: 62, 0x3e: 63, 0x3f: 64,
  0x40: 65, 0x41: 66, 0x42: 67, 0x43: 68, 0x44: 87, 0x45: 88, 0x46: 210, 0x47: 70, 0x48: 119, 0x49: 110, 0x4a: 102,
  0x4b: 104, 0x4c: 111, 0x4d: 107, 0x4e: 109, 0x4f: 106, 0x50: 105, 0x51: 108, 0x52: 103, 0x53: 69, 0x54: 98, 0x55: 55,
  0x56: 74, 0x57: 78, 0x58: 96, 0x59: 79, 0x5a: 80, 0x5b: 81, 0x5c: 75, 0x5d: 76, 0x5e: 77, 0x5f: 71, 0x60: 72, 0x61: 73,
  0x62: 82, 0x63: 83, 0x64: 86, 0x65: 127, 0x66: 116, 0x67: 117,
  0xe0: 29, 0xe1: 42, 0xe2: 56, 0xe3: 125, 0xe4: 97, 0xe5: 54, 0xe6: 100, 0xe7: 126,
};

function fromLinux(code: number): number | undefined {
  if (code >= 1 && code <= 83) return code;
  return LINUX_EXTENDED[code];
}

export class KeycodeError extends Error {}

/** One send-key argument (a number, or a KEY_ name in the linux codeset) as a set-1 key. */
export function keyFromCode(codeset: Codeset, keycode: string | number): number {
  let code: number;
  if (typeof keycode === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(keycode)) code = Number(keycode);
  else if (typeof keycode === 'string') {
    if (codeset !== 'linux') throw new KeycodeError(`invalid keycode: '${keycode}' (key names are only known in the linux codeset)`);
    const linux = NAME_TO_LINUX.get(keycode);
    if (linux === undefined) throw new KeycodeError(`invalid keycode: '${keycode}' is not a key name this keyboard has (e.g. KEY_LEFTCTRL, KEY_F1)`);
    code = linux;
  } else code = keycode;
  let key: number | undefined;
  switch (codeset) {
    case 'linux':
      key = fromLinux(code);
      break;
    case 'xt':
      key = code >= 1 && code <= 0x7f ? code : undefined;
      break;
    case 'atset1':
      key = (code >= 1 && code <= 0x7f) || (code >> 8 === 0xe0 && (code & 0x7f) !== 0 && code <= 0xe07f) ? code : undefined;
      if (key === 0xe046) key = PAUSE;
      break;
    case 'qnum':
      // QEMU's numbering: the 0xE0 prefix folded into bit 7.
      key = code >= 1 && code <= 0x7f ? code : code >= 0x81 && code <= 0xff ? (code === 0xc6 ? PAUSE : 0xe000 | (code & 0x7f)) : undefined;
      break;
    case 'usb': {
      const linux = USB_TO_LINUX[code];
      key = linux === undefined ? undefined : fromLinux(linux);
      break;
    }
  }
  if (key === undefined) throw new KeycodeError(`invalid keycode: ${typeof keycode === 'string' ? `'${keycode}'` : keycode} has no PC key in the ${codeset} codeset`);
  return key;
}

/** virsh send-key: every key pressed in order, then released in reverse order. */
export function sendKeySequence(keys: readonly number[]): { press: number[]; release: number[] } {
  const press: number[] = [];
  const release: number[] = [];
  for (const k of keys) press.push(...scancodeBytes(k, true));
  for (const k of [...keys].reverse()) release.push(...scancodeBytes(k, false));
  return { press, release };
}
