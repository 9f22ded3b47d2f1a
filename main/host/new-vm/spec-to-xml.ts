// Turns the New VM wizard's spec into libvirt domain XML, as virt-install does for its options.
// An install from media gives two definitions, as virt-install makes them: the persistent (final)
// one boots the disk with the CD-ROM ejected and carries a Domus note that the install is pending;
// the install-time one (install-boot.ts) is derived from it at start and only ever runs live.
import type { NewDomainSpec } from '../../../shared/api.js';
import { DOMUS_NS } from '../domain/domus-metadata.js';

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** Image format from the file name, as virt-install guesses it for an existing path. */
export function diskFormat(file: string): 'raw' | 'qcow2' {
  return /\.qcow2?$/i.test(file) ? 'qcow2' : 'raw';
}

export function specToXml(spec: NewDomainSpec): string {
  const kib = spec.memoryMiB * 1024;
  const v86 = spec.engine === 'v86';
  const arch = v86 ? 'i686' : 'x86_64';
  const driver = v86 ? 'v86' : 'qemu';
  const os: string[] = [`    <type arch="${arch}">hvm</type>`];
  const top: string[] = [];
  const metadata: string[] = [];
  const disks: string[] = [];
  const disk = (device: 'disk' | 'cdrom', file: string | undefined, dev: string): string =>
    [
      `    <disk type="file" device="${device}">`,
      `      <driver name="${driver}" type="${file && device === 'disk' ? diskFormat(file) : 'raw'}"/>`,
      ...(file ? [`      <source file="${esc(file)}"/>`] : []),
      `      <target dev="${dev}" bus="ide"/>`,
      device === 'cdrom' ? '      <readonly/>\n    </disk>' : '    </disk>',
    ].join('\n');
  const { boot } = spec;
  switch (boot.kind) {
    case 'pv':
      os.push(`    <kernel>${esc(boot.kernel)}</kernel>`);
      if (boot.initrd) os.push(`    <initrd>${esc(boot.initrd)}</initrd>`);
      if (boot.cmdline) os.push(`    <cmdline>${esc(boot.cmdline)}</cmdline>`);
      break;
    case 'cdrom':
      os.push('    <boot dev="cdrom"/>', '    <boot dev="hd"/>');
      if (boot.disk) disks.push(disk('disk', boot.disk, 'hda'));
      disks.push(disk('cdrom', boot.iso, 'hdc'));
      break;
    case 'install':
      // The final definition: the disk boots, the drive stays for later media, empty.
      os.push('    <boot dev="hd"/>');
      disks.push(disk('disk', boot.disk, 'hda'), disk('cdrom', undefined, 'hdc'));
      metadata.push(`    <domus:install xmlns:domus="${DOMUS_NS}" media="${esc(boot.iso)}"/>`);
      break;
    case 'disk':
      os.push('    <boot dev="hd"/>');
      disks.push(disk('disk', boot.disk, 'hda'));
      break;
    case 'pygrub':
      // Xen's way: the bootloader reads the kernel, initrd and arguments from the guest's disk.
      top.push('  <bootloader>pygrub</bootloader>');
      if (boot.entry !== undefined) top.push(`  <bootloader_args>--entry=${boot.entry}</bootloader_args>`);
      disks.push(disk('disk', boot.disk, 'hda'));
      break;
  }
  // On a virtual network virtio on both engines: the v86 runner and the sample guests' kernels
  // drive it (main/host/network.test.ts); user-mode keeps the models each engine has always had.
  const nic =
    spec.network === 'none'
      ? []
      : spec.network === 'user'
        ? [`    <interface type="user">`, `      <model type="${spec.nicModel ?? (v86 ? 'ne2k_pci' : 'e1000')}"/>`, '    </interface>']
        : [`    <interface type="network">`, `      <source network="${esc(spec.network.network)}"/>`, `      <model type="${spec.nicModel ?? 'virtio'}"/>`, '    </interface>'];
  return [
    `<domain type="${spec.engine}">`,
    `  <name>${esc(spec.name)}</name>`,
    ...(metadata.length || spec.os ? ['  <metadata>', ...metadata, ...(spec.os ? [osElement(spec.os)] : []), '  </metadata>'] : []),
    `  <memory unit="KiB">${kib}</memory>`,
    `  <currentMemory unit="KiB">${kib}</currentMemory>`,
    `  <vcpu>${spec.vcpus}</vcpu>`,
    ...top,
    '  <os>',
    ...os,
    '  </os>',
    '  <features>',
    '    <acpi/>',
    '  </features>',
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    ...disks,
    ...nic,
    '    <serial type="pty"><target port="0"/></serial>',
    '    <console type="pty"><target type="serial" port="0"/></console>',
    '    <channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>',
    '    <video><model type="vga"/></video>',
    '    <memballoon model="virtio"/>',
    '  </devices>',
    '</domain>',
    '',
  ].join('\n');
}

/**
 * The OS as virt-install records it (libosinfo's namespace), so other tools see it too: an osinfo-db
 * id as it is, a catalogue id (not libosinfo's) as domus:<id>.
 */
function osElement(id: string): string {
  const osId = id.includes('://') ? id : `domus:${id}`;
  return `    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0"><libosinfo:os id="${esc(osId)}"/></libosinfo:libosinfo>`;
}
