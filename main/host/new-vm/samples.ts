// The sample guests built by `npm run guests` (build/guests/), offered on the first-run screen.
import fs from 'node:fs';
import path from 'node:path';
import type { SampleGuest } from '../../../shared/api.js';
import { findQemu } from '../drivers/qemu/binary.js';
import { APP_ROOT } from '../../common/paths.js';

export const GUEST_DIR = process.env.DOMUS_GUEST_DIR ?? path.join(APP_ROOT, 'build', 'guests');
export const SAMPLE_CMDLINE = 'console=ttyS0,115200 console=tty0 cryptomgr.notests noisapnp tsc=reliable mitigations=off no_timer_check';

export function sampleGuests(): { samples: SampleGuest[]; missing?: string } {
  const file = (name: string): string => path.join(GUEST_DIR, name);
  const wanted = ['vmlinuz', 'initrd.gz', 'tiny.iso', 'disk.img'];
  const absent = wanted.filter((f) => !fs.existsSync(file(f)));
  const samples: SampleGuest[] = [];
  if (!absent.includes('vmlinuz') && !absent.includes('initrd.gz')) {
    samples.push({
      id: 'pv',
      label: 'Linux, direct kernel boot',
      description: 'Debian i686 kernel and a busybox initramfs, booted directly (PV style).',
      spec: {
        name: 'sample-pv',
        memoryMiB: 128,
        vcpus: 1,
        boot: { kind: 'pv', kernel: file('vmlinuz'), initrd: file('initrd.gz'), cmdline: SAMPLE_CMDLINE },
      },
    });
  }
  if (!absent.includes('tiny.iso')) {
    samples.push({
      id: 'cdrom',
      label: 'Linux live CD',
      description: 'The same guest on an ISOLINUX CD, booted through the BIOS (HVM).',
      spec: { name: 'sample-iso', memoryMiB: 128, vcpus: 1, boot: { kind: 'cdrom', iso: file('tiny.iso') } },
    });
  }
  if (!absent.includes('disk.img')) {
    samples.push({
      id: 'disk',
      label: 'Linux on a hard disk',
      description: 'A raw disk with an ext2 partition and extlinux, booted through the BIOS (HVM).',
      spec: { name: 'sample-disk', memoryMiB: 128, vcpus: 1, boot: { kind: 'disk', disk: file('disk.img') } },
    });
  }
  // The 64-bit sample runs on QEMU only (v86 is a 32-bit CPU), so it is offered where QEMU is installed.
  if (fs.existsSync(file('vmlinuz-amd64')) && fs.existsSync(file('initrd-amd64.gz')) && findQemu().version) {
    samples.push({
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
    });
  }
  return absent.length
    ? { samples, missing: `sample guest files missing in ${GUEST_DIR}: ${absent.join(', ')} (run \`npm run guests\`)` }
    : { samples };
}
