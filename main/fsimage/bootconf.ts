// Boot loader configurations as pygrub reads them: GRUB 2 grub.cfg and SYSLINUX-family files
// (extlinux.conf, syslinux.cfg, isolinux.cfg). Only what selects a kernel matters: menu entries
// (submenus flattened), their linux/initrd lines and arguments, and the default.
import { FsImageError, limit } from './errors.js';
import type { Filesystem } from './vfs.js';

export interface ConfigEntry {
  label: string;
  kernel: string;
  initrd?: string;
  args: string;
}

export interface BootConfig {
  /** Path of the file inside its filesystem. */
  file: string;
  kind: 'grub' | 'syslinux';
  entries: ConfigEntry[];
  defaultIndex?: number;
}

/** Where pygrub and the boot loaders look; the /boot-less forms are for a separate /boot partition. */
export const CONFIG_PATHS = [
  '/boot/grub/grub.cfg',
  '/boot/grub2/grub.cfg',
  '/grub/grub.cfg',
  '/grub2/grub.cfg',
  '/boot/extlinux/extlinux.conf',
  '/boot/extlinux.conf',
  '/extlinux/extlinux.conf',
  '/extlinux.conf',
  '/boot/syslinux/syslinux.cfg',
  '/syslinux/syslinux.cfg',
  '/syslinux.cfg',
  '/isolinux/isolinux.cfg',
  '/boot/isolinux/isolinux.cfg',
];

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_INCLUDES = 32;
const MAX_INCLUDE_DEPTH = 8;
const MAX_ENTRIES = 1024;

/** The first configuration found on this filesystem, or undefined. */
export function findBootConfig(fs: Filesystem): BootConfig | undefined {
  for (const file of CONFIG_PATHS) {
    let stat;
    try {
      stat = fs.stat(file);
    } catch (err) {
      if (err instanceof FsImageError && (err.code === 'not-found' || err.code === 'not-dir' || err.code === 'loop')) continue;
      throw err;
    }
    if (stat.kind !== 'file') continue;
    const text = fs.readFile(file, MAX_CONFIG_BYTES).toString('utf8');
    if (file.endsWith('grub.cfg')) return { file, kind: 'grub', ...parseGrubCfg(text, readGrubEnv(fs, file)) };
    return { file, kind: 'syslinux', ...parseSyslinux(text, file, (p) => readOptional(fs, p)) };
  }
  return undefined;
}

function readOptional(fs: Filesystem, path: string): string | undefined {
  try {
    return fs.readFile(path, MAX_CONFIG_BYTES).toString('utf8');
  } catch (err) {
    if (err instanceof FsImageError && err.code !== 'io' && err.code !== 'limit') return undefined;
    throw err;
  }
}

/** grubenv (saved_entry, next_entry) next to grub.cfg. */
function readGrubEnv(fs: Filesystem, cfg: string): Record<string, string> {
  const text = readOptional(fs, cfg.replace(/grub\.cfg$/, 'grubenv')) ?? '';
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][\w]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

// ---- GRUB 2 ----

/** Splits grub.cfg into commands of words, honouring quotes, escapes, comments and braces. */
function grubCommands(text: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  const endWord = (): void => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      if (text[i + 1] === '\n') {
        i++;
        continue;
      }
      word += text[++i];
      inWord = true;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      word += text.slice(i + 1, end < 0 ? text.length : end);
      inWord = true;
      i = end < 0 ? text.length : end;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && i + 1 < text.length && '"\\$'.includes(text[i + 1])) word += text[++i];
        else word += text[i];
      }
    } else if (c === '#' && !inWord) {
      while (i < text.length && text[i] !== '\n') i++;
      endCommand();
    } else if (c === '\n' || c === ';') {
      endCommand();
    } else if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
    } else if ((c === '{' || c === '}') && !inWord) {
      endCommand();
      commands.push([c]);
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands;
}

export function parseGrubCfg(text: string, env: Record<string, string> = {}): { entries: ConfigEntry[]; defaultIndex?: number } {
  const vars: Record<string, string> = { ...env };
  const expand = (s: string): string =>
    s.replace(/\$\{([\w?#]+)\}|\$([\w?#]+)/g, (_m, a: string | undefined, b: string | undefined) => vars[(a ?? b) as string] ?? '');
  const entries: ConfigEntry[] = [];
  /** Index paths ("1>2") of the flattened entries, for "set default=1>2". */
  const paths: string[] = [];
  let defaultSpec: string | undefined;
  const stack: { kind: 'menu' | 'sub' | 'block'; title: string; pos: number[]; current?: Partial<ConfigEntry> }[] = [];
  const counters: number[] = [0];
  let pendingBlock: { kind: 'menu' | 'sub'; title: string } | undefined;
  const inEntry = (): Partial<ConfigEntry> | undefined => [...stack].reverse().find((s) => s.kind === 'menu')?.current;
  // if/elif/else/fi: tests on variables are evaluated (Debian's next_entry logic needs it).
  const conds: { active: boolean; taken: boolean }[] = [];
  const active = (): boolean => conds.every((c) => c.active);
  const test = (words: string[]): boolean => {
    if (words[0] !== '[' && words[0] !== 'test') return true;
    const w = words.slice(1, words[0] === '[' && words[words.length - 1] === ']' ? -1 : undefined).map(expand);
    if (w.length === 1) return w[0] !== '';
    if (w.length === 2 && w[0] === '-n') return w[1] !== '';
    if (w.length === 2 && w[0] === '-z') return w[1] === '';
    if (w.length === 3 && (w[1] === '=' || w[1] === '==')) return w[0] === w[2];
    if (w.length === 3 && w[1] === '!=') return w[0] !== w[2];
    return true;
  };
  for (const words of grubCommands(text)) {
    const [cmd, ...rest] = words;
    if (cmd === 'if') {
      const v = test(rest);
      conds.push({ active: v, taken: v });
      continue;
    }
    const top = conds[conds.length - 1];
    if (cmd === 'elif' && top) {
      const v = !top.taken && test(rest);
      top.active = v;
      top.taken ||= v;
      continue;
    }
    if (cmd === 'else' && top) {
      top.active = !top.taken;
      top.taken = true;
      continue;
    }
    if (cmd === 'fi') {
      conds.pop();
      continue;
    }
    if (cmd === 'then') continue;
    if (cmd === '{') {
      if (pendingBlock) {
        const pos = [...stack.filter((s) => s.kind === 'sub').map((s) => s.pos[s.pos.length - 1]), counters[counters.length - 1]];
        // Entries grub would not define (inside a false "if") take no index.
        if (active()) counters[counters.length - 1]++;
        stack.push({ kind: pendingBlock.kind, title: pendingBlock.title, pos, current: pendingBlock.kind === 'menu' ? {} : undefined });
        if (pendingBlock.kind === 'sub') counters.push(0);
        pendingBlock = undefined;
      } else {
        stack.push({ kind: 'block', title: '', pos: [] });
      }
      continue;
    }
    if (cmd === '}') {
      const block = stack.pop();
      if (block?.kind === 'sub') counters.pop();
      if (block?.kind === 'menu' && block.current?.kernel && active()) {
        if (entries.length >= MAX_ENTRIES) throw limit('grub.cfg has too many menu entries');
        const titles = [...stack.filter((s) => s.kind === 'sub').map((s) => s.title), block.title];
        entries.push({ label: titles.join('>'), kernel: block.current.kernel, initrd: block.current.initrd, args: block.current.args ?? '' });
        paths.push(block.pos.join('>'));
      }
      continue;
    }
    if (cmd === 'menuentry' || cmd === 'submenu') {
      pendingBlock = { kind: cmd === 'menuentry' ? 'menu' : 'sub', title: expand(rest[0] ?? '') };
      continue;
    }
    const entry = inEntry();
    if (!active()) continue;
    if (cmd === 'set' && rest[0]) {
      const eq = rest[0].indexOf('=');
      const name = eq < 0 ? rest[0] : rest[0].slice(0, eq);
      const value = expand(eq < 0 ? '' : rest[0].slice(eq + 1));
      vars[name] = value;
      if (name === 'default' && !entry) defaultSpec = value;
    } else if (entry && /^linux(16|efi)?$/.test(cmd) && rest[0]) {
      entry.kernel = stripDevice(expand(rest[0]));
      entry.args = rest.slice(1).map(expand).filter((a) => a !== '').join(' ');
    } else if (entry && /^initrd(16|efi)?$/.test(cmd) && rest[0]) {
      entry.initrd = stripDevice(expand(rest[0]));
    }
  }
  let defaultIndex: number | undefined;
  if (entries.length) {
    const spec = (defaultSpec ?? '0').trim();
    defaultIndex = paths.indexOf(spec);
    if (defaultIndex < 0) defaultIndex = entries.findIndex((e) => e.label === spec || e.label.split('>').pop() === spec);
    if (defaultIndex < 0) defaultIndex = 0;
  }
  return { entries, defaultIndex };
}

/** "(hd0,msdos1)/vmlinuz" → "/vmlinuz": the device part names the partition grub reads from. */
function stripDevice(path: string): string {
  return path.replace(/^\([^)]*\)/, '') || '/';
}

// ---- SYSLINUX family ----

export function parseSyslinux(
  text: string,
  file: string,
  readInclude: (path: string) => string | undefined,
): { entries: ConfigEntry[]; defaultIndex?: number } {
  const dir = file.slice(0, file.lastIndexOf('/')) || '/';
  const resolve = (p: string): string => (p.startsWith('/') ? p : `${dir === '/' ? '' : dir}/${p}`);
  interface Label {
    name: string;
    menuLabel?: string;
    kernel?: string;
    initrd?: string;
    append?: string;
    menuDefault?: boolean;
  }
  const labels: Label[] = [];
  let defaultName: string | undefined;
  let includes = 0;
  const parse = (body: string, depth: number): void => {
    for (const rawLine of body.split('\n')) {
      const line = rawLine.trim();
      if (!line || line.startsWith('#')) continue;
      const m = /^(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) continue;
      const key = m[1].toLowerCase();
      const value = (m[2] ?? '').trim();
      const cur = labels[labels.length - 1];
      if (key === 'label') {
        if (labels.length >= MAX_ENTRIES) throw limit(`${file} has too many labels`);
        labels.push({ name: value });
      } else if (key === 'default') {
        defaultName = value;
      } else if (key === 'include' || (key === 'menu' && /^include\s/i.test(value))) {
        const target = key === 'include' ? value.split(/\s+/)[0] : value.split(/\s+/)[1];
        if (!target) continue;
        if (depth >= MAX_INCLUDE_DEPTH || ++includes > MAX_INCLUDES) throw limit(`${file}: too many nested INCLUDE files`);
        const sub = readInclude(resolve(target));
        if (sub !== undefined) parse(sub, depth + 1);
      } else if (!cur) {
        continue;
      } else if (key === 'kernel' || key === 'linux') {
        cur.kernel = value.split(/\s+/)[0];
      } else if (key === 'initrd') {
        cur.initrd = value.split(/\s+/)[0];
      } else if (key === 'append') {
        cur.append = value === '-' ? '' : value;
      } else if (key === 'menu') {
        const [sub, ...words] = value.split(/\s+/);
        if (sub.toLowerCase() === 'label') cur.menuLabel = words.join(' ').replace(/\^/g, '');
        if (sub.toLowerCase() === 'default') cur.menuDefault = true;
      }
    }
  };
  parse(text, 0);
  const entries: ConfigEntry[] = [];
  const names: string[] = [];
  const menuDefaults: boolean[] = [];
  const add = (l: Label): void => {
    // Labels that run a COM32 module (menus, chain.c32, hdt) boot no Linux kernel.
    if (!l.kernel || /\.(c32|com|bss|bin|0)$/i.test(l.kernel)) return;
    let args = l.append ?? '';
    let initrd = l.initrd;
    const m = /(?:^|\s)initrd=(\S+)/.exec(args);
    if (m) {
      initrd ??= m[1].split(',')[0];
      args = (args.slice(0, m.index) + args.slice(m.index + m[0].length)).replace(/\s+/g, ' ').trim();
    }
    entries.push({ label: l.menuLabel ?? l.name, kernel: resolve(l.kernel), initrd: initrd ? resolve(initrd) : undefined, args });
    names.push(l.name);
    menuDefaults.push(l.menuDefault === true);
  };
  labels.forEach(add);
  let defaultIndex: number | undefined;
  const defaultWord = defaultName?.split(/\s+/)[0];
  if (defaultWord !== undefined && !names.includes(defaultWord) && !labels.some((l) => l.name === defaultWord)) {
    // "DEFAULT kernel args": without a LABEL of that name, DEFAULT is itself a command line.
    const [kernel, ...rest] = (defaultName as string).split(/\s+/);
    add({ name: kernel, kernel, append: rest.join(' ') });
  }
  if (entries.length) {
    defaultIndex = defaultWord === undefined ? -1 : names.indexOf(defaultWord);
    if (defaultIndex < 0) defaultIndex = menuDefaults.indexOf(true);
    if (defaultIndex < 0) defaultIndex = 0;
  }
  return { entries, defaultIndex };
}
