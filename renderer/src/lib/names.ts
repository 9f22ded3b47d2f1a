import { NewDomainSpec } from '@shared/api';

const MAX_NAME = NewDomainSpec.shape.name.maxLength ?? 64;

/** `base`, or `base-2`, `base-3`, ... whichever is free (libvirt names are unique per host). */
export function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) {
    const suffix = `-${n}`;
    const candidate = base.slice(0, MAX_NAME - suffix.length) + suffix;
    if (!taken.has(candidate)) return candidate;
  }
}
