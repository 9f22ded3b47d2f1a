// Checking one libvirt device element against an engine's capabilities: the reason the engine
// cannot provide it, in the words the forms grey the same choice with.
import type { CapabilityChoice, DomainCapabilities } from '../../../shared/capabilities.js';
import { DEVICE_KINDS, type DeviceKind } from '../../../shared/capabilities.js';
import { firstChild, type XmlElement } from '../domain/xml.js';
import { V86_ONLY_AGENT } from './engines.js';

/** The reason `value` cannot be had from `list`, naming the setting; undefined when it can. */
export function choiceProblem(what: string, list: CapabilityChoice[], value: string): string | undefined {
  const found = list.find((c) => c.value === value);
  if (!found) return `${what} '${value}' is not one this engine knows (${list.map((c) => c.value).join(', ')})`;
  return found.unavailable && `${what} '${value}': ${found.unavailable}`;
}

/** libvirt's default bus of an <input> without one on x86: a tablet is USB, the rest PS/2. */
export function inputKey(input: XmlElement): string {
  const type = input.attributes.type ?? 'mouse';
  return `${type}:${input.attributes.bus ?? (type === 'tablet' ? 'usb' : 'ps2')}`;
}

/**
 * The reason `caps`' engine cannot provide the device `element` (a <disk>, <interface>, <video>…),
 * or undefined when it can. Elements of kinds the capabilities do not describe (controllers, rng…)
 * are left to the engine's own definition checks.
 */
export function checkDevice(caps: DomainCapabilities, element: XmlElement): string | undefined {
  if (!(DEVICE_KINDS as readonly string[]).includes(element.name)) return undefined;
  const kind = element.name as DeviceKind;
  const a = element.attributes;
  const problems: (string | undefined)[] = [];
  switch (kind) {
    case 'disk': {
      const driver = firstChild(element, 'driver')?.attributes;
      const bus = firstChild(element, 'target')?.attributes.bus;
      problems.push(choiceProblem('disk device', caps.disk.device, a.device ?? 'disk'));
      if (bus) problems.push(choiceProblem('disk bus', caps.disk.bus, bus));
      // libvirt's 'iso' is a raw CD image.
      if (driver?.type) problems.push(choiceProblem('disk format', caps.disk.format, driver.type === 'iso' ? 'raw' : driver.type));
      if (driver?.cache) problems.push(choiceProblem('disk cache mode', caps.disk.cache, driver.cache));
      break;
    }
    case 'interface':
      problems.push(choiceProblem('interface type', caps.interface.type, a.type ?? ''));
      {
        const model = firstChild(element, 'model')?.attributes.type;
        if (model) problems.push(choiceProblem('interface model', caps.interface.model, model));
      }
      break;
    case 'graphics':
      problems.push(choiceProblem('graphics type', caps.graphics.type, a.type ?? ''));
      break;
    case 'video': {
      const model = firstChild(element, 'model')?.attributes.type;
      if (model) problems.push(choiceProblem('video model', caps.video.model, model));
      break;
    }
    case 'input':
      problems.push(choiceProblem('input device', caps.input.device, inputKey(element)));
      break;
    case 'sound':
      problems.push(choiceProblem('sound model', caps.sound.model, a.model ?? ''));
      break;
    case 'serial':
      problems.push(choiceProblem('serial port type', caps.serial.type, a.type ?? 'pty'));
      break;
    case 'channel': {
      const typeProblem = choiceProblem('channel type', caps.channel.type, a.type ?? '');
      // The type's reason is enough; the name's would mostly repeat it.
      if (typeProblem) {
        problems.push(typeProblem);
        break;
      }
      const target = firstChild(element, 'target')?.attributes;
      const name = target?.name ?? '';
      // Names beyond the well-known ones are the guest's own ports: v86 carries none of them.
      if (caps.channel.target.some((c) => c.value === name)) problems.push(choiceProblem('channel', caps.channel.target, name));
      else if (caps.engine === 'v86') problems.push(`channel '${name}': ${V86_ONLY_AGENT}`);
      break;
    }
    case 'hostdev':
      if (a.mode !== 'subsystem' || a.type !== 'usb') problems.push(`host device ${a.type ?? ''}: only USB devices (<hostdev mode='subsystem' type='usb'>) can be passed through`);
      else if (caps.hostdev.usb.unavailable) problems.push(`USB host device: ${caps.hostdev.usb.unavailable}`);
      break;
  }
  const found = problems.filter((p): p is string => p !== undefined);
  return found.length ? found.join('; ') : undefined;
}
