// Test support for migration: whether an engine of this build can migrate at all.
import { QemuDriver } from '../host/drivers/qemu/driver.js';
import { V86Driver } from '../host/drivers/v86/driver.js';
import { engineSkip } from './harness.js';

/** A skip message when the engine cannot run here, or its driver has no migration side (its branch not merged yet). */
export function migrationSkip(engine: 'v86' | 'qemu'): string | false {
  const driver = engine === 'qemu' ? QemuDriver.prototype : V86Driver.prototype;
  return 'prepareIncoming' in driver ? engineSkip(engine) : `the ${engine} engine has no migration side in this build`;
}
