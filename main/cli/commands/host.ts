// Host commands: the connection URI, the per-user daemon and the web shell.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { hostAnswers } from '../../host/daemon.js';
import { hostPaths } from '../../host/paths.js';
import { CliError, DEFAULT_URI, type Command } from '../command.js';

export const hostCommands: Record<string, Command> = {
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
        const shown = new Map<string, string>();
        api.on('host.stopping', ({ domains }) => {
          for (const d of domains) {
            const line = `${d.name}: ${d.policy} → ${d.step}${d.message ? ` (${d.message})` : ''}`;
            if (shown.get(d.uuid) !== line) process.stdout.write(`${line}\n`);
            shown.set(d.uuid, line);
          }
        });
        await api.call('host.stop', {});
        // Domains shut down or save first (a clean shutdown may take its whole timeout).
        const deadline = Date.now() + 10 * 60_000;
        while ((await hostAnswers(paths.socket)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        process.stdout.write(`domusd (pid ${pid}) stopped\n`);
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
      process.stdout.write(`Domus manager: ${url}\n`);
      if (!browser) {
        process.stdout.write('No Chromium found; open the address above in a browser.\n');
        return;
      }
      process.stdout.write(`Opening it in ${browser} (app mode)\n`);
      const profile = path.join(hostPaths().home, 'chromium-profile');
      const child = spawn(browser, [`--app=${url}`, `--user-data-dir=${profile}`, '--no-first-run', '--disable-background-networking', '--window-size=1200,800'], {
        stdio: 'ignore',
      });
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      if (code) process.stdout.write(`Chromium exited with code ${code}; open the address above in a browser.\n`);
    },
  },
};
