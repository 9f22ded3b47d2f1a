import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { findFirmware, firmwareDirs } from './firmware.js';

describe('SeaBIOS lookup', () => {
  it('looks in DOMUS_FIRMWARE_DIR when set, else in the Debian locations', () => {
    assert.deepEqual(firmwareDirs({ DOMUS_FIRMWARE_DIR: '/opt/fw' }), ['/opt/fw']);
    assert.deepEqual(firmwareDirs({}), ['/usr/share/seabios', '/usr/share/qemu']);
  });

  it('finds bios.bin with vgabios-stdvga.bin in one folder', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-fw-'));
    fs.writeFileSync(path.join(dir, 'bios.bin'), 'x');
    fs.writeFileSync(path.join(dir, 'vgabios-stdvga.bin'), 'x');
    assert.deepEqual(findFirmware(['/nonexistent', dir]), { bios: path.join(dir, 'bios.bin'), vgaBios: path.join(dir, 'vgabios-stdvga.bin') });
    fs.rmSync(dir, { recursive: true });
  });

  it('names the Debian package when nothing is found', () => {
    assert.throws(
      () => findFirmware(['/nonexistent/a', '/nonexistent/b']),
      /^Error: SeaBIOS not found: install Debian's package 'seabios' \(apt-get install seabios\), or set DOMUS_FIRMWARE_DIR .*\(looked in \/nonexistent\/a, \/nonexistent\/b\)$/,
    );
  });
});
