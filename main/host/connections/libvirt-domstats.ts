// libvirt's domain statistics records (virConnectGetAllDomainStats): the groups, the flags, the
// typed parameters by name, and CPU use from CPU time between readings. Used by the connection's
// list and by its statistics part (libvirt-stats.ts).
import type { remote_typed_param } from '../libvirt/protocol/remote.js';
import { guestCpuPercent } from '../stats.js';

/** virDomainStatsTypes. */
export const STATS_STATE = 1;
export const STATS_CPU_TOTAL = 2;
export const STATS_BALLOON = 4;
export const STATS_VCPU = 8;
export const STATS_INTERFACE = 16;
export const STATS_BLOCK = 32;
/** virConnectGetAllDomainStatsFlags: only running and paused domains. */
export const STATS_ACTIVE = 1;
/** Only what needs no job on the domain, so that a busy domain does not hold a list up. */
export const STATS_NOWAIT = 1 << 29;

/** One stats record's typed parameters by field name. */
export type StatFields = Map<string, number | string>;

/**
 * A record's fields by name. The host is not trusted: every statistic Domus reads is a count, size
 * or time, so a number that is negative, NaN or infinite is dropped rather than shown or computed with.
 */
export function statFields(params: remote_typed_param[]): StatFields {
  const fields: StatFields = new Map();
  const set = (field: string, v: number): void => {
    if (Number.isFinite(v) && v >= 0) fields.set(field, v);
  };
  for (const { field, value } of params) {
    switch (value.type) {
      case 1:
        set(field, value.i);
        break;
      case 2:
        set(field, value.ui);
        break;
      case 3:
        set(field, Number(value.l));
        break;
      case 4:
        set(field, Number(value.ul));
        break;
      case 5:
        set(field, value.d);
        break;
      case 6:
        fields.set(field, value.b);
        break;
      case 7:
        fields.set(field, value.s);
        break;
    }
  }
  return fields;
}

export const num = (f: StatFields, key: string): number | undefined => {
  const v = f.get(key);
  return typeof v === 'number' ? v : undefined;
};
/**
 * `<prefix>.count` (block, net, vcpu): a whole number no larger than the record's fields, as each
 * device has fields of its own; a host cannot make Domus build millions of devices from one number.
 */
export const count = (f: StatFields, prefix: string): number => {
  const n = num(f, `${prefix}.count`) ?? 0;
  return Number.isInteger(n) ? Math.min(n, f.size) : 0;
};
export const str = (f: StatFields, key: string): string => {
  const v = f.get(key);
  return typeof v === 'string' ? v : '';
};

/**
 * CPU use from CPU time between readings of one run of a domain: every reading (a list, a summary,
 * a sample) is measured against the one before it, with the local engines' formula (virt-manager's
 * guest CPU: divided by the vCPUs, within 0–100). libvirt's cpu.time is the whole QEMU process, as
 * virt-manager reads it.
 */
export class CpuMeter {
  private readonly last = new Map<string, { id: number; at: number; cpuTimeMs: number }>();

  percent(uuid: string, id: number, cpuTimeMs: number, vcpus: number, at = Date.now()): number {
    const before = this.last.get(uuid);
    this.last.set(uuid, { id, at, cpuTimeMs });
    if (!before || before.id !== id || at <= before.at) return 0;
    return guestCpuPercent(cpuTimeMs - before.cpuTimeMs, at - before.at, vcpus);
  }

  forget(uuid: string): void {
    this.last.delete(uuid);
  }
}

