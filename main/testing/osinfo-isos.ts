// ISOs whose volume descriptor and layout are those of osinfo-db's own media entries (Debian's
// osinfo-db package): Debian testing's i386 netinst and Fedora 37 Server's x86_64 DVD, each with
// the sample kernel and initrd where that medium keeps its installer (<media><kernel>, <initrd>).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { guest } from './harness.js';

function makeIso(dir: string, name: string, ids: string[], files: Record<string, string>): string {
  const tree = path.join(dir, `${name}.d`);
  for (const [rel, src] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
    fs.copyFileSync(src, path.join(tree, rel));
  }
  const out = path.join(dir, `${name}.iso`);
  execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-r', '-o', out, ...ids, tree], { stdio: ['ignore', 'ignore', 'pipe'] });
  fs.rmSync(tree, { recursive: true, force: true });
  return out;
}

export function makeOsinfoIsos(dir: string): { debian: string; fedora: string } {
  return {
    // debian-testing.xml: volume id "Debian testing i386 n", installer in install.386/.
    debian: makeIso(dir, 'debian-testing-i386-netinst', ['-V', 'Debian testing i386 n'], {
      'install.386/vmlinuz': guest('vmlinuz'),
      'install.386/initrd.gz': guest('initrd.gz'),
    }),
    // fedora-37.xml: volume id "Fedora-S-dvd-x86_64-37" and system id LINUX, installer in isolinux/.
    fedora: makeIso(dir, 'fedora-37-server-dvd', ['-V', 'Fedora-S-dvd-x86_64-37', '-sysid', 'LINUX'], {
      'isolinux/vmlinuz': guest('vmlinuz-amd64'),
      'isolinux/initrd.img': guest('initrd-amd64.gz'),
    }),
  };
}
