// The QEMU engine: definition → command line, the QMP client against a real QEMU, and through the
// host: missing QEMU falls back to v86 and says so, a QEMU that refuses its arguments fails the
// start with its stderr in the domain log, KVM domains say which accelerator runs them,
// domxml-to-native. Lifecycle, console and save/restore run in the engine-parameterised host tests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SAMPLE_CMDLINE, TestHost, createOn, engineSkip, guest, until } from '../../../testing/harness.js';
import { parseDomainXml } from '../../domain/xml.js';
import { buildArgv } from './argv.js';
import { ensureVarsStore } from './uefi.js';
import { findQemu } from './binary.js';
import { QmpClient, QmpError } from './qmp.js';

const skip = engineSkip('qemu');

const xml = (devices: string, extra = ''): string =>
  `<domain type='qemu'><name>a,b</name><uuid>9e0b5c3a-1d9e-4a55-9a35-2f7c1b3e6a01</uuid><memory unit='MiB'>256</memory><vcpu>2</vcpu>` +
  `<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><boot dev='cdrom'/><boot dev='hd'/></os><features><acpi/></features>${extra}<devices>${devices}</devices></domain>`;

describe('QEMU command line from a definition', () => {
  it('maps memory, CPUs, machine, disks by bus, CD-ROM, boot order and sockets; escapes commas', () => {
    const doc = parseDomainXml(
      xml(
        `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/a,1.qcow2'/><target dev='vda' bus='virtio'/></disk>` +
          `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/img/x.iso'/><target dev='sdb' bus='sata'/><readonly/></disk>` +
          `<disk type='file' device='disk'><driver type='raw'/><source file='/img/b.img'/><target dev='hda' bus='ide'/></disk>` +
          `<interface type='network'><source network='default'/><model type='virtio'/></interface><memballoon model='virtio'/>`,
      ),
    );
    const { argv, report } = buildArgv(doc, { stateDir: '/run/x', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
    const joined = argv.join(' ');
    assert.deepEqual(report.errors, []);
    assert.match(joined, /-name guest=a,,b,debug-threads=on/);
    assert.match(joined, /-machine q35,acpi=on -accel tcg -cpu max -m 256 -smp 2 -nodefaults -no-user-config/);
    assert.match(joined, /-drive if=virtio,index=0,file=\/img\/a,,1\.qcow2,format=qcow2/);
    assert.match(joined, /-drive if=ide,index=0,media=disk,file=\/img\/b\.img,format=raw/);
    assert.match(joined, /-drive if=ide,index=1,media=cdrom,file=\/img\/x\.iso,format=raw,readonly=on,id=drive-sdb /);
    assert.match(joined, /-boot order=dc/);
    assert.match(joined, /-qmp unix:\/run\/x\/qmp\.sock,server=on,wait=off/);
    assert.match(joined, /-vnc unix:\/run\/x\/vnc\.sock/);
    assert.match(joined, / -chardev pipe,id=serial0,path=\/run\/x\/serial -serial chardev:serial0 /);
    assert.ok(argv.includes('virtio-balloon-pci,id=balloon0'), "as libvirt: no deflate-on-oom or free-page-reporting unless <memballoon> asks");
    assert.ok(argv.includes('-S'), 'always starts stopped');
    assert.match(joined, /-netdev stream,id=net0,server=off,addr\.type=unix,addr\.path=\/run\/networks\/default\/ports\.sock -device virtio-net-pci,netdev=net0,mac=52:54:00:[0-9a-f:]{8},id=nic0/);
    assert.deepEqual(report.warnings, []);
  });

  it('connects only network interfaces, with their MACs and models; refuses a model QEMU lacks', () => {
    const disk = `<disk type='file' device='disk'><source file='/img/b.img'/><target dev='hda'/></disk>`;
    const build = (ifaces: string) => buildArgv(parseDomainXml(xml(disk + ifaces)), { stateDir: '/r', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/sw/${n}.sock` });
    const { argv, report } = build(
      `<interface type='network'><mac address='52:54:00:AA:BB:01'/><source network='default'/></interface>` +
        `<interface type='network'><mac address='52:54:00:aa:bb:02'/><source network='other'/><model type='ne2k_pci'/></interface>` +
        `<interface type='user'><model type='e1000'/></interface>`,
    );
    const joined = argv.join(' ');
    assert.match(joined, /-netdev stream,id=net0,server=off,addr\.type=unix,addr\.path=\/sw\/default\.sock -device e1000,netdev=net0,mac=52:54:00:aa:bb:01,id=nic0/);
    assert.match(joined, /-netdev stream,id=net1,server=off,addr\.type=unix,addr\.path=\/sw\/other\.sock -device ne2k_pci,netdev=net1,mac=52:54:00:aa:bb:02,id=nic1/);
    assert.deepEqual(report.warnings.map((w) => w.message), ["interface on user: only interfaces on a virtual network (type='network') are connected"]);
    assert.deepEqual(build(`<interface type='network'><source network='default'/><model type='pcnet'/></interface>`).report.errors, [
      "interface model 'pcnet' is not one QEMU here provides (virtio, e1000, e1000e, rtl8139, ne2k_pci)",
    ]);
  });

  it("<memballoon autodeflate/freePageReporting> become deflate-on-oom/free-page-reporting, as libvirt maps them; model='none' has no device", () => {
    const balloonArg = (memballoon: string) => {
      const { argv } = buildArgv(parseDomainXml(xml(`<disk type='file' device='disk'><source file='/img/b.img'/><target dev='hda'/></disk>${memballoon}`)), { stateDir: '/r', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
      return argv.filter((a) => a.startsWith('virtio-balloon-pci'));
    };
    assert.deepEqual(balloonArg(''), ['virtio-balloon-pci,id=balloon0'], 'libvirt adds a balloon by default');
    assert.deepEqual(balloonArg(`<memballoon model='virtio' autodeflate='on' freePageReporting='on'/>`), ['virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-reporting=on']);
    assert.deepEqual(balloonArg(`<memballoon model='virtio' autodeflate='off'/>`), ['virtio-balloon-pci,id=balloon0,deflate-on-oom=off']);
    assert.deepEqual(balloonArg(`<memballoon model='virtio' freePageReporting='on'/>`), ['virtio-balloon-pci,id=balloon0,free-page-reporting=on']);
    assert.deepEqual(balloonArg(`<memballoon model='none'/>`), []);
  });

  it("<graphics type='vnc'> adds a TCP display next to the unix one; passwd= turns on password=on for both", () => {
    const build = (graphics: string) => buildArgv(parseDomainXml(xml(`<disk type='file' device='disk'><source file='/img/b.img'/><target dev='hda'/></disk>${graphics}`)), { stateDir: '/r', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
    const vncArgs = (argv: string[]) => argv.flatMap((a, i) => (argv[i - 1] === '-vnc' ? [a] : []));
    assert.deepEqual(vncArgs(build('').argv), ['unix:/r/vnc.sock,id=unix']);
    const auto = build(`<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='s3cret'/>`);
    assert.deepEqual(vncArgs(auto.argv), ['unix:/r/vnc.sock,id=unix,password=on', '127.0.0.1:0,to=59635,id=tcp,password=on']);
    assert.ok(!auto.argv.join(' ').includes('s3cret'), 'the password is set over QMP, never on the command line');
    assert.deepEqual(auto.report.warnings, []);
    assert.deepEqual(vncArgs(build(`<graphics type='vnc' port='5907' autoport='no' listen='::1'/>`).argv), ['unix:/r/vnc.sock,id=unix', '[::1]:7,id=tcp']);
    assert.deepEqual(vncArgs(build(`<graphics type='vnc'/>`).argv)[1], '127.0.0.1:0,to=59635,id=tcp');
    assert.match(build(`<graphics type='vnc' port='5800' autoport='no'/>`).report.errors.join(';'), /VNC port 5800 is outside 5900-65535/);
  });

  it('KVM adds the CPU model that QEMU 7.2 accepts on nested hosts; refuses what cannot run', () => {
    const kvm = buildArgv(parseDomainXml(xml(`<disk type='file' device='disk'><source file='/img/b.img'/><target dev='hda'/></disk>`)), { stateDir: '/r', accel: 'kvm', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
    assert.match(kvm.argv.join(' '), /-accel kvm -cpu host,-arch-capabilities/);
    const bad = buildArgv(parseDomainXml(xml(`<disk type='file' device='disk'><driver type='bochs9'/><source file='/img/b.img'/><target dev='hda'/></disk>`)), { stateDir: '/r', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
    assert.match(bad.report.errors.join(';'), /image format 'bochs9'/);
    const nothing = buildArgv(parseDomainXml(xml('')), { stateDir: '/r', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
    assert.match(nothing.report.errors.join(';'), /nothing to boot/);
    const lun = buildArgv(parseDomainXml(xml(`<disk type='file'><source file='/img/b.img'/><target dev='hda'/></disk><disk type='block' device='lun'><source dev='/dev/sdc'/><target dev='sdc'/></disk>`)), { stateDir: '/r', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
    assert.deepEqual(lun.report.errors, ["SCSI LUN passthrough (<disk device='lun'> sdc) is not provided by Domus on QEMU"]);
  });

  it('network boot: no NIC is connected, so it is dropped from -boot (an error when nothing else boots)', () => {
    const network = (devices: string) => buildArgv(parseDomainXml(xml(devices).replace(`<boot dev='cdrom'/>`, `<boot dev='network'/>`)), { stateDir: '/r', accel: 'tcg', nvramDir: '/nv', networkSocket: (n) => `/run/networks/${n}/ports.sock` });
    assert.match(network('').report.errors.join(';'), /^nothing to boot: network boot \(<boot dev='network'\/>\) needs a connected network/);
    const withDisk = network(`<disk type='file'><source file='/img/b.img'/><target dev='hda'/></disk>`);
    assert.deepEqual(withDisk.report.errors, []);
    assert.ok(withDisk.argv.includes('order=c'), withDisk.argv.join(' '));
    assert.ok(withDisk.report.warnings.some((w) => /^network boot \(PXE\) needs a connected network.*the other boot devices are tried$/.test(w.message)));
  });
});

describe("UEFI on QEMU: OVMF from QEMU's firmware descriptors, as libvirt picks it", () => {
  let dir: string;
  let dirs: string[];
  const descriptor = (name: string, code: string, vars: string, features: string[], machines = ['pc-i440fx-*', 'pc-q35-*']) =>
    fs.writeFileSync(
      path.join(dir, 'descriptors', name),
      JSON.stringify({ 'interface-types': ['uefi'], mapping: { device: 'flash', executable: { filename: code, format: 'raw' }, 'nvram-template': { filename: vars, format: 'raw' } }, targets: [{ architecture: 'x86_64', machines }], features }),
    );
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-uefi-'));
    fs.mkdirSync(path.join(dir, 'descriptors'));
    fs.mkdirSync(path.join(dir, 'ovmf'));
    for (const f of ['CODE.secboot.fd', 'CODE.fd', 'VARS.fd']) fs.writeFileSync(path.join(dir, 'ovmf', f), f);
    // As Debian's ovmf: the Secure Boot build sorts first, and needs SMM.
    descriptor('50-secure.json', path.join(dir, 'ovmf/CODE.secboot.fd'), path.join(dir, 'ovmf/VARS.fd'), ['requires-smm', 'secure-boot'], ['pc-q35-*']);
    descriptor('60-plain.json', path.join(dir, 'ovmf/CODE.fd'), path.join(dir, 'ovmf/VARS.fd'), ['acpi-s3']);
    fs.writeFileSync(path.join(dir, 'descriptors', '70-broken.json'), '{ not json');
    dirs = [path.join(dir, 'descriptors')];
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const build = (osXml: string, firmwareDirs = dirs) =>
    buildArgv(parseDomainXml(xml(`<disk type='file'><source file='/img/b.img'/><target dev='hda'/></disk>`).replace(/<os>[\s\S]*<\/os>/, osXml)), { stateDir: '/r', accel: 'tcg', nvramDir: path.join(dir, 'nvram'), networkSocket: (n) => `/run/networks/${n}/ports.sock`, firmwareDirs });

  it("<os firmware='efi'> gets the plain build and a store of its own in the nvram directory; the template is copied once", () => {
    const { argv, report, uefi } = build(`<os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>`);
    assert.deepEqual(report.errors, []);
    const vars = path.join(dir, 'nvram', '9e0b5c3a-1d9e-4a55-9a35-2f7c1b3e6a01_VARS.fd');
    assert.deepEqual(uefi, { code: path.join(dir, 'ovmf/CODE.fd'), vars, template: path.join(dir, 'ovmf/VARS.fd') });
    assert.match(argv.join(' '), new RegExp(`-drive if=pflash,format=raw,unit=0,readonly=on,file=${dir}/ovmf/CODE\\.fd -drive if=pflash,format=raw,unit=1,file=${vars}`));
    ensureVarsStore(uefi!);
    assert.equal(fs.readFileSync(vars, 'utf8'), 'VARS.fd');
    assert.equal(fs.statSync(vars).mode & 0o777, 0o600);
    fs.writeFileSync(vars, 'the guest wrote its boot entries');
    ensureVarsStore(uefi!);
    assert.equal(fs.readFileSync(vars, 'utf8'), 'the guest wrote its boot entries');
  });

  it('a pflash <loader> names the firmware; its template comes from the descriptor naming it, or <nvram template>', () => {
    const plain = build(`<os><type arch='x86_64'>hvm</type><loader readonly='yes' type='pflash'>${dir}/ovmf/CODE.fd</loader><nvram>${dir}/stores/g_VARS.fd</nvram></os>`);
    assert.deepEqual(plain.uefi, { code: `${dir}/ovmf/CODE.fd`, vars: `${dir}/stores/g_VARS.fd`, template: `${dir}/ovmf/VARS.fd` });
    const unknown = build(`<os><type arch='x86_64'>hvm</type><loader type='pflash'>/opt/fw/CODE.fd</loader></os>`);
    assert.deepEqual(unknown.report.errors, ["UEFI firmware (<loader type='pflash'>/opt/fw/CODE.fd</loader>): no variable store template is known for /opt/fw/CODE.fd: name one with <nvram template='...'>"]);
    const templated = build(`<os><type arch='x86_64'>hvm</type><loader type='pflash'>/opt/fw/CODE.fd</loader><nvram template='/opt/fw/VARS.fd'/></os>`);
    assert.equal(templated.uefi?.template, '/opt/fw/VARS.fd');
  });

  it('refuses Secure Boot, a store among the firmware files, and says which package to install when there is no firmware', () => {
    const refused = (osXml: string, firmwareDirs = dirs) => build(osXml, firmwareDirs).report.errors.join('; ');
    assert.match(refused(`<os><type arch='x86_64' machine='q35'>hvm</type><loader secure='yes' type='pflash'>${dir}/ovmf/CODE.secboot.fd</loader></os>`), /Secure Boot \(secure='yes'\) needs SMM/);
    assert.match(refused(`<os><type arch='x86_64' machine='q35'>hvm</type><loader type='pflash'>${dir}/ovmf/CODE.secboot.fd</loader></os>`), /CODE\.secboot\.fd is a Secure Boot build that needs SMM/);
    assert.match(refused(`<os><type arch='x86_64'>hvm</type><loader type='pflash'>${dir}/ovmf/CODE.fd</loader><nvram>${dir}/ovmf/VARS.fd</nvram></os>`), /<nvram> .*\/ovmf\/VARS\.fd is in the firmware's own directory/);
    assert.equal(
      refused(`<os firmware='efi'><type arch='x86_64'>hvm</type></os>`, [path.join(dir, 'nowhere')]),
      "UEFI firmware (<os firmware='efi'>): no UEFI firmware for QEMU is installed (Debian's package ovmf: apt-get install ovmf)",
    );
  });
});

describe('QMP client against a real QEMU', { skip }, () => {
  let dir: string;
  let pid: number | undefined;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-qmp-'));
  });
  after(() => {
    if (pid) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('greets, runs commands by id, turns errors into messages naming the command, rejects after close', async () => {
    const sock = path.join(dir, 'qmp.sock');
    const child = spawn(findQemu().path!, ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
    pid = child.pid;
    await until(() => fs.existsSync(sock), 10_000, 'the QMP socket');
    const qmp = await QmpClient.connect(sock);
    assert.equal(qmp.greeting?.version.qemu.major, Number(findQemu().version!.split('.')[0]));
    const [a, b] = await Promise.all([qmp.execute<{ status: string }>('query-status'), qmp.execute<{ name?: string }>('query-name')]);
    assert.equal(a.status, 'running');
    assert.deepEqual(b, {});
    await assert.rejects(qmp.execute('balloon', { value: 1 << 20 }), (err: QmpError) => {
      assert.ok(err instanceof QmpError);
      assert.match(err.message, /^QEMU refused 'balloon': No balloon device has been activated \(DeviceNotActive\)$/);
      return true;
    });
    await assert.rejects(qmp.execute('no-such-command'), /QEMU refused 'no-such-command': The command no-such-command has not been found/);
    const exited = new Promise((r) => child.once('exit', r));
    await qmp.execute('quit');
    await exited;
    pid = undefined;
    await until(() => qmp.closed, 5000, 'the QMP connection to close');
    await assert.rejects(qmp.execute('query-status'), /QMP connection is closed/);
  });
});

const pvSpec = (name: string) => ({
  name,
  memoryMiB: 128,
  vcpus: 1,
  boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE },
});

describe('QEMU through the host', { skip, timeout: 600_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  it('lists both connections; domxml-to-native prints the command line', async () => {
    const { connections } = await t.client.call('host.connections', {});
    assert.deepEqual(connections.map((c) => `${c.uri}:${c.available}`), ['v86:///session:true', 'qemu:///session:true']);
    assert.equal(connections[1].version, findQemu().version);
    assert.ok(connections[1].accel);
    await createOn(t.client, pvSpec('native'), 'qemu');
    const r = await t.cli(['domxml-to-native', 'qemu-argv', '--domain', 'native']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\/\S*qemu-system-x86_64 -name guest=native,debug-threads=on .* -accel tcg .* -kernel \S+vmlinuz -initrd \S+initrd\.gz -append 'console=ttyS0/);
    const cli = await t.cli(['connections']);
    assert.match(cli.stdout, /qemu:\/\/\/session\s+available\s+\d+\.\d+\.\d+\s+tcg/);
    const bad = await t.cli(['domxml-to-native', 'xen-xm', '--domain', 'native']);
    assert.match(bad.stderr, /error: unsupported native format 'xen-xm'/);
  });

  it('a QEMU that refuses its arguments fails the start with its stderr, also in the domain log', async () => {
    const img = path.join(t.home, 'not-qcow2.img');
    fs.writeFileSync(img, Buffer.alloc(1 << 20));
    const spec = { name: 'badimg', memoryMiB: 64, vcpus: 1, boot: { kind: 'disk' as const, disk: img } };
    await createOn(t.client, spec, 'qemu');
    const { xml: def } = await t.client.call('domain.xml', { domain: 'badimg', inactive: true });
    await t.client.call('domain.define', { xml: def.replace(/type=(['"])raw\1/, "type='qcow2'") });
    await assert.rejects(t.client.call('domain.start', { domain: 'badimg' }), /QEMU exited with code 1: .*Image is not in qcow2 format/);
    const info = await t.client.call('domain.info', { domain: 'badimg' });
    assert.deepEqual([info.state, info.reason], ['shutoff', 'failed']);
    assert.match(fs.readFileSync(path.join(t.home, 'logs', 'qemu-badimg.log'), 'utf8'), /Image is not in qcow2 format/);
    assert.equal(fs.existsSync(path.join(t.paths.run, info.uuid)), false, 'no run directory is left behind');
  });

  it("a KVM domain says which accelerator runs it; host.setAccel forces TCG and back to auto", async () => {
    await createOn(t.client, pvSpec('kvmguest'), 'qemu');
    const { xml: def } = await t.client.call('domain.xml', { domain: 'kvmguest', inactive: true });
    await t.client.call('domain.define', { xml: def.replace(/<domain type=(['"])qemu\1/, "<domain type='kvm'") });
    const started = await t.client.call('domain.start', { domain: 'kvmguest' });
    assert.equal(started.domain.engine, 'qemu');
    const note = started.warnings?.map((w) => w.message).join('\n') ?? '';
    assert.match(note, /runs on QEMU with (KVM|TCG)/);
    const qemu = (await t.client.call('host.connections', {})).connections[1];
    assert.notEqual(qemu.accel?.kvmUsable, null, 'the KVM probe ran at the first KVM start');
    if (qemu.accel?.kvmUsable === false) assert.match(note, /TCG .*: .*(probe|kvm)/i);
    await t.client.call('domain.destroy', { domain: 'kvmguest' });
    const forced = await t.client.call('host.setAccel', { mode: 'tcg' });
    assert.deepEqual([forced.connection.accel?.mode, forced.connection.accel?.using], ['tcg', 'tcg']);
    const auto = await t.client.call('host.setAccel', { mode: 'auto' });
    assert.equal(auto.connection.accel?.mode, 'auto');
    assert.equal(auto.connection.accel?.kvmUsable, qemu.accel?.kvmUsable, 'the probe answer is cached');
  });
});

describe('QEMU balloon', { skip, timeout: 600_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  it('setmem moves the balloon, BALLOON_CHANGE reaches clients, and the host gets the memory back (RSS drop)', async () => {
    await createOn(t.client, { ...pvSpec('bal'), memoryMiB: 256 }, 'qemu');
    const serial = await t.bootOrRestore('bal', 300_000);
    // The guest touches 120 MiB, then frees it: the pages stay in QEMU's RSS until ballooned away.
    await serial.sh('dd if=/dev/urandom of=/dev/shm/fill bs=1M count=120 2>/dev/null; rm /dev/shm/fill', 120_000);
    const full = await t.client.call('domain.memoryStats', { domain: 'bal' });
    assert.equal(full.hostReclaims, true);
    const balloonEvents: number[] = [];
    t.client.on('domain.balloon', (e) => balloonEvents.push(e.actualKiB));
    await t.client.call('domain.setMemory', { domain: 'bal', sizeKiB: 96 * 1024, live: true });
    await until(async () => (await t.client.call('domain.memoryStats', { domain: 'bal' })).balloon === 'ok', 60_000, 'the guest to reach the balloon target');
    const low = await t.client.call('domain.memoryStats', { domain: 'bal' });
    assert.equal(low.actualKiB, 96 * 1024);
    await until(() => balloonEvents.length > 0, 10_000, 'a domain.balloon event');
    console.log(`# QEMU RSS before/after ballooning 256 → 96 MiB: ${Math.round(full.rssKiB! / 1024)} → ${Math.round(low.rssKiB! / 1024)} MiB`);
    assert.ok(full.rssKiB! - low.rssKiB! > 64 * 1024, `RSS ${full.rssKiB} KiB → ${low.rssKiB} KiB: the host got less than 64 MiB back`);
    await t.client.call('domain.destroy', { domain: 'bal' });
  });
});

describe('without QEMU installed', { timeout: 300_000 }, () => {
  let t: TestHost;
  const savedPath = process.env.PATH;
  before(async () => {
    // A PATH without qemu-system-x86_64 (node itself is started by absolute path).
    process.env.PATH = '/nonexistent-bin';
    try {
      t = await TestHost.start();
    } finally {
      process.env.PATH = savedPath;
    }
  });
  after(async () => {
    await t?.stop();
  });

  it('qemu:///session is unavailable with the reason; QEMU domains run on v86 and say so', async () => {
    const { connections } = await t.client.call('host.connections', {});
    assert.deepEqual(connections.map((c) => `${c.uri}:${c.available}`), ['v86:///session:true', 'qemu:///session:false']);
    assert.match(connections[1].problem ?? '', /qemu-system-x86_64 not found on PATH: install Debian's package 'qemu-system-x86'/);
    await createOn(t.client, pvSpec('fallback'), 'qemu');
    const info = await t.client.call('domain.info', { domain: 'fallback' });
    assert.equal(info.engine, 'v86');
    assert.ok(info.warnings.some((w) => /runs on v86: QEMU is not available/.test(w.message)));
    const started = await t.client.call('domain.start', { domain: 'fallback' });
    assert.deepEqual([started.domain.state, started.domain.engine], ['running', 'v86']);
    assert.match(started.warnings?.map((w) => w.message).join('\n') ?? '', /runs on v86: QEMU is not available/);
    const native = await t.cli(['domxml-to-native', 'qemu-argv', '--domain', 'fallback']);
    assert.equal(native.code, 0, 'the command line can still be shown');
    await t.client.call('domain.destroy', { domain: 'fallback' });
  });
});
