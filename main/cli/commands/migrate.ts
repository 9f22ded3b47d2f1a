// `domus migrate`: virsh migrate between Domus hosts (the host drives the phases peer to peer).
import { CliError, need, type Command } from '../command.js';

function positiveInt(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new CliError([`invalid ${what} '${raw}': give a whole number above 0`]);
  return n;
}

export const migrateCommands: Record<string, Command> = {
  migrate: {
    usage: 'migrate [--live] [--p2p] [--postcopy] [--persistent] [--undefinesource] [--copy-storage-all] [--timeout N] [--bandwidth MiB] [--verbose] DOMAIN DEST-URI',
    help: "migrate the domain to another host (its URI as `domus uri` prints it there); on any failure it runs on here. Domus hosts always migrate peer to peer (--p2p is implied)",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'migrate');
      const destination = need(args, 1, 'desturi', 'migrate');
      const { flags } = args;
      const timeoutS = positiveInt(args.options.get('timeout'), 'timeout');
      const bandwidthMiBs = positiveInt(args.options.get('bandwidth'), 'bandwidth');
      if (timeoutS !== undefined && !flags.has('live')) throw new CliError(['migrate: Unexpected --timeout: it applies to live migration only (add --live)']);
      const api = await client();
      const verbose = flags.has('verbose');
      let shown = -1;
      const show = (percent: number): void => {
        if (percent === shown) return;
        shown = percent;
        process.stderr.write(`\rMigration: [${String(percent).padStart(3)} %]`);
      };
      const stop = verbose
        ? api.on('job.progress', ({ job }) => {
            if (job.operation !== 'migrate' || (job.domain !== name && job.uuid !== name) || !job.totalBytes || !job.migration) return;
            show(Math.floor(100 - (job.migration.remainingBytes * 100) / job.totalBytes));
          })
        : () => undefined;
      try {
        await api.call('domain.migrate', {
          domain: name,
          destination,
          live: flags.has('live'),
          postcopy: flags.has('postcopy'),
          persistent: flags.has('persistent'),
          undefineSource: flags.has('undefinesource'),
          copyStorageAll: flags.has('copy-storage-all'),
          timeoutS,
          bandwidthMiBs,
        });
      } catch (err) {
        if (verbose && shown >= 0) process.stderr.write('\n');
        throw new CliError([(err as Error).message]);
      } finally {
        stop();
      }
      if (verbose) {
        show(100);
        process.stderr.write('\n');
      }
    },
  },
};
