// `domus`: virsh's command names, flags and output shapes, over the same host API as the GUI.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stateLabel } from '../../shared/domain.js';
import type { ApiClient } from '../../shared/client.js';
import { writeFileAtomic } from '../common/fsutil.js';
import { hostAnswers } from '../host/daemon.js';
import { hostPaths } from '../host/paths.js';
import { connectHost } from './connect.js';

const DEFAULT_URI = 'v86:///session';
const SUPPORTED_URIS = new Set([DEFAULT_URI, 'v86:///system']);

/** A failure printed virsh-style: each line prefixed with "error: ". */
class CliError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
  }
}

interface Args {
  positional: string[];
  flags: Set<string>;
}

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags = new Set<string>();
  for (const a of argv) {
    if (a.startsWith('--')) flags.add(a.slice(2));
    else positional.push(a);
  }
  return { positional, flags };
}

type Command = {
  usage: string;
  help: string;
  run: (client: () => Promise<ApiClient>, args: Args) => Promise<void>;
};

function need(args: Args, index: number, what: string, command: string): string {
  const v = args.positional[index];
  if (v === undefined) throw new CliError([`command '${command}' requires <${what}> option`]);
  return v;
}

/** Runs an API call; on failure prints virsh's two-line error (context, then the cause). */
async function attempt<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const message = (err as Error).message;
    if ((err as { code?: string }).code === 'no-domain') {
      const m = /'([^']*)'/.exec(message);
      throw new CliError([`failed to get domain '${m?.[1] ?? ''}'`]);
    }
    throw new CliError([context, message]);
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => ' ' + cells.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd();
  const head = line(header);
  return [head, '-'.repeat(head.length + 2), ...rows.map(line), ''].join('\n') + '\n';
}

function simpleDomainOp(
  method: 'domain.start' | 'domain.destroy' | 'domain.suspend' | 'domain.resume',
  verb: string,
  failVerb: string,
): Command['run'] {
  return async (client, args) => {
    const name = need(args, 0, 'domain', verb);
    const api = await client();
    const r = await attempt(`Failed to ${failVerb} domain '${name}'`, () => api.call(method, { domain: name }));
    process.stdout.write(`Domain '${r.domain.name}' ${verb}\n\n`);
  };
}

const commands: Record<string, Command> = {
  list: {
    usage: 'list [--all] [--inactive] [--name] [--uuid]',
    help: 'list domains',
    run: async (client, args) => {
      const api = await client();
      const { domains } = await api.call('domain.list', { all: true });
      const shown = domains.filter((d) =>
        args.flags.has('inactive') ? d.state === 'shutoff' : args.flags.has('all') || d.state !== 'shutoff',
      );
      if (args.flags.has('name') || args.flags.has('uuid')) {
        const lines = shown.map((d) => (args.flags.has('uuid') ? d.uuid : d.name));
        process.stdout.write(lines.map((l) => l + '\n').join('') + '\n');
        return;
      }
      process.stdout.write(
        table(
          ['Id', 'Name', 'State'],
          shown.map((d) => [d.id === undefined ? '-' : String(d.id), d.name, stateLabel(d.state)]),
        ),
      );
    },
  },
  define: {
    usage: 'define FILE.xml',
    help: 'define (but do not start) a domain from a libvirt XML file',
    run: async (client, args) => {
      const file = need(args, 0, 'file', 'define');
      let xml: string;
      try {
        xml = fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new CliError([`Failed to open file '${file}': ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}`]);
      }
      const api = await client();
      const r = await attempt(`Failed to define domain from ${file}`, () => api.call('domain.define', { xml }));
      for (const w of r.warnings) process.stderr.write(`warning: ${w.message}\n`);
      process.stdout.write(`Domain '${r.domain.name}' defined from ${file}\n\n`);
    },
  },
  undefine: {
    usage: 'undefine DOMAIN',
    help: 'undefine a domain',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'undefine');
      const api = await client();
      await attempt(`Failed to undefine domain '${name}'`, () => api.call('domain.undefine', { domain: name }));
      process.stdout.write(`Domain '${name}' has been undefined\n\n`);
    },
  },
  start: { usage: 'start DOMAIN', help: 'start a (previously defined) inactive domain', run: simpleDomainOp('domain.start', 'started', 'start') },
  destroy: { usage: 'destroy DOMAIN', help: 'destroy (stop) a domain', run: simpleDomainOp('domain.destroy', 'destroyed', 'destroy') },
  suspend: { usage: 'suspend DOMAIN', help: 'suspend a domain', run: simpleDomainOp('domain.suspend', 'suspended', 'suspend') },
  resume: { usage: 'resume DOMAIN', help: 'resume a domain', run: simpleDomainOp('domain.resume', 'resumed', 'resume') },
  dominfo: {
    usage: 'dominfo DOMAIN',
    help: 'domain information',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'dominfo');
      const api = await client();
      const d = await attempt(`failed to get domain '${name}'`, () => api.call('domain.info', { domain: name }));
      const rows: [string, string][] = [
        ['Id', d.id === undefined ? '-' : String(d.id)],
        ['Name', d.name],
        ['UUID', d.uuid],
        ['OS Type', d.osType],
        ['State', stateLabel(d.state)],
        ['CPU(s)', String(d.vcpus)],
        ...(d.id !== undefined ? ([['CPU time', `${(d.cpuTimeMs / 1000).toFixed(1)}s`]] as [string, string][]) : []),
        ['Max memory', `${d.memoryKiB} KiB`],
        ['Used memory', `${d.currentMemoryKiB} KiB`],
        ['Persistent', d.persistent ? 'yes' : 'no'],
        ['Autostart', d.autostart ? 'enable' : 'disable'],
        ['Managed save', 'no'],
        ['Security model', 'none'],
        ['Security DOI', '0'],
      ];
      process.stdout.write(rows.map(([k, v]) => `${(k + ':').padEnd(16)}${v}\n`).join('') + '\n');
    },
  },
  domstate: {
    usage: 'domstate DOMAIN [--reason]',
    help: 'domain state',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'domstate');
      const api = await client();
      const d = await attempt(`failed to get domain '${name}'`, () => api.call('domain.info', { domain: name }));
      process.stdout.write(`${stateLabel(d.state)}${args.flags.has('reason') ? ` (${d.reason})` : ''}\n\n`);
    },
  },
  domuuid: {
    usage: 'domuuid DOMAIN',
    help: 'convert a domain name or id to domain UUID',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'domuuid');
      const api = await client();
      const d = await attempt(`failed to get domain '${name}'`, () => api.call('domain.info', { domain: name }));
      process.stdout.write(`${d.uuid}\n\n`);
    },
  },
  domid: {
    usage: 'domid DOMAIN',
    help: 'convert a domain name or UUID to domain id',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'domid');
      const api = await client();
      const d = await attempt(`failed to get domain '${name}'`, () => api.call('domain.info', { domain: name }));
      process.stdout.write(`${d.id === undefined ? '-' : d.id}\n\n`);
    },
  },
  dumpxml: {
    usage: 'dumpxml DOMAIN',
    help: 'domain information in XML',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'dumpxml');
      const api = await client();
      const { xml } = await attempt(`failed to get domain '${name}'`, () => api.call('domain.xml', { domain: name }));
      process.stdout.write(xml.endsWith('\n') ? xml : xml + '\n');
    },
  },
  screenshot: {
    usage: 'screenshot DOMAIN [FILE.png]',
    help: "take a screenshot of a current domain console and store it into a file",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'screenshot');
      const api = await client();
      const shot = await attempt(`could not take a screenshot of ${name}`, () => api.call('domain.screenshot', { domain: name }));
      const file = args.positional[1] ?? `${name}-${Math.floor(Date.now() / 1000)}.png`;
      writeFileAtomic(path.resolve(file), Buffer.from(shot.png, 'base64'));
      process.stdout.write(`Screenshot saved to ${file}, with type of image/png\n\n`);
    },
  },
  console: {
    usage: 'console DOMAIN',
    help: 'connect to the guest serial console (exit with Ctrl+])',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'console');
      const api = await client();
      const info = await attempt(`failed to get domain '${name}'`, () => api.call('domain.info', { domain: name }));
      api.on('domain.serial', (d) => {
        if (d.uuid === info.uuid) process.stdout.write(Buffer.from(d.data, 'base64'));
      });
      const { backlog } = await attempt(`Failed to open console for '${name}'`, () => api.call('domain.serialOpen', { domain: name }));
      process.stdout.write(`Connected to domain '${info.name}'\nEscape character is ^] (Ctrl + ])\n`);
      process.stdout.write(Buffer.from(backlog, 'base64'));
      await new Promise<void>((resolve) => {
        const stdin = process.stdin;
        if (stdin.isTTY) stdin.setRawMode(true);
        const done = (): void => {
          if (stdin.isTTY) stdin.setRawMode(false);
          stdin.pause();
          process.stdout.write('\n');
          resolve();
        };
        stdin.on('data', (chunk: Buffer) => {
          const esc = chunk.indexOf(0x1d);
          const data = esc >= 0 ? chunk.subarray(0, esc) : chunk;
          if (data.length) void api.call('domain.serialWrite', { domain: info.uuid, data: data.toString('base64') }).catch(() => undefined);
          if (esc >= 0) done();
        });
        stdin.on('end', done);
        api.on('domain.lifecycle', (e) => {
          if (e.domain.uuid === info.uuid && e.event === 'stopped') done();
        });
        api.onClose(() => done());
      });
    },
  },
  'send-text': {
    usage: 'send-text DOMAIN TEXT',
    help: 'type text on the guest keyboard (Domus extension)',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'send-text');
      const text = need(args, 1, 'text', 'send-text').replace(/\\n/g, '\n');
      const api = await client();
      await attempt(`Failed to send text to '${name}'`, () => api.call('domain.sendKeys', { domain: name, text }));
    },
  },
  uri: {
    usage: 'uri',
    help: 'print the hypervisor canonical URI',
    run: async () => {
      process.stdout.write(`${DEFAULT_URI}\n\n`);
    },
  },
  daemon: {
    usage: 'daemon status|start|stop',
    help: 'manage the per-user Domus host daemon',
    run: async (client, args) => {
      const paths = hostPaths();
      const sub = args.positional[0] ?? 'status';
      if (sub === 'status') {
        if (!(await hostAnswers(paths.socket))) {
          process.stdout.write('domusd is not running\n');
          process.exitCode = 3;
          return;
        }
        const status = await (await client()).call('host.status', {});
        process.stdout.write(`domusd is running (pid ${status.pid}, ${status.uri}, home ${status.home})\n`);
      } else if (sub === 'start') {
        const status = await (await client()).call('host.status', {});
        process.stdout.write(`domusd is running (pid ${status.pid})\n`);
      } else if (sub === 'stop') {
        if (!(await hostAnswers(paths.socket))) {
          process.stdout.write('domusd is not running\n');
          return;
        }
        const api = await client();
        const { pid } = await api.call('host.status', {});
        await api.call('host.stop', {});
        const deadline = Date.now() + 10_000;
        while ((await hostAnswers(paths.socket)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        process.stdout.write(`domusd (pid ${pid}) stopped; running guests keep running\n`);
      } else {
        throw new CliError([`unknown daemon command '${sub}' (expected status, start or stop)`]);
      }
    },
  },
  webshell: {
    usage: 'webshell [--open]',
    help: 'print the web shell address (with its secret token); --open opens it in Chromium',
    run: async (client, args) => {
      const api = await client();
      const { url } = await api.call('host.webShell', {});
      if (!args.flags.has('open')) {
        process.stdout.write(`${url}\n`);
        return;
      }
      const browser = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((b) => fs.existsSync(b));
      if (!browser) {
        process.stdout.write(`No Chromium found; open this address in a browser:\n${url}\n`);
        return;
      }
      process.stdout.write(`Opening the Domus manager in ${browser}\n`);
      const profile = path.join(hostPaths().home, 'chromium-profile');
      const child = spawn(browser, [`--app=${url}`, `--user-data-dir=${profile}`, '--no-first-run', '--disable-background-networking', '--window-size=1200,800'], {
        stdio: 'ignore',
      });
      await new Promise((r) => child.on('exit', r));
    },
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `    ${name.padEnd(14)}${c.help}\n        ${c.usage}`);
  return `Usage: domus [-c URI] COMMAND [ARGS...]\n\nCommands:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  let uri = process.env.DOMUS_DEFAULT_URI ?? DEFAULT_URI;
  const rest = [...argv];
  while (rest.length && (rest[0] === '-c' || rest[0] === '--connect')) {
    rest.shift();
    uri = rest.shift() ?? '';
  }
  const [name, ...cmdArgs] = rest;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`error: unknown command: '${name}'\n`);
    return 1;
  }
  let api: ApiClient | undefined;
  const client = async (): Promise<ApiClient> => {
    if (!SUPPORTED_URIS.has(uri)) {
      throw new CliError(['failed to connect to the hypervisor', `no connection driver available for ${uri}`]);
    }
    api ??= await connectHost().catch((err: Error) => {
      throw new CliError(['failed to connect to the hypervisor', err.message]);
    });
    return api;
  };
  try {
    await command.run(client, parseArgs(cmdArgs));
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const lines = err instanceof CliError ? err.lines : [(err as Error).message];
    process.stderr.write(lines.map((l) => `error: ${l}\n`).join(''));
    return 1;
  } finally {
    api?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`error: ${err.message}\n`);
    process.exit(1);
  },
);
