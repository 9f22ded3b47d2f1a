// The host's USB devices (virsh nodedev-list --cap usb_device), read from sysfs as libvirt's udev
// backend does: one directory per device under bus/usb/devices, interfaces ("1-1:1.0") and hubs skipped.
import fs from 'node:fs';
import path from 'node:path';
import type { HostUsbDevice } from '../../shared/capabilities.js';

/** sysfs attribute files are one short line; a longer one is not what it claims to be. */
const MAX_ATTRIBUTE_BYTES = 256;
/** USB's device class of hubs (bDeviceClass). */
const USB_CLASS_HUB = '09';
/** More devices than any host has: the listing stops there. */
const MAX_DEVICES = 1024;

/** sysfs, or (tests only, DOMUS_TEST set) a fake tree a test built. */
function sysfsRoot(): string {
  return (process.env.DOMUS_TEST && process.env.DOMUS_TEST_SYSFS) || '/sys';
}

function readAttribute(dir: string, name: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, name), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(MAX_ATTRIBUTE_BYTES);
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    return buf.toString('utf8', 0, n).trim();
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export function listUsbDevices(root = sysfsRoot()): HostUsbDevice[] {
  const base = path.join(root, 'bus/usb/devices');
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const devices: HostUsbDevice[] = [];
  for (const name of names.filter((n) => !n.includes(':')).sort()) {
    if (devices.length >= MAX_DEVICES) break;
    const dir = path.join(base, name);
    const bus = Number(readAttribute(dir, 'busnum'));
    const device = Number(readAttribute(dir, 'devnum'));
    const vendorId = readAttribute(dir, 'idVendor')?.toLowerCase();
    const productId = readAttribute(dir, 'idProduct')?.toLowerCase();
    if (!(Number.isInteger(bus) && bus > 0 && Number.isInteger(device) && device > 0)) continue;
    if (!vendorId || !/^[0-9a-f]{4}$/.test(vendorId) || !productId || !/^[0-9a-f]{4}$/.test(productId)) continue;
    // Hubs (root hubs included) are the host's own wiring: QEMU's usb-host does not pass them through.
    if (readAttribute(dir, 'bDeviceClass') === USB_CLASS_HUB) continue;
    const vendor = readAttribute(dir, 'manufacturer');
    const product = readAttribute(dir, 'product');
    devices.push({ bus, device, vendorId, productId, ...(vendor && { vendor }), ...(product && { product }) });
  }
  return devices.sort((a, b) => a.bus - b.bus || a.device - b.device);
}
