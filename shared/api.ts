// The API contract between every client (renderer, CLI) and the host. Requests are validated
// with these schemas at the host boundary; replies and events are typed here so both sides agree.
// No Node, no DOM: this file is imported by the host, the CLI and the renderer.
import { z } from 'zod';
import type { DomainCapabilities, HostUsbDevice } from './capabilities.js';
import type { DefinitionWarning, DomainConfig, DomainStep } from './domain.js';
import type { DomainState, StateReason } from './libvirt/states.js';
import type { ErrorCode } from './errors.js';

export const API_VERSION = 1;

/** virsh shutdown's --mode values; an engine does the ones it can (acpi, agent) and refuses the others. */
export const SHUTDOWN_MODES = ['acpi', 'agent', 'initctl', 'signal', 'paravirt'] as const;
export type ShutdownMode = (typeof SHUTDOWN_MODES)[number];

/** A domain is addressed by name or UUID, as virsh does. */
const DomainRef = z.string().min(1, 'domain name or UUID is required').max(256);
/** A virtual network is addressed by name or UUID, as virsh does. */
const NetworkRef = z.string().min(1, 'network name or UUID is required').max(256);
const MacAddress = z.string().regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'must be a MAC address like 52:54:00:12:34:56');
/** One device's libvirt XML, as virsh attach-device reads it from a file. */
const DeviceXml = z.string().min(1, 'device XML is empty').max(65536, 'device XML is larger than 64 KiB');
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const VolumeName = z
  .string()
  .min(1, 'volume name is required')
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/, 'volume name may hold letters, digits and _ . + - and must start with a letter or digit');

/** A new snapshot's name (libvirt forbids only '/'; the host keeps each in a directory of that name). */
const SnapshotName = z
  .string()
  .min(1, 'snapshot name is required')
  .max(64, 'snapshot name is longer than 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/, 'snapshot name may hold letters, digits and _ . + - and must start with a letter or digit');
const SnapshotRef = z.string().min(1, 'snapshot name is required').max(256);

/** The engines a domain can be created for, and what each can give a guest. */
export const ENGINES = {
  v86: { label: 'v86 (embedded, 32-bit x86)', maxMemoryMiB: 2047, maxVcpus: 1, arches: ['i686'] as const },
  qemu: { label: 'QEMU', maxMemoryMiB: 65536, maxVcpus: 16, arches: ['i686', 'x86_64'] as const },
} as const;
export type EngineName = keyof typeof ENGINES;

const HostFile = (what: string) => z.string().min(1, `${what} path is required`).max(4096, `${what} path is longer than 4096 characters`);

/**
 * What the New VM wizard sends; the host turns it into libvirt XML (virt-install's install methods):
 * pv: direct kernel boot; cdrom: a live CD (optionally with a disk); install: an installer ISO onto a
 * disk (two definitions: the install-time one boots the CD, the final one the disk); disk: import an
 * existing disk image; pygrub: PV boot of the kernel found on the guest's disk.
 */
export const NewDomainSpec = z
  .object({
    name: z
      .string()
      .min(1, 'name is required')
      .max(64, 'name is longer than 64 characters')
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/, 'name may hold letters, digits and _ . + - and must start with a letter or digit'),
    engine: z.enum(['v86', 'qemu']).default('v86'),
    memoryMiB: z.number().int('memory must be a whole number of MiB').min(16, 'memory must be at least 16 MiB').max(ENGINES.qemu.maxMemoryMiB, `memory above ${ENGINES.qemu.maxMemoryMiB} MiB is not supported`),
    vcpus: z.number().int('vCPUs must be a whole number').min(1, 'a guest needs at least one vCPU').max(ENGINES.qemu.maxVcpus, `at most ${ENGINES.qemu.maxVcpus} vCPUs`).default(1),
    /**
     * The OS the defaults came from, kept in the definition's libosinfo metadata: an osinfo-db id
     * (http://debian.org/debian/testing) as virt-install writes it, or a catalogue id (domus:<id>).
     */
    os: z.string().max(256, 'OS id is longer than 256 characters').regex(/^[\x21-\x7e]+$/, 'OS id may hold printable characters without spaces').optional(),
    /** The NIC model the OS drives (from its osinfo-db devices); absent: virtio on a network, the engine's card in user mode. */
    nicModel: z.enum(['virtio', 'e1000', 'ne2k_pci']).optional(),
    /**
     * The NIC, as virt-install's --network: `{ network: NAME }` on a virtual network of the host
     * (the wizard's default is 'default'), 'user' for user-mode networking, 'none' for no NIC.
     */
    network: z
      .union([
        z.enum(['user', 'none']),
        z.object({ network: z.string().min(1, 'network name is required').max(64).regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/, 'network name may hold letters, digits and _ . + - and must start with a letter or digit') }).strict(),
      ])
      .default('none'),
    boot: z.discriminatedUnion('kind', [
      z.object({
        kind: z.literal('pv'),
        kernel: HostFile('kernel'),
        initrd: z.string().max(4096).optional(),
        cmdline: z.string().max(2048, 'kernel arguments are longer than 2048 characters').optional(),
      }),
      z.object({
        kind: z.literal('cdrom'),
        iso: HostFile('ISO'),
        disk: z.string().max(4096).optional(),
      }),
      z.object({
        kind: z.literal('install'),
        iso: HostFile('ISO'),
        disk: HostFile('disk image'),
      }),
      z.object({
        kind: z.literal('disk'),
        disk: HostFile('disk image'),
      }),
      z.object({
        kind: z.literal('pygrub'),
        disk: HostFile('disk image'),
        /** The bootloader entry to boot (pygrub --entry); none: the newest kernel. */
        entry: z.number().int().min(0, 'entry must be 0 or more').optional(),
      }),
    ]),
  })
  .superRefine((spec, ctx) => {
    const engine = ENGINES[spec.engine];
    if (spec.memoryMiB > engine.maxMemoryMiB) {
      ctx.addIssue({ code: 'custom', path: ['memoryMiB'], message: `memory above ${engine.maxMemoryMiB} MiB is not supported by ${spec.engine}` });
    }
    if (spec.vcpus > engine.maxVcpus) {
      ctx.addIssue({
        code: 'custom',
        path: ['vcpus'],
        message: engine.maxVcpus === 1 ? `the ${spec.engine} engine emulates one CPU` : `${spec.engine} gives a guest at most ${engine.maxVcpus} vCPUs`,
      });
    }
  });
export type NewDomainSpec = z.infer<typeof NewDomainSpec>;
/** A spec as a client writes it (defaults not yet applied). */
export type NewDomainSpecInput = z.input<typeof NewDomainSpec>;

/** Request parameters, one schema per method. Unknown keys are refused (strict). */
/** A libvirt connection URI (driver[+transport]://[user@][host][:port]/path[?params]). */
export const ConnectionUri = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[a-z][a-z0-9]*(\+[a-z]+)?:\/\/[^\s]*$/, 'expected a libvirt URI such as qemu:///system or qemu+ssh://user@host/system');

export const RequestParams = {
  'host.status': z.object({}).strict(),
  'host.samples': z.object({}).strict(),
  'host.webShell': z.object({}).strict(),
  'host.stop': z.object({}).strict(),
  'domain.list': z.object({ all: z.boolean().default(true) }).strict(),
  'domain.define': z
    .object({
      xml: z.string().min(1, 'XML is empty').max(1 << 20, 'XML is larger than 1 MiB'),
      /** The generation the editor started from; a newer definition on the host is a conflict. */
      expectGeneration: z.number().int().nonnegative().optional(),
    })
    .strict(),
  'domain.create': z.object({ spec: NewDomainSpec }).strict(),
  /** A running domain is refused unless force: it then becomes transient and goes when it stops. */
  /**
   * virsh undefine; `storage` (targets or paths) and `removeAllStorage` also delete the domain's disk
   * volumes, as virsh's --storage and --remove-all-storage do: only files of a storage pool, and
   * never one another domain uses (those are kept and said so).
   */
  'domain.undefine': z
    .object({
      domain: DomainRef,
      force: z.boolean().default(false),
      snapshotsMetadata: z.boolean().default(false),
      storage: z.array(z.string().min(1).max(4096)).max(64).default([]),
      removeAllStorage: z.boolean().default(false),
    })
    .strict(),
  'domain.start': z.object({ domain: DomainRef }).strict(),
  'domain.destroy': z.object({ domain: DomainRef }).strict(),
  'domain.suspend': z.object({ domain: DomainRef }).strict(),
  'domain.resume': z.object({ domain: DomainRef }).strict(),
  'domain.info': z.object({ domain: DomainRef }).strict(),
  /**
   * The live definition of a running domain; inactive: the persistent one (next boot). secure:
   * with VNC passwords (virsh dumpxml --security-info), which an editor needs to save it back.
   */
  'domain.xml': z.object({ domain: DomainRef, inactive: z.boolean().default(false), secure: z.boolean().default(false) }).strict(),
  'domain.screenshot': z.object({ domain: DomainRef }).strict(),
  'domain.sendKeys': z
    .object({
      domain: DomainRef,
      text: z.string().max(4096).optional(),
      scancodes: z.array(z.number().int().min(0).max(0xff)).max(1024).optional(),
    })
    .strict()
    .refine((p) => (p.text === undefined) !== (p.scancodes === undefined), 'give either text or scancodes'),
  'domain.serialOpen': z.object({ domain: DomainRef }).strict(),
  'domain.serialClose': z.object({ domain: DomainRef }).strict(),
  'domain.serialWrite': z.object({ domain: DomainRef, data: Base64.max(65536) }).strict(),
  /**
   * Clean shutdown (virsh shutdown --mode, xendomains' timeout): ask the guest through `modes` (absent:
   * every channel it has), then, with `force`, force it off when it has not powered off after the
   * timeout. `force` defaults to true when no mode is named (naming modes asks only to request). A
   * guest that cannot be asked at all is forced off at once when `unreachable` is 'force' (the default
   * with `force`), else the call fails with OPERATION_UNSUPPORTED and the guest keeps running.
   */
  'domain.shutdown': z
    .object({
      domain: DomainRef,
      modes: z.array(z.enum(SHUTDOWN_MODES)).min(1).max(SHUTDOWN_MODES.length).optional(),
      force: z.boolean().optional(),
      unreachable: z.enum(['force', 'fail']).optional(),
      timeoutSec: z.number().int().min(0).max(3600).optional(),
    })
    .strict(),
  'domain.reboot': z.object({ domain: DomainRef }).strict(),
  'domain.reset': z.object({ domain: DomainRef }).strict(),
  /** Transient domain (virsh create): defined only while it runs. */
  'domain.createTransient': z.object({ xml: z.string().min(1, 'XML is empty').max(1 << 20, 'XML is larger than 1 MiB'), paused: z.boolean().default(false) }).strict(),
  'domain.setAutostart': z.object({ domain: DomainRef, enabled: z.boolean() }).strict(),
  'domain.setOnHostStop': z.object({ domain: DomainRef, policy: z.enum(['shutdown', 'save', 'keep']) }).strict(),
  /**
   * Fast start (main/host/fast-start.ts): enable keeps a post-boot state at the next cold boot, taken
   * when the guest prints DOMUS-GUEST-READY or `afterSec` seconds after boot; disable drops it and the
   * setting; refresh drops the state so that the next start boots cold and keeps a new one.
   */
  'domain.fastStart': z.object({ domain: DomainRef, action: z.enum(['enable', 'disable', 'refresh']), afterSec: z.number().int().min(1).max(3600).optional() }).strict(),
  /** virsh desc: title/description, applied to the live domain, the definition, or both. */
  'domain.setMetadata': z
    .object({
      domain: DomainRef,
      title: z.string().max(1024).optional(),
      description: z.string().max(65536).optional(),
      live: z.boolean().default(false),
      config: z.boolean().default(false),
      expectGeneration: z.number().int().nonnegative().optional(),
    })
    .strict(),
  'domain.save': z.object({ domain: DomainRef, file: z.string().min(1, 'state file path is required') }).strict(),
  'domain.restore': z.object({ file: z.string().min(1, 'state file path is required'), paused: z.boolean().default(false) }).strict(),
  'domain.managedSave': z.object({ domain: DomainRef }).strict(),
  'domain.managedSaveRemove': z.object({ domain: DomainRef }).strict(),
  /**
   * virsh dump --memory-only: an ELF core of the guest (PT_LOAD segments for its RAM, NT_PRSTATUS
   * notes with the vCPU registers), written atomically as a job. Without `live` the guest is paused
   * for the dump and resumed after; `reset` resets it after the dump; a panicked guest can be dumped.
   */
  'domain.coreDump': z
    .object({
      domain: DomainRef,
      file: z.string().min(1, 'dump file path is required'),
      /** virsh's --memory-only; Domus's engines write only memory-only ELF cores, so false is refused. */
      memoryOnly: z.literal(true, { message: 'only memory-only dumps (an ELF core) are supported' }).default(true),
      live: z.boolean().default(false),
      reset: z.boolean().default(false),
      /** virsh's --crash: the domain is stopped after the dump, with reason crashed. */
      crash: z.boolean().default(false),
      format: z.enum(['elf']).default('elf'),
    })
    .strict()
    .refine((p) => !(p.crash && p.reset), 'crash and reset are mutually exclusive')
    .refine((p) => !(p.crash && p.live), 'live and crash are mutually exclusive'),
  /**
   * virsh migrate: moves the domain to the host at `destination` (a URI as `domus uri` prints it on
   * that host, or a libvirt URI for a domain of a libvirt connection) as a job with migration
   * progress; answers when the guest runs there. Any failure leaves the guest running here.
   */
  'domain.migrate': z
    .object({
      domain: DomainRef,
      destination: ConnectionUri,
      live: z.boolean().default(false),
      /** Switch to post-copy after the first pass (QEMU; Domus chooses it itself on TCG, and says so). */
      postcopy: z.boolean().default(false),
      /** Define the domain on the destination too (a transient guest there otherwise). */
      persistent: z.boolean().default(false),
      /** Undefine the domain here once it runs there. */
      undefineSource: z.boolean().default(false),
      /** Copy the disks along (virsh --copy-storage-all); otherwise they must be shared storage. */
      copyStorageAll: z.boolean().default(false),
      /** virsh --timeout: seconds of live pre-copy before the guest is paused to finish. */
      timeoutS: z.number().int().positive().max(86400).optional(),
      /** virsh --bandwidth, MiB/s. */
      bandwidthMiBs: z.number().int().positive().max(1_000_000).optional(),
    })
    .strict()
    .refine((p) => !p.postcopy || p.live, 'postcopy needs a live migration'),
  /**
   * virt-clone: a new domain from this one's next-boot definition with a new name, UUID and MACs.
   * Writable disks are copied (a job on the original, with progress and abort) to `files` in disk
   * order, or to names made beside the originals; CD-ROMs, read-only disks (not on v86, whose disks
   * have no read-only mode) and `skipCopy` targets are shared. A running original is refused unless `pause` (it is paused for the copy, then
   * resumed), as virt-clone wants it paused or shut off. dryRun: the plan only.
   */
  'domain.clone': z
    .object({
      domain: DomainRef,
      name: z.string().min(1, 'the new name is empty').max(256).optional(),
      uuid: z.string().uuid('must be a UUID like 6f1c…-…').optional(),
      macs: z.array(MacAddress).max(64).default([]),
      files: z.array(z.string().min(1, 'a disk path is empty').max(4096)).max(64).default([]),
      skipCopy: z.array(z.string().min(1).max(32)).max(64).default([]),
      pause: z.boolean().default(false),
      dryRun: z.boolean().default(false),
    })
    .strict(),
  'domain.jobInfo': z.object({ domain: DomainRef, completed: z.boolean().default(false) }).strict(),
  'domain.jobAbort': z.object({ domain: DomainRef }).strict(),
  // Console (VNC, keys)
  /** virsh send-key: key codes or names (KEY_LEFTCTRL…) in a codeset, pressed together then released. */
  'domain.sendKey': z
    .object({
      domain: DomainRef,
      codeset: z.enum(['linux', 'xt', 'atset1', 'qnum', 'usb']).default('linux'),
      holdtimeMs: z.number().int().min(0).max(10_000).optional(),
      keycodes: z.array(z.union([z.string().min(1).max(32), z.number().int().min(0).max(0xffff)])).min(1, 'give at least one key').max(16, 'at most 16 keys at once'),
    })
    .strict(),
  /** Where the domain's VNC server listens (virsh vncdisplay). */
  'domain.vncDisplay': z.object({ domain: DomainRef }).strict(),
  // Memory balloon and statistics
  /** virsh setmem: the balloon target (current memory), live and/or in the definition. */
  'domain.setMemory': z
    .object({ domain: DomainRef, sizeKiB: z.number().int().positive(), live: z.boolean().default(false), config: z.boolean().default(false) })
    .strict(),
  /** virsh setmaxmem: the maximum memory, which takes effect at next boot. */
  'domain.setMaxMemory': z
    .object({ domain: DomainRef, sizeKiB: z.number().int().positive(), config: z.boolean().default(true), live: z.boolean().default(false) })
    .strict(),
  /** virsh dommemstat. */
  'domain.memoryStats': z.object({ domain: DomainRef }).strict(),
  /** virsh domstats: one sample of the domain's counters and rates. */
  'domain.stats': z.object({ domain: DomainRef }).strict(),
  /** Starts sampling statistics for this client (all domains when none named); sampling stops when no one watches. */
  'stats.watch': z.object({ domains: z.array(DomainRef).max(256).optional(), intervalMs: z.number().int().min(250).max(60_000).default(1000) }).strict(),
  'stats.unwatch': z.object({}).strict(),
  // Devices
  /** virsh change-media: insert or eject the medium of a CD-ROM (or floppy). */
  'domain.changeMedia': z
    .object({
      domain: DomainRef,
      target: z.string().min(1, 'target device is required'),
      source: z.string().min(1).optional(),
      eject: z.boolean().default(false),
      live: z.boolean().default(false),
      config: z.boolean().default(false),
    })
    .strict(),
  /** virsh attach-disk. */
  'domain.attachDisk': z
    .object({
      domain: DomainRef,
      source: z.string().min(1, 'source image is required').optional(),
      target: z.string().min(1).optional(),
      device: z.enum(['disk', 'cdrom']).default('disk'),
      readonly: z.boolean().default(false),
      live: z.boolean().default(false),
      config: z.boolean().default(false),
    })
    .strict(),
  /** virsh detach-disk. */
  'domain.detachDisk': z
    .object({ domain: DomainRef, target: z.string().min(1, 'target device is required'), live: z.boolean().default(false), config: z.boolean().default(false) })
    .strict(),
  /** virsh domcapabilities: what the domain's engine (or the named engine) can give a guest, with the reason for each choice it cannot. */
  'domain.capabilities': z.object({ domain: DomainRef.optional(), engine: z.enum(['v86', 'qemu']).optional() }).strict(),
  /** virsh attach-device: one device from libvirt device XML (<disk>, <interface>, <video>, <input>, <sound>, <serial>, <channel>, <graphics>, <hostdev>). */
  'domain.attachDevice': z.object({ domain: DomainRef, xml: DeviceXml, live: z.boolean().default(false), config: z.boolean().default(false) }).strict(),
  /** virsh detach-device: the device the XML matches (a disk by its target, an interface by its MAC, others by their whole description). */
  'domain.detachDevice': z.object({ domain: DomainRef, xml: DeviceXml, live: z.boolean().default(false), config: z.boolean().default(false) }).strict(),
  /** virsh update-device: replaces the matching device's settings. */
  'domain.updateDevice': z.object({ domain: DomainRef, xml: DeviceXml, live: z.boolean().default(false), config: z.boolean().default(false) }).strict(),
  /** virsh domblkinfo: a disk's capacity, allocation and physical size. */
  'domain.blockInfo': z.object({ domain: DomainRef, target: z.string().min(1, 'target device is required').max(64) }).strict(),
  /** virsh blockresize: grows a disk's image (running: the guest sees the new size; shut off: the file). Shrinking is refused. */
  'domain.blockResize': z
    .object({ domain: DomainRef, target: z.string().min(1, 'target device is required').max(64), sizeBytes: z.number().int().positive().max(2 ** 50, 'larger than 1 PiB') })
    .strict(),
  // Storage pools and volumes
  'pool.list': z.object({}).strict(),
  'volume.list': z.object({ pool: z.string().min(1).default('default') }).strict(),
  /** virsh vol-create-as. */
  'volume.create': z
    .object({ pool: z.string().min(1).default('default'), name: VolumeName, capacityBytes: z.number().int().positive().max(2 ** 50), format: z.enum(['raw', 'qcow2']).default('raw') })
    .strict(),
  'volume.clone': z.object({ pool: z.string().min(1).default('default'), source: z.string().min(1), name: VolumeName }).strict(),
  'volume.resize': z.object({ pool: z.string().min(1).default('default'), name: z.string().min(1), capacityBytes: z.number().int().positive().max(2 ** 50) }).strict(),
  'volume.delete': z.object({ pool: z.string().min(1).default('default'), name: z.string().min(1) }).strict(),
  /** A volume by pool+name, or by path. */
  'volume.info': z.object({ pool: z.string().min(1).optional(), volume: z.string().min(1) }).strict(),
  /**
   * virsh vol-upload into a new volume: creates `name` in the pool sized to `file` (a file on the
   * Domus host) and streams the file into it as a job (job.progress events); answers when done.
   */
  'volume.upload': z
    .object({ pool: z.string().min(1).default('default'), name: VolumeName, file: z.string().min(1, 'file path is required').max(4096, 'file path is longer than 4096 characters') })
    .strict(),
  /** Cancels a running upload (virStreamAbort): the new volume is deleted. */
  'volume.uploadAbort': z.object({ job: z.number().int().nonnegative() }).strict(),
  // Virtual networks (libvirt's network model: virsh net-*), and domains' interfaces on them
  'network.list': z.object({}).strict(),
  /** virsh net-define: a persistent network from libvirt network XML (replaces an inactive definition of that name). */
  'network.define': z.object({ xml: z.string().min(1, 'XML is empty').max(1 << 20, 'XML is larger than 1 MiB') }).strict(),
  /** virsh net-undefine: removes the definition; a running network goes on as transient until destroyed. */
  'network.undefine': z.object({ network: NetworkRef }).strict(),
  /** virsh net-start. */
  'network.start': z.object({ network: NetworkRef }).strict(),
  /** virsh net-destroy: stops the network's switch; guests' NICs on it lose their link until it starts again. */
  'network.destroy': z.object({ network: NetworkRef }).strict(),
  /** virsh net-dumpxml (inactive: the persistent definition rather than the running one). */
  'network.xml': z.object({ network: NetworkRef, inactive: z.boolean().default(false) }).strict(),
  'network.setAutostart': z.object({ network: NetworkRef, enabled: z.boolean() }).strict(),
  /** virsh net-dhcp-leases [--mac]. */
  'network.dhcpLeases': z.object({ network: NetworkRef, mac: MacAddress.optional() }).strict(),
  /** virsh domiflist. */
  'domain.interfaces': z.object({ domain: DomainRef, inactive: z.boolean().default(false) }).strict(),
  /** virsh domifaddr (--source lease: the addresses its networks' DHCP servers leased to its MACs). */
  'domain.interfaceAddresses': z.object({ domain: DomainRef, interface: z.string().min(1).max(64).optional() }).strict(),
  /** virsh attach-interface: a NIC on a network (or user-mode networking); live where the engine can plug one. */
  'domain.attachInterface': z
    .object({
      domain: DomainRef,
      type: z.enum(['network', 'user']),
      source: z.string().min(1).max(64).optional(),
      model: z.string().min(1).max(32).optional(),
      mac: MacAddress.optional(),
      live: z.boolean().default(false),
      config: z.boolean().default(false),
    })
    .strict(),
  /** virsh detach-interface: by MAC, or the only interface of that type. */
  'domain.detachInterface': z
    .object({ domain: DomainRef, type: z.enum(['network', 'user']), mac: MacAddress.optional(), live: z.boolean().default(false), config: z.boolean().default(false) })
    .strict(),
  /** virsh domif-setlink: an interface (by MAC or interface name) link up or down, live and/or in the definition. */
  'domain.setLinkState': z
    .object({ domain: DomainRef, interface: z.string().min(1).max(64), state: z.enum(['up', 'down']), live: z.boolean().default(false), config: z.boolean().default(false) })
    .strict(),
  /** Lists a host directory for the file chooser (virt-manager's "Browse Local"). */
  /** virsh nodedev-list --cap usb_device: the host's USB devices, for passthrough. */
  'host.usbDevices': z.object({}).strict(),
  'host.browse': z.object({ path: z.string().max(4096).optional(), filter: z.enum(['any', 'iso', 'disk', 'kernel']).default('any') }).strict(),
  /** Reads a disk or ISO image in user space (never mounted): partitions, bootloader entries, kernels, architecture. */
  'host.inspectImage': z.object({ path: z.string().min(1, 'image path is required') }).strict(),
  /** Which OS an ISO installs, from its volume descriptor matched against osinfo-db (as libosinfo does). */
  'osinfo.detect': z.object({ path: HostFile('image') }).strict(),
  /** The OSes osinfo-db knows whose name, short id or id contains `query` (all when empty), best first. */
  'osinfo.list': z.object({ query: z.string().max(256, 'query is longer than 256 characters').default(''), limit: z.number().int().min(1).max(2000).default(50) }).strict(),
  // OS downloads
  'catalogue.list': z.object({}).strict(),
  'download.start': z.object({ entry: z.string().min(1), pool: z.string().min(1).default('default') }).strict(),
  'download.cancel': z.object({ id: z.number().int().nonnegative() }).strict(),
  'download.list': z.object({}).strict(),
  // Connections (engines)
  /** The connections (one per engine: v86:///session, qemu:///session) with their availability. */
  /** virsh uri: this host's canonical URI, as another host reaches it (a migration destination). */
  'host.uri': z.object({}).strict(),
  'host.connections': z.object({}).strict(),
  /** Forces or frees the QEMU acceleration choice ('auto' runs the KVM probe). */
  'host.setAccel': z.object({ mode: z.enum(['auto', 'kvm', 'tcg']) }).strict(),
  /** virsh domxml-to-native: the engine's command line for a definition. */
  'domain.toNative': z.object({ domain: DomainRef.optional(), xml: z.string().min(1).max(1 << 20).optional() }).strict(),
  /** Says who this client is, for the trace (the CLI sends its pid and command line). */
  'session.hello': z.object({ kind: z.enum(['cli', 'gui', 'web', 'electron', 'script']), pid: z.number().int().optional(), label: z.string().max(256) }).strict(),
  /** domain: exact domain name; op: prefix of the operation or event name ('domain.' matches all domain ops). */
  'trace.subscribe': z.object({ domain: z.string().optional(), op: z.string().optional(), backlog: z.boolean().default(false) }).strict(),
  'trace.unsubscribe': z.object({}).strict(),
  // Connections to libvirt hosts (virt-manager's connection list), kept in DOMUS_HOME.
  'connection.list': z.object({}).strict(),
  /** Adds a connection (qemu:///system, qemu+ssh://user@host/system, …); opens it when autoconnect. */
  'connection.add': z.object({ uri: ConnectionUri, autoconnect: z.boolean().default(true) }).strict(),
  'connection.remove': z.object({ uri: ConnectionUri }).strict(),
  'connection.open': z.object({ uri: ConnectionUri }).strict(),
  'connection.close': z.object({ uri: ConnectionUri }).strict(),
  /**
   * Answers ssh's question (a connection.prompt event) with a passphrase, password or yes/no, or
   * cancels it, which fails the connection attempt. Never traced or logged.
   */
  'connection.answer': z
    .object({ id: z.string().min(1).max(64), answer: z.string().max(4096).optional(), cancel: z.boolean().optional() })
    .strict()
    .refine((p) => (p.answer !== undefined) !== (p.cancel === true), 'give either answer or cancel: true'),
  /** The ssh questions waiting for an answer (for a client that arrives after their event). */
  'connection.prompts': z.object({}).strict(),
  // Domain snapshots (virsh snapshot-*): the disks, and for a running guest its memory, at a moment.
  'snapshot.list': z.object({ domain: DomainRef }).strict(),
  /**
   * virsh snapshot-create-as / snapshot-create: a running guest's snapshot holds its memory too
   * (the guest runs on); diskOnly: the disks alone. `xml` is a <domainsnapshot> (its name and
   * description are taken; the rest is the host's to fill), instead of name/description.
   */
  'snapshot.create': z
    .object({
      domain: DomainRef,
      name: SnapshotName.optional(),
      description: z.string().max(65536, 'description is longer than 65536 characters').optional(),
      diskOnly: z.boolean().default(false),
      xml: z.string().min(1, 'XML is empty').max(1 << 20, 'XML is larger than 1 MiB').optional(),
    })
    .strict()
    .refine((p) => !(p.xml && (p.name !== undefined || p.description !== undefined)), 'give either xml or name/description'),
  /** virsh snapshot-info: one snapshot, or the current one. */
  'snapshot.info': z.object({ domain: DomainRef, snapshot: SnapshotRef.optional() }).strict(),
  /**
   * virsh snapshot-revert: disks (and memory) back as at the snapshot; the domain ends in the
   * snapshot's state unless running/paused says otherwise.
   */
  'snapshot.revert': z
    .object({ domain: DomainRef, snapshot: SnapshotRef, running: z.boolean().default(false), paused: z.boolean().default(false) })
    .strict()
    .refine((p) => !(p.running && p.paused), 'running and paused are mutually exclusive'),
  /** virsh snapshot-delete: its children are re-parented to its parent, or deleted with it (children). */
  'snapshot.delete': z.object({ domain: DomainRef, snapshot: SnapshotRef, children: z.boolean().default(false) }).strict(),
  /** virsh snapshot-dumpxml. */
  'snapshot.xml': z.object({ domain: DomainRef, snapshot: SnapshotRef }).strict(),
  /** The guest's screen when the snapshot was taken (a running guest's only). */
  'snapshot.thumbnail': z.object({ domain: DomainRef, snapshot: SnapshotRef }).strict(),
} as const;

export type Method = keyof typeof RequestParams;
export type Params<M extends Method> = z.input<(typeof RequestParams)[M]>;
export type ParsedParams<M extends Method> = z.output<(typeof RequestParams)[M]>;

export interface DomainSummary {
  uuid: string;
  name: string;
  /** virsh's Id column: a number while active, undefined when shut off. */
  id?: number;
  state: DomainState;
  reason: StateReason;
  step: DomainStep;
  persistent: boolean;
  engine: string;
  memoryKiB: number;
  currentMemoryKiB: number;
  vcpus: number;
  /**
   * Guest CPU use as virt-manager shows it: the vCPUs' time over elapsed time times the vCPUs, in
   * percent (0–100), sampled by the host from the engine.
   */
  cpuPercent: number;
  title?: string;
  autostart: boolean;
  onHostStop: OnHostStop;
  /** A managed-save image exists: the next start restores it. */
  managedSave: boolean;
  /** Fast start is on (absent when off): `kept` when a post-boot state for the definition as it is now is kept. */
  fastStart?: { kept: boolean; afterSec?: number };
  /** The running guest was started from its fast-start state rather than booted. */
  fastStarted?: boolean;
  /** Bumped at every change of the persistent definition (edit conflicts). */
  generation: number;
  /**
   * Why the definition cannot start on this host (UEFI firmware on v86, nothing to boot…), naming
   * the connection that could run it; start refuses it with this reason. Absent when it can start.
   */
  cannotStart?: string;
}

export interface DomainInfo extends DomainSummary {
  osType: string;
  cpuTimeMs: number;
  config: DomainConfig;
  warnings: DefinitionWarning[];
}

export interface SampleGuest {
  id: 'pv' | 'cdrom' | 'disk' | 'amd64';
  label: string;
  description: string;
  spec: NewDomainSpecInput;
}

export interface HostStatus {
  pid: number;
  version: string;
  uri: string;
  home: string;
  startedAt: number;
  firmware: { bios?: string; vgaBios?: string; problem?: string };
}

export interface Results {
  'host.status': HostStatus;
  'host.samples': { samples: SampleGuest[]; missing?: string };
  /** A one-time address: it logs one browser in (first use within 5 minutes), then stops working. */
  'host.webShell': { url: string };
  'host.stop': Record<string, never>;
  'domain.list': { domains: DomainSummary[] };
  'domain.define': { domain: DomainSummary; warnings: DefinitionWarning[] };
  'domain.create': { domain: DomainSummary; warnings: DefinitionWarning[] };
  /** The disk files deleted with the domain, and those asked for but kept (why). */
  'domain.undefine': { removed?: StorageRemoval[]; kept?: StorageRemoval[] };
  /** warnings: which engine (and accelerator) runs the domain, when that is worth a word. */
  'domain.start': { domain: DomainSummary; warnings?: DefinitionWarning[] };
  'domain.destroy': { domain: DomainSummary };
  'domain.suspend': { domain: DomainSummary };
  'domain.resume': { domain: DomainSummary };
  'domain.info': DomainInfo;
  'domain.xml': { xml: string; generation: number };
  'domain.screenshot': { png: string; width: number; height: number };
  'domain.sendKeys': Record<string, never>;
  'domain.serialOpen': { backlog: string };
  'domain.serialClose': Record<string, never>;
  'domain.serialWrite': Record<string, never>;
  /**
   * asked: the channels that carried the request (empty when the guest could not be asked);
   * forced: it was forced off at once for that reason; message: what happened, for people.
   */
  'domain.shutdown': { domain: DomainSummary; asked: ('acpi' | 'agent')[]; forced: boolean; message?: string };
  'domain.reboot': { domain: DomainSummary };
  'domain.reset': { domain: DomainSummary };
  'domain.createTransient': { domain: DomainSummary; warnings: DefinitionWarning[] };
  'domain.setAutostart': { domain: DomainSummary };
  'domain.setOnHostStop': { domain: DomainSummary };
  'domain.fastStart': { domain: DomainSummary };
  'domain.setMetadata': { domain: DomainSummary; generation: number };
  'domain.save': { job: JobInfo };
  'domain.restore': { domain: DomainSummary; job: JobInfo };
  'domain.managedSave': { job: JobInfo };
  'domain.managedSaveRemove': { domain: DomainSummary };
  'domain.coreDump': { job: JobInfo; file: string };
  'domain.migrate': { job: JobInfo; destination: string; result: MigrationOutcome };
  'domain.clone': CloneResult;
  'domain.jobInfo': { job: JobInfo | null };
  'domain.jobAbort': { job: JobInfo };
  'domain.sendKey': Record<string, never>;
  'domain.vncDisplay': VncDisplay;
  'domain.setMemory': { domain: DomainSummary };
  'domain.setMaxMemory': { domain: DomainSummary };
  'domain.memoryStats': MemoryStats;
  'domain.stats': DomainStatsSample;
  'stats.watch': Record<string, never>;
  'stats.unwatch': Record<string, never>;
  'domain.changeMedia': { domain: DomainSummary };
  'domain.attachDisk': { domain: DomainSummary; target: string };
  'domain.detachDisk': { domain: DomainSummary };
  'domain.capabilities': { capabilities: DomainCapabilities };
  'domain.attachDevice': { domain: DomainSummary };
  'domain.detachDevice': { domain: DomainSummary };
  'domain.updateDevice': { domain: DomainSummary };
  'domain.blockInfo': { capacity: number; allocation: number; physical: number };
  'domain.blockResize': { domain: DomainSummary; capacity: number };
  'pool.list': { pools: PoolInfo[] };
  /** warnings: what was done on the way (a libvirt host's default pool created on first use). */
  'volume.list': { volumes: VolumeInfo[]; warnings?: string[] };
  'volume.create': { volume: VolumeInfo; warnings?: string[] };
  'volume.clone': { volume: VolumeInfo };
  'volume.resize': { volume: VolumeInfo };
  'volume.delete': Record<string, never>;
  'volume.info': { volume: VolumeInfo };
  'volume.upload': { volume: VolumeInfo; job: JobInfo; warnings?: string[] };
  'volume.uploadAbort': { job: JobInfo };
  'network.list': { networks: NetworkInfo[] };
  'network.define': { network: NetworkInfo; warnings?: string[] };
  'network.undefine': Record<string, never>;
  'network.start': { network: NetworkInfo };
  'network.destroy': { network: NetworkInfo };
  'network.xml': { xml: string };
  'network.setAutostart': { network: NetworkInfo };
  'network.dhcpLeases': { leases: NetworkLease[] };
  'domain.interfaces': { interfaces: DomainInterface[] };
  'domain.interfaceAddresses': { interfaces: { name: string; mac: string; addresses: { type: 'ipv4' | 'ipv6'; address: string; prefix: number }[] }[] };
  'domain.attachInterface': { domain: DomainSummary; mac: string };
  'domain.detachInterface': { domain: DomainSummary };
  'domain.setLinkState': { domain: DomainSummary };
  'host.usbDevices': { devices: HostUsbDevice[] };
  'host.browse': BrowseListing;
  'host.inspectImage': ImageInspection;
  'osinfo.detect': OsinfoDetection;
  'osinfo.list': { oses: OsinfoEntry[]; total: number; available: boolean; problem?: string };
  'catalogue.list': { entries: CatalogueEntry[]; source: string };
  'download.start': { download: DownloadInfo };
  'download.cancel': { download: DownloadInfo };
  'download.list': { downloads: DownloadInfo[] };
  'host.uri': { uri: string };
  'host.connections': { connections: ConnectionInfo[] };
  'host.setAccel': { connection: ConnectionInfo };
  'domain.toNative': { argv: string[] };
  'session.hello': Record<string, never>;
  'trace.subscribe': { backlog: TraceRecord[] };
  'trace.unsubscribe': Record<string, never>;
  'connection.list': { connections: ConnectionState[] };
  'connection.add': { connection: ConnectionState };
  'connection.remove': Record<string, never>;
  'connection.open': { connection: ConnectionState };
  'connection.close': { connection: ConnectionState };
  'connection.answer': Record<string, never>;
  'connection.prompts': { prompts: Events['connection.prompt'][] };
  /** unavailable: why snapshots cannot be taken or reverted to now (the engine, a disk's format). */
  'snapshot.list': { snapshots: SnapshotInfo[]; unavailable?: string };
  'snapshot.create': { snapshot: SnapshotInfo; job: JobInfo };
  'snapshot.info': { snapshot: SnapshotInfo };
  'snapshot.revert': { domain: DomainSummary; snapshot: SnapshotInfo; job: JobInfo };
  /** The snapshots removed (with children: the whole subtree). */
  'snapshot.delete': { deleted: string[] };
  'snapshot.xml': { xml: string };
  /** Base64 PNG; absent for a snapshot of a guest that was not running. */
  'snapshot.thumbnail': { png?: string };
}

/** One domain snapshot, as virsh snapshot-info and snapshot-list show it. */
export interface SnapshotInfo {
  name: string;
  description?: string;
  /** Epoch seconds (libvirt's creationTime). */
  createdAt: number;
  /** The domain's state when it was taken; disk-snapshot: the disks alone. */
  state: 'running' | 'paused' | 'shutoff' | 'disk-snapshot';
  parent?: string;
  current: boolean;
  /** The guest's memory is in it (reverting resumes the guest where it was). */
  memory: boolean;
  children: number;
  descendants: number;
  /** libvirt's location: internal (in the engine's own files) or external (overlay files). */
  location: 'internal' | 'external';
  /** A screenshot of the moment exists (snapshot.thumbnail). */
  thumbnail: boolean;
}

export interface VncDisplay {
  /** The unix socket the display listens on (every guest of this host's own engines has one). */
  socket?: string;
  /** The TCP listener opened for a <graphics type='vnc'> element. */
  tcp?: { address: string; port: number };
  /** virsh's form, e.g. "127.0.0.1:0" (port 5900 + display). */
  display?: string;
  passwordRequired: boolean;
}

/** virsh dommemstat, plus what the page needs to explain the balloon. Sizes in KiB. */
export interface MemoryStats {
  maxKiB: number;
  /** The balloon target (libvirt's current memory). */
  targetKiB: number;
  /** What the guest currently has: maximum minus what it handed back to the balloon. */
  actualKiB: number;
  /** From the guest's balloon statistics, when its driver reports them. */
  availableKiB?: number;
  unusedKiB?: number;
  usableKiB?: number;
  /** The guest's page cache (virsh's disk_caches). */
  diskCachesKiB?: number;
  /** Host memory used by the engine process. */
  rssKiB?: number;
  /**
   * 'pending': not followed yet (on its way, or the guest has not loaded its driver yet: still booting);
   * 'no-driver': the guest saw the device but did not follow the target within the timeout.
   */
  balloon: 'ok' | 'pending' | 'no-driver' | 'absent';
  /** Whether a deflated guest's memory really goes back to the host on this engine. */
  hostReclaims: boolean;
  /** Epoch ms when the guest last sent its statistics. */
  lastUpdate?: number;
}

/** One statistics sample (rates per second over the last interval). */
export interface DomainStatsSample {
  uuid: string;
  name: string;
  at: number;
  state: DomainState;
  /** Guest CPU (0–100, as DomainSummary.cpuPercent). */
  cpuPercent: number;
  /**
   * The engine process's own CPU use beyond the guest's vCPUs (emulator threads, JIT compiler, GC,
   * I/O), in percent of one host core; absent where the engine cannot tell the two apart.
   */
  overheadPercent?: number;
  cpuTimeMs: number;
  rssBytes: number;
  memory: { maxKiB: number; targetKiB: number; actualKiB: number; guestUsedKiB?: number };
  disk: {
    rdBytes: number;
    wrBytes: number;
    rdBytesPerSec: number;
    wrBytesPerSec: number;
    /** Per disk (domstats block.N.*), while the domain runs. */
    devices?: { name: string; path: string; rdBytes: number; wrBytes: number; rdReqs: number; wrReqs: number }[];
  };
  net: {
    rxBytes: number;
    txBytes: number;
    rxBytesPerSec: number;
    txBytesPerSec: number;
    /**
     * Per NIC (domstats net.N.*), counted by the network's switch on this host's engines; mac and
     * the DHCP-leased addresses when known, for the domain list's IP column.
     */
    devices?: { name: string; mac?: string; network?: string; rxBytes: number; txBytes: number; addresses?: string[] }[];
  };
}

export interface PoolInfo {
  name: string;
  /** libvirt's pool type: 'dir' on this host; a libvirt host may have others (logical, netfs, …). */
  type: string;
  path: string;
  state: 'running' | 'inactive';
  autostart: boolean;
  capacityBytes: number;
  allocationBytes: number;
  availableBytes: number;
}

export interface VolumeInfo {
  pool: string;
  name: string;
  path: string;
  format: 'raw' | 'qcow2' | 'iso' | 'unknown';
  capacityBytes: number;
  allocationBytes: number;
  /** Domains whose definition uses this volume. */
  usedBy: string[];
}

/** One virtual network, as virsh net-list --all and net-info show it. */
export interface NetworkInfo {
  name: string;
  uuid: string;
  active: boolean;
  persistent: boolean;
  autostart: boolean;
  /** libvirt's <forward mode>: 'nat', or 'none' for an isolated network (no <forward>); a libvirt host may have others (route, open, bridge…). */
  forward: string;
  /** The bridge (libvirt) or switch the network's guests plug into. */
  bridge?: string;
  /** The gateway's IPv4 address and prefix, and the DHCP range, when the network has them. */
  address?: string;
  prefix?: number;
  dhcpRange?: { start: string; end: string };
}

/** One DHCP lease (virsh net-dhcp-leases). */
export interface NetworkLease {
  network: string;
  mac: string;
  address: string;
  prefix: number;
  hostname?: string;
  clientId?: string;
  /** Epoch seconds. */
  expiryTime: number;
}

/** One row of virsh domiflist. */
export interface DomainInterface {
  /** The host-side name: vnetN while running (libvirt's target dev), '-' when off. */
  name: string;
  type: string;
  source?: string;
  model?: string;
  mac: string;
  link: 'up' | 'down';
}

export interface BrowseListing {
  path: string;
  parent?: string;
  entries: { name: string; path: string; kind: 'dir' | 'file'; sizeBytes: number; mtime: number }[];
}

export interface BootEntry {
  index: number;
  label: string;
  kernel: string;
  initrd?: string;
  args?: string;
}

export interface ImageInspection {
  path: string;
  format: 'iso' | 'disk' | 'unknown';
  sizeBytes: number;
  partitionTable?: 'mbr' | 'gpt' | 'none';
  partitions: { index: number; type: string; startBytes: number; sizeBytes: number; filesystem?: string; bootable?: boolean }[];
  /** The bootloader configuration found (grub.cfg, extlinux.conf, syslinux.cfg, isolinux.cfg). */
  bootConfig?: { file: string; entries: BootEntry[]; defaultIndex?: number };
  /** /boot/vmlinuz-* kernels with their matching initrd, newest first. */
  kernels: { path: string; version?: string; initrd?: string }[];
  /** The guest's architecture as read from its kernel. */
  arch: 'i686' | 'x86_64' | 'unknown';
  archReason?: string;
  problems: string[];
}

/** What the New VM wizard presets from an OS's osinfo-db <resources> (recommended, else minimum) and <devices>. */
export interface OsinfoPresets {
  memoryMiB: number;
  diskGiB: number;
  vcpus: number;
  /** Where the figures come from, in a few words ("recommended for Debian testing"). */
  source: string;
  /** virtio NIC when the OS lists virtio-net among its devices, else the engine's emulated card. */
  nic: 'virtio' | 'emulated';
}

/** An OS of osinfo-db (libosinfo's database), as the wizard lists it. */
export interface OsinfoEntry {
  /** libosinfo's id, e.g. http://debian.org/debian/testing: what virt-install writes in <libosinfo:os id>. */
  id: string;
  /** Its first short id (debiantesting), the name virt-install suggests. */
  shortId: string;
  name: string;
  version?: string;
  vendor?: string;
  family?: string;
  /** The architectures its install media are published for (from <media arch>). */
  arches: string[];
  /** <resources><minimum><ram>, for the memory floor the balloon page warns below. */
  minimumMemoryMiB?: number;
  presets: OsinfoPresets;
  eolDate?: string;
}

export interface OsinfoDetection {
  path: string;
  /** False when osinfo-db is not installed (then no detection; `problem` says how to get it). */
  available: boolean;
  problem?: string;
  /** The ISO's primary volume descriptor, as libosinfo reads it. */
  identity?: { volumeId: string; systemId: string; publisherId: string; applicationId: string; volumeSizeBytes: number };
  /** The OS whose <media> matched, with the medium's architecture and presets for that architecture. */
  os?: OsinfoEntry;
  arch?: string;
  media?: { live: boolean; variant?: string };
  /** Other OSes whose media matched too (libosinfo takes the first). */
  others?: string[];
}

export interface CatalogueEntry {
  id: string;
  name: string;
  version: string;
  arch: 'i686' | 'x86_64';
  url: string;
  /** The image's SHA-256, pinned in the catalogue… */
  sha256?: string;
  /** …or the distribution's checksum file (SHA256SUMS or a .sha256) to read it from first. */
  sha256Url?: string;
  sizeBytes?: number;
  /** Set by catalogue.list when the image is already in the default pool. */
  file?: string;
  /** How the downloaded file boots. */
  kind: 'iso' | 'disk';
  memoryMiB: number;
  diskGiB: number;
  boot: 'hvm' | 'pv';
}

export interface DownloadInfo {
  id: number;
  entry: string;
  url: string;
  /** Final path in the pool (present only once complete and verified). */
  file: string;
  status: 'running' | 'completed' | 'failed' | 'cancelled';
  receivedBytes: number;
  totalBytes: number;
  error?: string;
}

export interface ConnectionInfo {
  uri: string;
  engine: string;
  available: boolean;
  version?: string;
  /** Why the engine is unavailable, in one line. */
  problem?: string;
  accel?: { mode: 'auto' | 'kvm' | 'tcg'; kvmUsable: boolean | null; using: 'kvm' | 'tcg'; reason?: string };
}

/**
 * A connection as virt-manager lists it. 'local' is this host's own engines (v86:///session,
 * qemu:///session); 'libvirt' a libvirtd reached over its RPC protocol. Requests and events for a
 * libvirt connection carry its URI in their envelope.
 */
export interface ConnectionState {
  uri: string;
  kind: 'local' | 'libvirt';
  state: 'connected' | 'connecting' | 'disconnected' | 'failed';
  autoconnect: boolean;
  /** Why the last attempt failed or the connection dropped, in one line. */
  error?: string;
  /** Epoch ms of the next reconnect attempt (a dropped autoconnect connection retries with backoff). */
  retryAt?: number;
  /** The far side, once connected: its hostname and hypervisor ("QEMU 7.2.0"). */
  hostname?: string;
  hypervisor?: string;
}

/** A disk of a deleted domain: its file removed, or kept with the reason. */
export interface StorageRemoval {
  target: string;
  file: string;
  reason?: string;
}

/** One disk of a clone: copied to `file`, or shared (`file` is then the original's). */
export interface CloneDisk {
  target: string;
  device: string;
  source: string;
  action: 'copy' | 'share';
  file: string;
  /** Bytes to copy (the source's size); 0 when shared. */
  bytes: number;
}

/** What domain.clone made (or, dryRun, would make); no domain when the copy was aborted. */
export interface CloneResult {
  name: string;
  uuid: string;
  disks: CloneDisk[];
  domain?: DomainSummary;
  job?: JobInfo;
  /** The original was paused for the copy: true once it runs again, false if it could not be resumed. */
  resumed?: boolean;
}

/**
 * A long operation (save, restore, managed save, migrate, dump…): libvirt's job, with progress.
 * An upload is a volume's job: `domain` is then the volume's name, `uuid` its key (path) on the
 * host, and `volume` says which.
 */
export interface JobInfo {
  id: number;
  uuid: string;
  domain: string;
  /** What the job does; start, snapshot and backup are libvirt's jobs, seen on a libvirt connection. */
  operation: 'save' | 'restore' | 'managedsave' | 'dump' | 'migrate' | 'clone' | 'upload' | 'start' | 'snapshot' | 'snapshot-revert' | 'backup' | 'unknown';
  volume?: { pool: string; name: string };
  status: 'running' | 'completed' | 'failed' | 'aborted';
  startedAt: number;
  elapsedMs: number;
  /** Bytes done and expected, when known. */
  processedBytes: number;
  totalBytes: number;
  error?: string;
  /** A migration's own figures (libvirt's domjobinfo memory and dirty-rate fields). */
  migration?: MigrationProgressInfo;
}

export interface MigrationProgressInfo {
  /** Where it is: libvirt's phases, then the engine's copy (pre-copy rounds, the final stop-and-copy, post-copy). */
  phase: 'begin' | 'prepare' | 'precopy' | 'stopcopy' | 'postcopy' | 'finish' | 'confirm';
  iteration: number;
  remainingBytes: number;
  dirtyRateBytesPerSec?: number;
  /** Set when done: how long the guest was paused at switchover. */
  downtimeMs?: number;
}

/** What a finished migration reports (virsh domjobinfo --completed). */
export interface MigrationOutcome {
  downtimeMs: number;
  totalMs: number;
  transferredBytes: number;
  iterations: number;
  postcopy: boolean;
}

/** One line of the live trace: who asked what of which domain, with which result. */
export interface TraceRecord {
  seq: number;
  time: number;
  kind: 'request' | 'event';
  client?: { kind: string; label: string; pid?: number };
  /** The libvirt connection of the operation; absent: this host's own engines. */
  connection?: string;
  domain?: string;
  job?: number;
  op: string;
  args?: unknown;
  ok?: boolean;
  result?: string;
  error?: string;
  durationMs?: number;
}

export type OnHostStop = 'shutdown' | 'save' | 'keep';
export type FastStartAction = 'enable' | 'disable' | 'refresh';

export interface HostStopProgress {
  uuid: string;
  name: string;
  policy: OnHostStop;
  step: 'pending' | 'shutting-down' | 'saving' | 'done' | 'failed';
  /** The shutdown policy had to force the guest off (it could not be asked, or ignored the request). */
  forced?: boolean;
  message?: string;
}
export type Result<M extends Method> = Results[M];

export interface Events {
  /** A lifecycle change, with libvirt's state and reason (VIR_DOMAIN_EVENT_*). */
  'domain.lifecycle': { domain: DomainSummary; event: LifecycleEvent; detail?: string };
  'domain.defined': { domain: DomainSummary };
  'domain.undefined': { uuid: string; name: string };
  'domain.stats': { uuid: string; cpuPercent: number; rssBytes: number; sample?: DomainStatsSample };
  /** The guest's balloon changed what it holds (libvirt's BALLOON_CHANGE). */
  'domain.balloon': { uuid: string; name: string; actualKiB: number };
  'download.progress': { download: DownloadInfo };
  /** Serial output of a domain whose serial console this client opened. */
  'domain.serial': { uuid: string; data: string };
  'job.progress': { job: JobInfo };
  'job.completed': { job: JobInfo };
  'trace.record': { record: TraceRecord };
  /** Host stop: what each running domain's on-stop policy is doing. */
  'host.stopping': { domains: HostStopProgress[] };
  /** A network was defined, undefined, started or stopped (libvirt's VIR_NETWORK_EVENT_*). */
  'network.lifecycle': { network: NetworkInfo; event: 'defined' | 'undefined' | 'started' | 'stopped' };
  'connection.state': { connection: ConnectionState };
  /**
   * ssh, opening a connection, asks a question: a key's passphrase or a password (secret: the answer
   * is not to be shown), or whether to trust an unknown host key. Answer with connection.answer.
   */
  'connection.prompt': { uri: string; id: string; text: string; secret: boolean };
  /** The question is no longer open: answered (by some client), cancelled, or unanswered in time. */
  'connection.promptEnded': { uri: string; id: string; outcome: 'answered' | 'cancelled' | 'timed out' };
  /** A domain's snapshots changed: one was taken, reverted to or deleted (the tree and current may differ). */
  'snapshot.changed': { uuid: string; name: string; snapshot: string; event: 'created' | 'reverted' | 'deleted' };
}
export type EventName = keyof Events;
/** libvirt's VIR_DOMAIN_EVENT_* types (the reason is in the summary), plus 'step' for transitions. */
export type LifecycleEvent =
  | 'defined'
  | 'undefined'
  | 'started'
  | 'suspended'
  | 'resumed'
  | 'stopped'
  | 'shutdown'
  | 'rebooted'
  | 'crashed'
  | 'step';

/** Error classes: libvirt's virErrorNumber names (see errors.ts for the wording of each). */
export type { ErrorCode } from './errors.js';

export interface ApiError {
  code: ErrorCode;
  /** What virsh would print after "error: ": the class's wording, then the detail. */
  message: string;
}

// Wire envelopes.
export const RequestEnvelope = z
  .object({
    type: z.literal('request'),
    id: z.number().int().nonnegative(),
    method: z.string().min(1),
    params: z.unknown().optional(),
    /** The connection the request is for (a libvirt URI); absent: this host's own engines. */
    connection: z.string().min(1).max(1024).optional(),
  })
  .strict();
export type RequestEnvelope = z.infer<typeof RequestEnvelope>;

export type ReplyEnvelope =
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: ApiError };

export interface EventEnvelope<E extends EventName = EventName> {
  type: 'event';
  event: E;
  data: Events[E];
  /** The libvirt connection the event comes from; absent: this host's own engines. */
  connection?: string;
}

export type ServerMessage = ReplyEnvelope | EventEnvelope;

export function isMethod(name: string): name is Method {
  return Object.prototype.hasOwnProperty.call(RequestParams, name);
}

/** Formats a zod error as one line naming each bad field. */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}
