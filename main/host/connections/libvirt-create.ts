// The New VM wizard on a libvirt host: the spec becomes domain XML as virt-install writes it for
// QEMU (the host's spec-to-xml, a VNC display on 127.0.0.1 with autoport, a serial pty), with every
// file a volume of one of the host's pools, and is defined there.
import { NewDomainSpec, type DomainSummary } from '../../../shared/api.js';
import type { DefinitionWarning } from '../../../shared/domain.js';
import { configUnsupported, HostError, invalidArg } from '../errors.js';
import { specToXml } from '../new-vm/spec-to-xml.js';
import type { LibvirtConnection, LibvirtMethods } from './libvirt.js';
import { DEFAULT_POOL, type LibvirtStorage } from './libvirt-storage.js';

type Boot = NewDomainSpec['boot'];

const escAttr = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

export async function createOnLibvirt(conn: LibvirtConnection, storage: LibvirtStorage, input: NewDomainSpec): Promise<{ domain: DomainSummary; warnings: DefinitionWarning[] }> {
  const warnings: DefinitionWarning[] = [];
  if (input.boot.kind === 'pygrub') {
    throw configUnsupported(`pygrub boots Xen PV guests; QEMU on ${conn.uri} cannot run a <bootloader>: import the disk instead, its own bootloader then boots it`);
  }
  // The connection's hypervisor replaces the wizard's engine choice.
  const parsed = NewDomainSpec.safeParse({ ...input, engine: 'qemu' });
  if (!parsed.success) throw invalidArg(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const spec = parsed.data;

  const formats = new Map<string, string>();
  /** A volume of the host: its path as given, or a bare name in the default pool. */
  const resolve = async (ref: string, what: string): Promise<string> => {
    let vol;
    try {
      vol = await storage.volume(ref, ref.includes('/') ? undefined : DEFAULT_POOL);
    } catch (err) {
      if (err instanceof HostError && (err.code === 'NO_STORAGE_VOL' || err.code === 'NO_STORAGE_POOL')) {
        throw invalidArg(`the ${what} '${ref}' is not a volume of a pool on ${conn.uri}: choose one of the host's volumes, or upload the file into a pool first (Upload… in the wizard, domus vol-upload)`);
      }
      throw err;
    }
    const info = await storage.describe(vol);
    formats.set(info.path, info.format);
    return info.path;
  };

  const boot = spec.boot;
  let final: Boot;
  switch (boot.kind) {
    case 'pv':
      final = { ...boot, kernel: await resolve(boot.kernel, 'kernel'), initrd: boot.initrd ? await resolve(boot.initrd, 'initrd') : undefined };
      break;
    case 'cdrom':
      final = { ...boot, iso: await resolve(boot.iso, 'ISO'), disk: boot.disk ? await resolve(boot.disk, 'disk image') : undefined };
      break;
    case 'install':
      // libvirt runs the definition it is given: the installer CD boots first, the disk after it (virt-install's install-time boot order).
      final = { kind: 'cdrom', iso: await resolve(boot.iso, 'ISO'), disk: await resolve(boot.disk, 'disk image') };
      warnings.push({ element: 'devices/disk[@device="cdrom"]', message: 'The installer CD stays in the drive and boots first; once the system is installed, eject it in Details (or change the boot order) so the disk boots.' });
      break;
    default:
      final = { ...boot, disk: await resolve(boot.disk, 'disk image') };
  }

  let xml = specToXml({ ...spec, boot: final }).replace('<video>', `<graphics type="vnc" autoport="yes" listen="127.0.0.1"/>\n    <video>`);
  // The disk's format is the volume's, whatever its name says.
  for (const [file, format] of formats) {
    if (format !== 'qcow2') continue;
    xml = xml.replace(`<driver name="qemu" type="raw"/>\n      <source file="${escAttr(file)}"/>`, `<driver name="qemu" type="qcow2"/>\n      <source file="${escAttr(file)}"/>`);
  }
  if (await hasKvm(conn)) xml = xml.replace('<domain type="qemu">', '<domain type="kvm">');
  const { dom } = await conn.rpcCall('REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS', { xml, flags: 0 });
  return { domain: await conn.summary(dom), warnings };
}

/** Whether the host offers KVM for x86_64 guests (its capabilities), as virt-install prefers it. */
async function hasKvm(conn: LibvirtConnection): Promise<boolean> {
  const { capabilities } = await conn.rpcCall('REMOTE_PROC_CONNECT_GET_CAPABILITIES');
  const arch = /<arch name=['"]x86_64['"]>[\s\S]*?<\/arch>/.exec(capabilities as string)?.[0] ?? '';
  return /<domain type=['"]kvm['"]/.test(arch);
}

export function createMethods(conn: LibvirtConnection, storage: LibvirtStorage): LibvirtMethods {
  return {
    'domain.create': (p) => createOnLibvirt(conn, storage, p.spec as NewDomainSpec),
  };
}
