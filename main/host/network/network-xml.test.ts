// The network XML model: what the switch is given, what define adds, libvirt's element order on the
// way back out, port forwards and their checks, subnet overlap, and the errors for bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { completeNetwork, DEFAULT_NETWORK_XML, listenClash, parseNetworkXml, serializeNetworkXml, subnetsOverlap } from './network-xml.js';

const gen = { uuid: () => '11111111-2222-3333-4444-555555555555', macBytes: () => Uint8Array.from([0xaa, 0xbb, 0xcc]) };

const lab = (body: string, forward = "<forward mode='nat'/>") => `<network>
  <name>lab</name>
  ${forward}
  <ip address='10.9.0.1' prefix='24'>
    <dhcp><range start='10.9.0.2' end='10.9.0.99'/></dhcp>
  </ip>
  ${body}
</network>`;

const bad = (xml: string, message: RegExp) => assert.throws(() => parseNetworkXml(xml, 'test.xml'), message);

describe('network XML', () => {
  it("libvirt's default network: NAT, DHCP range; define adds a UUID and a MAC in libvirt's order", () => {
    const doc = parseNetworkXml(DEFAULT_NETWORK_XML, 'default');
    assert.equal(doc.uuid, '');
    assert.equal(doc.config.forward, 'nat');
    assert.equal(doc.config.prefix, 24);
    assert.deepEqual(doc.config.dhcp, { start: '192.168.122.2', end: '192.168.122.254', leaseTime: 3600, hosts: [] });
    const done = completeNetwork(doc, gen);
    assert.equal(done.uuid, '11111111-2222-3333-4444-555555555555');
    assert.equal(done.config.mac, '52:54:00:aa:bb:cc');
    assert.equal(
      serializeNetworkXml(done),
      `<network>
  <name>default</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <forward mode='nat'/>
  <mac address='52:54:00:aa:bb:cc'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`,
    );
    // Complete once: a second define of the dump changes nothing.
    assert.equal(serializeNetworkXml(completeNetwork(parseNetworkXml(serializeNetworkXml(done), 'again'), gen)), serializeNetworkXml(done));
  });

  it('keeps what the user wrote (comments, <nat><port>, <bridge>), reordered as libvirt writes it', () => {
    const xml = `<network>
  <ip address='10.0.0.1' prefix='16'/>
  <!-- the lab -->
  <domain name='lab.test'/>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <name>lab</name>
  <bridge name='virbr9' stp='on' delay='0'/>
  <dns>
    <host ip='10.0.0.5'>
      <hostname>files</hostname>
    </host>
  </dns>
</network>
`;
    const doc = completeNetwork(parseNetworkXml(xml, 'x'), gen);
    assert.equal(doc.bridge, 'virbr9');
    assert.equal(doc.config.domain, 'lab.test');
    assert.deepEqual(doc.config.dnsHosts, [{ ip: '10.0.0.5', names: ['files'] }]);
    assert.equal(doc.config.dhcp, undefined);
    const out = serializeNetworkXml(doc);
    const order = [...out.matchAll(/^ {2}<(!--|[a-zA-Z]+)/gm)].map((m) => m[1]);
    assert.deepEqual(order, ['name', 'uuid', 'forward', 'bridge', 'mac', '!--', 'domain', 'dns', 'ip']);
    assert.match(out, /<nat>\n {6}<port start='1024' end='65535'\/>/);
  });

  it('no <forward> is isolated; a <forward> without a mode is NAT; other modes are refused by name', () => {
    assert.equal(parseNetworkXml(lab('', ''), 'x').config.forward, 'none');
    assert.equal(parseNetworkXml(lab('', '<forward/>'), 'x').config.forward, 'nat');
    for (const mode of ['route', 'open', 'bridge', 'passthrough', 'hostdev']) {
      bad(lab('', `<forward mode='${mode}'/>`), new RegExp(`invalid network XML in test\\.xml: <forward mode='${mode}'> is not supported: Domus networks are NAT`));
    }
  });

  it('port forwards: ranges become one switch entry per port, address defaults to 127.0.0.1', () => {
    const doc = parseNetworkXml(
      lab(`<portForward proto='tcp' guest='10.9.0.10'><range start='8080' end='8082' to='80'/></portForward>
  <portForward proto='udp' address='0.0.0.0' guest='10.9.0.11'><range start='5353'/></portForward>`),
      'x',
    );
    assert.deepEqual(doc.config.portForwards, [
      { proto: 'tcp', address: '127.0.0.1', port: 8080, guest: '10.9.0.10', guestPort: 80 },
      { proto: 'tcp', address: '127.0.0.1', port: 8081, guest: '10.9.0.10', guestPort: 81 },
      { proto: 'tcp', address: '127.0.0.1', port: 8082, guest: '10.9.0.10', guestPort: 82 },
      { proto: 'udp', address: '0.0.0.0', port: 5353, guest: '10.9.0.11', guestPort: 5353 },
    ]);
    assert.match(serializeNetworkXml(doc), /<portForward proto='tcp' guest='10\.9\.0\.10'>\n {4}<range start='8080' end='8082' to='80'\/>/);
  });

  it('refuses bad port forwards, naming the problem', () => {
    const pf = (attrs: string, range: string) => lab(`<portForward ${attrs}>${range}</portForward>`);
    bad(pf("guest='10.9.0.10'", "<range start='8080'/>").replace("<forward mode='nat'/>", ''), /<portForward> needs a NAT network/);
    bad(pf("guest='10.8.0.10'", "<range start='8080'/>"), /<portForward guest='10\.8\.0\.10'> is not a guest's address inside 10\.9\.0\.1\/24/);
    bad(pf("guest='10.9.0.1'", "<range start='8080'/>"), /<portForward guest='10\.9\.0\.1'> is not a guest's address/);
    bad(pf("proto='sctp' guest='10.9.0.10'", "<range start='8080'/>"), /<portForward proto='sctp'> is not 'tcp' or 'udp'/);
    bad(pf("address='localhost' guest='10.9.0.10'", "<range start='8080'/>"), /<portForward address='localhost'> is not an IPv4 address/);
    bad(pf("guest='10.9.0.10'", "<range start='0'/>"), /<portForward><range start='0'> is not a port from 1 to 65535/);
    bad(pf("guest='10.9.0.10'", "<range start='70000'/>"), /<range start='70000'> is not a port/);
    bad(pf("guest='10.9.0.10'", "<range start='80' to='x'/>"), /<range to='x'> is not a port/);
    bad(pf("guest='10.9.0.10'", "<range start='90' end='80'/>"), /end is below start/);
    bad(pf("guest='10.9.0.10'", "<range start='65000' end='65100' to='65500'/>"), /the guest's ports would pass 65535/);
    bad(pf("guest='10.9.0.10'", "<range start='1' end='2000'/>"), /more than 1024 forwarded ports/);
    bad(pf("guest='10.9.0.10'", ''), /has no <range start to>/);
    bad(
      lab(`<portForward guest='10.9.0.10'><range start='8080'/></portForward><portForward address='0.0.0.0' guest='10.9.0.11'><range start='8080'/></portForward>`),
      /tcp 0\.0\.0\.0:8080 is forwarded twice \(also to 10\.9\.0\.10:8080\)/,
    );
  });

  it('refuses other bad definitions, naming the element or attribute', () => {
    bad('<network><name>x</name>', /invalid network XML in test\.xml: malformed XML/);
    bad("<domain><name>x</name></domain>", /root element is <domain>, expected <network>/);
    bad("<network><ip address='10.0.0.1' prefix='24'/></network>", /<name> is missing/);
    bad("<network><name>a/b</name><ip address='10.0.0.1' prefix='24'/></network>", /<name>a\/b<\/name>: a network name is/);
    bad("<network><name>a</name><uuid>nope</uuid><ip address='10.0.0.1' prefix='24'/></network>", /<uuid>nope<\/uuid> is not a UUID/);
    bad("<network><name>a</name><mac address='zz'/><ip address='10.0.0.1' prefix='24'/></network>", /<mac address='zz'> is not a MAC address/);
    bad('<network><name>a</name></network>', /expected one IPv4 <ip>, found 0/);
    bad("<network><name>a</name><ip family='ipv6' address='fd00::1' prefix='64'/><ip address='10.0.0.1' prefix='24'/></network>", /<ip family='ipv6'> is not supported/);
    bad("<network><name>a</name><ip address='10.0.0.300' prefix='24'/></network>", /<ip address='10\.0\.0\.300'> is not an IPv4 address/);
    bad("<network><name>a</name><ip address='10.0.0.1' prefix='31'/></network>", /needs a prefix from 8 to 30 or the matching netmask \(prefix='31'\)/);
    bad("<network><name>a</name><ip address='10.0.0.1' netmask='255.0.255.0'/></network>", /\(netmask='255\.0\.255\.0'\)/);
    bad("<network><name>a</name><ip address='10.0.0.0' prefix='24'/></network>", /is the network or broadcast address/);
    bad(lab('').replace("end='10.9.0.99'", "end='10.9.1.9'"), /<range start='10\.9\.0\.2' end='10\.9\.1\.9'> is not a range inside 10\.9\.0\.1\/24/);
    bad(lab('').replace('</dhcp>', "<host mac='52:54:00:00:00:01' ip='10.8.0.5'/></dhcp>"), /<host ip='10\.8\.0\.5'> is not inside/);
    bad("<network><name>a</name><dns><host ip='x'/></dns><ip address='10.0.0.1' prefix='24'/></network>", /<dns><host ip='x'> is not an IPv4 address/);
  });

  it('subnets overlap when one holds an address of the other; listeners clash on the same port (0.0.0.0 takes every address)', () => {
    assert.ok(subnetsOverlap({ address: '192.168.122.1', prefix: 24 }, { address: '192.168.122.200', prefix: 25 }));
    assert.ok(subnetsOverlap({ address: '10.0.0.1', prefix: 8 }, { address: '10.200.0.1', prefix: 24 }));
    assert.ok(!subnetsOverlap({ address: '192.168.122.1', prefix: 24 }, { address: '192.168.123.1', prefix: 24 }));
    const f = (proto: 'tcp' | 'udp', address: string, port: number) => ({ proto, address, port, guest: '10.0.0.2', guestPort: 80 });
    assert.ok(listenClash(f('tcp', '127.0.0.1', 80), f('tcp', '0.0.0.0', 80)));
    assert.ok(!listenClash(f('tcp', '127.0.0.1', 80), f('udp', '127.0.0.1', 80)));
    assert.ok(!listenClash(f('tcp', '127.0.0.1', 80), f('tcp', '127.0.0.2', 80)));
  });
});
