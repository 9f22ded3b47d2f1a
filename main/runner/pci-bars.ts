// v86's PCI restore (src/pci.js, PCI.set_state) remaps every saved BAR that has the I/O bit set
// through the device's BAR descriptor, but v86's IDE controller declares no descriptor for BARs 0
// and 1 while its initial configuration space reads 0x1 there. SeaBIOS's PCI probe zeroes those
// words, so a state saved before it runs (the first few hundred ms of a start) made restore_state
// throw on `undefined.original_bar`, and the runner crashed.

/** The slice of v86's PCI bus (src/pci.js) this touches. */
export interface V86Pci {
  devices: ({ pci_bars: (PciBar | undefined)[] } | undefined)[];
  set_state(state: (Int32Array | undefined)[]): void;
}

interface PciBar {
  original_bar: number;
  size: number;
  entries: unknown[];
}

/** Index of BAR 0 in a device's configuration space, counted in 32-bit words. */
const BAR0_WORD = 4;

/**
 * Makes restore_state take such a state: for the restore only, a BAR that has no descriptor gets an
 * empty one (size 0, so no I/O port moves) and the saved word is restored as it was.
 */
export function restoreAbsentBars(pci: V86Pci): void {
  const setState = pci.set_state.bind(pci);
  pci.set_state = (state) => {
    // Plain loops: both arrays may be sparse, and forEach skips holes.
    const standIns: { bars: (PciBar | undefined)[]; index: number }[] = [];
    for (let id = 0; id < pci.devices.length; id++) {
      const device = pci.devices[id];
      const space = state[id];
      if (!device || !space) continue;
      for (let index = 0; index < device.pci_bars.length; index++) {
        const word = space[BAR0_WORD + index]!;
        if (device.pci_bars[index] || !(word & 1)) continue;
        standIns.push({ bars: device.pci_bars, index });
        device.pci_bars[index] = { original_bar: word, size: 0, entries: [] };
      }
    }
    try {
      setState(state);
    } finally {
      for (const { bars, index } of standIns) bars[index] = undefined;
    }
  };
}
