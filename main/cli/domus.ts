// `domus`: virsh's command names, flags and output shapes, over the same host API as the GUI.
import type { ApiClient } from '../../shared/client.js';
import { CliError, DEFAULT_URI, checkOptions, parseArgs, type Command } from './command.js';
import { cloneCommands } from './commands/clone.js';
import { deviceCommands } from './commands/devices.js';
import { domainCommands } from './commands/domain.js';
import { hostCommands } from './commands/host.js';
import { lifecycleCommands } from './commands/lifecycle.js';
import { memoryCommands } from './commands/memory.js';
import { migrateCommands } from './commands/migrate.js';
import { networkCommands } from './commands/network.js';
import { qemuCommands } from './commands/qemu.js';
import { snapshotCommands } from './commands/snapshot.js';
import { storageCommands } from './commands/storage.js';
import { connectHost } from './connect.js';
import { answerPrompts } from './prompt.js';

/** The host's own engines; any other URI is a libvirt connection the host opens (as virsh -c does). */
const LOCAL_URIS = new Set([DEFAULT_URI, 'v86:///system', 'qemu:///session']);
const LIBVIRT_URI = /^[a-z][a-z0-9]*(\+[a-z]+)?:\/\/[^\s]*$/;
const commands: Record<string, Command> = { ...domainCommands, ...lifecycleCommands, ...memoryCommands, ...hostCommands, ...storageCommands, ...networkCommands, ...qemuCommands, ...snapshotCommands, ...migrateCommands, ...cloneCommands, ...deviceCommands };

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `    ${(name + ' ').padEnd(14)}${c.help}\n        ${c.usage}`);
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
    const local = LOCAL_URIS.has(uri);
    if (!local && !LIBVIRT_URI.test(uri)) {
      throw new CliError(['failed to connect to the hypervisor', `no connection driver available for ${uri}`]);
    }
    if (!api) {
      const failed = (err: Error): never => {
        throw new CliError(['failed to connect to the hypervisor', err.message]);
      };
      api = await connectHost(undefined, true, local ? undefined : uri).catch(failed);
      // Names this client in the host's trace: `domus` with its pid and command line.
      await api.call('session.hello', { kind: 'cli', pid: process.pid, label: ['domus', ...argv].join(' ').slice(0, 256) });
      if (!local) {
        const stopAnswering = answerPrompts(api, uri);
        await api.call('connection.open', { uri }).catch(failed).finally(stopAnswering);
      }
    }
    return api;
  };
  try {
    const args = parseArgs(cmdArgs);
    if (!LOCAL_URIS.has(uri)) args.connection = uri;
    checkOptions(name, command, args);
    await command.run(client, args);
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
