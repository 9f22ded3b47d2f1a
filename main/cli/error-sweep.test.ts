// Every CLI command's error paths, found from `domus help` so that a new command is covered without
// touching this file: no arguments, a domain that does not exist, a shut-off and a running domain
// with bad further arguments, each listed option value, every switch at once. None may end in
// "internal error" (libvirt's word for a bug), a stack trace, or a hang; the host must log no
// unanticipated failure either.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { APP_ROOT } from '../common/paths.js';
import { VALUE_FLAGS } from './command.js';
import { ENGINES, SAMPLE_CMDLINE, TestHost, createOn, endInput, engineSkip, guest, type CliResult } from '../testing/harness.js';

/** Commands that stream until interrupted when given valid arguments: running out the clock is fine. */
const STREAMING = new Set(['console', 'event', 'trace']);
/** Never run: `daemon stop` would end the host under test, `webshell --open` starts a browser. */
const NEVER = [/^daemon$/, /^webshell .*--open/];
// A streaming command that has not failed within this long is serving: its error paths come first.
const STREAM_MS = 2_500;
const HANG_MS = 60_000;
// The one cold boot of 'run' (later resets restore its state): generous, as the machine may be loaded.
const BOOT_MS = 600_000;
const PARALLEL = 4;

interface Usage {
  name: string;
  /** Positional placeholders in order (optional ones included). */
  positional: string[];
  switches: string[];
  /** Value options with the values the usage lists (empty when it names a placeholder). */
  values: { flag: string; placeholder: string; choices: string[] }[];
}

/** Reads one form of a usage line, e.g. "shutdown DOMAIN [--mode acpi,agent] [--timeout SECONDS] [--no-force]". */
function parseUsage(form: string): Usage {
  const [name, ...rest] = form.replace(/[[\]]/g, ' ').split(/\s+/).filter(Boolean);
  const usage: Usage = { name, positional: [], switches: [], values: [] };
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i];
    if (!token.startsWith('--')) {
      usage.positional.push(token);
      continue;
    }
    const flag = token.slice(2);
    if (VALUE_FLAGS.has(flag) && rest[i + 1] !== undefined) {
      // A lower-case value list ("acpi,agent", "disk|cdrom", "readonly") names the accepted values.
      const placeholder = rest[++i];
      usage.values.push({ flag, placeholder, choices: /^[a-z]/.test(placeholder) ? placeholder.split(/[,|]/) : [] });
    } else {
      usage.switches.push(...token.split('|').map((f) => f.replace(/^--/, '')));
    }
  }
  return usage;
}

function run(home: string, cwd: string, args: string[], timeoutMs: number): Promise<CliResult & { timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(APP_ROOT, 'bin', 'domus.mjs'), ...args], {
      // In a scratch directory: a command that succeeds may write there (screenshot's default file).
      cwd,
      env: { ...process.env, DOMUS_HOME: home, EDITOR: 'true', VISUAL: 'true' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    endInput(child.stdin, '', (message) => (stderr += message));
    // 'close', not 'exit': the exit can come before the last of its output has been read.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, timedOut });
    });
  });
}

// On the embedded engine only: the CLI and the host's checks are the same for every engine, and the
// embedded one refuses the most (no USB, no live CPU changes...). QEMU's own refusals are tested with
// the QEMU engine's tests. Each engine costs ~4 minutes of the suite here.
const SWEEP_ENGINES = ENGINES.filter((e) => e === 'v86');
for (const engine of SWEEP_ENGINES) describe(`CLI error paths (${engine})`, { timeout: 1_800_000, skip: engineSkip(engine) }, () => {
  let t: TestHost;
  let work: string;
  let garbage: string;
  let fixtureXml: { off: string; run: string };

  /**
   * 'off' is defined and shut off; 'run' runs (no ACPI, no agent). 'run' is restored from its
   * post-boot state: a cold boot at each of the dozen resets cost a core for half a minute each.
   */
  async function resetFixtures(): Promise<void> {
    const { domains } = await t.client.call('domain.list', { all: true });
    const byName = new Map(domains.map((d) => [d.name, d]));
    for (const name of ['off', 'run'] as const) {
      const d = byName.get(name);
      if (d && d.state !== 'shutoff') await t.client.call('domain.destroy', { domain: name }).catch(() => undefined);
      if (d?.managedSave) await t.client.call('domain.managedSaveRemove', { domain: name });
      if (!d || !d.persistent) await t.client.call('domain.define', { xml: fixtureXml[name] });
      await t.client.call('domain.setOnHostStop', { domain: name, policy: 'shutdown' });
    }
    await t.bootOrRestore('run', BOOT_MS);
  }

  /**
   * What a command may have changed about the fixtures (and the rest of the host's list), read
   * cheaply: every domain's summary but its CPU use, the definitions, and 'run's live definition.
   */
  async function fixtureState(): Promise<string> {
    const { domains } = await t.client.call('domain.list', { all: true });
    const xml = async (domain: string, inactive: boolean): Promise<string> =>
      (await t.client.call('domain.xml', { domain, inactive }).catch((err: Error) => ({ xml: err.message }))).xml;
    return JSON.stringify([domains.map((d) => ({ ...d, cpuPercent: 0 })), await xml('off', true), await xml('run', true), await xml('run', false)]);
  }

  /** The fixtures as resetFixtures leaves them; a usage form that changed nothing needs no new reset (a runner start each). */
  let clean: string | undefined;
  async function ensureFixtures(): Promise<boolean> {
    if (clean !== undefined && (await fixtureState()) === clean) return false;
    await resetFixtures();
    clean = await fixtureState();
    return true;
  }

  before(async () => {
    t = await TestHost.start();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-sweep-'));
    garbage = path.join(work, 'garbage.xml');
    fs.writeFileSync(garbage, '<domain type="kvm"><name>x</name><memory>12');
    const spec = (name: string) => ({ name, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } });
    await createOn(t.client, spec('off'), engine);
    await createOn(t.client, spec('run'), engine);
    const strip = (xml: string) => xml.replace(/<acpi\/>/, '').replace(/<channel[^>]*>\s*<target[^>]*org\.qemu\.guest_agent\.0[^>]*\/>\s*<\/channel>/, '');
    fixtureXml = {
      off: (await t.client.call('domain.xml', { domain: 'off', inactive: true })).xml,
      run: strip((await t.client.call('domain.xml', { domain: 'run', inactive: true })).xml),
    };
    await t.client.call('domain.define', { xml: fixtureXml.run });
  });
  after(async () => {
    await t?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('no command ends in an internal error, a stack trace or a hang', async (ctx) => {
    const help = await run(t.home, work, ['help'], HANG_MS);
    const usages = [...help.stdout.matchAll(/^ {8}(\S.*)$/gm)].flatMap((m) => m[1].split(' | ').map(parseUsage));
    assert.ok(usages.length > 40, `domus help lists the commands (${usages.length} found)`);

    const bad = (placeholder: string): string =>
      /FILE|\.xml|\.png/i.test(placeholder) ? '/nonexistent/dir/file' : /SIZE|CAPACITY|SECONDS|MS/.test(placeholder) ? '-12XB' : 'no-such-thing';
    const failures: string[] = [];
    let runs = 0;
    let resets = 0;
    for (const u of usages) {
      const variants: string[][] = [[]];
      const fill = (domain: string | undefined, fileValue?: string): string[] =>
        u.positional.map((p, i) => (i === 0 && domain !== undefined && /DOMAIN/.test(p) ? domain : fileValue && /FILE/.test(p) ? fileValue : bad(p)));
      variants.push(fill(undefined));
      if (u.positional.some((p) => /FILE/.test(p))) variants.push(fill(undefined, garbage));
      if (/DOMAIN/.test(u.positional[0] ?? '')) {
        for (const domain of ['no-such-domain', 'off', 'run']) variants.push(fill(domain), fill(domain).slice(0, 1));
        variants.push([...fill('run'), ...u.switches.map((s) => `--${s}`)]);
        variants.push([...fill('off'), ...u.switches.map((s) => `--${s}`)]);
      } else if (u.switches.length) {
        variants.push([...fill(undefined), ...u.switches.map((s) => `--${s}`)]);
      }
      const base = /DOMAIN/.test(u.positional[0] ?? '') ? fill('run').slice(0, 1) : [];
      for (const v of u.values) {
        const values = v.choices.length ? [...v.choices, 'no-such-value'] : /DOMAIN/.test(v.placeholder) ? ['no-such-domain', 'off', 'run'] : [bad(v.placeholder)];
        for (const value of values) variants.push([...base, `--${v.flag}`, value]);
      }
      const commands = [...new Set(variants.map((v) => JSON.stringify([u.name, ...v])))]
        .map((s) => JSON.parse(s) as string[])
        .filter((args) => !NEVER.some((re) => re.test(args.join(' '))));

      if (await ensureFixtures()) resets++;
      for (let i = 0; i < commands.length; i += PARALLEL) {
        const batch = commands.slice(i, i + PARALLEL);
        const results = await Promise.all(batch.map((args) => run(t.home, work, args, STREAMING.has(u.name) ? STREAM_MS : HANG_MS)));
        runs += batch.length;
        results.forEach((r, j) => {
          const line = `domus ${batch[j].join(' ')}`;
          const out = r.stdout + r.stderr;
          if (/internal error/i.test(out)) failures.push(`${line}: ${out.trim()}`);
          else if (/^\s+at .+:\d+:\d+\)?$/m.test(out)) failures.push(`${line}: stack trace\n${out.trim()}`);
          else if (r.timedOut && !STREAMING.has(u.name)) failures.push(`${line}: no answer within ${HANG_MS / 1000} s`);
          else if (!r.timedOut && r.code !== 0 && !/^error: /m.test(r.stderr)) failures.push(`${line}: exit ${r.code} without an error line: ${out.trim()}`);
        });
      }
    }
    // What the CLI may have hidden: the host logs every failure that was not an anticipated error.
    const hostLog = fs.readFileSync(t.paths.log, 'utf8');
    for (const m of hostLog.matchAll(/^\S+ error \S+ from .* failed: .*$/gm)) failures.push(`host log: ${m[0]}`);
    // A file argument naming a directory that does not exist is an error, never a reason to create it.
    if (fs.existsSync('/nonexistent')) failures.push('a command created /nonexistent/dir for its file argument');
    ctx.diagnostic(`${runs} runs over ${usages.length} usage forms, ${resets} fixture resets`);
    assert.deepEqual(failures, [], `${failures.length} of ${runs} runs failed:\n${failures.join('\n\n')}`);
  });
});
