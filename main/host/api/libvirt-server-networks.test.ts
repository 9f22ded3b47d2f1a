// Debian's virsh drives this host's own virtual networks through the host's libvirt socket:
// net-list, net-info, net-define, net-dumpxml --inactive, net-autostart, net-start, net-dhcp-leases,
// net-destroy, net-undefine and net-event, and domifaddr of a v86 guest that got its address from the
// network's switch.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runVirsh, type VirshResult } from '../../testing/libvirtd.js';
import { guest, SAMPLE_CMDLINE, TestHost, until } from '../../testing/harness.js';

const uriOf = (t: TestHost): string => `qemu+unix:///session?socket=${t.paths.libvirtSocket}`;

function ok(r: VirshResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

const NET_XML = `<network>
  <name>lvsnet</name>
  <ip address='10.88.3.1' prefix='24'>
    <dhcp>
      <range start='10.88.3.10' end='10.88.3.99'/>
    </dhcp>
  </ip>
</network>
`;

describe("virsh drives this host's networks over its libvirt socket", { timeout: 600_000 }, () => {
  let t: TestHost;
  let events = '';
  let watcher: ReturnType<typeof spawn>;
  const virsh = (...args: string[]): Promise<VirshResult> => runVirsh(uriOf(t), args);

  before(async () => {
    t = await TestHost.start();
    watcher = spawn('virsh', ['-c', uriOf(t), 'net-event', '--event', 'lifecycle', '--loop'], { env: { ...process.env, LC_ALL: 'C' } });
    watcher.stdout!.on('data', (d: Buffer) => (events += d.toString()));
    await until(() => t.client.call('trace.subscribe', { op: 'virConnectNetworkEventRegisterAny', backlog: true }).then((r) => r.backlog.length > 0), 30_000, 'virsh net-event to register');
    await t.client.call('trace.unsubscribe', {});
  });
  after(async () => {
    watcher?.kill();
    await t?.stop();
  });

  it('net-define, net-list --all, net-info, net-dumpxml --inactive, net-autostart, net-start, net-dhcp-leases, net-destroy, net-undefine; net-event sees each', async () => {
    assert.match(ok(await virsh('net-list', '--all'), 'net-list'), /^\s*default\s+active\s+yes\s+yes$/m, "the first run's default network");
    const file = path.join(t.home, 'net.xml');
    fs.writeFileSync(file, NET_XML);
    assert.match(ok(await virsh('net-define', file), 'net-define'), /Network lvsnet defined from /);
    assert.match(ok(await virsh('net-list', '--all'), 'net-list'), /^\s*lvsnet\s+inactive\s+no\s+yes$/m);
    assert.deepEqual(ok(await virsh('net-list', '--inactive', '--name'), 'net-list --inactive').split('\n').filter(Boolean), ['lvsnet']);

    const dumped = ok(await virsh('net-dumpxml', 'lvsnet', '--inactive'), 'net-dumpxml');
    assert.equal(dumped.trim(), (await t.client.call('network.xml', { network: 'lvsnet', inactive: true })).xml.trim(), 'the API and virsh read the same definition');
    const uuid = /<uuid>([^<]+)<\/uuid>/.exec(dumped)![1]!;
    const info = ok(await virsh('net-info', uuid), 'net-info by UUID');
    assert.match(info, /^Name:\s+lvsnet$/m);
    assert.match(info, /^Active:\s+no$/m);
    assert.match(info, /^Persistent:\s+yes$/m);

    ok(await virsh('net-autostart', 'lvsnet'), 'net-autostart');
    assert.match(ok(await virsh('net-info', 'lvsnet'), 'net-info'), /^Autostart:\s+yes$/m);
    ok(await virsh('net-autostart', 'lvsnet', '--disable'), 'net-autostart --disable');

    assert.match(ok(await virsh('net-start', 'lvsnet'), 'net-start'), /Network lvsnet started/);
    assert.match(ok(await virsh('net-list'), 'net-list'), /^\s*lvsnet\s+active\s+no\s+yes$/m);
    const leases = ok(await virsh('net-dhcp-leases', 'lvsnet'), 'net-dhcp-leases');
    assert.match(leases, /Expiry Time\s+MAC address\s+Protocol\s+IP address\s+Hostname\s+Client ID or DUID/);
    assert.equal(leases.trim().split('\n').length, 2, `only the header and its rule:\n${leases}`);
    assert.match(ok(await virsh('net-destroy', 'lvsnet'), 'net-destroy'), /Network lvsnet destroyed/);
    assert.match(ok(await virsh('net-undefine', 'lvsnet'), 'net-undefine'), /Network lvsnet has been undefined/);

    const missing = await virsh('net-info', 'nosuch');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Network not found: no network with matching name 'nosuch'/);
    const ro = await runVirsh(uriOf(t), ['-r', 'net-start', 'default']);
    assert.match(ro.stderr, /read only access prevents virNetworkCreate/);

    const want = ['Defined', 'Started', 'Stopped', 'Undefined'].map((e) => `event 'lifecycle' for network lvsnet: ${e}`);
    await until(() => want.every((w) => events.includes(w)), 10_000, `virsh net-event to print ${want.join(', ')}:\n${events}`);
    const order = want.map((w) => events.indexOf(w));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `in order:\n${events}`);
  });

  it("domifaddr and net-dhcp-leases --mac of a v86 guest on the default network show the address the switch leased it", async () => {
    const mac = '52:54:00:4e:10:01';
    await t.client.call('domain.define', {
      xml: `<domain type='v86'><name>lvnet</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='i686'>hvm</type><kernel>${guest('vmlinuz')}</kernel><initrd>${guest('initrd.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline></os>
  <devices><serial type='pty'/><interface type='network'><mac address='${mac}'/><source network='default'/><model type='ne2k_pci'/></interface></devices></domain>`,
    });
    ok(await virsh('start', 'lvnet'), 'start');
    const t0 = Date.now();
    let out = '';
    await until(async () => /ipv4/.test((out = ok(await virsh('domifaddr', 'lvnet'), 'domifaddr'))), 300_000, 'the guest to get a lease');
    console.log(`# start to domifaddr with a lease: ${Date.now() - t0} ms`);
    const m = new RegExp(`^\\s*(vnet\\d+)\\s+${mac}\\s+ipv4\\s+(\\d+\\.\\d+\\.\\d+\\.\\d+)/(\\d+)$`, 'm').exec(out);
    assert.ok(m, `domifaddr:\n${out}`);
    const [, name, address, prefix] = m;
    const api = await t.client.call('domain.interfaceAddresses', { domain: 'lvnet' });
    assert.deepEqual(api.interfaces, [{ name, mac, addresses: [{ type: 'ipv4', address, prefix: Number(prefix) }] }]);
    const leases = ok(await virsh('net-dhcp-leases', 'default', '--mac', mac), 'net-dhcp-leases --mac');
    assert.match(leases, new RegExp(`${mac}\\s+ipv4\\s+${address!.replace(/\./g, '\\.')}/${prefix}`));
    assert.match((await virsh('domifaddr', 'lvnet', '--source', 'arp')).stderr, /--source lease/);
  });
});
