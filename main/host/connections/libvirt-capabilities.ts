// virsh domcapabilities on a libvirt connection: libvirt's own answer (virConnectGetDomainCapabilities)
// for the domain's emulator, arch, machine and virt type, mapped to the shape Domus's forms use. What
// libvirt's XML does not describe (formats, cache modes, NIC models, inputs, sound, serial types) is
// left to libvirt to check when the definition is saved, so it is offered.
import type { CapabilityChoice, DomainCapabilities } from '../../../shared/capabilities.js';
import { v86Capabilities } from '../capabilities/engines.js';
import { childElements, firstChild, parseXmlTree, textContent, type XmlElement } from '../domain/xml-tree.js';
import { invalidArg, operationFailed } from '../errors.js';
import type { LibvirtConnection, LibvirtMethods } from './libvirt.js';

/** Enum values read per list: libvirt's longest (video models, disk buses) have about ten. */
const MAX_VALUES = 64;
const MAX_VALUE_CHARS = 64;

/** The libvirt QEMU driver cannot plug these into a running guest (qemuDomainAttachDeviceLive). */
const NO_LIVE = ['graphics', 'video', 'sound'] as const;

/** The values of <enum name> under a device element of libvirt's <devices>; undefined when not listed. */
function enumValues(device: XmlElement | undefined, name: string): Set<string> | undefined {
  const list = device && childElements(device, 'enum').find((e) => e.attributes.name === name);
  if (!list) return undefined;
  return new Set(childElements(list, 'value').slice(0, MAX_VALUES).map((v) => textContent(v).trim().slice(0, MAX_VALUE_CHARS)));
}

/**
 * Maps libvirt's <domainCapabilities> XML onto Domus's shape: every choice Domus's forms offer,
 * greyed where libvirt's enums lack it or the device is supported='no'. `where` names the host.
 */
export function mapLibvirtCapabilities(xml: string, where: string): DomainCapabilities {
  const root = parseXmlTree(xml).find((n): n is XmlElement => n.type === 'element' && n.name === 'domainCapabilities');
  if (!root) throw operationFailed(`${where} answered domcapabilities without a <domainCapabilities> element`);
  const devices = firstChild(root, 'devices');
  const device = (name: string) => (devices ? firstChild(devices, name) : undefined);
  const machine = textContent(firstChild(root, 'machine') ?? root).trim().slice(0, MAX_VALUE_CHARS);
  const engine = firstChild(root, 'domain') ? textContent(firstChild(root, 'domain')!).trim().slice(0, MAX_VALUE_CHARS) : 'qemu';

  /** Domus's list for a setting, greyed by what libvirt lists for it (when it lists it). */
  const grey = (list: CapabilityChoice[], element: string, enumName: string | undefined, what: string): CapabilityChoice[] => {
    const el = device(element);
    const values = enumName ? enumValues(el, enumName) : undefined;
    return list.map(({ value, label }) => {
      if (el?.attributes.supported === 'no') return { value, label, unavailable: `libvirt on ${where} does not support ${element} devices` };
      if (values && !values.has(value)) return { value, label, unavailable: `libvirt on ${where} does not offer ${what} '${value}' for this machine` };
      return { value, label };
    });
  };
  // Domus's full lists, every value offered: v86's lists name every value the forms show.
  const all = v86Capabilities();
  const open = (list: CapabilityChoice[]): CapabilityChoice[] => list.map(({ value, label }) => ({ value, label }));
  const hostdev = device('hostdev');
  const subsys = enumValues(hostdev, 'subsysType');
  const usbUnavailable =
    !hostdev || hostdev.attributes.supported === 'no'
      ? `libvirt on ${where} does not support host devices`
      : subsys && !subsys.has('usb')
        ? `libvirt on ${where} does not pass USB devices through`
        : undefined;
  return {
    engine,
    ...(machine && { machine: machine.includes('q35') ? 'q35' : machine.startsWith('pc') ? 'pc' : machine }),
    disk: {
      device: grey(all.disk.device, 'disk', 'diskDevice', 'disk device'),
      bus: grey(all.disk.bus, 'disk', 'bus', 'disk bus'),
      format: open(all.disk.format),
      cache: open(all.disk.cache),
      resize: {},
    },
    interface: { type: open(all.interface.type), model: open(all.interface.model) },
    graphics: { type: grey(all.graphics.type, 'graphics', 'type', 'graphics type') },
    video: { model: grey(all.video.model, 'video', 'modelType', 'video model') },
    input: { device: open(all.input.device) },
    sound: { model: open(all.sound.model) },
    serial: { type: open(all.serial.type) },
    channel: { type: grey(all.channel.type, 'channel', 'type', 'channel type'), target: open(all.channel.target) },
    hostdev: { usb: usbUnavailable ? { unavailable: usbUnavailable } : {} },
    hotplug: Object.fromEntries(NO_LIVE.map((k) => [k, `libvirt's QEMU driver cannot add or remove a ${k} device while the guest runs`])),
    max: {},
  };
}

export function capabilityMethods(conn: LibvirtConnection): LibvirtMethods {
  return {
    'domain.capabilities': async (p) => {
      if (p.engine === 'v86') throw invalidArg(`${conn.uri} runs QEMU guests, not v86`);
      let args = { emulatorbin: null as string | null, arch: null as string | null, machine: null as string | null, virttype: (p.engine as string | undefined) ?? null, flags: 0 };
      if (p.domain !== undefined) {
        const dom = await conn.lookup(p.domain);
        const { xml } = await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags: 0 });
        const root = parseXmlTree(xml as string).find((n): n is XmlElement => n.type === 'element' && n.name === 'domain');
        const type = root && firstChild(root, 'os') && firstChild(firstChild(root, 'os')!, 'type');
        const devices = root && firstChild(root, 'devices');
        const emulator = devices && firstChild(devices, 'emulator');
        args = {
          emulatorbin: emulator ? textContent(emulator).trim() : null,
          arch: type?.attributes.arch ?? null,
          machine: type?.attributes.machine ?? null,
          virttype: root?.attributes.type ?? null,
          flags: 0,
        };
      }
      const { capabilities } = await conn.rpcCall('REMOTE_PROC_CONNECT_GET_DOMAIN_CAPABILITIES', args);
      return { capabilities: mapLibvirtCapabilities(capabilities as string, conn.uri) };
    },
  };
}
