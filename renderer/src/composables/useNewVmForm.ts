// The New VM wizard's state and validation. The rules are NewDomainSpec's (shared/api.ts), the
// same schema the host enforces, so the wizard cannot drift from what the host accepts; what only
// the wizard knows (the size of a disk it will create, what the image inspection found) is checked
// here too. Each page shows the messages of its own fields.
import { computed, reactive, ref } from 'vue';
import { ENGINES, NewDomainSpec, type CatalogueEntry, type EngineName, type ImageInspection, type OsinfoDetection, type OsinfoEntry } from '@shared/api';
import { osEngineProblem } from '@shared/osinfo';
import { uniqueName } from '../lib/names';

/** virt-manager's first page: how the operating system gets installed. */
export type InstallMethod = 'iso' | 'download' | 'import' | 'pv' | 'pygrub';
export type FieldKey =
  | 'name'
  | 'memory'
  | 'vcpus'
  | 'engine'
  | 'iso'
  | 'disk'
  | 'kernel'
  | 'initrd'
  | 'cmdline'
  | 'entry'
  | 'diskSize'
  | 'catalogue';

export const METHODS: { method: InstallMethod; label: string; hint: string }[] = [
  { method: 'iso', label: 'Local install media (ISO image)', hint: 'Boot an installer or live CD from an ISO on the host; a new empty disk is attached.' },
  { method: 'download', label: 'Download an operating system', hint: 'Fetch a verified installer ISO from the catalogue into the default pool.' },
  { method: 'import', label: 'Import existing disk image', hint: 'Boot a disk image that already has an operating system, through the BIOS.' },
  { method: 'pv', label: 'Direct kernel boot (PV)', hint: 'Boot a Linux kernel, initrd and command line straight from files on the host.' },
  { method: 'pygrub', label: 'Boot the kernel on a disk (pygrub)', hint: 'Read the bootloader menu of a disk image and boot its kernel directly, as Xen’s pygrub.' },
];

export const STEPS = ['Method', 'Media and OS', 'Memory and CPUs', 'Storage', 'Name and network'] as const;

/** The fields each page shows, so a page can only be left once they are valid. */
const STEP_FIELDS: Record<InstallMethod, FieldKey[][]> = {
  iso: [['engine'], ['iso'], ['memory', 'vcpus'], ['diskSize'], ['name']],
  download: [['engine'], ['catalogue', 'iso'], ['memory', 'vcpus'], ['diskSize'], ['name']],
  import: [['engine'], ['disk'], ['memory', 'vcpus'], [], ['name']],
  pv: [['engine'], ['kernel', 'initrd', 'cmdline'], ['memory', 'vcpus'], [], ['name']],
  pygrub: [['engine'], ['disk', 'entry'], ['memory', 'vcpus'], [], ['name']],
};

/** Generic defaults when no OS is chosen (a small Linux guest). */
const GENERIC = { memoryMiB: 256, diskGiB: 2 };

export interface NewVmFields {
  method: InstallMethod;
  engine: EngineName;
  name: string;
  /** Kept as typed text so an empty or malformed entry can be reported rather than coerced. */
  memory: string;
  vcpus: string;
  diskSize: string;
  iso: string;
  disk: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  /** 'auto' (pygrub's default: the newest kernel) or a bootloader entry index. */
  entry: string;
  /** The catalogue entry the defaults (and, for downloads, the ISO) came from. */
  os: string;
  /** 'none', 'user', or 'network:NAME' for a virtual network of the host (virt-manager's "Network selection"). */
  network: string;
  customize: boolean;
}

function optional(value: string): string | undefined {
  const v = value.trim();
  return v === '' ? undefined : v;
}

function whole(value: string): number | undefined {
  const v = value.trim();
  return v === '' ? undefined : Number(v);
}

export function useNewVmForm(initialName: string) {
  const fields = reactive<NewVmFields>({
    method: 'iso',
    engine: 'v86',
    name: initialName,
    memory: String(GENERIC.memoryMiB),
    vcpus: '1',
    diskSize: String(GENERIC.diskGiB),
    iso: '',
    disk: '',
    kernel: '',
    initrd: '',
    cmdline: '',
    entry: 'auto',
    os: '',
    network: 'none',
    customize: false,
  });
  const step = ref(0);
  const touched = reactive(new Set<FieldKey>());
  /** Pages the person tried to leave: their messages show even for untouched fields. */
  const attempted = reactive(new Set<number>());
  /** What host.inspectImage said about the chosen image (undefined while unknown). */
  const inspection = ref<{ path: string; result?: ImageInspection; problem?: string }>();
  /** What osinfo.detect said about the chosen ISO (undefined while unknown). */
  const detection = ref<{ path: string; result?: OsinfoDetection; problem?: string }>();
  /** The osinfo-db OS the presets came from (detected, or picked from the list), with the medium's arch when detected. */
  const osinfo = ref<{ entry: OsinfoEntry; arch?: string }>();

  /** The disk the install methods create is named after the domain, in the default pool. */
  const createsDisk = computed(() => fields.method === 'iso' || fields.method === 'download');

  function bootDraft(): unknown {
    switch (fields.method) {
      case 'iso':
      case 'download':
        // The disk path is the new volume's, known once it is created; this one only passes the schema.
        return { kind: 'install', iso: fields.iso.trim(), disk: 'new-volume' };
      case 'import':
        return { kind: 'disk', disk: fields.disk.trim() };
      case 'pv':
        return { kind: 'pv', kernel: fields.kernel.trim(), initrd: optional(fields.initrd), cmdline: optional(fields.cmdline) };
      case 'pygrub':
        return { kind: 'pygrub', disk: fields.disk.trim(), entry: fields.entry === 'auto' ? undefined : Number(fields.entry) };
    }
  }

  /** On a virtual network, the card the chosen OS drives: virtio when osinfo-db lists it, else the engine's emulated one. */
  function nicModel(): 'e1000' | 'ne2k_pci' | undefined {
    if (!fields.network.startsWith('network:') || osinfo.value?.entry.presets.nic !== 'emulated') return undefined;
    return fields.engine === 'v86' ? 'ne2k_pci' : 'e1000';
  }

  function draft(): unknown {
    return {
      name: fields.name.trim(),
      engine: fields.engine,
      memoryMiB: whole(fields.memory),
      vcpus: whole(fields.vcpus),
      os: optional(fields.os),
      nicModel: nicModel(),
      network: fields.network.startsWith('network:') ? { network: fields.network.slice('network:'.length) } : fields.network,
      boot: bootDraft(),
    };
  }

  const result = computed(() => NewDomainSpec.safeParse(draft()));

  const errors = computed(() => {
    const out: Partial<Record<FieldKey | 'form', string>> = {};
    if (!result.value.success) {
      for (const issue of result.value.error.issues) {
        const [head, sub] = issue.path;
        let key: FieldKey | 'form' = 'form';
        if (head === 'name') key = 'name';
        else if (head === 'memoryMiB') key = 'memory';
        else if (head === 'vcpus') key = 'vcpus';
        else if (head === 'boot' && sub === 'iso') key = fields.method === 'download' ? 'catalogue' : 'iso';
        else if (head === 'boot' && typeof sub === 'string') key = sub as FieldKey;
        // The schema's type errors ("expected number, received NaN") are not for people.
        let message = issue.message;
        if (issue.code === 'invalid_type' && key === 'memory') message = 'memory must be a whole number of MiB';
        if (issue.code === 'invalid_type' && key === 'vcpus') message = 'vCPUs must be a whole number';
        if (key === 'catalogue') message = 'download an image first, or pick one already downloaded';
        out[key] ??= message;
      }
    }
    if (createsDisk.value) {
      const size = Number(fields.diskSize.trim());
      if (fields.diskSize.trim() === '' || !Number.isFinite(size) || size <= 0) out.diskSize = 'disk size must be a number of GiB above 0';
      else if (size > 1024) out.diskSize = 'disk size above 1024 GiB is not supported';
    }
    // Nothing is created that cannot start: the image's architecture against the engine's CPU.
    const image = imagePath();
    const found = inspection.value;
    if (image && found?.path === image && found.result) {
      const arch = found.result.arch;
      const arches: readonly string[] = ENGINES[fields.engine].arches;
      const key: FieldKey = fields.method === 'download' ? 'catalogue' : fields.method === 'iso' ? 'iso' : 'disk';
      if (arch !== 'unknown' && !arches.includes(arch)) {
        out[key] ??= `this is a 64-bit (${arch}) image${found.result.archReason ? ` (${found.result.archReason})` : ''}; the ${fields.engine} engine emulates a 32-bit (i686) CPU, so it cannot boot. Choose a 32-bit (i686) image, or the QEMU engine where it is available.`;
      }
      if (fields.method === 'pygrub' && found.result.kernels.length === 0 && !found.result.bootConfig?.entries.length) {
        out.disk ??= 'no kernel or bootloader menu found on this disk: nothing for pygrub to boot';
      }
    }
    // The OS the presets came from must be one the engine runs (64-bit on v86 is refused, with why).
    if (fields.method === 'iso' && osinfo.value) {
      const problem = osEngineProblem(fields.engine, osinfo.value.entry, osinfo.value.arch);
      if (problem) out.iso ??= problem;
    }
    return out;
  });

  /** The image the inspection is about, for the methods that boot one. */
  function imagePath(): string {
    if (fields.method === 'iso' || fields.method === 'download') return fields.iso.trim();
    if (fields.method === 'import' || fields.method === 'pygrub') return fields.disk.trim();
    return '';
  }

  function stepFields(index: number): FieldKey[] {
    return STEP_FIELDS[fields.method][index] ?? [];
  }

  function stepValid(index: number): boolean {
    return stepFields(index).every((k) => errors.value[k] === undefined);
  }

  /** A field's message once the person has left it or tried to leave its page. */
  function visibleError(key: FieldKey): string | undefined {
    const page = STEP_FIELDS[fields.method].findIndex((keys) => keys.includes(key));
    return attempted.has(page) || touched.has(key) ? errors.value[key] : undefined;
  }

  /** Defaults from the chosen OS (catalogue entry), within what the engine can give. */
  function applyOs(entry: CatalogueEntry | undefined): void {
    osinfo.value = undefined;
    fields.os = entry?.id ?? '';
    const memory = entry?.memoryMiB ?? GENERIC.memoryMiB;
    fields.memory = String(Math.min(memory, ENGINES[fields.engine].maxMemoryMiB));
    fields.diskSize = String(entry?.diskGiB ?? GENERIC.diskGiB);
  }

  /**
   * Presets from an osinfo-db OS, as virt-manager takes them from libosinfo: name after its short id
   * (unique among `taken`), memory, vCPUs and disk from its resources within what the engine gives,
   * and the NIC it drives. `arch`: the detected medium's, so the resources are that architecture's.
   */
  function applyOsinfo(entry: OsinfoEntry | undefined, taken: ReadonlySet<string>, arch?: string): void {
    if (!entry) {
      applyOs(undefined);
      return;
    }
    osinfo.value = { entry, arch };
    const p = entry.presets;
    const engine = ENGINES[fields.engine];
    fields.os = entry.id;
    if (!touched.has('name')) fields.name = uniqueName(entry.shortId.replace(/[^A-Za-z0-9_.+-]/g, '-').slice(0, 64), taken);
    fields.memory = String(Math.min(p.memoryMiB, engine.maxMemoryMiB));
    fields.vcpus = String(Math.min(p.vcpus, engine.maxVcpus));
    fields.diskSize = String(p.diskGiB);
  }

  return { fields, step, touched, attempted, inspection, detection, osinfo, applyOsinfo, createsDisk, result, errors, stepFields, stepValid, visibleError, applyOs, imagePath };
}
