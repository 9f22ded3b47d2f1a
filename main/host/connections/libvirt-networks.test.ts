// Virtual networks and domain interfaces on a real libvirtd (private, per run), checked with Debian's
// virsh. The daemon runs in a network namespace of its own, so the bridges, dnsmasq and iptables
// rules of the networks it starts, and its guests' taps, never reach the host's network.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Events } from '../../../shared/api.js';
import { guest, SAMPLE_CMDLINE, TestHost, until } from '../../testing/harness.js';
import { libvirtdSkip } from '../../testing/libvirtd.js';
import { networkXmlSummary } from './libvirt-networks.js';

const netXml = (name: string, third: number, forward = ''): string =>
  `<network><name>${name}</name>${forward}<bridge name='dvbr${third}'/>` +
  `<ip address='10.77.${third}.1' netmask='255.255.255.0'><dhcp><range start='10.77.${third}.10' end='10.77.${third}.99'/></dhcp></ip></network>`;

const domXml = (name: string, iface: string, boot = ''): string =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>` +
  `<os><type arch='x86_64' machine='pc'>hvm</type>${boot}</os><features><acpi/></features>` +
  `<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>${iface}</devices></domain>`;

function skip(): string | false {
  const base = libvirtdSkip();
  if (base) return base;
  for (const bin of ['/usr/sbin/dnsmasq', '/usr/sbin/iptables', '/usr/sbin/ip']) {
    if (!fs.existsSync(bin)) return `${bin} is missing (build/install-deps.sh installs dnsmasq-base, iptables, iproute2)`;
  }
  return false;
}

test("a network's XML summary: forward mode, bridge, first IPv4 address, prefix from netmask or prefix, DHCP range", () => {
  assert.deepEqual(networkXmlSummary(netXml('a', 5, "<forward mode='nat'/>")), {
    forward: 'nat',
    bridge: 'dvbr5',
    address: '10.77.5.1',
    prefix: 24,
    dhcpRange: { start: '10.77.5.10', end: '10.77.5.99' },
  });
  assert.deepEqual(networkXmlSummary("<network><name>b</name><forward/><ip family='ipv6' address='fd00::1' prefix='64'/><ip address='10.1.0.1' prefix='16'/></network>"), {
    forward: 'nat',
    address: '10.1.0.1',
    prefix: 16,
  });
  assert.deepEqual(networkXmlSummary("<network><name>c</name><forward mode='bridge'/><bridge name='br0'/></network>"), { forward: 'bridge', bridge: 'br0' });
  assert.deepEqual(networkXmlSummary("<network><name>d</name><ip address='10.2.0.1' netmask='255.0.255.0'/></network>"), { forward: 'none', address: '10.2.0.1' }, 'not a netmask: no prefix');
  assert.throws(() => networkXmlSummary('<pool/>'), /<pool> where <network> XML was expected/);
});

describe('virtual networks and interfaces on a libvirt connection', { skip: skip(), timeout: 300_000 }, () => {
  let t: TestHost;
  const virsh = async (...args: string[]): Promise<string> => {
    const r = await t.libvirtd!.virsh(...args);
    assert.equal(r.code, 0, `virsh ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** A command in the daemon's network namespace. */
  const inNetns = (...args: string[]): string => execFileSync('nsenter', ['-t', String(t.libvirtd!.pid), '-n', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Events['network.lifecycle'][] = [];

  before(async () => {
    t = await TestHost.start('libvirt', { netns: true });
    t.client.on('network.lifecycle', (e) => events.push(e));
  });
  after(async () => {
    await t?.stop();
  });

  test('net-define, net-list, net-dumpxml --inactive, net-autostart and net-undefine, with their lifecycle events; bad XML in libvirt words', async () => {
    const defined = await t.client.call('network.define', { xml: netXml('lan', 1) });
    assert.deepEqual(
      { ...defined.network, uuid: undefined },
      { name: 'lan', uuid: undefined, active: false, persistent: true, autostart: false, forward: 'none', bridge: 'dvbr1', address: '10.77.1.1', prefix: 24, dhcpRange: { start: '10.77.1.10', end: '10.77.1.99' } },
    );
    await t.client.call('network.define', { xml: netXml('wan', 2, "<forward mode='nat'/>") });
    assert.match(await virsh('net-list', '--all'), /^\s*lan\s+inactive\s+no\s+yes$/m);

    const { networks } = await t.client.call('network.list', {});
    assert.deepEqual(
      networks.map((n) => [n.name, n.forward, n.active, n.persistent, n.autostart]),
      [
        ['lan', 'none', false, true, false],
        ['wan', 'nat', false, true, false],
      ],
    );
    const byUuid = await t.client.call('network.xml', { network: defined.network.uuid, inactive: true });
    assert.match(byUuid.xml, /<name>lan<\/name>/);
    assert.equal(byUuid.xml.trim(), (await virsh('net-dumpxml', 'lan', '--inactive')).trim(), 'the inactive XML, as virsh shows it');

    const cli = await t.cli(['-c', t.libvirtd!.uri, 'net-list', '--all']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, await virsh('net-list', '--all'), 'domus -c URI net-list prints what virsh prints');

    const auto = await t.client.call('network.setAutostart', { network: 'wan', enabled: true });
    assert.equal(auto.network.autostart, true);
    assert.match(await virsh('net-info', 'wan'), /^Autostart:\s+yes$/m);

    await assert.rejects(t.client.call('network.define', { xml: '<network><name>bad</name><ip address="10.9.9.1" prefix="99"/></network>' }), /prefix/i);
    await assert.rejects(t.client.call('network.define', { xml: '<network><name>broken' }), / XML error: \(network_definition\):1: Premature end of data in tag name/, "libvirt's own parser error, as an XML error");
    await assert.rejects(t.client.call('network.xml', { network: 'nosuch' }), (err: Error & { code?: string }) => {
      assert.match(err.message, /Network not found: no network with matching name 'nosuch'/);
      return true;
    });

    await t.client.call('network.undefine', { network: 'wan' });
    assert.doesNotMatch(await virsh('net-list', '--all', '--name'), /wan/);
    await until(() => events.some((e) => e.event === 'undefined' && e.network.name === 'wan'), 5000, 'the undefined event');
    assert.deepEqual(
      events.filter((e) => e.network.name !== 'bad').map((e) => [e.network.name, e.event]),
      [
        ['lan', 'defined'],
        ['wan', 'defined'],
        ['wan', 'undefined'],
      ],
    );
    assert.equal(events.at(-1)!.network.forward, 'nat', 'the undefined network as last seen');
  });

  test('net-start makes the bridge inside the namespace only; net-dhcp-leases is empty; net-destroy removes it; started/stopped events', async () => {
    events.length = 0;
    const t0 = Date.now();
    const started = await t.client.call('network.start', { network: 'lan' });
    console.log(`# net-start (bridge + dnsmasq): ${Date.now() - t0} ms`);
    assert.equal(started.network.active, true);
    assert.match(inNetns('ip', '-br', 'addr', 'show', 'dvbr1'), /10\.77\.1\.1\/24/);
    assert.equal(fs.existsSync('/sys/class/net/dvbr1'), false, "the host's network namespace has no such bridge");
    assert.deepEqual((await t.client.call('network.dhcpLeases', { network: 'lan' })).leases, []);
    assert.deepEqual((await t.client.call('network.dhcpLeases', { network: 'lan', mac: '52:54:00:00:00:01' })).leases, []);
    assert.match(await virsh('net-list'), /^\s*lan\s+active/m);

    const destroyed = await t.client.call('network.destroy', { network: 'lan' });
    assert.equal(destroyed.network.active, false);
    assert.throws(() => inNetns('ip', 'link', 'show', 'dvbr1'), 'the bridge is gone');
    await until(() => events.some((e) => e.event === 'stopped'), 5000, 'the stopped event');
    assert.deepEqual(
      events.map((e) => [e.network.name, e.event, e.network.active]),
      [
        ['lan', 'started', true],
        ['lan', 'stopped', false],
      ],
    );
  });

  test('network events still arrive after the connection was closed and opened again (registered on every open)', async () => {
    const uri = t.libvirtd!.uri;
    await t.client.call('connection.close', { uri });
    await t.client.call('connection.open', { uri });
    events.length = 0;
    fs.writeFileSync(`${t.libvirtd!.dir}/again.xml`, netXml('again', 3));
    await virsh('net-define', `${t.libvirtd!.dir}/again.xml`);
    await virsh('net-undefine', 'again');
    await until(() => events.length === 2, 5000, "the events of virsh's define and undefine");
    assert.deepEqual(events.map((e) => [e.network.name, e.event]), [['again', 'defined'], ['again', 'undefined']]);
  });

  test('domiflist, attach-interface, domif-setlink and detach-interface --config on a defined domain, as virsh sees them', async () => {
    const mac = '52:54:00:4e:00:01';
    await t.client.call('domain.define', { xml: domXml('nic-edit', `<interface type='network'><mac address='${mac}'/><source network='lan'/><model type='virtio'/></interface>`) });
    const { interfaces } = await t.client.call('domain.interfaces', { domain: 'nic-edit' });
    assert.deepEqual(interfaces, [{ name: '-', type: 'network', source: 'lan', model: 'virtio', mac, link: 'up' }]);

    const cli = await t.cli(['-c', t.libvirtd!.uri, 'domiflist', 'nic-edit']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, await virsh('domiflist', 'nic-edit'), 'domus -c URI domiflist prints what virsh prints');

    const attached = await t.client.call('domain.attachInterface', { domain: 'nic-edit', type: 'network', source: 'lan', model: 'e1000', config: true });
    assert.match(attached.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
    assert.match(await virsh('domiflist', 'nic-edit', '--inactive'), new RegExp(`^\\s*-\\s+network\\s+lan\\s+e1000\\s+${attached.mac}$`, 'm'));
    const user = await t.client.call('domain.attachInterface', { domain: 'nic-edit', type: 'user', mac: '52:54:00:4e:00:03', config: true });
    assert.equal(user.mac, '52:54:00:4e:00:03');
    await assert.rejects(t.client.call('domain.attachInterface', { domain: 'nic-edit', type: 'user', mac, config: true }), /already has an interface with MAC address/);
    await assert.rejects(t.client.call('domain.attachInterface', { domain: 'nic-edit', type: 'network', config: true }), /needs a source network/);

    await t.client.call('domain.setLinkState', { domain: 'nic-edit', interface: mac, state: 'down', config: true });
    assert.match(await virsh('domif-getlink', 'nic-edit', mac, '--config'), /down/);
    assert.equal((await t.client.call('domain.interfaces', { domain: 'nic-edit', inactive: true })).interfaces[0]!.link, 'down');
    await t.client.call('domain.setLinkState', { domain: 'nic-edit', interface: mac, state: 'up', config: true });
    assert.match(await virsh('domif-getlink', 'nic-edit', mac, '--config'), /up/);

    await assert.rejects(t.client.call('domain.detachInterface', { domain: 'nic-edit', type: 'network', config: true }), /Domain has 2 interfaces whose type is network; name one by its MAC address/);
    await t.client.call('domain.detachInterface', { domain: 'nic-edit', type: 'network', mac: attached.mac, config: true });
    await t.client.call('domain.detachInterface', { domain: 'nic-edit', type: 'user', config: true });
    await assert.rejects(t.client.call('domain.detachInterface', { domain: 'nic-edit', type: 'user', config: true }), /No interface found whose type is user/);
    const left = await virsh('domiflist', 'nic-edit', '--inactive');
    assert.match(left, new RegExp(mac));
    assert.doesNotMatch(left, new RegExp(`${attached.mac}|52:54:00:4e:00:03`));
  });

  test('a running TCG guest on a started network: DHCP lease (net-dhcp-leases, domifaddr), vnetN in domiflist, attach/setlink/detach --live', async () => {
    await t.client.call('network.start', { network: 'lan' });
    const mac = '52:54:00:4e:00:11';
    const boot = `<kernel>${guest('vmlinuz-amd64')}</kernel><initrd>${guest('initrd-amd64.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline>`;
    await t.client.call('domain.define', { xml: domXml('nic-live', `<interface type='network'><mac address='${mac}'/><source network='lan'/><model type='virtio'/></interface>`, boot) });
    const t0 = Date.now();
    await t.client.call('domain.start', { domain: 'nic-live' });

    const [running] = (await t.client.call('domain.interfaces', { domain: 'nic-live' })).interfaces;
    assert.match(running!.name, /^vnet\d+$/, 'the tap libvirt made');
    assert.match(inNetns('ip', '-br', 'link', 'show', 'master', 'dvbr1'), new RegExp(`^${running!.name}\\b`, 'm'), 'the tap is on the bridge, in the namespace');

    await until(async () => (await t.client.call('network.dhcpLeases', { network: 'lan' })).leases.length > 0, 240_000, 'a DHCP lease from dnsmasq in the namespace');
    console.log(`# start to lease: ${Date.now() - t0} ms`);
    const { leases } = await t.client.call('network.dhcpLeases', { network: 'lan', mac });
    assert.equal(leases.length, 1);
    assert.match(leases[0]!.address, /^10\.77\.1\.(1\d|[2-9]\d)$/);
    assert.equal(leases[0]!.prefix, 24);
    assert.ok(leases[0]!.expiryTime > Date.now() / 1000);
    const addrs = await t.client.call('domain.interfaceAddresses', { domain: 'nic-live' });
    assert.deepEqual(addrs.interfaces, [{ name: running!.name, mac, addresses: [{ type: 'ipv4', address: leases[0]!.address, prefix: 24 }] }]);
    assert.match(await virsh('domifaddr', 'nic-live'), new RegExp(`${mac}\\s+ipv4\\s+${leases[0]!.address.replace(/\./g, '\\.')}/24`));
    // domstats net.N.*: the tap's name and its counters (libvirt's statistics carry no MAC).
    const stats = await t.client.call('domain.stats', { domain: 'nic-live' });
    assert.deepEqual(stats.net.devices?.map((d) => d.name), [running!.name]);
    assert.ok(stats.net.devices![0]!.rxBytes > 0 && stats.net.devices![0]!.txBytes > 0, 'the DHCP exchange was counted both ways');

    // Once the guest runs its kernel, which answers QEMU's hot-unplug request.
    const attached = await t.client.call('domain.attachInterface', { domain: 'nic-live', type: 'network', source: 'lan', model: 'virtio', live: true });
    const live = (await t.client.call('domain.interfaces', { domain: 'nic-live' })).interfaces;
    assert.deepEqual(live.map((i) => i.mac), [mac, attached.mac]);
    assert.match(await virsh('domiflist', 'nic-live'), new RegExp(`^\\s*${live[1]!.name}\\s+network\\s+lan\\s+virtio\\s+${attached.mac}$`, 'm'));
    assert.doesNotMatch(await virsh('domiflist', 'nic-live', '--inactive'), new RegExp(attached.mac), 'live only');
    await t.client.call('domain.setLinkState', { domain: 'nic-live', interface: live[1]!.name, state: 'down', live: true });
    assert.match(await virsh('domif-getlink', 'nic-live', attached.mac), /down/);
    await t.client.call('domain.detachInterface', { domain: 'nic-live', type: 'network', mac: attached.mac, live: true });
    // QEMU lets the device go once the guest's kernel has released it.
    await until(async () => !(await virsh('domiflist', 'nic-live')).includes(attached.mac), 60_000, 'the live NIC to be detached');

    await t.client.call('domain.destroy', { domain: 'nic-live' });
  });
});
