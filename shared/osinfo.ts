// Whether an engine can run an OS of osinfo-db: the one rule the New VM wizard shows and the host
// enforces (domain.create), so both give the same reason.
import { ENGINES, type EngineName, type OsinfoEntry } from './api.js';

const X86 = ['i686', 'x86_64'];

/**
 * `arch`: the architecture of the detected medium, when the ISO matched. Without it, the OS's own
 * media decide: an OS published only for architectures the engine lacks cannot run on it.
 */
export function osEngineProblem(engine: EngineName, os: Pick<OsinfoEntry, 'name' | 'arches'>, arch?: string): string | undefined {
  const runs: readonly string[] = ENGINES[engine].arches;
  const cpu = engine === 'v86' ? 'the v86 engine emulates a 32-bit (i686) CPU only' : `the ${engine} engine runs ${runs.join(' and ')} guests`;
  if (arch !== undefined) {
    if (runs.includes(arch)) return undefined;
    const other = os.arches.filter((a) => runs.includes(a));
    const instead = other.length ? `use its ${other.join(' or ')} medium` : X86.includes(arch) ? 'choose the QEMU engine' : 'choose an x86 medium';
    return `this is the ${arch}${arch === 'x86_64' ? ' (64-bit)' : ''} medium of ${os.name}, and ${cpu}: ${instead}${other.length && engine === 'v86' && arch === 'x86_64' ? ', or the QEMU engine' : ''}`;
  }
  if (os.arches.length === 0 || os.arches.some((a) => runs.includes(a))) return undefined;
  return `${os.name} is published for ${os.arches.join(', ')} only, and ${cpu}${os.arches.includes('x86_64') && engine === 'v86' ? ': choose the QEMU engine' : ''}`;
}
