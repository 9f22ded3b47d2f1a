// Turns the New VM dialog's spec into libvirt domain XML, as virt-install does for its options.
import type { NewDomainSpec } from '../../shared/api.js';

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

export function specToXml(spec: NewDomainSpec): string {
  const kib = spec.memoryMiB * 1024;
  const os: string[] = ['    <type arch="i686">hvm</type>'];
  const disks: string[] = [];
  const disk = (device: 'disk' | 'cdrom', file: string, dev: string): string =>
    [
      `    <disk type="file" device="${device}">`,
      '      <driver name="v86" type="raw"/>',
      `      <source file="${esc(file)}"/>`,
      `      <target dev="${dev}" bus="ide"/>`,
      device === 'cdrom' ? '      <readonly/>\n    </disk>' : '    </disk>',
    ].join('\n');
  switch (spec.boot.kind) {
    case 'pv':
      os.push(`    <kernel>${esc(spec.boot.kernel)}</kernel>`);
      if (spec.boot.initrd) os.push(`    <initrd>${esc(spec.boot.initrd)}</initrd>`);
      if (spec.boot.cmdline) os.push(`    <cmdline>${esc(spec.boot.cmdline)}</cmdline>`);
      break;
    case 'cdrom':
      os.push('    <boot dev="cdrom"/>', '    <boot dev="hd"/>');
      disks.push(disk('cdrom', spec.boot.iso, 'hdc'));
      if (spec.boot.disk) disks.push(disk('disk', spec.boot.disk, 'hda'));
      break;
    case 'disk':
      os.push('    <boot dev="hd"/>');
      disks.push(disk('disk', spec.boot.disk, 'hda'));
      break;
  }
  return [
    '<domain type="v86">',
    `  <name>${esc(spec.name)}</name>`,
    `  <memory unit="KiB">${kib}</memory>`,
    `  <currentMemory unit="KiB">${kib}</currentMemory>`,
    `  <vcpu>${spec.vcpus}</vcpu>`,
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
