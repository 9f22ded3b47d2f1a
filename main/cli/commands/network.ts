// Virtual networks and domains' interfaces: virsh's net-* commands, domiflist, domifaddr,
// attach-interface, detach-interface, domif-setlink and domif-getlink, with virsh 9's output.
import type { NetworkInfo } from '../../../shared/api.js';
import type { ApiClient } from '../../../shared/client.js';
import { attempt, CliError, need, readXmlFile, table, type Args, type Command } from '../command.js';

/** A network call: a network that is not there fails as virsh's lookup does ("failed to get network"), anything else under `context`. */
async function netCall<T>(network: string, context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const message = (err as Error).message;
    if ((err as { code?: string }).code === 'NO_NETWORK') throw new CliError([`failed to get network '${network}'`, message]);
    throw new CliError([context, message]);
  }
}

async function getNetwork(api: ApiClient, ref: string): Promise<NetworkInfo> {
  const { networks } = await attempt('failed to list networks', () => api.call('network.list', {}));
  const lower = ref.toLowerCase().replace(/-/g, '');
  const found = networks.find((n) => n.name === ref) ?? networks.find((n) => n.uuid.replace(/-/g, '') === lower);
  if (!found) throw new CliError([`failed to get network '${ref}'`, `Network not found: no network with matching name '${ref}'`]);
  return found;
}

/** The command `net-VERB NETWORK`: one call, then "Network <name> <done>" as virsh says it. */
function simpleNetworkOp(method: 'network.start' | 'network.destroy' | 'network.undefine', verb: string, done: string): Command['run'] {
  return async (client, args) => {
    const network = need(args, 0, 'network', `net-${verb}`);
    const api = await client();
    await netCall(network, `Failed to ${verb} network ${network}`, () => api.call(method, { network }));
    process.stdout.write(`Network ${network} ${done}\n\n`);
  };
}

const yes = (b: boolean): string => (b ? 'yes' : 'no');

/** virsh's --live/--config/--current/--persistent for device edits: --persistent is the definition, and the running guest when there is one. */
export async function deviceScope(api: ApiClient, domain: string, args: Args): Promise<{ live: boolean; config: boolean }> {
  const live = args.flags.has('live');
  const config = args.flags.has('config');
  if (args.flags.has('current') && (live || config)) throw new CliError([`Options --current and --${live ? 'live' : 'config'} are mutually exclusive`]);
  if (!args.flags.has('persistent')) return { live, config };
  if (live || config) throw new CliError([`Options --persistent and --${live ? 'live' : 'config'} are mutually exclusive`]);
  const info = await attempt(`failed to get domain '${domain}'`, () => api.call('domain.info', { domain }));
  return { live: info.state !== 'shutoff', config: true };
}

/** --type and --source of attach/detach-interface, as options or positional arguments (virsh takes both). */
function typeArg(args: Args, command: string): 'network' | 'user' {
  const type = args.options.get('type') ?? need(args, 1, 'type', command);
  if (type !== 'network' && type !== 'user') throw new CliError([`No support for ${type} in command '${command}'`]);
  return type;
}

export const networkCommands: Record<string, Command> = {
  'net-list': {
    usage: 'net-list [--all] [--inactive] [--name] [--uuid]',
    help: 'list networks (active ones; --all: every one, --inactive: inactive ones)',
    run: async (client, args) => {
      const api = await client();
      const { networks } = await attempt('failed to list networks', () => api.call('network.list', {}));
      const shown = networks.filter((n) => (args.flags.has('inactive') ? !n.active || args.flags.has('all') : args.flags.has('all') || n.active));
      const byName = args.flags.has('name');
      const byUuid = args.flags.has('uuid');
      if (byName || byUuid) {
        const lines = shown.map((n) => (byName && byUuid ? `${n.uuid}  ${n.name}` : byUuid ? n.uuid : n.name));
        process.stdout.write(lines.map((l) => `${l}\n`).join('') + '\n');
        return;
      }
      process.stdout.write(table(['Name', 'State', 'Autostart', 'Persistent'], shown.map((n) => [n.name, n.active ? 'active' : 'inactive', yes(n.autostart), yes(n.persistent)])));
    },
  },
  'net-info': {
    usage: 'net-info NETWORK',
    help: 'network information',
    run: async (client, args) => {
      const n = await getNetwork(await client(), need(args, 0, 'network', 'net-info'));
      const rows = [
        ['Name:', n.name],
        ['UUID:', n.uuid],
        ['Active:', yes(n.active)],
        ['Persistent:', yes(n.persistent)],
        ['Autostart:', yes(n.autostart)],
        ...(n.bridge ? [['Bridge:', n.bridge]] : []),
      ];
      process.stdout.write(rows.map(([k, v]) => `${k!.padEnd(15)} ${v}\n`).join('') + '\n');
    },
  },
  'net-uuid': {
    usage: 'net-uuid NETWORK',
    help: "a network's UUID",
    run: async (client, args) => {
      const n = await getNetwork(await client(), need(args, 0, 'network', 'net-uuid'));
      process.stdout.write(`${n.uuid}\n\n`);
    },
  },
  'net-name': {
    usage: 'net-name UUID',
    help: 'the name of the network with this UUID',
    run: async (client, args) => {
      const n = await getNetwork(await client(), need(args, 0, 'network', 'net-name'));
      process.stdout.write(`${n.name}\n\n`);
    },
  },
  'net-define': {
    usage: 'net-define FILE',
    help: 'define a persistent network from libvirt network XML (or a new definition for a network, used from its next start)',
    run: async (client, args) => {
      const file = need(args, 0, 'file', 'net-define');
      const xml = readXmlFile(file);
      const api = await client();
      const r = await attempt(`Failed to define network from ${file}`, () => api.call('network.define', { xml }));
      for (const w of r.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`Network ${r.network.name} defined from ${file}\n\n`);
    },
  },
  'net-undefine': {
    usage: 'net-undefine NETWORK',
    help: 'undefine a network (a running one goes on, transient, until destroyed)',
    run: simpleNetworkOp('network.undefine', 'undefine', 'has been undefined'),
  },
  'net-start': {
    usage: 'net-start NETWORK',
    help: 'start a network (its switch: DHCP, DNS, NAT, port forwards)',
    run: simpleNetworkOp('network.start', 'start', 'started'),
  },
  'net-destroy': {
    usage: 'net-destroy NETWORK',
    help: "stop a network (its guests' NICs lose their link until it starts again)",
    run: simpleNetworkOp('network.destroy', 'destroy', 'destroyed'),
  },
  'net-dumpxml': {
    usage: 'net-dumpxml NETWORK [--inactive]',
    help: 'network information in XML (--inactive: the persistent definition)',
    run: async (client, args) => {
      const network = need(args, 0, 'network', 'net-dumpxml');
      const api = await client();
      const { xml } = await netCall(network, `Failed to get network '${network}' XML`, () => api.call('network.xml', { network, inactive: args.flags.has('inactive') }));
      process.stdout.write(`${xml}\n`);
    },
  },
  'net-autostart': {
    usage: 'net-autostart NETWORK [--disable]',
    help: 'start a network when the host starts (--disable: do not)',
    run: async (client, args) => {
      const network = need(args, 0, 'network', 'net-autostart');
      const enabled = !args.flags.has('disable');
      const api = await client();
      const r = await netCall(network, `failed to ${enabled ? 'mark' : 'unmark'} network ${network} as autostarted`, () => api.call('network.setAutostart', { network, enabled }));
      process.stdout.write(`Network ${r.network.name} ${enabled ? 'marked' : 'unmarked'} as autostarted\n\n`);
    },
  },
  'net-dhcp-leases': {
    usage: 'net-dhcp-leases NETWORK [--mac MAC]',
    help: "a network's DHCP leases",
    run: async (client, args) => {
      const network = need(args, 0, 'network', 'net-dhcp-leases');
      const mac = args.options.get('mac');
      const api = await client();
      const { leases } = await netCall(network, `Failed to get leases info for ${network}`, () => api.call('network.dhcpLeases', { network, mac }));
      const rows = [...leases]
        .sort((a, b) => a.mac.localeCompare(b.mac))
        .map((l) => [expiry(l.expiryTime), l.mac, 'ipv4', `${l.address}/${l.prefix}`, l.hostname ?? '-', l.clientId ?? '-']);
      process.stdout.write(table(['Expiry Time', 'MAC address', 'Protocol', 'IP address', 'Hostname', 'Client ID or DUID'], rows));
    },
  },
  domiflist: {
    usage: 'domiflist DOMAIN [--inactive]',
    help: "a domain's network interfaces (vnetN: the name of a running one's NIC)",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'domiflist');
      const api = await client();
      const { interfaces } = await attempt(`failed to get domain '${domain}'`, () => api.call('domain.interfaces', { domain, inactive: args.flags.has('inactive') }));
      process.stdout.write(table(['Interface', 'Type', 'Source', 'Model', 'MAC'], interfaces.map((i) => [i.name, i.type, i.source ?? '-', i.model ?? '-', i.mac])));
    },
  },
  domifaddr: {
    usage: 'domifaddr DOMAIN [--interface NAME] [--full] [--source lease]',
    help: "a running domain's addresses, from its networks' DHCP leases",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'domifaddr');
      const source = args.options.get('source') ?? 'lease';
      if (source !== 'lease') throw new CliError([`Failed to query for interfaces addresses`, `Operation not supported: only --source lease is available here (Domus has no guest agent query of addresses, nor an ARP table)`]);
      const api = await client();
      const only = args.options.get('interface') ?? args.positional[1];
      const { interfaces } = await attempt('Failed to query for interfaces addresses', () => api.call('domain.interfaceAddresses', { domain, interface: only }));
      let out = ` ${'Name'.padEnd(10)} ${'MAC address'.padEnd(20)} ${'Protocol'.padEnd(8)}     Address\n${'-'.repeat(79)}\n`;
      for (const iface of interfaces) {
        iface.addresses.forEach((a, i) => {
          const first = i === 0 || args.flags.has('full');
          out += ` ${(first ? iface.name : '-').padEnd(10)} ${(first ? iface.mac : '-').padEnd(17)}    ${a.type.padEnd(12)} ${a.address}/${a.prefix}\n`;
        });
      }
      process.stdout.write(`${out}\n`);
    },
  },
  'attach-interface': {
    usage: 'attach-interface DOMAIN --type network|user [--source NETWORK] [--model MODEL] [--mac MAC] [--live] [--config] [--current] [--persistent]',
    help: 'add a network interface (on this host: --config; the guest gets it at its next start)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'attach-interface');
      const type = typeArg(args, 'attach-interface');
      const source = args.options.get('source') ?? args.positional[args.options.has('type') ? 1 : 2];
      if (type === 'network' && !source) throw new CliError([`command 'attach-interface' requires <source> option`]);
      const api = await client();
      const scope = await deviceScope(api, domain, args);
      await attempt('Failed to attach interface', () =>
        api.call('domain.attachInterface', { domain, type, source: type === 'network' ? source : undefined, model: args.options.get('model'), mac: args.options.get('mac'), ...scope }),
      );
      process.stdout.write('Interface attached successfully\n\n');
    },
  },
  'detach-interface': {
    usage: 'detach-interface DOMAIN --type network|user [--mac MAC] [--live] [--config] [--current] [--persistent]',
    help: 'remove a network interface (by MAC, or the only one of its type)',
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'detach-interface');
      const type = typeArg(args, 'detach-interface');
      const api = await client();
      const scope = await deviceScope(api, domain, args);
      await attempt('Failed to detach interface', () => api.call('domain.detachInterface', { domain, type, mac: args.options.get('mac'), ...scope }));
      process.stdout.write('Interface detached successfully\n\n');
    },
  },
  'domif-setlink': {
    usage: 'domif-setlink DOMAIN INTERFACE up|down [--config]',
    help: "set an interface's link up or down (INTERFACE: vnetN or MAC; live on the network's switch, --config: the definition)",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'domif-setlink');
      const iface = need(args, 1, 'interface', 'domif-setlink');
      const state = need(args, 2, 'state', 'domif-setlink');
      if (state !== 'up' && state !== 'down') throw new CliError([`invalid link state '${state}'`]);
      const api = await client();
      await attempt('Failed to update interface link state', () => api.call('domain.setLinkState', { domain, interface: iface, state, live: false, config: args.flags.has('config') }));
      process.stdout.write('Device updated successfully\n\n');
    },
  },
  'domif-getlink': {
    usage: 'domif-getlink DOMAIN INTERFACE [--config]',
    help: "an interface's link state (INTERFACE: vnetN or MAC)",
    run: async (client, args) => {
      const domain = need(args, 0, 'domain', 'domif-getlink');
      const iface = need(args, 1, 'interface', 'domif-getlink');
      const api = await client();
      const { interfaces } = await attempt(`failed to get domain '${domain}'`, () => api.call('domain.interfaces', { domain, inactive: args.flags.has('config') }));
      const found = interfaces.find((i) => i.name === iface || i.mac === iface.toLowerCase());
      if (!found) throw new CliError([`Interface (dev: ${iface}) not found.`]);
      process.stdout.write(`${iface} ${found.link}\n`);
    },
  },
};

/** A lease's expiry as virsh prints it: local time, "YYYY-MM-DD HH:MM:SS". */
function expiry(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
