// Domain commands: virsh's names, flags and output shapes.
import path from 'node:path';
import { stateLabel } from '../../../shared/libvirt/states.js';
import { writeFileAtomic } from '../../common/fsutil.js';
import { attempt, CliError, domainInfo, hostFile, need, readXmlFile, simpleDomainOp, table, type Command } from '../command.js';

export const domainCommands: Record<string, Command> = {
  list: {
    usage: 'list [--all] [--inactive] [--name] [--uuid] [--reason]',
    help: 'list domains (--reason: with why each is in its state, as domstate --reason; "fast start" marks a guest started from its kept state)',
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
          shown.map((d) => [d.id === undefined ? '-' : String(d.id), d.name, `${stateLabel(d.state)}${args.flags.has('reason') ? ` (${d.reason}${d.fastStarted ? ', fast start' : ''})` : ''}`]),
        ),
      );
    },
  },
  define: {
    usage: 'define FILE.xml',
    help: 'define (but do not start) a domain from a libvirt XML file',
    run: async (client, args) => {
      const file = need(args, 0, 'file', 'define');
      const xml = readXmlFile(file);
      const api = await client();
      const r = await attempt(`Failed to define domain from ${file}`, () => api.call('domain.define', { xml }));
      for (const w of r.warnings) process.stderr.write(`warning: ${w.message}\n`);
      process.stdout.write(`Domain '${r.domain.name}' defined from ${file}\n\n`);
    },
  },
  undefine: {
    usage: 'undefine DOMAIN [--force] [--snapshots-metadata] [--storage TARGETS] [--remove-all-storage]',
    help: "undefine a domain (--force: also when running; it then goes when it stops; --snapshots-metadata: with its snapshots; --storage vda,/path or --remove-all-storage: with those disk volumes, never one another domain uses)",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'undefine');
      // A target (vda) as given; a path made absolute here, not in the host's working directory.
      const storage = (args.options.get('storage') ?? '').split(',').filter((s) => s !== '').map((s) => (s.includes('/') ? hostFile(args, s) : s));
      const api = await client();
      const r = await attempt(`Failed to undefine domain '${name}'`, () =>
        api.call('domain.undefine', { domain: name, force: args.flags.has('force'), snapshotsMetadata: args.flags.has('snapshots-metadata'), storage, removeAllStorage: args.flags.has('remove-all-storage') }),
      );
      // virsh's lines for each volume.
      const volumes = [...(r.removed ?? []).map((v) => `Volume '${v.target}'(${v.file}) removed.`), ...(r.kept ?? []).map((v) => `Volume '${v.target}'(${v.file}) kept: ${v.reason}.`)];
      process.stdout.write(`Domain '${name}' has been undefined\n${volumes.map((l) => `${l}\n`).join('')}\n`);
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
      const d = await domainInfo(api, name);
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
        ['Managed save', d.managedSave ? 'yes' : 'no'],
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
      const d = await domainInfo(api, name);
      process.stdout.write(`${stateLabel(d.state)}${args.flags.has('reason') ? ` (${d.reason})` : ''}\n\n`);
    },
  },
  domuuid: {
    usage: 'domuuid DOMAIN',
    help: 'convert a domain name or id to domain UUID',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'domuuid');
      const api = await client();
      const d = await domainInfo(api, name);
      process.stdout.write(`${d.uuid}\n\n`);
    },
  },
  domid: {
    usage: 'domid DOMAIN',
    help: 'convert a domain name or UUID to domain id',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'domid');
      const api = await client();
      const d = await domainInfo(api, name);
      process.stdout.write(`${d.id === undefined ? '-' : d.id}\n\n`);
    },
  },
  dumpxml: {
    usage: 'dumpxml DOMAIN [--inactive] [--security-info]',
    help: 'domain information in XML (--inactive: the definition for the next boot; --security-info: with passwords)',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'dumpxml');
      const api = await client();
      const { xml } = await attempt(`failed to get domain '${name}'`, () => api.call('domain.xml', { domain: name, inactive: args.flags.has('inactive'), secure: args.flags.has('security-info') }));
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
      writeFileAtomic(path.resolve(file), Buffer.from(shot.png, 'base64'), 0o600, false);
      process.stdout.write(`Screenshot saved to ${file}, with type of image/png\n\n`);
    },
  },
  console: {
    usage: 'console DOMAIN',
    help: 'connect to the guest serial console (exit with Ctrl+])',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'console');
      const api = await client();
      const info = await domainInfo(api, name);
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
  'send-key': {
    usage: 'send-key DOMAIN [--codeset linux|xt|atset1|qnum|usb] [--holdtime MS] KEYCODE...',
    help: 'send keycodes (numbers, or KEY_* names in the linux codeset) to the guest: pressed in order, released in reverse',
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'send-key');
      const codes = args.positional.slice(1);
      if (codes.length === 0) throw new CliError(["command 'send-key' requires <keycode> option"]);
      const codeset = args.options.get('codeset') ?? 'linux';
      if (!['linux', 'xt', 'atset1', 'qnum', 'usb'].includes(codeset)) {
        throw new CliError([`unknown codeset: '${codeset}' (linux, xt, atset1, qnum or usb)`]);
      }
      const holdText = args.options.get('holdtime');
      if (holdText !== undefined && !/^\d+$/.test(holdText)) throw new CliError([`invalid holdtime: '${holdText}' (milliseconds)`]);
      const keycodes = codes.map((c) => (/^(0x[0-9a-f]+|\d+)$/i.test(c) ? Number(c) : c));
      const api = await client();
      await attempt('Failed to send key', () =>
        api.call('domain.sendKey', {
          domain: name,
          codeset: codeset as 'linux',
          keycodes,
          ...(holdText !== undefined && { holdtimeMs: Number(holdText) }),
        }),
      );
    },
  },
  vncdisplay: {
    usage: 'vncdisplay DOMAIN',
    help: "output the IP address and display number of the VNC display (or its unix socket when it has no TCP listener)",
    run: async (client, args) => {
      const name = need(args, 0, 'domain', 'vncdisplay');
      const api = await client();
      const d = await attempt('Failed to get VNC display', () => api.call('domain.vncDisplay', { domain: name }));
      process.stdout.write(`${d.display ?? d.socket ?? ''}\n`);
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
};
