import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NetworkInfo } from '@shared/api';
// The host's own parser checks what the form builds: the XML is for it.
import { parseNetworkXml } from '../../../main/host/network/network-xml';
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

  it("builds XML the host's parser reads back as the form said (NAT with DHCP, isolated without)", () => {
    const { config: nat } = parseNetworkXml(buildNetworkXml(FORM), 'the form');
    assert.equal(nat.name, 'lab');
    assert.equal(nat.address, '192.168.100.1');
    assert.equal(nat.prefix, 24);
    assert.equal(nat.forward, 'nat');
    assert.deepEqual({ start: nat.dhcp?.start, end: nat.dhcp?.end }, { start: '192.168.100.128', end: '192.168.100.254' });
    const { config: isolated } = parseNetworkXml(buildNetworkXml({ ...FORM, cidr: '10.9.0.0/16', dhcp: false, forward: 'none' }), 'the form');
    assert.equal(isolated.forward, 'none');
    assert.equal(isolated.address, '10.9.0.1');
    assert.equal(isolated.prefix, 16);
    assert.equal(isolated.dhcp, undefined);
    assert.throws(() => buildNetworkXml({ ...FORM, cidr: 'nope' }), /address and a prefix length/);
    assert.equal(forwardLabel('nat'), 'NAT');
    assert.equal(forwardLabel('none'), 'Isolated');
    assert.equal(forwardLabel('route'), 'Route');
  });
});
