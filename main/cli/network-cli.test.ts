// The CLI's network commands against a real host, compared with virsh 9.0's output shapes (taken
// from `virsh -c test:///default`): net-list and its filters, net-info, net-uuid, net-name,
// net-define, net-start, net-dumpxml, net-autostart, net-destroy, net-undefine, net-dhcp-leases,
// domiflist, attach-interface, detach-interface, domif-setlink and domif-getlink on a defined
// domain, and the errors as virsh prints them. No guest runs (the daemon test boots one).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hostPaths } from '../common/paths.js';
import { SAMPLE_CMDLINE, guest, killLeftovers, runCli } from '../testing/harness.js';

describe('domus network commands', { timeout: 120_000 }, () => {
  let home: string;
  let work: string;
  const domus = (...args: string[]) => runCli(home, args);
  const file = (name: string, body: string): string => {
    const f = path.join(work, name);
    fs.writeFileSync(f, body);
    return f;
  };

  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-netcli-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-netcli-work-'));
  });
  after(() => {
    killLeftovers(hostPaths(home));
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('net-list, net-info, net-uuid and net-name show the default network as virsh does', async () => {
    const list = await domus('net-list');
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, ` Name      State    Autostart   Persistent\n${'-'.repeat(44)}\n default   active   yes         yes\n\n`);
    const uuid = (await domus('net-uuid', 'default')).stdout;
    assert.match(uuid, /^[0-9a-f-]{36}\n\n$/);
    assert.equal((await domus('net-name', uuid.trim())).stdout, 'default\n\n');
    assert.equal((await domus('net-info', 'default')).stdout, `Name:           default\nUUID:           ${uuid.trim()}\nActive:         yes\nPersistent:     yes\nAutostart:      yes\n\n`);
    assert.equal((await domus('net-list', '--name')).stdout, 'default\n\n');
    assert.equal((await domus('net-list', '--uuid')).stdout, uuid);
  });

  it('net-define, net-start, net-dumpxml, net-autostart, net-destroy and net-undefine', async () => {
    const xml = file('lab.xml', "<network>\n  <name>lab</name>\n  <bridge name='domus9'/>\n  <ip address='10.66.0.1' prefix='24'/>\n</network>\n");
    assert.equal((await domus('net-define', xml)).stdout, `Network lab defined from ${xml}\n\n`);
    const all = await domus('net-list', '--all');
    assert.equal(all.stdout, ` Name      State      Autostart   Persistent\n${'-'.repeat(46)}\n default   active     yes         yes\n lab       inactive   no          yes\n\n`);
    assert.equal((await domus('net-list', '--inactive', '--name')).stdout, 'lab\n\n');
    assert.equal((await domus('net-start', 'lab')).stdout, 'Network lab started\n\n');
    assert.match((await domus('net-info', 'lab')).stdout, /\nBridge:         domus9\n\n$/);
    const dump = await domus('net-dumpxml', 'lab');
    assert.match(dump.stdout, /^<network>\n  <name>lab<\/name>\n  <uuid>[0-9a-f-]{36}<\/uuid>\n  <bridge name='domus9'\/>\n  <mac address='52:54:00(:[0-9a-f]{2}){3}'\/>\n  <ip address='10\.66\.0\.1' prefix='24'\/>\n<\/network>\n\n$/);
    assert.equal((await domus('net-dumpxml', 'lab', '--inactive')).stdout, dump.stdout);
    assert.equal((await domus('net-autostart', 'lab')).stdout, 'Network lab marked as autostarted\n\n');
    assert.equal((await domus('net-autostart', 'lab', '--disable')).stdout, 'Network lab unmarked as autostarted\n\n');
    const leases = await domus('net-dhcp-leases', 'lab');
    assert.equal(leases.stdout, ` Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID\n${'-'.repeat(83)}\n\n`);
    assert.equal((await domus('net-destroy', 'lab')).stdout, 'Network lab destroyed\n\n');
    assert.equal((await domus('net-undefine', 'lab')).stdout, 'Network lab has been undefined\n\n');
    assert.equal((await domus('net-list', '--all', '--name')).stdout, 'default\n\n');
  });

  it('errors read as virsh prints them', async () => {
    const cases: [string[], string][] = [
      [['net-start', 'nope'], "error: failed to get network 'nope'\nerror: Network not found: no network with matching name 'nope'\n"],
      [['net-info', 'nope'], "error: failed to get network 'nope'\nerror: Network not found: no network with matching name 'nope'\n"],
      [['net-start', 'default'], "error: Failed to start network default\nerror: Requested operation is not valid: network 'default' is already active\n"],
      [['net-define', path.join(work, 'missing.xml')], `error: Failed to open file '${path.join(work, 'missing.xml')}': No such file or directory\n`],
      [['net-define', file('bad.xml', "<network><name>bad</name><forward mode='bridge'/><ip address='10.1.0.1' prefix='24'/></network>")], `error: Failed to define network from ${path.join(work, 'bad.xml')}\nerror: XML error: invalid network XML in the definition: <forward mode='bridge'> is not supported: Domus networks are NAT (<forward mode='nat'/>) or isolated (no <forward>)\n`],
      [['net-dhcp-leases', 'default', '--mac', 'zz'], 'error: Failed to get leases info for default\n'],
      [['domif-setlink', 'x', 'vnet0', 'sideways'], "error: invalid link state 'sideways'\n"],
      [['domiflist', 'nope'], "error: failed to get domain 'nope'\n"],
    ];
    for (const [args, stderr] of cases) {
      const r = await domus(...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.ok(r.stderr.startsWith(stderr), `${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('domiflist, attach-interface, detach-interface, domif-setlink and domif-getlink on a defined domain', async () => {
    const xml = file(
      'g.xml',
      `<domain type='v86'><name>g</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type><kernel>${guest('vmlinuz')}</kernel><initrd>${guest('initrd.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline></os>
<devices><interface type='network'><mac address='52:54:00:40:00:01'/><source network='default'/><model type='virtio'/></interface></devices></domain>`,
    );
    assert.equal((await domus('define', xml)).code, 0);
    assert.equal((await domus('attach-interface', 'g', 'network', 'default', '--mac', '52:54:00:40:00:02', '--config')).stdout, 'Interface attached successfully\n\n');
    assert.equal((await domus('attach-interface', 'g', '--type', 'user', '--mac', '52:54:00:40:00:03', '--model', 'e1000')).stdout, 'Interface attached successfully\n\n');
    assert.equal(
      (await domus('domiflist', 'g')).stdout,
      ` Interface   Type      Source    Model    MAC\n${'-'.repeat(61)}\n -           network   default   virtio   52:54:00:40:00:01\n -           network   default   -        52:54:00:40:00:02\n -           user      -         e1000    52:54:00:40:00:03\n\n`,
    );
    assert.equal((await domus('domif-setlink', 'g', '52:54:00:40:00:02', 'down', '--config')).stdout, 'Device updated successfully\n\n');
    assert.equal((await domus('domif-getlink', 'g', '52:54:00:40:00:02', '--config')).stdout, '52:54:00:40:00:02 down\n');
    assert.equal((await domus('domif-getlink', 'g', 'vnet0')).stderr, 'error: Interface (dev: vnet0) not found.\n');
    const detach = await domus('detach-interface', 'g', 'network');
    assert.match(detach.stderr, /^error: Failed to detach interface\nerror: operation failed: domain has 2 interfaces of type network; name the one to detach with its MAC address \(--mac\)\n/);
    assert.equal((await domus('detach-interface', 'g', '--type', 'network', '--mac', '52:54:00:40:00:02', '--persistent')).stdout, 'Interface detached successfully\n\n');
    assert.equal((await domus('detach-interface', 'g', 'user')).stdout, 'Interface detached successfully\n\n');
    assert.match((await domus('dumpxml', 'g')).stdout, /<devices>\n {4}<interface type='network'>\n {6}<mac address='52:54:00:40:00:01'\/>\n {6}<source network='default'\/>\n {6}<model type='virtio'\/>\n {4}<\/interface>\n {2}<\/devices>/);
    const live = await domus('attach-interface', 'g', 'network', 'default', '--live');
    assert.equal(live.stderr, 'error: Failed to attach interface\nerror: Requested operation is not valid: domain is not running\n');
  });
});
