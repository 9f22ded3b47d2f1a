// The management layer's commands: clean shutdown, reboot, transient domains, autostart and host-stop
// policy, save/restore, core dumps and jobs, edits with --live/--config, events and the live trace.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHUTDOWN_MODES, type DomainSummary, type Events, type JobInfo, type ShutdownMode, type TraceRecord } from '../../../shared/api.js';
import type { ApiClient } from '../../../shared/client.js';
import { DOMAIN_STATES } from '../../../shared/libvirt/states.js';
import { attempt, CliError, domainInfo, hostFile, need, readXmlFile, simpleDomainOp, type Args, type Command } from '../command.js';

const say = (text: string): void => void process.stdout.write(text);

/** virsh's words for lifecycle events: "Started Booted", "Stopped Destroyed"… */
const REASON_WORDS: Record<string, string> = {
  booted: 'Booted',
  restored: 'Restored',
  unpaused: 'Unpaused',
  user: 'Paused',
  saving: 'Paused',
  shutdown: 'Shutdown',
  destroyed: 'Destroyed',
  crashed: 'Crashed',
  saved: 'Saved',
  failed: 'Failed',
  migrated: 'Migrated',
};
const EVENT_WORDS: Record<string, string> = {
  defined: 'Defined',
  undefined: 'Undefined',
  started: 'Started',
  suspended: 'Suspended',
  resumed: 'Resumed',
  stopped: 'Stopped',
  shutdown: 'Shutdown',
  crashed: 'Crashed',
};

export function describeEvent(e: Events['domain.lifecycle']): string {
  const line = describeLifecycle(e);
  return e.detail ? `${line} (${e.detail})` : line;
}

function describeLifecycle(e: Events['domain.lifecycle']): string {
  const name = e.domain.name;
  if (e.event === 'rebooted') return `event 'reboot' for domain '${name}'`;
  if (e.event === 'step') return `event 'lifecycle' for domain '${name}': Step ${e.domain.step ?? ''}`;
  if (e.event === 'defined') return `event 'lifecycle' for domain '${name}': Defined Updated`;
  if (e.event === 'undefined') return `event 'lifecycle' for domain '${name}': Undefined Removed`;
  if (e.event === 'shutdown') return `event 'lifecycle' for domain '${name}': Shutdown Finished`;
  return `event 'lifecycle' for domain '${name}': ${EVENT_WORDS[e.event]} ${REASON_WORDS[e.domain.reason] ?? e.domain.reason}`;
}

function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(3)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(3)} MiB`;
  return `${(n / 1024).toFixed(3)} KiB`;
}

function jobInfoText(job: JobInfo | null): string {
  if (!job) return 'Job type:         None        \n\n';
  const type = job.status === 'running' ? 'Unbounded' : job.status === 'completed' ? 'Completed' : job.status === 'aborted' ? 'Cancelled' : 'Failed';
  const rows: [string, string][] = [
    ['Job type', type],
    ['Operation', job.operation === 'managedsave' ? 'Save' : job.operation === 'migrate' ? 'Outgoing migration' : job.operation[0].toUpperCase() + job.operation.slice(1).replace('-', ' ')],
    ['Time elapsed', `${job.elapsedMs}         ms`],
  ];
  if (job.totalBytes) {
    rows.push(['Data processed', formatBytes(job.processedBytes)]);
    rows.push(['Data remaining', formatBytes(Math.max(0, job.totalBytes - job.processedBytes))]);
    rows.push(['Data total', formatBytes(job.totalBytes)]);
  }
  const m = job.migration;
  if (m) {
    // virsh's memory figures of a migration job (virDomainJobInfo's VIR_DOMAIN_JOB_MEMORY_* fields).
    rows.push(['Memory processed', formatBytes(job.processedBytes)]);
    rows.push(['Memory remaining', formatBytes(m.remainingBytes)]);
    rows.push(['Memory total', formatBytes(job.totalBytes)]);
    if (m.dirtyRateBytesPerSec !== undefined) rows.push(['Dirty rate', `${String(Math.round(m.dirtyRateBytesPerSec / 4096)).padEnd(12)} pages/s`]);
    rows.push(['Page size', `${'4096'.padEnd(12)} bytes`]);
    rows.push(['Iteration', String(m.iteration)]);
    if (m.downtimeMs !== undefined) rows.push(['Total downtime', `${String(m.downtimeMs).padEnd(12)} ms`]);
  }
  if (job.error) rows.push(['Error message', job.error]);
  return rows.map(([k, v]) => `${(k + ':').padEnd(18)}${v}\n`).join('') + '\n';
}

/** Prints a job's progress on stderr while it runs, as virsh's --verbose does. */
function showProgress(api: ApiClient, uuidOrName: string, verbose: boolean): () => void {
  if (!verbose) return () => undefined;
  return api.on('job.progress', ({ job }) => {
    if ((job.uuid === uuidOrName || job.domain === uuidOrName) && job.totalBytes) {
      process.stderr.write(`\r${job.operation}: [${Math.floor((job.processedBytes / job.totalBytes) * 100)} %]`);
    }
  });
}

/** Runs a job (save, managedsave, dump); one that domjobabort ended fails as virsh's does. */
async function saveJob(api: ApiClient, name: string, args: Args, context: string, call: () => Promise<{ job: JobInfo }>): Promise<void> {
  const verbose = args.flags.has('verbose');
  const stop = showProgress(api, name, verbose);
  const r = await attempt(context, call);
  stop();
  if (r.job.status === 'aborted') throw new CliError([context, 'operation aborted: job aborted by the user']);
  // As virsh's: the whole at the end, however often progress came (a libvirt job's is polled; a short one may have none).
  if (verbose) process.stderr.write(`\r${r.job.operation}: [100 %]`);
}

function timeoutOption(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new CliError([`invalid timeout '${raw}': give whole seconds`]);
  return n;
}

function traceLine(r: TraceRecord): string {
  const time = new Date(r.time).toISOString().slice(11, 23);
  const who = r.client ? `${r.client.kind}${r.client.pid ? `:${r.client.pid}` : ''}` : '-';
  const args = r.args === undefined ? '' : ` ${JSON.stringify(r.args)}`;
  if (r.kind === 'event') return `${time} event  ${r.op}${r.domain ? ` [${r.domain}]` : ''}${args}`;
  const outcome = r.ok ? `-> ${r.result ?? 'ok'}` : `-> error: ${r.error}`;
  return `${time} ${who.padEnd(12)} ${r.op}${r.domain ? ` [${r.domain}]` : ''}${r.job ? ` job ${r.job}` : ''}${args} ${outcome} (${r.durationMs} ms)`;
}

/** virsh's --mode: a comma-separated list of shutdown modes. */
function shutdownModes(value: string | undefined): ShutdownMode[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((mode) => {
    if (!(SHUTDOWN_MODES as readonly string[]).includes(mode)) {
      throw new CliError([`Unknown mode ${mode} value, expecting 'acpi', 'agent', 'initctl', 'signal' or 'paravirt'`]);
    }
    return mode as ShutdownMode;
  });
}

export const lifecycleCommands: Record<string, Command> = {
  shutdown: {
    usage: 'shutdown DOMAIN [--mode acpi,agent,initctl,signal,paravirt] [--timeout SECONDS] [--no-force]',
    help: 'gracefully shut down a domain; forced off after the timeout (default 60 s), at once if it cannot be asked; --mode or --no-force only request',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'shutdown');
      const modes = shutdownModes(args.options.get('mode'));
      const noForce = args.flags.has('no-force');
      const api = await client();
      const r = await attempt(`Failed to shutdown domain '${name}'`, () =>
        api.call('domain.shutdown', { domain: name, modes, force: noForce ? false : undefined, timeoutSec: timeoutOption(args.options.get('timeout')) }),
      );
      if (r.message) process.stderr.write(`warning: ${r.message}\n`);
      say(r.forced ? `Domain '${r.domain.name}' destroyed\n\n` : `Domain '${r.domain.name}' is being shutdown\n\n`);
    },
  },
  reboot: { usage: 'reboot DOMAIN', help: 'reboot a domain (asks the guest)', run: simpleDomainOp('domain.reboot', 'is being rebooted', 'reboot') },
  reset: { usage: 'reset DOMAIN', help: 'reset a domain (hard reset, no guest cooperation)', run: simpleDomainOp('domain.reset', 'was reset', 'reset') },
  create: {
    usage: 'create FILE.xml [--paused]',
    help: 'create (start) a transient domain from an XML file',
    run: async (client, args) => {
      const file = need(args, 0, 'file', 'create');
      const xml = readXmlFile(file);
      const api = await client();
      const r = await attempt(`Failed to create domain from ${file}`, () => api.call('domain.createTransient', { xml, paused: args.flags.has('paused') }));
      for (const w of r.warnings) process.stderr.write(`warning: ${w.message}\n`);
      say(`Domain '${r.domain.name}' created from ${file}\n\n`);
    },
  },
  autostart: {
    usage: 'autostart DOMAIN [--disable]',
    help: 'start the domain when the Domus host starts',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'autostart');
      const enabled = !args.flags.has('disable');
      const api = await client();
      const r = await attempt(`Failed to ${enabled ? 'mark' : 'unmark'} domain '${name}' as autostarted`, () =>
        api.call('domain.setAutostart', { domain: name, enabled }),
      );
      say(`Domain '${r.domain.name}' ${enabled ? 'marked as autostarted' : 'unmarked as autostarted'}\n\n`);
    },
  },
  'on-host-stop': {
    usage: 'on-host-stop DOMAIN [shutdown|save|keep]',
    help: "what happens to the running domain when the Domus host stops (default: shutdown)",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'on-host-stop');
      const policy = args.positional[1];
      const api = await client();
      if (policy === undefined) {
        const d = await domainInfo(api, name);
        say(`${d.onHostStop}\n\n`);
        return;
      }
      if (policy !== 'shutdown' && policy !== 'save' && policy !== 'keep') throw new CliError([`invalid policy '${policy}' (shutdown, save or keep)`]);
      const r = await attempt(`Failed to set the host-stop policy of '${name}'`, () => api.call('domain.setOnHostStop', { domain: name, policy }));
      say(`Domain '${r.domain.name}' will ${policy === 'keep' ? 'keep running' : policy === 'save' ? 'be saved' : 'be shut down'} when the host stops\n\n`);
    },
  },
  'fast-start': {
    usage: 'fast-start DOMAIN [--enable [--after SECONDS]|--disable|--refresh]',
    help: 'keep a post-boot state and start from it (taken when the guest prints DOMUS-GUEST-READY, or --after SECONDS after boot); --refresh: boot cold next time and keep a new one; no option: show the setting',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'fast-start');
      const actions = (['enable', 'disable', 'refresh'] as const).filter((a) => args.flags.has(a));
      if (actions.length > 1) throw new CliError([`give one of --enable, --disable and --refresh, not ${actions.map((a) => `--${a}`).join(' and ')}`]);
      const afterText = args.options.get('after');
      const action = actions[0];
      if (afterText !== undefined && action !== 'enable') throw new CliError(['--after goes with --enable']);
      const api = await client();
      if (!action) {
        const f = (await domainInfo(api, name)).fastStart;
        say(`${!f ? 'disabled' : `enabled, state taken ${f.afterSec ? `${f.afterSec} s after boot` : 'when the guest is ready'}; ${f.kept ? 'a post-boot state is kept' : 'no state kept yet (the next start boots cold)'}`}\n\n`);
        return;
      }
      const afterSec = afterText === undefined ? undefined : Number(afterText);
      if (afterSec !== undefined && !(Number.isInteger(afterSec) && afterSec >= 1 && afterSec <= 3600)) {
        throw new CliError([`invalid --after '${afterText}' (whole seconds, 1 to 3600)`]);
      }
      const r = await attempt(`Failed to ${action} fast start of '${name}'`, () => api.call('domain.fastStart', { domain: name, action, ...(afterSec !== undefined && { afterSec }) }));
      const done = { enable: 'will start from a post-boot state', disable: 'will boot cold (fast start disabled)', refresh: 'will boot cold once and keep a new post-boot state' }[action];
      say(`Domain '${r.domain.name}' ${done}\n\n`);
    },
  },
  save: {
    usage: 'save DOMAIN FILE [--verbose]',
    help: 'save a domain state to a file (the domain stops)',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'save');
      const file = need(args, 1, 'file', 'save');
      const api = await client();
      await saveJob(api, name, args, `Failed to save domain '${name}' to ${file}`, () => api.call('domain.save', { domain: name, file: hostFile(args, file) }));
      say(`\nDomain '${name}' saved to ${file}\n\n`);
    },
  },
  dump: {
    usage: 'dump DOMAIN FILE [--memory-only] [--live] [--crash] [--reset] [--bypass-cache] [--verbose] [--format elf]',
    help: 'dump the guest\'s memory and vCPU registers to an ELF core (read it with gdb or crash); on a libvirt connection (-c URI) libvirtd writes FILE, an absolute path on its host; --bypass-cache is taken for virsh\'s sake (the file is fsync\'d either way)',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'dump');
      const file = need(args, 1, 'file', 'dump');
      const format = args.options.get('format') ?? 'elf';
      if (format !== 'elf') throw new CliError([`unsupported dumpformat '${format}': Domus writes ELF cores only`]);
      const api = await client();
      const { flags } = args;
      await saveJob(api, name, args, `Failed to core dump domain '${name}' to ${file}`, () =>
        api.call('domain.coreDump', { domain: name, file: hostFile(args, file), live: flags.has('live'), reset: flags.has('reset'), crash: flags.has('crash'), format }),
      );
      say(`\nDomain '${name}' dumped to ${file}\n\n`);
    },
  },
  restore: {
    usage: 'restore FILE [--paused]',
    help: 'restore a domain from a saved state file',
    run: async (client, args) => {
      const file = need(args, 0, 'file', 'restore');
      const api = await client();
      await attempt(`Failed to restore domain from ${file}`, () => api.call('domain.restore', { file: hostFile(args, file), paused: args.flags.has('paused') }));
      say(`Domain restored from ${file}\n\n`);
    },
  },
  managedsave: {
    usage: 'managedsave DOMAIN [--verbose]',
    help: 'save the domain state; the next start restores it',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'managedsave');
      const api = await client();
      await saveJob(api, name, args, `Failed to save domain '${name}' state`, () => api.call('domain.managedSave', { domain: name }));
      say(`\nDomain '${name}' state saved by Domus\n\n`);
    },
  },
  'managedsave-remove': {
    usage: 'managedsave-remove DOMAIN',
    help: 'remove the managed save image of a domain',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'managedsave-remove');
      const api = await client();
      await attempt(`Failed to remove managed save image for domain '${name}'`, () => api.call('domain.managedSaveRemove', { domain: name }));
      say(`Removed managedsave image for domain '${name}'\n\n`);
    },
  },
  domjobinfo: {
    usage: 'domjobinfo DOMAIN [--completed]',
    help: 'domain job information',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'domjobinfo');
      const api = await client();
      const { job } = await attempt(`failed to get domain '${name}'`, () => api.call('domain.jobInfo', { domain: name, completed: args.flags.has('completed') }));
      say(jobInfoText(job));
    },
  },
  domjobabort: {
    usage: 'domjobabort DOMAIN',
    help: 'abort the active domain job',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'domjobabort');
      const api = await client();
      await attempt(`Failed to abort job on domain '${name}'`, () => api.call('domain.jobAbort', { domain: name }));
    },
  },
  desc: {
    usage: 'desc DOMAIN [--title] [--live] [--config] [--current] [TEXT]',
    help: "show or change the domain's description or title",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'desc');
      const key = args.flags.has('title') ? 'title' : 'description';
      const text = args.positional.slice(1).join(' ');
      const api = await client();
      if (!text) {
        const d = await domainInfo(api, name);
        const value = key === 'title' ? d.config.title : d.config.description;
        if (!value) throw new CliError([`No ${key} for domain: ${d.name}`]);
        say(`${value}\n\n`);
        return;
      }
      const current = args.flags.has('current');
      await attempt(`Failed to set new domain ${key}`, () =>
        api.call('domain.setMetadata', { domain: name, [key]: text, live: !current && args.flags.has('live'), config: !current && args.flags.has('config') }),
      );
      say(`Domain ${key} updated successfully\n`);
    },
  },
  edit: {
    usage: 'edit DOMAIN',
    help: "edit the domain's XML in $EDITOR; refused if someone else changed it meanwhile",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'edit');
      const api = await client();
      const { xml, generation } = await attempt(`failed to get domain '${name}'`, () => api.call('domain.xml', { domain: name, inactive: true, secure: true }));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-edit-'));
      const file = path.join(dir, `${name}.xml`);
      fs.writeFileSync(file, xml);
      const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
      const r = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit' });
      const edited = fs.readFileSync(file, 'utf8');
      fs.rmSync(dir, { recursive: true, force: true });
      if (r.status !== 0) throw new CliError([`editor '${editor}' failed; nothing changed`]);
      if (edited === xml) {
        say(`Domain '${name}' XML configuration not changed.\n\n`);
        return;
      }
      await attempt(`Failed. Try again? The domain was not changed.`, () => api.call('domain.define', { xml: edited, expectGeneration: generation }));
      say(`Domain '${name}' XML configuration edited.\n\n`);
    },
  },
  domstats: {
    usage: 'domstats [DOMAIN...]',
    help: 'domain statistics (state, cpu, balloon, vcpu, block, net)',
    run: async (client, args) => {
      const api = await client();
      const names = args.positional.length ? args.positional : (await api.call('domain.list', { all: true })).domains.map((d: DomainSummary) => d.uuid);
      for (const ref of names) {
        const d = await domainInfo(api, ref);
        const s = await attempt(`failed to get statistics of domain '${ref}'`, () => api.call('domain.stats', { domain: ref }));
        const lines = [
          `Domain: '${d.name}'`,
          `  state.state=${DOMAIN_STATES.indexOf(s.state)}`,
          `  state.reason=${d.reason}`,
          `  cpu.time=${Math.round(s.cpuTimeMs * 1_000_000)}`,
          `  cpu.percent=${d.cpuPercent}`,
          `  balloon.current=${s.memory.actualKiB || s.memory.targetKiB}`,
          `  balloon.maximum=${s.memory.maxKiB}`,
          ...(s.rssBytes ? [`  balloon.rss=${Math.round(s.rssBytes / 1024)}`] : []),
          `  vcpu.current=${d.vcpus}`,
          `  vcpu.maximum=${d.vcpus}`,
        ];
        const nets = s.net.devices;
        if (nets) {
          lines.push(`  net.count=${nets.length}`);
          nets.forEach((n, i) => lines.push(`  net.${i}.name=${n.name}`, `  net.${i}.rx.bytes=${n.rxBytes}`, `  net.${i}.tx.bytes=${n.txBytes}`));
        }
        const disks = s.disk.devices;
        if (disks) {
          lines.push(`  block.count=${disks.length}`);
          disks.forEach((b, i) =>
            lines.push(
              `  block.${i}.name=${b.name}`,
              `  block.${i}.path=${b.path}`,
              `  block.${i}.rd.reqs=${b.rdReqs}`,
              `  block.${i}.rd.bytes=${b.rdBytes}`,
              `  block.${i}.wr.reqs=${b.wrReqs}`,
              `  block.${i}.wr.bytes=${b.wrBytes}`,
            ),
          );
        }
        say(`${lines.join('\n')}\n\n`);
      }
    },
  },
  event: {
    usage: 'event [--domain DOMAIN] [--event lifecycle|balloon-change] [--all] [--loop] [--timeout SECONDS] [--timestamp]',
    help: 'show lifecycle (and balloon-change) events as they happen',
    run: async (client, args) => {
      const api = await client();
      const only = args.options.get('domain');
      const timeout = timeoutOption(args.options.get('timeout'));
      await new Promise<void>((resolve) => {
        let count = 0;
        const done = (): void => {
          say(`events received: ${count}\n\n`);
          resolve();
        };
        const kind = args.flags.has('all') ? 'all' : (args.options.get('event') ?? 'lifecycle');
        if (kind !== 'all' && kind !== 'lifecycle' && kind !== 'balloon-change') throw new CliError([`unknown event type ${kind}`]);
        const show = (name: string, uuid: string, line: string): void => {
          if (only && name !== only && uuid !== only) return;
          count++;
          say(`${args.flags.has('timestamp') ? `${new Date().toISOString()}: ` : ''}${line}\n`);
          if (!args.flags.has('loop')) done();
        };
        if (kind !== 'balloon-change') api.on('domain.lifecycle', (e) => show(e.domain.name, e.domain.uuid, describeEvent(e)));
        // virsh's wording for libvirt's BALLOON_CHANGE.
        if (kind !== 'lifecycle') api.on('domain.balloon', (e) => show(e.name, e.uuid, `event 'balloon-change' for domain '${e.name}': ${e.actualKiB}KiB`));
        if (timeout !== undefined) setTimeout(done, timeout * 1000);
        process.once('SIGINT', done);
        api.onClose(() => done());
      });
    },
  },
  trace: {
    usage: 'trace [--domain DOMAIN] [--op PREFIX] [--backlog] [--timeout SECONDS]',
    help: 'stream the live trace of every request, reply and event (like xenstore-snoop)',
    run: async (client, args) => {
      const api = await client();
      api.on('trace.record', ({ record }) => say(`${traceLine(record)}\n`));
      const { backlog } = await api.call('trace.subscribe', {
        domain: args.options.get('domain'),
        op: args.options.get('op'),
        backlog: args.flags.has('backlog'),
      });
      for (const r of backlog) say(`${traceLine(r)}\n`);
      const timeout = timeoutOption(args.options.get('timeout'));
      await new Promise<void>((resolve) => {
        if (timeout !== undefined) setTimeout(resolve, timeout * 1000);
        process.once('SIGINT', () => resolve());
        api.onClose(() => resolve());
      });
    },
  },
};
