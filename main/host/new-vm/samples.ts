// The sample guests built by `npm run guests` (build/guests/), offered on the first-run screen.
import fs from 'node:fs';
import path from 'node:path';
import type { SampleGuest } from '../../../shared/api.js';
import { findQemu } from '../drivers/qemu/binary.js';
import { APP_ROOT } from '../../common/paths.js';

export const GUEST_DIR = process.env.DOMUS_GUEST_DIR ?? path.join(APP_ROOT, 'build', 'guests');
// initcall_blacklist: no trusted keys are loaded, so a module's signature finds no key and is not
// checked (the kernel taints itself, "module verification failed"), and the KDF self-test is skipped
// as cryptomgr.notests skips the others; ~2.3 s of a 16.7 s v86 boot (median of 3 paired boots).
// Then the tracing file system's event files and enum maps (no one traces the sample) and the BLAKE2s
// self-test, ~0.35 s, and `quiet` (the kernel's info messages on the two consoles, as Debian's own
// boot entries have it), ~0.2 s: 5.19 s -> 4.57 s from the start call (median of 3 paired boots).
export const SAMPLE_CMDLINE =
  'console=ttyS0,115200 console=tty0 quiet cryptomgr.notests noisapnp tsc=reliable mitigations=off no_timer_check initcall_blacklist=load_system_certificate_list,crypto_kdf108_init,tracer_init_tracefs,trace_eval_init,blake2s_mod_init';

/** Each sample, with the files it boots from; the 64-bit one runs on QEMU only (v86 is a 32-bit CPU). */
const SAMPLES: { needs: string[]; qemu?: boolean; sample: (file: (name: string) => string) => SampleGuest }[] = [
  {
    needs: ['vmlinuz', 'initrd.gz'],
    sample: (file) => ({
      id: 'pv',
      label: 'Linux, direct kernel boot',
      description: 'Debian i686 kernel and a busybox initramfs, booted directly (PV style).',
      spec: { name: 'sample-pv', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: file('vmlinuz'), initrd: file('initrd.gz'), cmdline: SAMPLE_CMDLINE } },
    }),
  },
  {
    needs: ['tiny.iso'],
    sample: (file) => ({
      id: 'cdrom',
      label: 'Linux live CD',
      description: 'The same guest on an ISOLINUX CD, booted through the BIOS (HVM).',
      spec: { name: 'sample-iso', memoryMiB: 128, vcpus: 1, boot: { kind: 'cdrom', iso: file('tiny.iso') } },
    }),
  },
  {
    needs: ['disk.img'],
    sample: (file) => ({
      id: 'disk',
      label: 'Linux on a hard disk',
      description: 'A raw disk with an ext2 partition and extlinux, booted through the BIOS (HVM).',
      spec: { name: 'sample-disk', memoryMiB: 128, vcpus: 1, boot: { kind: 'disk', disk: file('disk.img') } },
    }),
  },
  {
    needs: ['vmlinuz-amd64', 'initrd-amd64.gz'],
    qemu: true,
    sample: (file) => ({
      id: 'amd64',
      label: 'Linux 64-bit on QEMU',
      description: 'Debian amd64 kernel and a busybox initramfs on the QEMU engine (TCG), booted directly.',
      spec: {
        name: 'sample-amd64',
        engine: 'qemu',
        memoryMiB: 256,
        vcpus: 1,
        boot: { kind: 'pv', kernel: file('vmlinuz-amd64'), initrd: file('initrd-amd64.gz'), cmdline: SAMPLE_CMDLINE },
      },
    }),
  },
];

export function sampleGuests(): { samples: SampleGuest[]; missing?: string } {
  const file = (name: string): string => path.join(GUEST_DIR, name);
  const present = (name: string): boolean => fs.existsSync(file(name));
  // The 64-bit sample's files are only missed where QEMU could run it.
  const absent = SAMPLES.filter((s) => !s.qemu).flatMap((s) => s.needs.filter((f) => !present(f)));
  const qemu = findQemu().version !== undefined;
  const samples = SAMPLES.filter((s) => s.needs.every(present) && (!s.qemu || qemu)).map((s) => s.sample(file));
  return absent.length
    ? { samples, missing: `sample guest files missing in ${GUEST_DIR}: ${absent.join(', ')} (run \`npm run guests\`)` }
    : { samples };
}
