// Guest features every engine reads the same way from a definition: ACPI, the guest agent's
// channel, VNC password limits, UEFI firmware and SCSI LUN disks.
import type { DefinitionWarning, DomainConfig } from '../../../shared/domain.js';
import { VNC_PASSWORD_BYTES } from '../../common/vnc-auth.js';
import { childElements, firstChild, type XmlElement } from './xml.js';

/** Xen's paravirtualized <os><type> values (libvirt's ostypexen); PVH guests are PV kernels in a PC-like container. */
export const XEN_PV_OS_TYPES = new Set(['xen', 'linux', 'xenpvh']);

/** libvirt's name for the guest agent's channel (<channel><target type='virtio' name=.../>). */
export const GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0';

/** As with libvirt, a guest has ACPI only when its XML says <features><acpi/>. */
export function hasAcpi(doc: { root: XmlElement }): boolean {
  const features = firstChild(doc.root, 'features');
  return features !== undefined && firstChild(features, 'acpi') !== undefined;
}

/** The guest agent's channel, as virt-install writes it (<channel><target name='org.qemu.guest_agent.0'/>). */
export function hasAgentChannel(doc: { root: XmlElement }): boolean {
  const devices = firstChild(doc.root, 'devices');
  return (devices ? childElements(devices, 'channel') : []).some((c) => firstChild(c, 'target')?.attributes.name === GUEST_AGENT_CHANNEL);
}

/**
 * On every engine, VNC authentication keys DES with the first 8 bytes of the password's UTF-8
 * (QEMU does the same): the rest of a longer password is not checked, and the user should know.
 */
export function vncPasswordWarnings(config: DomainConfig): DefinitionWarning[] {
  return config.graphics.flatMap((g) => {
    const bytes = g.type === 'vnc' && g.passwd ? Buffer.byteLength(g.passwd, 'utf8') : 0;
    if (bytes <= VNC_PASSWORD_BYTES) return [];
    return [
      {
        element: "devices/graphics[@type='vnc'][@passwd]",
        message: `the VNC password is ${bytes} bytes long (UTF-8); VNC authentication checks only the first ${VNC_PASSWORD_BYTES}`,
      },
    ];
  });
}

/** How a definition asks for UEFI, for messages: its pflash <loader>, else libvirt's <os firmware='efi'>. */
export function uefiSource(config: DomainConfig): string {
  const { loader } = config.os;
  return loader?.type === 'pflash' ? `<loader type='pflash'>${loader.path ?? ''}</loader>` : "<os firmware='efi'>";
}

/** Targets of <disk device='lun'> (SCSI passthrough of a host LUN), which the typed config leaves out of its disks. */
export function lunDisks(root: XmlElement): string[] {
  const devices = firstChild(root, 'devices');
  return (devices ? childElements(devices, 'disk') : [])
    .filter((d) => d.attributes.device === 'lun')
    .map((d) => firstChild(d, 'target')?.attributes.dev ?? '?');
}
