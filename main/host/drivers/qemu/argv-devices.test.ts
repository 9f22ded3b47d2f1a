import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import { qemuCapabilities } from '../../capabilities/engines.js';
import { parseDomainXml } from '../../domain/xml.js';
import { buildArgv } from './argv.js';

const HDA = `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/b.img'/><target dev='hda' bus='ide'/></disk>`;

function build(devices: string, machine = 'pc-i440fx-7.2', caps?: ReturnType<typeof qemuCapabilities>, incoming = false) {
  const xml =
    `<domain type='qemu'><name>d</name><uuid>9e0b5c3a-1d9e-4a55-9a35-2f7c1b3e6a01</uuid><memory unit='MiB'>256</memory>` +
    `<os><type arch='x86_64' machine='${machine}'>hvm</type></os><devices>${HDA}${devices}</devices></domain>`;
  const built = buildArgv(parseDomainXml(xml), { stateDir: '/run/d', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/sw/${n}.sock`, caps, incoming });
  return { ...built, joined: built.argv.join(' '), warnings: built.report.warnings.map((w) => w.message) };
}

/** The values of every `-device` (or other option) in argv. */
function values(argv: string[], option: string): string[] {
  return argv.flatMap((a, i) => (a === option ? [argv[i + 1]!] : []));
}

describe('QEMU devices on the command line', () => {
  it('video: each model its device; none: no display; absent: VGA', () => {
    const first = values(build(`<memballoon model='virtio'/><sound model='ac97'/>`).argv, '-device');
    assert.deepEqual(first.slice(0, 3), ['pvpanic', 'VGA,id=video0', 'virtio-balloon-pci,id=balloon0'], "the display is the first PCI device, as before: saved states' layout");
    for (const [model, device] of [['cirrus', 'cirrus-vga'], ['virtio', 'virtio-vga'], ['bochs', 'bochs-display'], ['qxl', 'qxl-vga'], ['vga', 'VGA']]) {
      assert.ok(values(build(`<video><model type='${model}'/></video>`).argv, '-device').includes(`${device},id=video0`), model);
    }
    assert.ok(!values(build(`<video><model type='none'/></video>`).argv, '-device').some((d) => d.includes('video0')));
    const noQxl = qemuCapabilities({ devices: new Set(['VGA']) });
    const greyed = build(`<video><model type='qxl'/></video>`, 'pc', noQxl);
    assert.ok(values(greyed.argv, '-device').includes('VGA,id=video0'));
    assert.ok(greyed.warnings.some((w) => /video model 'qxl': this QEMU has no qxl-vga device/.test(w)));
  });

  it('sound: HDA with its codec, AC97, ES1370, SB16, all on -audiodev none', () => {
    const { argv, report } = build(`<sound model='ich9'/><sound model='ac97'/><sound model='es1370'/><sound model='sb16'/><sound model='ich6'/>`);
    assert.deepEqual(report.errors, []);
    assert.deepEqual(values(argv, '-audiodev'), ['none,id=audio0']);
    const devices = values(argv, '-device');
    for (const d of ['ich9-intel-hda,id=sound0', 'hda-duplex,id=sound0-codec0,bus=sound0.0,cad=0,audiodev=audio0', 'AC97,id=sound1,audiodev=audio0', 'ES1370,id=sound2,audiodev=audio0', 'sb16,id=sound3,audiodev=audio0', 'intel-hda,id=sound4']) {
      assert.ok(devices.includes(d), d);
    }
    assert.ok(build(`<sound model='pcspk'/>`).warnings.some((w) => /sound model 'pcspk' is not one QEMU here provides/.test(w)));
  });

  it('inputs: USB ones on a USB controller added as libvirt does, virtio ones on PCI, PS/2 built in', () => {
    const { argv } = build(`<input type='tablet' bus='usb'/><input type='keyboard' bus='virtio'/><input type='mouse' bus='ps2'/><input type='mouse' bus='virtio'/>`);
    const devices = values(argv, '-device');
    assert.ok(devices.includes('piix3-usb-uhci,id=usb0'), "libvirt's default USB controller on pc");
    assert.ok(devices.includes('usb-tablet,id=input0,bus=usb0.0'));
    assert.ok(devices.includes('virtio-keyboard-pci,id=input1'));
    assert.ok(devices.includes('virtio-mouse-pci,id=input3'));
    assert.equal(devices.filter((d) => d.startsWith('usb-') || d.startsWith('virtio-') && d.includes('input')).length, 3);
    assert.ok(values(build(`<input type='tablet' bus='usb'/>`, 'pc-q35-7.2').argv, '-device').includes('qemu-xhci,id=usb0'), 'on q35');
  });

  it('USB controllers by model; none refuses a USB device', () => {
    for (const [model, device] of [['qemu-xhci', 'qemu-xhci'], ['nec-xhci', 'nec-usb-xhci'], ['ich9-ehci1', 'ich9-usb-ehci1'], ['piix3-uhci', 'piix3-usb-uhci']]) {
      assert.ok(values(build(`<controller type='usb' index='0' model='${model}'/>`).argv, '-device').includes(`${device},id=usb0`), model);
    }
    assert.ok(!build(`<controller type='usb' model='none'/>`).joined.includes('usb0'));
    assert.match(build(`<controller type='usb' model='none'/><input type='tablet' bus='usb'/>`).report.errors.join(), /needs a USB controller.*model='none'/);
  });

  it('USB host devices by vendor:product or bus/address; bad ids are errors', () => {
    const { argv } = build(
      `<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xC52b'/></source></hostdev>` +
        `<hostdev mode='subsystem' type='usb'><source><address bus='1' device='7'/></source></hostdev>`,
    );
    const devices = values(argv, '-device');
    assert.ok(devices.includes('qemu-xhci,id=usb0') || devices.includes('piix3-usb-uhci,id=usb0'));
    assert.ok(devices.includes('usb-host,vendorid=0x046d,productid=0xC52b,id=hostdev0,bus=usb0.0'));
    assert.ok(devices.includes('usb-host,hostbus=1,hostaddr=7,id=hostdev1,bus=usb0.0'));
    assert.match(build(`<hostdev mode='subsystem' type='usb'><source><vendor id='46d'/><product id='0xc52b'/></source></hostdev>`).report.errors.join(), /four hex digits/);
    assert.ok(build(`<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>`).warnings.some((w) => /only USB devices/.test(w)));
  });

  it("serial ports after Domus's console: pty, file, null, unix in the run directory; tcp is not provided", () => {
    const { argv, report, warnings } = build(
      `<serial type='pty'><target port='0'/></serial><serial type='pty'/><serial type='file'><source path='/var/log/s,2.log'/></serial><serial type='null'/><serial type='unix'><source mode='bind' path='/elsewhere.sock'/></serial>`,
    );
    assert.deepEqual(report.errors, []);
    const chardevs = values(argv, '-chardev');
    assert.match(chardevs[0]!, /^pipe,id=serial0,path=\/run\/d\/serial$/, "the first is Domus's console");
    assert.deepEqual(chardevs.slice(1), ['pty,id=serial1', 'file,id=serial2,path=/var/log/s,,2.log,append=on', 'null,id=serial3']);
    assert.ok(values(argv, '-device').includes('isa-serial,chardev=serial3,id=serial3,index=3'));
    assert.ok(warnings.some((w) => /the PC has 4 serial ports; serial port 4 is not connected/.test(w)));
    const unix = build(`<serial type='pty'/><serial type='unix'/><serial type='tcp'><source mode='bind' host='0.0.0.0' service='4555'/></serial>`);
    assert.ok(values(unix.argv, '-chardev').includes('socket,id=serial1,path=/run/d/serial1.sock,server=on,wait=off'));
    assert.ok(unix.warnings.some((w) => /serial port 2: type 'tcp' is not provided/.test(w)));
  });

  it('channels: virtio-serial ports on unix sockets in the run directory, or a pty', () => {
    const { argv, warnings } = build(
      `<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>` +
        `<channel type='pty'><target type='virtio' name='org.example.port'/></channel>` +
        `<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>`,
      'pc',
      qemuCapabilities({ devices: new Set(['VGA', 'virtio-serial-pci', 'virtserialport']) }),
    );
    const devices = values(argv, '-device');
    assert.equal(devices.filter((d) => d.startsWith('virtio-serial-pci')).length, 1);
    assert.ok(values(argv, '-chardev').includes('socket,id=channel0,path=/run/d/channel0.sock,server=on,wait=off'));
    assert.ok(devices.includes('virtserialport,bus=virtio-serial0.0,nr=1,chardev=channel0,id=channel0,name=org.qemu.guest_agent.0'));
    assert.ok(devices.includes('virtserialport,bus=virtio-serial0.0,nr=2,chardev=channel1,id=channel1,name=org.example.port'));
    assert.ok(values(argv, '-chardev').includes('pty,id=channel1'));
    assert.ok(warnings.some((w) => /channel type 'spicevmc'.*SPICE is not provided/.test(w)));
    assert.match(build(`<channel type='unix'><target type='virtio' name='a,b'/></channel>`).report.errors.join(), /not a virtio-serial port name/);
  });

  it('disks: cache modes on -drive; SCSI on virtio-scsi, USB as usb-storage, SATA on q35', () => {
    const { argv, report } = build(
      `<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='writeback'/><source file='/img/s.qcow2'/><target dev='sda' bus='scsi'/></disk>` +
        `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/img/c.iso'/><target dev='sdb' bus='scsi'/><readonly/></disk>` +
        `<disk type='file' device='disk'><driver name='qemu' type='raw' cache='unsafe'/><source file='/img/u.img'/><target dev='sdc' bus='usb'/></disk>`,
    );
    assert.deepEqual(report.errors, []);
    const drives = values(argv, '-drive');
    const devices = values(argv, '-device');
    assert.ok(drives.includes('if=none,media=disk,file=/img/s.qcow2,format=qcow2,cache=writeback,id=drive-sda'));
    assert.ok(drives.includes('if=none,media=cdrom,file=/img/c.iso,format=raw,readonly=on,id=drive-sdb'));
    assert.ok(devices.includes('virtio-scsi-pci,id=scsi0'));
    assert.ok(devices.includes('scsi-hd,bus=scsi0.0,drive=drive-sda,id=sda'));
    assert.ok(devices.includes('scsi-cd,bus=scsi0.0,drive=drive-sdb,id=sdb'));
    assert.ok(drives.includes('if=none,file=/img/u.img,format=raw,cache=unsafe,id=drive-sdc'));
    assert.ok(devices.includes('usb-storage,bus=usb0.0,drive=drive-sdc,id=sdc'));
    assert.match(build(`<disk type='file' device='disk'><driver type='raw' cache='fast'/><source file='/img/x.img'/><target dev='hdb'/></disk>`).report.errors.join(), /cache mode 'fast' is not one QEMU takes/);
    const q35 = build(`<disk type='file' device='disk'><driver type='raw' cache='none'/><source file='/img/x.img'/><target dev='sdd' bus='sata'/></disk>`, 'pc-q35-7.2');
    assert.ok(values(q35.argv, '-drive').some((d) => d.startsWith('if=ide,') && d.includes('cache=none,id=drive-sdd')));
    assert.deepEqual(q35.warnings, []);
  });

  it('serial ports at their <target port>; a file port appends, and one that is not a regular file is refused', () => {
    const ports = build(`<serial type='pty'/><serial type='null'><target port='3'/></serial><serial type='pty'/><serial type='pty'><target port='3'/></serial>`);
    const devices = values(ports.argv, '-device');
    assert.ok(devices.includes('isa-serial,chardev=serial3,id=serial3,index=3'), 'the port the definition gives');
    assert.ok(devices.includes('isa-serial,chardev=serial1,id=serial1,index=1'), 'the next free port');
    assert.ok(ports.warnings.some((w) => /serial port 3 is given twice/.test(w)));
    for (const file of ['/dev/null', os.tmpdir()]) {
      const { report } = build(`<serial type='pty'/><serial type='file'><source path='${file}'/></serial>`);
      assert.match(report.errors.join(), new RegExp(`serial port 1: '${file}' exists and is not a regular file`), file);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'serial-'));
    try {
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      assert.match(build(`<serial type='pty'/><serial type='file'><source path='${fifo}'/></serial>`).report.errors.join(), /exists and is not a regular file/);
      const log = path.join(dir, 'log');
      fs.writeFileSync(log, 'kept');
      assert.ok(values(build(`<serial type='pty'/><serial type='file'><source path='${log}'/></serial>`).argv, '-chardev').includes(`file,id=serial1,path=${log},append=on`));
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('the NICs are the last PCI devices, where a hot-plugged one lands, so a restore rebuilds the same layout', () => {
    const { argv, report } = build(
      `<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/><model type='virtio'/></interface>` +
        `<sound model='ich9'/><input type='tablet' bus='virtio'/><input type='tablet' bus='usb'/>` +
        `<disk type='file' device='disk'><driver type='raw'/><source file='/img/s.img'/><target dev='sda' bus='scsi'/></disk>` +
        `<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`,
    );
    assert.deepEqual(report.errors, []);
    const devices = values(argv, '-device');
    const nic = devices.findIndex((d) => d.startsWith('virtio-net-pci,'));
    assert.ok(nic >= 0);
    for (const before of ['ich9-intel-hda', 'virtio-tablet-pci', 'piix3-usb-uhci', 'virtio-scsi-pci', 'virtio-serial-pci']) {
      const at = devices.findIndex((d) => d.startsWith(`${before},`));
      assert.ok(at >= 0 && at < nic, `${before} before the NIC`);
    }
  });

  it('restore and incoming migration: a device this QEMU lacks is an error, not left out', () => {
    const noSound = qemuCapabilities({ devices: new Set(['VGA']) });
    const started = build(`<sound model='ac97'/>`, 'pc', noSound);
    assert.deepEqual(started.report.errors, []);
    assert.ok(started.warnings.some((w) => /no AC97 device/.test(w)));
    const restored = build(`<sound model='ac97'/>`, 'pc', noSound, true);
    assert.match(restored.report.errors.join(), /this QEMU has no AC97 device.*cannot be left out/);
  });
});
