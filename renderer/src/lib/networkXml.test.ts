import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NetworkInfo } from '@shared/api';
import { buildNetworkXml, checkNewNetwork, defaultDhcpRange, forwardLabel, parseCidr, suggestCidr, suggestName, type NewNetworkFields } from './networkXml';

function net(name: string, address?: string, prefix?: number): NetworkInfo {
  return { name, uuid: `uuid-${name}`, active: true, persistent: true, autostart: false, forward: 'nat', ...(address && { address, prefix }) };
}

const FORM: NewNetworkFields = { name: 'lab', cidr: '192.168.100.0/24', dhcp: true, dhcpStart: '192.168.100.128', dhcpEnd: '192.168.100.254', forward: 'nat' };

describe('new network form', () => {
  it('suggests the first 192.168.1xx.0/24 and name no network has', () => {
    assert.equal(suggestCidr([]), '192.168.100.0/24');
    assert.equal(suggestCidr([net('default', '192.168.122.1', 24), net('a', '192.168.100.1', 24), net('b', '192.168.101.1', 24)]), '192.168.102.0/24');
    // A wider network covers several /24s.
    assert.equal(suggestCidr([net('wide', '192.168.100.1', 22)]), '192.168.104.0/24');
    assert.equal(suggestName([net('network'), net('network1')]), 'network2');
  });

  it('derives the gateway and DHCP range from the network, as virt-manager does', () => {
    const s = parseCidr('10.20.0.0/16');
    assert.ok(typeof s !== 'string');
    assert.deepEqual(defaultDhcpRange(s), { start: '10.20.128.0', end: '10.20.255.254' });
    assert.deepEqual(defaultDhcpRange(parseCidr('192.168.100.0/24') as never), { start: '192.168.100.128', end: '192.168.100.254' });
  });

  it('says what is wrong with a network, a name or a range', () => {
    assert.match(parseCidr('192.168.100.0') as string, /address and a prefix length/);
    assert.match(parseCidr('192.168.300.0/24') as string, /not an IPv4 address/);
    assert.match(parseCidr('192.168.100.5/24') as string, /host bits set.*192\.168\.100\.0\/24/);
    assert.match(parseCidr('10.0.0.0/31') as string, /from 8 to 30/);
    const taken = [net('default', '192.168.122.1', 24)];
    assert.deepEqual(checkNewNetwork(FORM, taken), { name: '', cidr: '', dhcp: '' });
    assert.match(checkNewNetwork({ ...FORM, name: 'default' }, taken).name, /exists/);
    assert.match(checkNewNetwork({ ...FORM, name: 'a b' }, taken).name, /letters, digits/);
    assert.match(checkNewNetwork({ ...FORM, cidr: '192.168.0.0/16' }, taken).cidr, /default uses 192\.168\.122\.1\/24/);
    assert.match(checkNewNetwork({ ...FORM, dhcpStart: '192.168.100.1' }, taken).dhcp, /above the gateway/);
    assert.match(checkNewNetwork({ ...FORM, dhcpEnd: '192.168.100.255' }, taken).dhcp, /broadcast/);
    assert.match(checkNewNetwork({ ...FORM, dhcpStart: '192.168.100.200', dhcpEnd: '192.168.100.150' }, taken).dhcp, /starts after it ends/);
    assert.equal(checkNewNetwork({ ...FORM, dhcp: false, dhcpStart: 'x' }, taken).dhcp, '');
  });

  // What the host makes of the built XML is checked end to end in e2e/networks.test.ts (the form's networks as network.list reports them).
  it('builds libvirt network XML: the gateway is the first address, NAT as <forward>, DHCP as a range; isolated has neither', () => {
    assert.equal(
      buildNetworkXml(FORM),
      "<network>\n  <name>lab</name>\n  <forward mode='nat'/>\n  <ip address='192.168.100.1' prefix='24'>\n    <dhcp>\n      <range start='192.168.100.128' end='192.168.100.254'/>\n    </dhcp>\n  </ip>\n</network>\n",
    );
    const isolated = buildNetworkXml({ ...FORM, cidr: '10.9.0.0/16', dhcp: false, forward: 'none' });
    assert.match(isolated, /<ip address='10\.9\.0\.1' prefix='16'>/);
    assert.doesNotMatch(isolated, /<forward|<dhcp/);
  });

  it('refuses to build from a bad network, and names forward modes as virt-manager does', () => {
    assert.throws(() => buildNetworkXml({ ...FORM, cidr: 'nope' }), /address and a prefix length/);
    assert.equal(forwardLabel('nat'), 'NAT');
    assert.equal(forwardLabel('none'), 'Isolated');
    assert.equal(forwardLabel('route'), 'Route');
  });
});
