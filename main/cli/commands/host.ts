// Host commands: the connection URI, the per-user daemon and the web shell.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { hostAnswers, hostPaths } from '../../common/paths.js';
import { chromiumArgs, findBrowser } from '../browser.js';
import { CliError, type Command } from '../command.js';

export const hostCommands: Record<string, Command> = {
  uri: {
    usage: 'uri',
    help: "print the host's canonical URI: how another host reaches it (a migration's DEST-URI); with -c, that connection's",
    run: async (client, args) => {
      const uri = args.connection ?? (await (await client()).call('host.uri', {})).uri;
      process.stdout.write(`${uri}\n\n`);
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
    help: 'print a one-time web shell address (it logs one browser in, within 5 minutes); --open opens it in Chromium',
    run: async (client, args) => {
      const api = await client();
      const { url } = await api.call('host.webShell', {});
      if (!args.flags.has('open')) {
        process.stdout.write(`${url}\n`);
        return;
      }
      const browser = findBrowser();
      if (!browser) {
        process.stdout.write(`No Chromium found; open this one-time address in a browser: ${url}\n`);
        return;
      }
      process.stdout.write(`Opening the Domus manager in ${browser} (app mode)\n`);
      const { args: argv, warning } = chromiumArgs(url, path.join(hostPaths().home, 'chromium-profile'));
      if (warning) process.stderr.write(`domus: warning: ${warning}\n`);
      const child = spawn(browser, argv, { stdio: 'ignore' });
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      // The address it had is spent by now: a new one for the user.
      if (code) process.stdout.write(`Chromium exited with code ${code}; \`domus webshell\` prints an address to open in a browser.\n`);
    },
  },
};
