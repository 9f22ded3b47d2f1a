// UEFI on QEMU as libvirt sets it up: OVMF's code and the domain's own copy of its variable store,
// as two pflash drives. <os firmware='efi'> picks the firmware from QEMU's firmware descriptors
// (QEMU's docs/interop/firmware.json; Debian's package ovmf installs them), as libvirt's firmware
// autoselection does; a pflash <loader> names it outright. Secure Boot builds need SMM, which Domus
// does not set up, so they are refused with that reason.
import fs from 'node:fs';
import path from 'node:path';
import type { DomainConfig } from '../../../../shared/domain.js';

/** Where QEMU's firmware descriptors live; a file in a later directory replaces one of the same name. */
export const FIRMWARE_DESCRIPTOR_DIRS = ['/usr/share/qemu/firmware', '/etc/qemu/firmware'];

export interface UefiFlash {
  /** The firmware's code, mapped read-only. */
  code: string;
  /** The domain's variable store, written by the guest (its boot entries). */
  vars: string;
  /** What a new variable store is copied from; unknown for a <loader> no descriptor names, whose <nvram> must then exist. */
  template?: string;
}

interface Descriptor {
  file: string;
  code: string;
  template?: string;
  features: string[];
  machines: string[];
}

/**
 * The two flash images for a UEFI definition, or why there are none here. `nvramDir` keeps the
 * variable stores of domains whose <nvram> names no file (<uuid>_VARS.fd, as libvirt's NAME_VARS.fd).
 */
export function resolveUefi(config: DomainConfig, machine: 'pc' | 'q35', nvramDir: string, dirs = FIRMWARE_DESCRIPTOR_DIRS): UefiFlash | { problem: string } {
  const { loader, nvram } = config.os;
  if (loader?.secure) return { problem: 'Secure Boot (secure=\'yes\') needs SMM, which Domus does not set up for QEMU guests' };
  if (loader?.type === 'rom') return { problem: "a UEFI <loader> is flash (type='pflash'), not a ROM" };
  const descriptors = readDescriptors(dirs);
  let code: string;
  let template = nvram?.template;
  if (loader?.path) {
    code = loader.path;
    const described = descriptors.find((d) => path.resolve(d.code) === path.resolve(code));
    if (described?.features.includes('requires-smm')) return { problem: `${code} is a Secure Boot build that needs SMM, which Domus does not set up for QEMU guests` };
    template ??= described?.template;
    if (!template && !nvram?.path) return { problem: `no variable store template is known for ${code}: name one with <nvram template='...'>` };
  } else {
    const chosen = descriptors.find((d) => d.template && usable(d, machine));
    if (!chosen) {
      return {
        problem: descriptors.length
          ? `none of QEMU's firmware descriptors (${dirs.join(', ')}) offers UEFI without Secure Boot for the ${machine} machine`
          : `no UEFI firmware for QEMU is installed (Debian's package ovmf: apt-get install ovmf)`,
      };
    }
    code = chosen.code;
    template ??= chosen.template;
  }
  const vars = nvram?.path ?? path.join(nvramDir, `${config.uuid}_VARS.fd`);
  // The guest writes its store: the firmware's own files (OVMF_VARS.fd next to OVMF_CODE.fd) are every guest's templates.
  const shared = [code, template, ...descriptors.flatMap((d) => [d.code, d.template])].flatMap((f) => (f ? [path.dirname(path.resolve(f))] : []));
  if (shared.includes(path.dirname(path.resolve(vars)))) {
    return { problem: `<nvram> ${vars} is in the firmware's own directory, whose files every guest starts from; give the domain a store of its own (or no <nvram> path)` };
  }
  return { code, vars, ...(template !== undefined && { template }) };
}

/** Creates the domain's variable store from its template on first use; the guest's entries persist from then on. */
export function ensureVarsStore(flash: UefiFlash): void {
  if (fs.existsSync(flash.vars)) return;
  if (!flash.template) throw new Error(`the UEFI variable store ${flash.vars} does not exist, and no template is known to create it from`);
  fs.mkdirSync(path.dirname(flash.vars), { recursive: true, mode: 0o700 });
  fs.copyFileSync(flash.template, flash.vars, fs.constants.COPYFILE_EXCL);
  fs.chmodSync(flash.vars, 0o600);
}

/** A descriptor Domus can run: UEFI in flash for x86_64 on this machine type, without SMM or Secure Boot. */
function usable(d: Descriptor, machine: 'pc' | 'q35'): boolean {
  // Descriptors list versioned machine names as globs (pc-q35-*); Domus's pc and q35 are QEMU's current ones.
  const name = machine === 'q35' ? 'pc-q35-7.2' : 'pc-i440fx-7.2';
  if (d.features.includes('requires-smm') || d.features.includes('secure-boot') || d.features.includes('enrolled-keys')) return false;
  return d.machines.some((glob) => new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(name));
}

/** The UEFI flash descriptors in QEMU's order: by file name, a later directory's file replacing an earlier one's. */
function readDescriptors(dirs: string[]): Descriptor[] {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) if (name.endsWith('.json')) byName.set(name, path.join(dir, name));
  }
  return [...byName.keys()].sort().flatMap((name) => {
    const file = byName.get(name)!;
    try {
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as {
        'interface-types'?: string[];
        mapping?: { device?: string; executable?: { filename?: string }; 'nvram-template'?: { filename?: string } };
        targets?: { architecture?: string; machines?: string[] }[];
        features?: string[];
      };
      const code = json.mapping?.executable?.filename;
      if (!json['interface-types']?.includes('uefi') || json.mapping?.device !== 'flash' || !code) return [];
      const machines = (json.targets ?? []).filter((t) => t.architecture === 'x86_64').flatMap((t) => t.machines ?? []);
      return [{ file, code, template: json.mapping?.['nvram-template']?.filename, features: json.features ?? [], machines }];
    } catch {
      // A descriptor that cannot be read is skipped, as QEMU's and libvirt's readers skip it.
      return [];
    }
  });
}
