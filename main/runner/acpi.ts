// The ACPI half of clean shutdown. With `acpi: true`, v86 0.5.462 emulates the PIIX4 power-management
// function (PCI 8086:7113, registers at 0xb000) and SeaBIOS builds its own ACPI tables for it: a
// FADT with a fixed-feature power button and a DSDT whose \_S5 is 0. But v86's device only stores
// what the guest writes. This module patches the device of one v86 instance (no fork of v86) so that:
//   * the power button can be pressed: PWRBTN_STS is set and the SCI (IRQ 9, level) is asserted
//     while an enabled status bit is pending, as the guest's ACPI driver expects;
//   * the guest's power-off (SLP_EN with SUS_TYP soft-off in PM1a_CNT) is reported;
//   * the GPE0 status bytes are write-1-to-clear. v86 stores the written value instead, so Linux's
//     "clear all GPE status" at boot marks every GPE as pending; the DSDT's _E01 (PCI hotplug) then
//     reads the unimplemented hotplug ports as 0xFFFFFFFF and ejects every PCI slot: virtio, VGA and
//     IDE devices vanish from the guest.

/** PM1 status / enable bits (ACPI 6.5, 4.8.3.1). */
const TMR_STS = 1 << 0;
const PWRBTN_STS = 1 << 8;
/** PM1 control (PIIX4 PMCNTRL): SUS_EN and SUS_TYP; SUS_TYP 0 is soft off (S5). */
const SLP_EN = 1 << 13;
const SLP_TYP_SHIFT = 10;
const SLP_TYP_MASK = 7;
const SLP_TYP_SOFT_OFF = 0;
/** SeaBIOS's FADT: SCI on ISA IRQ 9; PM1a event block at 0xb000, control at 0xb004, GPE0 at 0xafe0. */
const SCI_IRQ = 9;
const PM1_STS_PORT = 0xb000;
const PM1_EN_PORT = 0xb002;
const PM1_CNT_PORT = 0xb004;
const GPE0_STS_PORTS = [0xafe0, 0xafe1];

/** v86's ACPI device (src/acpi.js), the fields this module touches. */
export interface AcpiPmDevice {
  pm1_status: number;
  pm1_enable: number;
  /** GPE0 status bytes 0-1, enable bytes 2-3. */
  gpe: Uint8Array;
  timer(now: number): number;
}

interface IoPort {
  write8(value: number): void;
  write16(value: number): void;
}

/** The part of v86's CPU object this module uses. */
export interface AcpiCpu {
  io: { ports: IoPort[] };
  devices: { acpi?: AcpiPmDevice };
  device_raise_irq(irq: number): void;
  device_lower_irq(irq: number): void;
}

export interface AcpiControl {
  /**
   * A short press of the power button. The guest decides what to do (nothing, if nobody listens);
   * returns whether the guest has enabled the button (an OS without ACPI support never does).
   */
  pressPowerButton(): boolean;
  /** Machine reset: no power-button press survives it. */
  reset(): void;
}

/**
 * Patches the ACPI device of a v86 CPU (call in the `emulator-ready` listener, before the CPU runs).
 * `onSoftOff` runs inside the guest's port write: defer real work.
 */
export function installAcpi(cpu: AcpiCpu, onSoftOff: () => void): AcpiControl {
  const acpi = cpu.devices.acpi;
  if (!acpi) throw new Error('v86 has no ACPI device (acpi option off)');
  const ports = cpu.io.ports;

  // The SCI is level-triggered: asserted exactly while an enabled status bit is set. v86's own
  // timer() only knows TMR_STS and lowers the line otherwise, so it is re-evaluated after it.
  const pending = () => acpi.pm1_status & acpi.pm1_enable & (TMR_STS | PWRBTN_STS);
  const updateSci = () => (pending() ? cpu.device_raise_irq(SCI_IRQ) : cpu.device_lower_irq(SCI_IRQ));

  const timer = acpi.timer;
  acpi.timer = function (now: number): number {
    const next = timer.call(this, now);
    if (pending()) cpu.device_raise_irq(SCI_IRQ);
    return next;
  };
  const writeStatus = ports[PM1_STS_PORT].write16;
  ports[PM1_STS_PORT].write16 = function (value: number): void {
    writeStatus.call(this, value); // write-1-to-clear in v86 already
    updateSci();
  };
  const writeEnable = ports[PM1_EN_PORT].write16;
  ports[PM1_EN_PORT].write16 = function (value: number): void {
    writeEnable.call(this, value);
    updateSci();
  };
  const writeControl = ports[PM1_CNT_PORT].write16;
  ports[PM1_CNT_PORT].write16 = function (value: number): void {
    writeControl.call(this, value);
    if (value & SLP_EN && ((value >> SLP_TYP_SHIFT) & SLP_TYP_MASK) === SLP_TYP_SOFT_OFF) onSoftOff();
  };
  GPE0_STS_PORTS.forEach((port, i) => {
    ports[port].write8 = (value: number) => {
      acpi.gpe[i] &= ~value;
    };
  });

  return {
    pressPowerButton() {
      acpi.pm1_status |= PWRBTN_STS;
      updateSci();
      return (acpi.pm1_enable & PWRBTN_STS) !== 0;
    },
    reset() {
      acpi.pm1_status = 0;
      acpi.pm1_enable = 0;
      cpu.device_lower_irq(SCI_IRQ);
    },
  };
}
