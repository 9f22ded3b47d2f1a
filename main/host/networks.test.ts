// Network management on a real host (virsh net-*, domiflist, domifaddr, attach/detach-interface,
// domif-setlink): libvirt's default NAT network defined and autostarted on the first run, define,
// start (refused on an overlapping subnet or a taken forwarded port), destroy, undefine (a running
// network becomes transient), autostart across a host SIGKILL, lifecycle events, and one v86 guest
// on `default`: its vnet name, lease, address, per-NIC statistics, link state on the switch, config
// edits of its interfaces, and its NIC plugging back in when the network is destroyed and started.
// Traffic stays on Domus's switch; the forwarded port is probed on 127.0.0.1 only.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Events } from '../../shared/api.js';
import type { SwitchStatus } from '../netswitch/protocol.js';
import { controlRequest } from '../testing/connect-unix.js';
import { freePort } from '../testing/libvirtd.js';
import { SerialWatch, TestHost, engineSkip, networkGuestXml, until } from '../testing/harness.js';

const BOOT = 600_000;

const GUEST_MAC = '52:54:00:30:00:01';
const guestXml = (network: string, name = 'nt', engine = 'v86', mac = GUEST_MAC) => networkGuestXml({ name, engine, mac, model: 'ne2k_pci', network });

const labXml = (name: string, subnet: string, forward = '', extra = '') => `<network>
  <name>${name}</name>
  ${forward}
  <ip address='${subnet}.1' prefix='24'>
    <dhcp><range start='${subnet}.2' end='${subnet}.99'/></dhcp>
  </ip>
  ${extra}
</network>`;

describe('network management (virsh net-*, domain interfaces) on a real host', { skip: engineSkip('v86'), timeout: 1_200_000 }, () => {
  let t: TestHost;
  const events: Events['network.lifecycle'][] = [];
  const listen = () => t.client.on('network.lifecycle', (e) => events.push(e));
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (err: Error & { code?: string }) => `${err.code}: ${err.message}`);
  const switchStatus = () => controlRequest<{ ok: boolean; result: SwitchStatus }>(path.join(t.paths.networkRun, 'default', 'control.sock'), { id: 1, op: 'status' }).then((r) => r.result);
  let serial: SerialWatch;
  let ip = '';

  before(async () => {
    t = await TestHost.start();
    listen();
  });
  after(async () => {
    await t?.stop();
  });

  it("defines libvirt's default NAT network on the first run and starts it (autostart)", async () => {
    const { networks } = await t.client.call('network.list', {});
    assert.equal(networks.length, 1);
    const d = networks[0]!;
    assert.deepEqual({ ...d, uuid: '' }, { name: 'default', uuid: '', active: true, persistent: true, autostart: true, forward: 'nat', address: '192.168.122.1', prefix: 24, dhcpRange: { start: '192.168.122.2', end: '192.168.122.254' } });
    const { xml } = await t.client.call('network.xml', { network: 'default', inactive: false });
    assert.match(xml, new RegExp(`^<network>\\n  <name>default</name>\\n  <uuid>${d.uuid}</uuid>\\n  <forward mode='nat'/>\\n  <mac address='52:54:00(:[0-9a-f]{2}){3}'/>\\n  <ip address='192\\.168\\.122\\.1' netmask='255\\.255\\.255\\.0'>`));
    assert.equal((await t.client.call('network.xml', { network: d.uuid, inactive: true })).xml, xml, 'by UUID, and the same definition');
    assert.equal((await switchStatus()).address, '192.168.122.1');
  });

  it('refuses a guest on a network that does not exist or is not active, as libvirt does', async () => {
    await t.client.call('network.define', { xml: labXml('lab', '10.77.0') });
    await t.client.call('domain.define', { xml: guestXml('lab', 'on-lab') });
    await t.client.call('domain.define', { xml: guestXml('nowhere', 'on-nowhere') });
    assert.equal(await code(t.client.call('domain.start', { domain: 'on-lab' })), "OPERATION_INVALID: Requested operation is not valid: network 'lab' is not active");
    assert.equal(await code(t.client.call('domain.start', { domain: 'on-nowhere' })), "NO_NETWORK: Network not found: no network with matching name 'nowhere'");
    assert.equal((await t.client.call('domain.info', { domain: 'on-lab' })).state, 'shutoff');
    await t.client.call('domain.undefine', { domain: 'on-lab' });
    await t.client.call('domain.undefine', { domain: 'on-nowhere' });
  });

  it('start refuses an overlapping subnet and a forwarded port something else listens on; events for each change', async () => {
    events.length = 0;
    await t.client.call('network.define', { xml: labXml('twin', '192.168.122') });
    assert.match(await code(t.client.call('network.start', { network: 'twin' })), /^OPERATION_FAILED: .*network 'twin' \(192\.168\.122\.1\/24\) overlaps active network 'default' \(192\.168\.122\.1\/24\)/);
    await t.client.call('network.undefine', { network: 'twin' });
    const port = await freePort();
    const pf = `<portForward proto='tcp' guest='10.78.0.10'><range start='${port}' to='80'/></portForward>`;
    await t.client.call('network.define', { xml: labXml('web', '10.78.0', "<forward mode='nat'/>", pf) });
    assert.match(await code(t.client.call('network.define', { xml: labXml('web2', '10.79.0', "<forward mode='nat'/>", pf.replace('10.78', '10.79')) })), new RegExp(`network 'web2' would forward tcp 127\\.0\\.0\\.1:${port}, which network 'web' forwards already`));
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      assert.match(await code(t.client.call('network.start', { network: 'web' })), new RegExp(`network 'web' cannot forward tcp 127\\.0\\.0\\.1:${port}: the address is already in use`));
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    const started = await t.client.call('network.start', { network: 'web' });
    assert.equal(started.network.active, true);
    assert.match(await code(t.client.call('network.start', { network: 'web' })), /network 'web' is already active/);
    await until(() => events.some((e) => e.event === 'started' && e.network.name === 'web'), 5000, 'the started event');
    assert.deepEqual(
      events.map((e) => `${e.network.name} ${e.event}`),
      ['twin defined', 'twin undefined', 'web defined', 'web started'],
    );
  });

  it('undefine of a running network makes it transient; destroy ends it', async () => {
    events.length = 0;
    await t.client.call('network.undefine', { network: 'web' });
    const web = (await t.client.call('network.list', {})).networks.find((n) => n.name === 'web');
    assert.deepEqual([web?.active, web?.persistent, web?.autostart], [true, false, false]);
    assert.ok(!fs.existsSync(path.join(t.paths.networks, 'web.xml')));
    assert.match(await code(t.client.call('network.setAutostart', { network: 'web', enabled: true })), /cannot set autostart for transient network 'web'/);
    await t.client.call('network.destroy', { network: 'web' });
    assert.deepEqual((await t.client.call('network.list', {})).networks.map((n) => n.name), ['default', 'lab']);
    assert.match(await code(t.client.call('network.destroy', { network: 'web' })), /^NO_NETWORK: /);
    await until(() => events.length >= 2, 5000, 'the events');
    assert.deepEqual(events.map((e) => `${e.network.name} ${e.event}`), ['web undefined', 'web stopped']);
  });

  it('a guest on default: vnet name, lease and address, NIC statistics', async () => {
    await t.client.call('domain.define', { xml: guestXml('default') });
    assert.deepEqual((await t.client.call('domain.interfaces', { domain: 'nt', inactive: false })).interfaces, [{ name: '-', type: 'network', source: 'default', model: 'ne2k_pci', mac: GUEST_MAC, link: 'up' }]);
    await t.client.call('domain.start', { domain: 'nt' });
    serial = await SerialWatch.open(t.client, 'nt');
    ip = (await serial.wait(/DOMUS-NET-UP eth0 ([\d.]+)\/24/, BOOT))[1]!;
    const { interfaces } = await t.client.call('domain.interfaces', { domain: 'nt', inactive: false });
    assert.deepEqual(interfaces, [{ name: 'vnet0', type: 'network', source: 'default', model: 'ne2k_pci', mac: GUEST_MAC, link: 'up' }]);
    assert.match((await t.client.call('domain.xml', { domain: 'nt' })).xml, /<source network='default'\/>\n\s*<target dev='vnet0'\/>/);
    assert.deepEqual(await t.client.call('domain.interfaceAddresses', { domain: 'nt' }), { interfaces: [{ name: 'vnet0', mac: GUEST_MAC, addresses: [{ type: 'ipv4', address: ip, prefix: 24 }] }] });
    const { leases } = await t.client.call('network.dhcpLeases', { network: 'default', mac: GUEST_MAC.toUpperCase() });
    assert.equal(leases.length, 1);
    assert.equal(leases[0]!.address, ip);
    assert.ok(leases[0]!.expiryTime > Date.now() / 1000 + 3000);
    assert.deepEqual((await t.client.call('network.dhcpLeases', { network: 'default', mac: '52:54:00:ff:ff:ff' })).leases, []);
    await serial.sh('ping -c 2 -W 2 192.168.122.1');
    const sample = await t.client.call('domain.stats', { domain: 'nt' });
    const nic = sample.net.devices?.[0];
    assert.ok(nic, JSON.stringify(sample.net));
    assert.deepEqual([nic.name, nic.mac, nic.network, nic.addresses], ['vnet0', GUEST_MAC, 'default', [ip]]);
    assert.ok(nic.rxBytes > 0 && nic.txBytes > 0, JSON.stringify(nic));
    assert.equal(sample.net.rxBytes, nic.rxBytes);
    const port = (await switchStatus()).ports.find((p) => p.mac === GUEST_MAC)!;
    assert.ok(port.txBytes >= nic.txBytes, 'the switch counts what the sample reported');
    // The CLI's views of the same.
    const domifaddr = await t.cli(['domifaddr', 'nt']);
    assert.equal(domifaddr.stdout, ` Name       MAC address          Protocol     Address\n${'-'.repeat(79)}\n vnet0      ${GUEST_MAC}    ipv4         ${ip}/24\n\n`);
    const leasesOut = await t.cli(['net-dhcp-leases', 'default']);
    assert.match(leasesOut.stdout, new RegExp(`^ Expiry Time +MAC address +Protocol +IP address +Hostname +Client ID or DUID\\n-+\\n \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d   ${GUEST_MAC}   ipv4       ${ip.replace(/\./g, '\\.')}/24 `));
    assert.equal((await t.cli(['domiflist', 'nt'])).stdout, ` Interface   Type      Source    Model      MAC\n${'-'.repeat(63)}\n vnet0       network   default   ne2k_pci   ${GUEST_MAC}\n\n`);
  });

  it('domif-setlink sets the link on the switch (by vnet name or MAC) and in the definition', async () => {
    await t.client.call('domain.setLinkState', { domain: 'nt', interface: 'vnet0', state: 'down', live: false, config: false });
    assert.equal((await switchStatus()).ports.find((p) => p.mac === GUEST_MAC)?.link, 'down');
    assert.equal((await t.client.call('domain.interfaces', { domain: 'nt', inactive: false })).interfaces[0]!.link, 'down');
    assert.equal((await t.client.call('domain.interfaces', { domain: 'nt', inactive: true })).interfaces[0]!.link, 'up', 'the definition unchanged');
    assert.match(await serial.sh('ping -c 2 -W 1 192.168.122.1'), / 0 packets received/);
    await t.client.call('domain.setLinkState', { domain: 'nt', interface: GUEST_MAC, state: 'up', live: true, config: true });
    assert.equal((await switchStatus()).ports.find((p) => p.mac === GUEST_MAC)?.link, 'up');
    assert.match((await t.client.call('domain.xml', { domain: 'nt', inactive: true })).xml, /<link state='up'\/>/);
    assert.equal((await t.cli(['domif-getlink', 'nt', 'vnet0'])).stdout, 'vnet0 up\n');
    assert.match(await code(t.client.call('domain.setLinkState', { domain: 'nt', interface: 'vnet7', state: 'down', live: false, config: false })), /interface \(dev: vnet7\) not found/);
  });

  it('attach/detach-interface edit the definition; live is refused on v86 with the reason', async () => {
    assert.match(
      await code(t.client.call('domain.attachInterface', { domain: 'nt', type: 'network', source: 'lab', live: true, config: false })),
      /^OPERATION_UNSUPPORTED: .*cannot attach an interface on a running v86 guest: v86 has one network card, plugged in when the guest starts; use --config/,
    );
    const before = (await t.client.call('domain.xml', { domain: 'nt', inactive: true })).xml;
    const { mac } = await t.client.call('domain.attachInterface', { domain: 'nt', type: 'network', source: 'lab', model: 'virtio', live: false, config: true });
    const after = (await t.client.call('domain.xml', { domain: 'nt', inactive: true })).xml;
    assert.match(after, new RegExp(`</interface>\\n    <interface type='network'>\\n      <mac address='${mac}'/>\\n      <source network='lab'/>\\n      <model type='virtio'/>\\n    </interface>`));
    assert.equal(after.replace(/\n {4}<interface type='network'>\n {6}<mac address='[^']+'\/>\n {6}<source network='lab'\/>\n {6}<model type='virtio'\/>\n {4}<\/interface>/, ''), before, 'the rest of the definition is kept');
    assert.equal((await t.client.call('domain.interfaces', { domain: 'nt', inactive: false })).interfaces.length, 1, 'the running guest has its one NIC');
    assert.match(await code(t.client.call('domain.detachInterface', { domain: 'nt', type: 'network', live: false, config: true })), /domain has 2 interfaces of type network; name the one to detach with its MAC address/);
    await t.client.call('domain.detachInterface', { domain: 'nt', type: 'network', mac, live: false, config: true });
    assert.equal((await t.client.call('domain.xml', { domain: 'nt', inactive: true })).xml, before);
  });

  it('attach/detach-interface --live on QEMU: a NIC plugged into the running guest gets a lease, and is unplugged again', { skip: engineSkip('qemu') }, async () => {
    const QMAC = '52:54:00:30:00:02';
    const HOTMAC = '52:54:00:30:00:03';
    await t.client.call('domain.define', { xml: guestXml('default', 'nq', 'qemu', QMAC) });
    await t.client.call('domain.start', { domain: 'nq' });
    const qserial = await SerialWatch.open(t.client, 'nq');
    await qserial.wait(/DOMUS-NET-UP eth0 /, BOOT);
    await t.client.call('domain.attachInterface', { domain: 'nq', type: 'network', source: 'default', model: 'virtio', mac: HOTMAC, live: true, config: false });
    const live = (await t.client.call('domain.interfaces', { domain: 'nq', inactive: false })).interfaces;
    assert.deepEqual(live.map((i) => [i.name, i.mac]), [['vnet1', QMAC], ['vnet2', HOTMAC]]);
    assert.equal((await t.client.call('domain.interfaces', { domain: 'nq', inactive: true })).interfaces.length, 1, 'the definition keeps one');
    assert.match((await t.client.call('domain.xml', { domain: 'nq' })).xml, new RegExp(`<mac address='${HOTMAC}'/>\\n\\s*<source network='default'/>\\n\\s*<target dev='vnet2'/>\\n\\s*<model type='virtio'/>\\n\\s*<alias name='net1'/>`));
    await until(async () => (await qserial.sh('ls /sys/class/net')).includes('eth1'), 30_000, 'eth1 in the guest');
    await qserial.sh('ip link set eth1 up; udhcpc -i eth1 -n -q -t 5 -s /bin/true', 60_000);
    const { leases } = await t.client.call('network.dhcpLeases', { network: 'default', mac: HOTMAC });
    assert.equal(leases.length, 1, 'the hot-plugged NIC got a lease');
    assert.ok((await switchStatus()).ports.some((p) => p.mac === HOTMAC));
    await t.client.call('domain.detachInterface', { domain: 'nq', type: 'network', mac: HOTMAC, live: true, config: false });
    assert.deepEqual((await t.client.call('domain.interfaces', { domain: 'nq', inactive: false })).interfaces.map((i) => i.mac), [QMAC]);
    assert.doesNotMatch(await qserial.sh('ls /sys/class/net'), /eth1/);
    await until(async () => !(await switchStatus()).ports.some((p) => p.mac === HOTMAC), 10_000, 'the port to close');
    await t.client.call('domain.destroy', { domain: 'nq' });
  });

  it("net-destroy cuts the guest off; net-start brings it back (v86 re-plugs its NIC)", async () => {
    const oldPid = (await switchStatus()).pid;
    await t.client.call('network.destroy', { network: 'default' });
    assert.equal((await t.client.call('network.list', {})).networks.find((n) => n.name === 'default')?.active, false);
    assert.match(await code(t.client.call('network.dhcpLeases', { network: 'default' })), /network 'default' is not active/);
    assert.match(await serial.sh('ping -c 2 -W 1 192.168.122.1'), / 0 packets received/);
    await t.client.call('network.start', { network: 'default' });
    assert.notEqual((await switchStatus()).pid, oldPid);
    await until(async () => (await switchStatus()).ports.length === 1, 15_000, "the guest's NIC to plug in again");
    assert.match(await serial.sh('ping -c 3 -W 2 192.168.122.1', 60_000), / [1-3] packets received/);
  });

  it('after a host SIGKILL: running networks are found again, autostart ones started, an undefined default stays gone', async () => {
    await t.client.call('network.setAutostart', { network: 'lab', enabled: true });
    const pid = (await switchStatus()).pid;
    await t.killHost();
    await t.reconnect();
    listen();
    const after1 = await t.client.call('network.list', {});
    assert.deepEqual(after1.networks.map((n) => [n.name, n.active, n.autostart]), [['default', true, true], ['lab', true, true]]);
    assert.equal((await switchStatus()).pid, pid, 'the same switch');
    assert.equal((await t.client.call('domain.interfaces', { domain: 'nt', inactive: false })).interfaces[0]!.name, 'vnet0', 'the name kept across the restart');
    await t.client.call('domain.destroy', { domain: 'nt' });
    await t.client.call('network.destroy', { network: 'default' });
    await t.client.call('network.undefine', { network: 'default' });
    await t.killHost();
    await t.reconnect();
    assert.deepEqual((await t.client.call('network.list', {})).networks.map((n) => n.name), ['lab']);
  });
});
