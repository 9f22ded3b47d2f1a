// pci-bars.ts against the installed v86: a state saved before SeaBIOS probed the PCI bus (the IDE
// controller's descriptor-less BARs 0 and 1 still read 0x1) breaks v86's own restore_state, and
// restores with restoreAbsentBars, the saved words kept and the BIOS then running on.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { after, test } from 'node:test';
import { V86 } from 'v86';
import { restoreAbsentBars, type V86Pci } from './pci-bars.js';

const v86Main = createRequire(import.meta.url).resolve('v86');
const BIOS = '/usr/share/seabios/bios.bin';
const IDE = 240;
const skip = fs.existsSync(BIOS) ? false : `${BIOS} missing`;

interface Machine {
  emu: V86;
  pci: V86Pci & { device_spaces: Int32Array[] };
}

const machines: V86[] = [];
after(async () => {
  for (const emu of machines) await emu.destroy();
});

async function machine(autostart: boolean): Promise<Machine> {
  const bios = fs.readFileSync(BIOS);
  const emu = new V86({
    wasm_path: path.join(path.dirname(v86Main), 'v86.wasm'),
    memory_size: 32 << 20,
    bios: { buffer: bios.buffer.slice(bios.byteOffset, bios.byteOffset + bios.byteLength) },
    autostart,
    disable_speaker: true,
  });
  machines.push(emu);
  await new Promise<void>((resolve) => emu.add_listener('emulator-loaded', () => resolve()));
  const { pci } = (emu as unknown as { v86: { cpu: { devices: { pci: Machine['pci'] } } } }).v86.cpu.devices;
  return { emu, pci };
}

test('a state saved before the BIOS probed the PCI bus restores', { skip }, async () => {
  const source = await machine(false);
  assert.equal(source.pci.devices[IDE]!.pci_bars[0], undefined, 'v86 now declares IDE BAR 0');
  assert.equal(source.pci.device_spaces[IDE]![4], 1);
  const state = await source.emu.save_state();

  const plain = await machine(false);
  await assert.rejects(plain.emu.restore_state(state), /original_bar/, "v86's own restore takes the state now: pci-bars.ts is no longer needed");

  const mended = await machine(false);
  restoreAbsentBars(mended.pci);
  await mended.emu.restore_state(state);
  assert.equal(mended.pci.device_spaces[IDE]![4] as number, 1);
  assert.equal(mended.pci.devices[IDE]!.pci_bars[0], undefined);
  // The BIOS runs on from there and probes the bus as it would have.
  await mended.emu.run();
  const deadline = Date.now() + 30_000;
  while (mended.pci.device_spaces[IDE]![4] !== 0) {
    assert.ok(Date.now() < deadline, 'SeaBIOS never probed IDE BAR 0');
    await new Promise((r) => setTimeout(r, 100));
  }
});
