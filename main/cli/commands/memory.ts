// Memory commands: setmem (the balloon target), setmaxmem (boot memory, --config only on v86) and
// dommemstat, with virsh's arguments (scaled sizes, default KiB) and output.
import type { ApiClient } from '../../../shared/client.js';
import { attemptBare, CliError, need, type Args, type Command } from '../command.js';

const say = (text: string): void => void process.stdout.write(text);

/**
 * virsh's scaled integer: digits with an optional unit, 1024-based for k/M/G/T/P/E, KiB…, 1000-based
 * for KB, MB…, bytes for b; a bare number is KiB. Returned in KiB, rounded up as virsh does.
 */
export function parseScaledKiB(text: string, option = 'size'): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  const scale = m ? unitBytes(m[2] || 'KiB') : undefined;
  if (!m || scale === undefined) throw new CliError([`Scaled numeric value '${text}' for <${option}> option is malformed or out of range`]);
  const kib = (BigInt(m[1]) * scale + 1023n) / 1024n;
  if (kib === 0n || kib > BigInt(Number.MAX_SAFE_INTEGER)) throw new CliError([`Scaled numeric value '${text}' for <${option}> option is malformed or out of range`]);
  return Number(kib);
}

function unitBytes(unit: string): bigint | undefined {
  const u = unit.toLowerCase();
  if (u === 'b' || u === 'byte' || u === 'bytes') return 1n;
  const power = 'kmgtpe'.indexOf(u[0]) + 1;
  const rest = u.slice(1);
  const base = rest === '' || rest === 'ib' ? 1024n : rest === 'b' ? 1000n : undefined;
  return power === 0 || base === undefined ? undefined : base ** BigInt(power);
}

/** --live/--config/--current as virsh takes them: --current excludes the other two. */
function scope(args: Args): { live: boolean; config: boolean } {
  const live = args.flags.has('live');
  const config = args.flags.has('config');
  if (args.flags.has('current') && (live || config)) throw new CliError(["Options --current and --live/--config are mutually exclusive"]);
  return { live, config };
}

export const memoryCommands: Record<string, Command> = {
  setmem: {
    usage: 'setmem DOMAIN SIZE [--live] [--config] [--current]',
    help: 'change the memory a guest holds through its balloon (SIZE in KiB, or with a unit: 512M, 1G)',
    run: async (client: () => Promise<ApiClient>, args) => {
      const name = need(args, 0, 'domain', 'setmem');
      const sizeKiB = parseScaledKiB(need(args, 1, 'size', 'setmem'));
      const api = await client();
      await attemptBare(() => api.call('domain.setMemory', { domain: name, sizeKiB, ...scope(args) }));
    },
  },
  setmaxmem: {
    usage: 'setmaxmem DOMAIN SIZE [--config] [--live] [--current]',
    help: 'change the maximum memory (the guest RAM at next boot; v86 cannot change it live)',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'setmaxmem');
      const sizeKiB = parseScaledKiB(need(args, 1, 'size', 'setmaxmem'));
      const api = await client();
      await attemptBare(() => api.call('domain.setMaxMemory', { domain: name, sizeKiB, ...scope(args) }));
    },
  },
  dommemstat: {
    usage: 'dommemstat DOMAIN',
    help: "the guest's memory statistics (balloon and the guest's own figures, KiB)",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'dommemstat');
      const api = await client();
      const m = await attemptBare(() => api.call('domain.memoryStats', { domain: name }));
      const rows: [string, number | undefined][] = [
        ['actual', m.actualKiB],
        ['unused', m.unusedKiB],
        ['available', m.availableKiB],
        ['usable', m.usableKiB],
        ['last_update', m.lastUpdate === undefined ? undefined : Math.floor(m.lastUpdate / 1000)],
        ['disk_caches', m.diskCachesKiB],
        ['rss', m.rssKiB],
      ];
      say(`${rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`).join('\n')}\n\n`);
    },
  },
};
