// The New VM form's state and validation. The rules are NewDomainSpec's (shared/api.ts), the
// same schema the host enforces, so the form cannot drift from what the host accepts. Kept apart
// from the dialog so the coming multi-step wizard can spread these fields over its pages.
import { computed, reactive, ref } from 'vue';
import { NewDomainSpec } from '@shared/api';

export type BootKind = NewDomainSpec['boot']['kind'];
export type FieldKey = 'name' | 'memory' | 'kind' | 'kernel' | 'initrd' | 'cmdline' | 'iso' | 'disk';

export interface NewVmFields {
  name: string;
  /** Kept as typed text so an empty or malformed entry can be reported rather than coerced. */
  memory: string;
  kind: BootKind;
  kernel: string;
  initrd: string;
  cmdline: string;
  iso: string;
  disk: string;
}

export const BOOT_KINDS: { kind: BootKind; label: string; hint: string }[] = [
  { kind: 'pv', label: 'Direct kernel boot', hint: 'Boot a Linux kernel (and initrd) straight from files on the host.' },
  { kind: 'cdrom', label: 'Boot from ISO', hint: 'Boot an installer or live image, optionally with a hard disk attached.' },
  { kind: 'disk', label: 'Import disk image', hint: 'Boot an existing disk image that already has an operating system.' },
];

const BOOT_FIELDS = new Set<string>(['kernel', 'initrd', 'cmdline', 'iso', 'disk']);

function optional(value: string): string | undefined {
  const v = value.trim();
  return v === '' ? undefined : v;
}

export function useNewVmForm(initialName: string) {
  const fields = reactive<NewVmFields>({
    name: initialName,
    memory: '256',
    kind: 'pv',
    kernel: '',
    initrd: '',
    cmdline: '',
    iso: '',
    disk: '',
  });
  const touched = reactive(new Set<FieldKey>());
  const submitted = ref(false);

  /** Only the fields of the chosen boot kind are sent. */
  function draft(): unknown {
    const boot =
      fields.kind === 'pv'
        ? { kind: 'pv', kernel: fields.kernel.trim(), initrd: optional(fields.initrd), cmdline: optional(fields.cmdline) }
        : fields.kind === 'cdrom'
          ? { kind: 'cdrom', iso: fields.iso.trim(), disk: optional(fields.disk) }
          : { kind: 'disk', disk: fields.disk.trim() };
    const memory = fields.memory.trim();
    return { name: fields.name.trim(), memoryMiB: memory === '' ? undefined : Number(memory), boot };
  }

  const result = computed(() => NewDomainSpec.safeParse(draft()));

  const errors = computed(() => {
    const out: Partial<Record<FieldKey | 'form', string>> = {};
    if (result.value.success) return out;
    for (const issue of result.value.error.issues) {
      const [head, sub] = issue.path;
      let key: FieldKey | 'form' = 'form';
      if (head === 'name') key = 'name';
      else if (head === 'memoryMiB') key = 'memory';
      else if (head === 'boot' && typeof sub === 'string' && BOOT_FIELDS.has(sub)) key = sub as FieldKey;
      // The schema's type errors ("expected number, received NaN") are not for people.
      const message =
        key === 'memory' && issue.code === 'invalid_type' ? 'memory must be a whole number of MiB' : issue.message;
      out[key] ??= message;
    }
    return out;
  });

  /** A field's message once the person has left it or tried to submit. */
  function visibleError(key: FieldKey): string | undefined {
    return submitted.value || touched.has(key) ? errors.value[key] : undefined;
  }

  return { fields, touched, submitted, result, visibleError };
}
