// The v86 driver's migration cookie and the destination's check of it. The state format is v86's
// own (save_state, plus our stream): any other v86 build may lay it out differently, so the version
// compared is the package's full one, build tag included, read from v86's package.json at run time.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { MigrationCookie } from '../driver.js';
import type { DomainDocument } from '../../domain/xml.js';
import { runnerPaths } from '../../../runner/protocol.js';
import type { CpuDescription } from '../../../runner/protocol.js';
import { V86_MAX_MEMORY_KiB } from './support.js';

/** "0.5.462+g5f9a90f": the npm version with v86's build tag. */
export const V86_PACKAGE_VERSION = (createRequire(import.meta.url)('v86/package.json') as { version: string }).version;

/** v86 emulates one CPU. */
const V86_VCPUS = 1;

/** The memory the runner gives a definition (the same rule as V86Driver.runnerConfig). */
export function v86MemoryKiB(doc: DomainDocument): number {
  return Math.min(doc.config.memoryKiB, V86_MAX_MEMORY_KiB);
}

/** The cookie of a guest whose runner runs in `stateDir` (its CPU as the runner read it with CPUID). */
export function v86Cookie(doc: DomainDocument, stateDir: string): MigrationCookie {
  let cpu: CpuDescription;
  try {
    cpu = JSON.parse(fs.readFileSync(runnerPaths(stateDir).cpu, 'utf8')) as CpuDescription;
  } catch (err) {
    throw new Error(`the guest's CPU description is not available (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): its runner has not finished loading`);
  }
  return { engine: 'v86', engineVersion: V86_PACKAGE_VERSION, cpu: { model: cpu.model, features: cpu.features }, vcpus: V86_VCPUS, memoryKiB: v86MemoryKiB(doc) };
}

/**
 * Why this host's v86 cannot take the guest the cookie describes: another engine, another v86 build
 * (state layout, CPU), a CPU feature this v86 lacks, or more memory than v86 or this machine has.
 * `localCpu`: this host's v86 CPU when known (a runner of it has run here).
 */
export function v86CheckIncoming(cookie: MigrationCookie, doc: DomainDocument, localCpu: CpuDescription | undefined, hostMemoryBytes: number): string[] {
  const reasons: string[] = [];
  if (cookie.engine !== 'v86') {
    reasons.push(`the guest runs on the ${cookie.engine} engine; this host's engine is v86`);
    return reasons;
  }
  if (cookie.engineVersion !== V86_PACKAGE_VERSION) {
    reasons.push(`the guest runs on v86 ${cookie.engineVersion}; this host has v86 ${V86_PACKAGE_VERSION}, whose machine state may differ`);
  }
  if (localCpu) {
    const have = new Set(localCpu.features);
    const missing = cookie.cpu.features.filter((f) => !have.has(f));
    if (missing.length) reasons.push(`this host's v86 CPU lacks features the guest has seen: ${missing.join(', ')}`);
  }
  if (cookie.vcpus !== V86_VCPUS) reasons.push(`the guest has ${cookie.vcpus} vCPUs; v86 emulates ${V86_VCPUS}`);
  if (cookie.memoryKiB > V86_MAX_MEMORY_KiB) reasons.push(`the guest has ${cookie.memoryKiB} KiB of memory; v86 gives at most ${V86_MAX_MEMORY_KiB} KiB`);
  else if (cookie.memoryKiB !== v86MemoryKiB(doc)) reasons.push(`the guest has ${cookie.memoryKiB} KiB of memory but its definition gives ${v86MemoryKiB(doc)} KiB`);
  if (cookie.memoryKiB * 1024 > hostMemoryBytes) reasons.push(`the guest has ${cookie.memoryKiB} KiB of memory; this host has ${Math.floor(hostMemoryBytes / 1024)} KiB`);
  return reasons;
}
