import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { vncPasswordWarnings } from '../../domain/features.js';
import { parseDomainXml } from '../../domain/xml.js';
import { checkV86Support, type EngineSupport } from './support.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../../domain/fixtures/${name}.xml`, import.meta.url), 'utf8');
}

function check(xml: string): EngineSupport {
  const doc = parseDomainXml(xml);
  return checkV86Support(doc.config, doc.root);
}

/** An i686 v86 definition booting a raw hda unless `os`/`devices` say otherwise. */
function v86Xml({
  memory = `<memory unit='MiB'>128</memory>`,
  os = `<type arch='i686'>hvm</type>`,
  devices = `<disk type='file' device='disk'><source file='/images/hd.img'/><target dev='hda' bus='ide'/></disk>`,
} = {}): string {
  return `<domain type='v86'><name>t</name>${memory}<os>${os}</os><devices>${devices}</devices></domain>`;
}

function messages(result: EngineSupport): string[] {
  return result.warnings.map((warning) => warning.message);
}

describe('v86 support: fixtures', () => {
  test('virt-install Debian 12 runs with concise warnings; the qcow2 disk is skipped, the ISO boots', (t) => {
    const result = check(fixture('virt-install-debian12'));
    for (const warning of result.warnings) t.diagnostic(`${warning.element}: ${warning.message}`);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, [
      { element: 'vcpu', message: 'v86 emulates one CPU; the guest gets 1 vCPU instead of 2' },
      { element: 'os/type[@arch]', message: 'v86 is a 32-bit i686 CPU; 64-bit-only guests will not boot' },
      { element: 'memory', message: "memory 2 GiB is more than v86's 32-bit PC can have; the guest gets 2047 MiB" },
      {
        element: "devices/disk[@target='vda']",
        message: 'disk vda is qcow2; v86 needs raw images, so it is skipped',
      },
      { element: "devices/disk[@target='sda']", message: 'CD-ROM sda (sata bus) is attached as IDE' },
      { element: "devices/graphics[@type='spice']", message: 'SPICE is not available; the console uses VNC' },
      {
        element: "devices/controller[@type='usb']",
        message: 'USB controller (qemu-xhci): kept in the definition, not provided by v86',
      },
      {
        element: "devices/channel[@type='spicevmc']",
        message: "channel type 'spicevmc': v86 carries the guest agent channel only, on its virtio console; kept in the definition, not provided by v86",
      },
      {
        element: "devices/input[@type='tablet']",
        message: "input device 'tablet:usb': v86 has no USB; the PS/2 mouse is used; kept in the definition, not provided by v86",
      },
      { element: "devices/sound[@model='ich9']", message: "sound model 'ich9': v86 has a Sound Blaster 16 only (always present); kept in the definition, not provided by v86" },
      {
        element: "devices/video/model[@type='virtio']",
        message: "video model 'virtio': v86 has the standard VGA (stdvga) only; kept in the definition, not provided by v86",
      },
      {
        element: 'devices/redirdev',
        message: 'USB redirection (spicevmc): kept in the definition, not provided by v86',
      },
      { element: 'devices/watchdog', message: 'watchdog (itco): kept in the definition, not provided by v86' },
      {
        element: 'devices/rng',
        message: 'random number generator (virtio): kept in the definition, not provided by v86',
      },
    ]);
  });

  test('implicit buses and PS/2 inputs stay quiet', () => {
    const text = messages(check(fixture('virt-install-debian12'))).join('\n');
    assert.doesNotMatch(text, /pci|pcie|sata controller|virtio-serial|ps2|keyboard|emulator|audio|balloon/i);
  });

  test('running dumpxml: 4 GiB is capped to what v86 can give', (t) => {
    const result = check(fixture('dumpxml-running'));
    for (const warning of result.warnings) t.diagnostic(`${warning.element}: ${warning.message}`);
    assert.deepEqual(result.errors, []);
    assert.ok(messages(result).includes("memory 4 GiB is more than v86's 32-bit PC can have; the guest gets 2047 MiB"));
    assert.ok(messages(result).includes("video model 'cirrus': v86 has the standard VGA (stdvga) only; kept in the definition, not provided by v86"));
    assert.ok(
      messages(result).includes(
        "interface on network 'default' (model e1000): emulated as ne2k_pci, the NIC v86 has besides virtio",
      ),
    );
    assert.ok(!messages(result).some((m) => m.includes('attached as IDE')), 'IDE disks need no warning');
  });

  test('Xen PV with pygrub: pygrub is accepted (run at start), the disks go on IDE', () => {
    const result = check(fixture('xen-pv-pygrub'));
    assert.deepEqual(result.errors, []);
    assert.ok(!messages(result).some((m) => m.includes('bootloader')), messages(result).join('\n'));
    assert.ok(messages(result).some((m) => m.startsWith("Xen paravirtualized guest (os type 'linux')")));
    assert.ok(messages(result).includes('disk xvda (xen bus) is attached as IDE'));
  });

  test('pygrub: needs a disk; a <kernel> wins over it; other boot loaders are not run', () => {
    const pygrub = (devices: string, os = `<type arch='i686'>hvm</type>`): EngineSupport =>
      check(v86Xml({ os, devices }).replace('<os>', '<bootloader>/usr/lib/xen/bin/pygrub</bootloader><os>'));
    assert.deepEqual(pygrub(`<disk device='disk'><source file='/d.img'/><target dev='xvda'/></disk>`).errors, []);
    assert.deepEqual(pygrub(`<disk device='cdrom'><target dev='hdc'/></disk>`).errors, [
      'nothing to boot: no <kernel>, and no disk or CD-ROM with a source image',
    ]);
    const withKernel = pygrub(`<disk device='disk'><source file='/d.img'/><target dev='hda'/></disk>`, `<type>hvm</type><kernel>/k</kernel>`);
    assert.ok(messages(withKernel).includes('bootloader /usr/lib/xen/bin/pygrub is not run: the <kernel> given boots directly'));
    const other = check(v86Xml().replace('<os>', '<bootloader>/usr/bin/grub-xen</bootloader><os>'));
    assert.ok(messages(other).includes('bootloader /usr/bin/grub-xen is not run; v86 boots the disk through its BIOS'));
  });

  test('v86 direct kernel boot needs nothing changed', () => {
    assert.deepEqual(check(fixture('v86-direct-kernel')), { warnings: [], errors: [] });
  });

  test('without the tree, only what DomainConfig models is checked', () => {
    const { config } = parseDomainXml(fixture('virt-install-debian12'));
    const result = checkV86Support(config, undefined);
    assert.deepEqual(result.errors, []);
    assert.equal(result.warnings.length, 6);
  });
});

describe('v86 support: errors', () => {
  test('a qcow2 disk that is the only thing to boot', () => {
    const result = check(
      v86Xml({
        devices: `<disk device='disk'><driver type='qcow2'/><source file='/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
          <disk device='cdrom'><target dev='hdc'/></disk>`,
      }),
    );
    assert.deepEqual(result.errors, ['nothing to boot: v86 needs raw disk images and vda (qcow2) is not raw']);
  });

  test('nothing to boot at all', () => {
    assert.deepEqual(check(v86Xml({ devices: `<disk device='cdrom'><target dev='hdc'/></disk>` })).errors, [
      'nothing to boot: no <kernel>, and no disk or CD-ROM with a source image',
    ]);
  });

  test('more drives than v86 has', () => {
    const disk = (dev: string) => `<disk device='disk'><source file='/${dev}.img'/><target dev='${dev}'/></disk>`;
    const cdrom = (dev: string) => `<disk device='cdrom'><target dev='${dev}'/></disk>`;
    const result = check(v86Xml({ devices: disk('hda') + disk('hdb') + disk('hdd') + cdrom('hdc') + cdrom('sdb') }));
    assert.deepEqual(result.errors, [
      'v86 has two IDE hard disks (hda, hdb); the definition attaches 3',
      'v86 has one IDE CD-ROM drive; the definition attaches 2',
    ]);
  });

  test('skipped qcow2 disks do not take an IDE slot', () => {
    const result = check(
      v86Xml({
        devices: `<disk device='disk'><source file='/a.img'/><target dev='hda'/></disk>
          <disk device='disk'><source file='/b.img'/><target dev='hdb'/></disk>
          <disk device='disk'><driver type='qcow2'/><source file='/c.qcow2'/><target dev='vdc' bus='virtio'/></disk>`,
      }),
    );
    assert.deepEqual(result.errors, []);
    assert.deepEqual(messages(result), ['disk vdc is qcow2; v86 needs raw images, so it is skipped']);
  });

  test('memory limits', () => {
    assert.deepEqual(check(v86Xml({ memory: `<memory unit='MiB'>8</memory>` })).errors, [
      'memory 8 MiB is too small; v86 needs at least 16 MiB',
    ]);
    const big = check(v86Xml({ memory: `<memory unit='GiB'>3</memory>` }));
    assert.deepEqual(big.errors, []);
    assert.deepEqual(messages(big), ["memory 3 GiB is more than v86's 32-bit PC can have; the guest gets 2047 MiB"]);
    assert.deepEqual(messages(check(v86Xml({ memory: `<memory unit='MiB'>2047</memory>` }))), []);
  });

  test('direct kernel boot with an initrd needs more than 64 MiB', () => {
    const os = `<type arch='i686'>hvm</type><kernel>/k/bzImage</kernel><initrd>/k/initrd.gz</initrd>`;
    assert.deepEqual(check(v86Xml({ memory: `<memory unit='MiB'>64</memory>`, os, devices: '' })).errors, [
      'memory 64 MiB is too small for the initrd: v86 loads it at 64 MiB, so memory must exceed 64 MiB plus the initrd size',
    ]);
    assert.deepEqual(check(v86Xml({ memory: `<memory unit='MiB'>96</memory>`, os, devices: '' })).errors, []);
    const noInitrd = `<type arch='i686'>hvm</type><kernel>/k/bzImage</kernel>`;
    assert.deepEqual(check(v86Xml({ memory: `<memory unit='MiB'>32</memory>`, os: noInitrd, devices: '' })).errors, []);
  });

  test('container and non-x86 definitions are refused', () => {
    assert.deepEqual(check(v86Xml({ os: `<type arch='i686'>exe</type><init>/bin/sh</init>` })).errors, [
      "os type 'exe' cannot run on v86, which only runs full PC guests (hvm)",
    ]);
    assert.deepEqual(check(v86Xml({ os: `<type arch='aarch64' machine='virt'>hvm</type>` })).errors, [
      'arch aarch64 cannot run on v86, which emulates a 32-bit x86 (i686) PC',
    ]);
  });
});

describe('v86 support: what libvirt defines but v86 cannot run, and Xen PV', () => {
  test('UEFI firmware is an error, whichever way the definition asks for it; a ROM <loader> is a warning', () => {
    const disk = `<disk device='disk'><source file='/a.img'/><target dev='hda'/></disk>`;
    assert.deepEqual(check(v86Xml({ devices: disk }).replace('<os>', "<os firmware='efi'>")).errors, [
      "UEFI firmware (<os firmware='efi'>): v86 has a BIOS (SeaBIOS) only",
    ]);
    const pflash = `<type arch='i686'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/v/t_VARS.fd</nvram>`;
    assert.deepEqual(check(v86Xml({ os: pflash, devices: disk })).errors, [
      "UEFI firmware (<loader type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>): v86 has a BIOS (SeaBIOS) only",
    ]);
    const rom = check(v86Xml({ os: `<type arch='i686'>hvm</type><loader>/usr/lib/xen/boot/hvmloader</loader>`, devices: disk }));
    assert.deepEqual([rom.errors, messages(rom)], [[], ['loader /usr/lib/xen/boot/hvmloader is not used; v86 boots with its SeaBIOS']]);
  });

  test('network boot: an error when nothing else boots, a warning when a disk does', () => {
    const os = `<type arch='i686'>hvm</type><boot dev='network'/>`;
    assert.deepEqual(check(v86Xml({ os, devices: '' })).errors, [
      "nothing to boot: network boot (<boot dev='network'/>) is not provided by v86, and there is no <kernel> and no disk or CD-ROM with a source image",
    ]);
    const withDisk = check(v86Xml({ os }));
    assert.deepEqual([withDisk.errors, messages(withDisk)], [[], ['network boot (PXE) is not provided by v86; the guest boots from its disks instead']]);
    assert.deepEqual(messages(check(v86Xml({ os: `${os}<boot dev='hd'/>` }))), ['network boot (PXE) is not provided by v86; the other boot devices are tried']);
  });

  test('a SCSI LUN disk is an error', () => {
    const devices = `<disk device='disk'><source file='/a.img'/><target dev='hda'/></disk><disk type='block' device='lun'><source dev='/dev/sdc'/><target dev='sdc' bus='scsi'/></disk>`;
    assert.deepEqual(check(v86Xml({ devices })).errors, ["SCSI LUN passthrough (<disk device='lun'> sdc) is not provided by v86"]);
  });

  test('Xen PV types (linux, xen, xenpvh, and no <os> at all) run as a PC through pygrub', () => {
    const disk = `<devices><disk device='disk'><source file='/pv.img'/><target dev='xvda' bus='xen'/></disk></devices>`;
    for (const os of ['<os><type>linux</type></os>', "<os><type arch='x86_64' machine='xenpvh'>xenpvh</type></os>", '']) {
      const result = check(`<domain type='xen'><name>pv</name><memory>524288</memory><bootloader>pygrub</bootloader>${os}${disk}</domain>`);
      assert.deepEqual(result.errors, [], os);
      assert.ok(messages(result).some((m) => /^Xen paravirtualized guest \(os type '(linux|xenpvh|xen)'\): v86 runs it as a PC/.test(m)), `${os}: ${messages(result).join('; ')}`);
    }
  });
});

describe('v86 support: warnings', () => {
  test('one warning per distinct thing', () => {
    const result = check(
      v86Xml({
        devices: `<disk device='disk'><source file='/a.img'/><target dev='hda'/></disk>
          <controller type='usb' model='ich9-ehci1'/><controller type='usb' model='ich9-ehci1'/>
          <controller type='scsi' model='virtio-scsi'/><controller type='usb' model='none'/>
          <input type='mouse' bus='usb'/><input type='keyboard' bus='usb'/>
          <graphics type='spice'/><graphics type='sdl'/><graphics type='vnc'/>
          <serial type='pty'/><serial type='pty'/>
          <smartcard mode='passthrough' type='spicevmc'/><hostdev mode='subsystem' type='usb'/>
          <filesystem type='mount'/><sound model='sb16'/><video><model type='qxl'/></video>
          <interface type='user'><model type='rtl8139'/></interface>`,
      }),
    );
    assert.deepEqual(result.errors, []);
    assert.deepEqual(messages(result), [
      'SPICE is not available; the console uses VNC',
      'sdl graphics are not available; the console uses VNC',
      'only the first serial port is connected (2 defined)',
      "interface on user: only interfaces on a virtual network (type='network') are connected",
      'USB controller (ich9-ehci1): kept in the definition, not provided by v86',
      'SCSI controller (virtio-scsi): kept in the definition, not provided by v86',
      "input device 'mouse:usb': v86 has no USB; the PS/2 mouse is used; kept in the definition, not provided by v86",
      "input device 'keyboard:usb': v86 has no USB; the PS/2 keyboard is used; kept in the definition, not provided by v86",
      'smartcard (spicevmc): kept in the definition, not provided by v86',
      'USB host device: v86 has no USB; kept in the definition, not provided by v86',
      'shared filesystem (mount): kept in the definition, not provided by v86',
      "video model 'qxl': v86 has the standard VGA (stdvga) only; kept in the definition, not provided by v86",
    ]);
  });

  test("memballoon autodeflate/freePageReporting 'on' are kept but not provided; 'off' is what v86 does", () => {
    const disk = `<disk device='disk'><source file='/a.img'/><target dev='hda'/></disk>`;
    const on = check(v86Xml({ devices: `${disk}<memballoon model='virtio' autodeflate='on' freePageReporting='on'/>` }));
    assert.deepEqual(messages(on), ['balloon autodeflate: kept in the definition, not provided by v86', 'balloon free page reporting: kept in the definition, not provided by v86']);
    assert.deepEqual(messages(check(v86Xml({ devices: `${disk}<memballoon model='virtio' autodeflate='off' freePageReporting='off'/>` }))), []);
  });

  test('a disk without an image is skipped; an empty CD-ROM drive is fine', () => {
    const result = check(
      v86Xml({
        devices: `<disk device='disk'><source file='/a.img'/><target dev='hda'/></disk>
          <disk type='network' device='disk'><source protocol='nbd' name='x'/><target dev='hdb'/></disk>
          <disk device='cdrom'><target dev='hdc'/></disk>`,
      }),
    );
    assert.deepEqual(result, {
      errors: [],
      warnings: [{ element: "devices/disk[@target='hdb']", message: 'disk hdb has no source image and is skipped' }],
    });
  });
});

describe('VNC password length', () => {
  const warnings = (passwd: string) =>
    vncPasswordWarnings(parseDomainXml(`<domain type='v86'><name>p</name><memory unit='MiB'>128</memory><os><type>hvm</type></os><devices><graphics type='vnc' passwd='${passwd}'/></devices></domain>`).config);

  test('warns when the UTF-8 password is longer than the 8 bytes VNC checks, without showing it', () => {
    assert.deepEqual(warnings('12345678'), []);
    assert.deepEqual(warnings('pässwö'), [], '8 bytes in UTF-8');
    const [w] = warnings('pässwör');
    assert.equal(w.element, "devices/graphics[@type='vnc'][@passwd]");
    assert.match(w.message, /9 bytes long .*only the first 8/);
    assert.doesNotMatch(w.message, /pässwör/);
    assert.equal(warnings('123456789').length, 1);
  });
});
