// Definitions as libvirt accepts them (main/host/domain/fixtures/, real XML from libvirt's and
// virt-manager's test data): each one is valid for libvirt's schema (virt-xml-validate, when
// installed), defines, comes back from dumpxml as it went in, and either starts or is refused at
// start with its reason, which define already gave as a warning. A Xen PV definition with
// <bootloader>pygrub</bootloader> and no <os> boots on every engine through the image reader.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ApiCallError } from '../../shared/client.js';
import { parseDomainXml, serializeDomainXml } from './domain/xml.js';
import { AMD64_SAMPLE, ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, guestsBuilt } from '../testing/harness.js';

const FIXTURES = path.join(import.meta.dirname, 'domain', 'fixtures');
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, `${name}.xml`), 'utf8');
const BOOT_TIMEOUT = 300_000;

/** Domus's own fixtures that libvirt 9.0's schema refuses, and why (fixtures/README.md). */
const NOT_LIBVIRT_9_0 = new Map([
  ['v86-direct-kernel', "<domain type='v86'> is Domus's own"],
  ['virt-install-debian12', "<watchdog model='itco'> is newer than libvirt 9.0's schema"],
]);

/** Debian's ovmf, whose firmware descriptor QEMU's UEFI guests are started with. */
const OVMF = fs.existsSync('/usr/share/qemu/firmware/60-edk2-x86_64.json');
const validator = spawnSync('virt-xml-validate', ['--help'], { stdio: 'ignore' }).error ? undefined : 'virt-xml-validate';

type Outcome = { engine: string; refused: { code: string; message: RegExp } };

/**
 * What start does with each libvirt fixture here: which engine it goes to (<domain type='xen'> to
 * the default connection, v86) and the reason it is refused. Their images are paths on the machines
 * they came from; the Xen PV one boots below with the sample disk in place of its own.
 */
const LIBVIRT_FIXTURES: Record<string, Outcome> = {
  'libvirt-xm-paravirt-new-pvfb': {
    engine: 'v86',
    refused: { code: 'OPERATION_FAILED', message: /cannot access disk image '\/dev\/HostVG\/XenGuest1': No such file or directory/ },
  },
  'libvirt-xm-pv-bootloader': { engine: 'v86', refused: { code: 'OPERATION_FAILED', message: /cannot access disk image '\/root\/some\.img': No such file or directory/ } },
  'libvirt-xl-pvh-type': { engine: 'v86', refused: { code: 'OPERATION_FAILED', message: /cannot access kernel '\/tmp\/vmlinuz': No such file or directory/ } },
  'libvirt-qemu-boot-network': {
    engine: 'qemu',
    refused: { code: 'OPERATION_FAILED', message: /cannot access disk image '\/dev\/HostVG\/QEMUGuest1': No such file or directory/ },
  },
  'libvirt-qemu-firmware-auto-efi': {
    engine: 'qemu',
    refused: {
      code: 'CONFIG_UNSUPPORTED',
      message:
        // With OVMF installed (Debian's ovmf), UEFI itself is no reason on QEMU: only its size and the lack of anything to boot are.
        /^unsupported configuration: domain 'fedora' cannot start on QEMU \(qemu:\/\/\/session\): memory 8 MiB is too small; QEMU guests need at least 16 MiB; nothing to boot: no <kernel>, and no disk or CD-ROM with a source image\. v86 \(v86:\/\/\/session\) cannot either: UEFI firmware \(<os firmware='efi'>\): v86 has a BIOS \(SeaBIOS\) only; memory 8 MiB is too small; v86 needs at least 16 MiB; nothing to boot/,
    },
  },
  'libvirt-qemu-bios-nvram': {
    engine: 'qemu',
    // Its <nvram> is OVMF's own template: a guest writing it would change every later guest's.
    refused: {
      code: 'CONFIG_UNSUPPORTED',
      message: /cannot start on QEMU \(qemu:\/\/\/session\): UEFI firmware \(<loader type='pflash'>\/usr\/share\/OVMF\/OVMF_CODE\.fd<\/loader>\): <nvram> \/usr\/share\/OVMF\/OVMF_VARS\.fd is in the firmware's own directory/,
    },
  },
  'virt-manager-boot-uefi': {
    engine: 'qemu',
    refused: {
      code: 'CONFIG_UNSUPPORTED',
      message: /cannot start on QEMU \(qemu:\/\/\/session\): UEFI firmware \(<loader type='pflash'>\/usr\/share\/ovmf\/OVMF_CODE\.secboot\.fd<\/loader>\): Secure Boot \(secure='yes'\) needs SMM, which Domus does not set up for QEMU guests; nothing to boot/,
    },
  },
};

describe('domain XML fixtures against libvirt’s schema', () => {
  const names = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.xml')).map((f) => f.slice(0, -4));

  it('every libvirt and virt-manager fixture has an expected outcome below', () => {
    assert.deepEqual(names.filter((n) => /^(libvirt|virt-manager)-/.test(n)).sort(), Object.keys(LIBVIRT_FIXTURES).sort());
  });

  for (const name of names) {
    it(`${name}: parse → serialize → parse is a fixed point`, () => {
      const first = parseDomainXml(fixture(name));
      const text = serializeDomainXml(first);
      const second = parseDomainXml(text);
      assert.deepEqual(second.nodes, first.nodes);
      assert.deepEqual(second.config, first.config);
      assert.equal(serializeDomainXml(second), text);
    });

    it(`${name}: ${NOT_LIBVIRT_9_0.has(name) ? 'is refused' : 'validates'} as a domain by virt-xml-validate`, { skip: !validator && 'virt-xml-validate not installed (Debian libvirt-clients)' }, () => {
      const file = path.join(FIXTURES, `${name}.xml`);
      const r = spawnSync(validator!, [file, 'domain'], { encoding: 'utf8' });
      if (NOT_LIBVIRT_9_0.has(name)) assert.notEqual(r.status, 0, `${name}: ${NOT_LIBVIRT_9_0.get(name)}, yet it validates`);
      else assert.equal(r.status, 0, r.stderr);
    });
  }

  it('Domus keeps libvirt-valid XML valid: dumpxml of each fixture validates too', { skip: !validator && 'virt-xml-validate not installed (Debian libvirt-clients)' }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-validate-'));
    try {
      for (const name of Object.keys(LIBVIRT_FIXTURES)) {
        const file = path.join(dir, `${name}.xml`);
        fs.writeFileSync(file, serializeDomainXml(parseDomainXml(fixture(name))));
        execFileSync(validator!, [file, 'domain'], { stdio: 'pipe' });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('libvirt definitions through the host', { timeout: 900_000 }, () => {
  let t: TestHost;
  let dir: string;
  before(async () => {
    t = await TestHost.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-libvirt-defs-'));
  });
  after(async () => {
    await t?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, expected] of Object.entries(LIBVIRT_FIXTURES)) {
    it(`${name}: defines, dumpxml gives it back, start refuses it with the reason define warned of`, async (ctx) => {
      const xml = fixture(name);
      const doc = parseDomainXml(xml);
      const { domain, warnings } = await t.client.call('domain.define', { xml });
      for (const w of warnings) ctx.diagnostic(`warning: ${w.message}`);
      assert.equal(domain.engine, expected.engine === 'qemu' && engineSkip('qemu') ? 'v86' : expected.engine);
      const dumped = await t.client.call('domain.xml', { domain: domain.name, inactive: true, secure: true });
      assert.equal(dumped.xml, serializeDomainXml(doc));

      const refusal = await t.client.call('domain.start', { domain: domain.name }).then(
        () => assert.fail(`${name} started`),
        (err: ApiCallError) => err,
      );
      ctx.diagnostic(`start: ${refusal.message}`);
      if (expected.engine === 'qemu' && (engineSkip('qemu') || !OVMF)) return;
      assert.equal(refusal.code, expected.refused.code, refusal.message);
      assert.match(refusal.message, expected.refused.message);
      const after = await t.client.call('domain.info', { domain: domain.name });
      assert.equal(after.state, 'shutoff');
      if (expected.refused.code === 'CONFIG_UNSUPPORTED') {
        // define said so already, in the same words, and the summary carries it for the GUI.
        const reason = refusal.message.replace(/^unsupported configuration: domain '[^']+' /, '');
        assert.equal(warnings.at(-1)?.message, reason);
        assert.equal(after.cannotStart, reason);
        assert.equal(after.warnings.at(-1)?.message, reason);
      } else {
        assert.equal(after.cannotStart, undefined);
      }
    });
  }

  it('a definition changed so that it can start loses its cannotStart; changed back, start refuses it again', async () => {
    const uefi = fixture('libvirt-qemu-firmware-auto-efi');
    const bios = uefi
      .replace("<os firmware='efi'>", '<os>')
      .replace("<memory unit='KiB'>8192</memory>", "<memory unit='MiB'>128</memory>")
      .replace('<devices>', `<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${path.join(dir, 'none.img')}'/><target dev='hda'/></disk>`);
    const fixed = await t.client.call('domain.define', { xml: bios });
    assert.equal(fixed.domain.cannotStart, undefined);
    await assert.rejects(t.client.call('domain.start', { domain: 'fedora' }), (err: ApiCallError) => err.code === 'OPERATION_FAILED' && /cannot access disk image/.test(err.message));
    const again = await t.client.call('domain.define', { xml: uefi });
    assert.match(again.domain.cannotStart ?? '', /UEFI firmware/);
    await assert.rejects(t.client.call('domain.start', { domain: 'fedora' }), (err: ApiCallError) => err.code === 'CONFIG_UNSUPPORTED');
  });

  it('the CLI: define warns with the reason and succeeds, start fails with it, as virsh prints errors', async () => {
    const file = path.join(dir, 'pvh.xml');
    fs.writeFileSync(file, fixture('libvirt-qemu-firmware-auto-efi').replace('<name>fedora</name>', '<name>cli-efi</name>').replace(/<uuid>[^<]*<\/uuid>/, ''));
    const defined = await t.cli(['define', file]);
    assert.equal(defined.code, 0, defined.stderr);
    assert.equal(defined.stdout, `Domain 'cli-efi' defined from ${file}\n\n`);
    const reason = (await t.client.call('domain.info', { domain: 'cli-efi' })).cannotStart;
    assert.ok(reason);
    assert.ok(defined.stderr.endsWith(`warning: ${reason}\n`), defined.stderr);
    const started = await t.cli(['start', 'cli-efi']);
    assert.equal(started.code, 1);
    assert.equal(started.stderr, `error: Failed to start domain 'cli-efi'\nerror: unsupported configuration: domain 'cli-efi' ${reason}\n`);
  });

  it('virsh create of a definition that cannot start is refused and leaves no domain', async () => {
    const xml = fixture('virt-manager-boot-uefi').replace('<name>vm1</name>', '<name>vm1-transient</name>').replace(/<uuid>[^<]*<\/uuid>/, '');
    await assert.rejects(t.client.call('domain.createTransient', { xml }), (err: ApiCallError) => err.code === 'CONFIG_UNSUPPORTED' && /UEFI firmware/.test(err.message));
    await assert.rejects(t.client.call('domain.info', { domain: 'vm1-transient' }), /Domain not found/);
  });

  it("UEFI: <os firmware='efi'> boots the amd64 sample on QEMU through OVMF; the guest runs on EFI; v86 refuses it, naming QEMU", {
    skip: engineSkip('qemu') || (!OVMF && "Debian's ovmf not installed") || (!guestsBuilt(['vmlinuz-amd64', 'initrd-amd64.gz']) && 'amd64 sample not built'),
  }, async () => {
    const boot = { kind: 'pv' as const, ...AMD64_SAMPLE, cmdline: SAMPLE_CMDLINE };
    await createOn(t.client, { name: 'uefi', engine: 'qemu', memoryMiB: 256, vcpus: 1, boot }, 'qemu');
    const plain = (await t.client.call('domain.xml', { domain: 'uefi', inactive: true, secure: true })).xml;
    const { domain, warnings } = await t.client.call('domain.define', { xml: plain.replace('<os>', "<os firmware='efi'>") });
    assert.deepEqual([domain.engine, domain.cannotStart], ['qemu', undefined], warnings.map((w) => w.message).join('; '));
    const t0 = Date.now();
    await t.client.call('domain.start', { domain: 'uefi' });
    const serial = await SerialWatch.open(t.client, 'uefi');
    await serial.wait(/DOMUS-GUEST-READY[^\r\n]*(?=\r?\n)/, BOOT_TIMEOUT);
    console.log(`# amd64 sample through OVMF (UEFI) on QEMU: DOMUS-GUEST-READY after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The kernel's EFI stub ran: Linux has EFI runtime services only when booted through UEFI.
    assert.match(await serial.sh('test -d /sys/firmware/efi && echo booted-through-uefi'), /^booted-through-uefi$/m);
    await t.client.call('domain.destroy', { domain: 'uefi' });
    const vars = path.join(t.paths.nvram, `${domain.uuid}_VARS.fd`);
    assert.ok(fs.statSync(vars).size > 0, 'the domain has its own variable store');

    const onV86 = (await t.client.call('domain.xml', { domain: 'uefi', inactive: true, secure: true })).xml.replace("<domain type='qemu'", "<domain type='v86'").replace(/<uuid>[^<]*<\/uuid>/, '').replace('<name>uefi</name>', '<name>uefi-v86</name>');
    const v86 = await t.client.call('domain.define', { xml: onV86 });
    assert.match(v86.domain.cannotStart ?? '', /^cannot start on v86 \(v86:\/\/\/session\): UEFI firmware \(<os firmware='efi'>\): v86 has a BIOS \(SeaBIOS\) only.*\. QEMU \(qemu:\/\/\/session\) could run it as <domain type='qemu'> \(or 'kvm'\)$/);
    await assert.rejects(t.client.call('domain.start', { domain: 'uefi-v86' }), (err: ApiCallError) => err.code === 'CONFIG_UNSUPPORTED' && err.message === `unsupported configuration: domain 'uefi-v86' ${v86.domain.cannotStart}`);
    await t.client.call('domain.undefine', { domain: 'uefi' });
    assert.ok(!fs.existsSync(vars), 'undefine removes the variable store Domus made');
  });

  for (const engine of ENGINES) {
    it(`Xen PV: <bootloader>pygrub</bootloader> and no <os> boots the sample disk through the image reader (${engine})`, { skip: engineSkip(engine) || (!guestsBuilt() && 'sample guests not built') }, async () => {
      const disk = path.join(dir, `pv-${engine}.img`);
      fs.copyFileSync(guest('disk.img'), disk);
      const name = `xen-pv-${engine}`;
      // The fixture as it is, but for its name, the sample disk in place of the LVM volume, and on
      // QEMU the domain type that QEMU runs (type='xen' goes to the default connection, v86).
      const xml = fixture('libvirt-xm-paravirt-new-pvfb')
        .replace('<name>XenGuest1</name>', `<name>${name}</name>`)
        .replace(/<uuid>[^<]*<\/uuid>/, '')
        .replace("<disk type='block' device='disk'>", "<disk type='file' device='disk'>")
        .replace("<source dev='/dev/HostVG/XenGuest1'/>", `<source file='${disk}'/>`)
        .replace("<domain type='xen'>", engine === 'qemu' ? "<domain type='qemu'>" : "<domain type='xen'>");
      assert.doesNotMatch(xml, /<os>/);
      const { domain, warnings } = await t.client.call('domain.define', { xml });
      assert.equal(domain.engine, engine);
      assert.equal(domain.cannotStart, undefined, warnings.map((w) => w.message).join('; '));
      assert.ok(warnings.some((w) => /Xen paravirtualized guest \(os type 'xen'\)/.test(w.message)), warnings.map((w) => w.message).join('; '));
      const t0 = Date.now();
      await t.client.call('domain.start', { domain: name });
      const serial = await SerialWatch.open(t.client, name);
      await serial.wait(/DOMUS-GUEST-READY[^\r\n]*(?=\r?\n)/, BOOT_TIMEOUT);
      console.log(`# Xen PV fixture without <os> on ${engine}: DOMUS-GUEST-READY after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      // The kernel and arguments came from the disk's extlinux.conf, read at start.
      assert.match(await serial.sh('cat /proc/cmdline'), /console=ttyS0,115200/);
      const info = await t.client.call('domain.info', { domain: name });
      assert.equal(info.osType, 'xen');
      await t.client.call('domain.destroy', { domain: name });
      // It stays as it was defined: libvirt's reading of it (os type 'xen') is not written back.
      assert.doesNotMatch((await t.client.call('domain.xml', { domain: name, inactive: true })).xml, /<os>/);
    });
  }
});
