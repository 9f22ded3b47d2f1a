// SeaBIOS for the v86 engine comes from Debian's `seabios` package (the QEMU build, which v86 runs).
import fs from 'node:fs';
import path from 'node:path';

export interface Firmware {
  bios: string;
  vgaBios: string;
}

/** DOMUS_FIRMWARE_DIR, when set, is the only place looked at; else Debian's locations. */
export function firmwareDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.DOMUS_FIRMWARE_DIR ? [env.DOMUS_FIRMWARE_DIR] : ['/usr/share/seabios', '/usr/share/qemu'];
}

/** Finds bios.bin + vgabios-stdvga.bin, or explains what to install. */
export function findFirmware(dirs: string[] = firmwareDirs()): Firmware {
  for (const dir of dirs) {
    const bios = path.join(dir, 'bios.bin');
    const vgaBios = path.join(dir, 'vgabios-stdvga.bin');
    if (fs.existsSync(bios) && fs.existsSync(vgaBios)) return { bios, vgaBios };
  }
  throw new Error(
    `SeaBIOS not found: install Debian's package 'seabios' (apt-get install seabios), ` +
      `or set DOMUS_FIRMWARE_DIR to a folder holding bios.bin and vgabios-stdvga.bin ` +
      `(looked in ${dirs.join(', ')})`,
  );
}
