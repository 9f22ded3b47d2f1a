// The sample guests' module load order is derived from the modules' own metadata at build time
// (build/guests/build-guests.sh), written once into each archive, and /init loads that list.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { guest, guestsBuilt } from './harness.js';
import { assertGuestModulesLoaded } from './guest-output.js';

const ARCHIVES: [string, string][] = [
  ['initrd.gz', 'boot.order'],
  ['initrd-amd64.gz', 'boot.order'],
  ['disk-modules.cpio.gz', 'disk.order'],
];

function unpack(archive: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-initrd-'));
  execFileSync('sh', ['-c', `gzip -dc "$1" | cpio -id --quiet --no-absolute-filenames`, 'sh', archive], { cwd: dir });
  return dir;
}

describe('sample guest modules', { skip: guestsBuilt(ARCHIVES.map(([a]) => a)) ? false : 'sample guests not built' }, () => {
  for (const [archive, orderFile] of ARCHIVES) {
    it(`${archive}: ${orderFile} lists every module once, each after the modules it depends on`, () => {
      const dir = unpack(guest(archive));
      try {
        const mods = path.join(dir, 'lib', 'modules');
        const order = fs.readFileSync(path.join(mods, orderFile), 'utf8').split('\n').filter(Boolean);
        const kos = fs.readdirSync(mods).filter((f) => f.endsWith('.ko')).map((f) => f.slice(0, -3));
        assert.deepEqual([...order].sort(), kos.sort(), 'the order names exactly the modules in the archive');
        assert.equal(new Set(order).size, order.length, 'no module twice');
        const norm = (m: string): string => m.replace(/-/g, '_');
        const seen = new Set<string>();
        for (const m of order) {
          const deps = execFileSync('modinfo', ['-F', 'depends', path.join(mods, `${m}.ko`)], { encoding: 'utf8' })
            .trim()
            .split(',')
            .filter(Boolean);
          for (const d of deps) assert.ok(seen.has(norm(d)), `${m} depends on ${d}, which ${orderFile} loads after it or not at all`);
          seen.add(norm(m));
        }
        if (orderFile === 'boot.order') for (const m of ['virtio_balloon', 'virtio_pci', 'button', 'evdev']) assert.ok(order.includes(m), `${m} in ${archive}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('/init loads the archive\'s list rather than one of its own', () => {
    const init = fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'build', 'guests', 'files', 'init'), 'utf8');
    assert.match(init, /done <\/lib\/modules\/boot\.order/);
    assert.doesNotMatch(init, /for m in virtio/);
  });

  it('a module the guest failed to load fails the test, naming it', () => {
    assert.doesNotThrow(() => assertGuestModulesLoaded('DOMUS-GUEST-READY uptime=3.1s kernel=6.1.0-57-686\r\n'));
    assert.throws(() => assertGuestModulesLoaded('[ 1.2] virtio: Unknown symbol virtio_break_device\r\nDOMUS-MODULE-FAILED virtio\r\n'), /module\(s\) virtio failed to load/);
  });
});
