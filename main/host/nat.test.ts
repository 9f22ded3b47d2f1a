// NAT with real guests: a v86 and a QEMU guest on a NAT network (`default`, overridden with
// <forward mode='nat'> and port forwards) and a QEMU guest on an isolated one (`lab`). The NAT
// guests fetch a file with busybox wget from an HTTP server this test runs on the host's 127.0.0.1,
// through the gateway address, and its sha256 matches; forwarded host ports on 127.0.0.1 reach
// busybox httpd in each NAT guest; the isolated guest's same wget fails, and the two networks cannot
// reach each other. Traffic goes only to 127.0.0.1 and between guests on Domus's switches (the
// cross-network checks use ping, which the NAT never takes off the network). Guests boot once.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SwitchStatus } from '../netswitch/protocol.js';
import { controlRequest } from '../testing/connect-unix.js';
import { ENGINES, SerialWatch, TestHost, engineSkip, networkGuestXml, type LocalEngine } from '../testing/harness.js';
import { freePort } from '../testing/libvirtd.js';

const BOOT = 600_000;
const FILE_BYTES = 1024 * 1024;

interface Spec {
  name: string;
  engine: LocalEngine;
  model: string;
  mac: string;
  network: string;
  ip: string;
}

const GUESTS: Spec[] = [
  { name: 'nv', engine: 'v86', model: 'ne2k_pci', mac: '52:54:00:30:00:01', network: 'default', ip: '192.168.122.10' },
  { name: 'nq', engine: 'qemu', model: 'virtio', mac: '52:54:00:30:00:02', network: 'default', ip: '192.168.122.11' },
  { name: 'iq', engine: 'qemu', model: 'e1000', mac: '52:54:00:30:00:03', network: 'lab', ip: '10.9.0.10' },
];

function natXml(forwards: { port: number; guest: string }[]): string {
  return `<network>
  <name>default</name>
  <mac address='52:54:00:d0:4d:01'/>
  <forward mode='nat'/>
${forwards.map((f) => `  <portForward proto='tcp' guest='${f.guest}'><range start='${f.port}' to='8080'/></portForward>`).join('\n')}
  <ip address='192.168.122.1' prefix='24'>
    <dhcp>
      <range start='192.168.122.100' end='192.168.122.200'/>
${GUESTS.filter((g) => g.network === 'default').map((g) => `      <host mac='${g.mac}' name='${g.name}' ip='${g.ip}'/>`).join('\n')}
    </dhcp>
  </ip>
</network>
`;
}

const LAB_XML = `<network>
  <name>lab</name>
  <mac address='52:54:00:d0:4d:02'/>
  <ip address='10.9.0.1' prefix='24'>
    <dhcp>
      <range start='10.9.0.100' end='10.9.0.200'/>
      <host mac='52:54:00:30:00:03' name='iq' ip='10.9.0.10'/>
    </dhcp>
  </ip>
</network>
`;

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 60_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
  });
}

const skip = ENGINES.length < 2 ? 'needs both engines (v86 and QEMU)' : engineSkip('v86') || engineSkip('qemu');

describe('NAT with real guests (v86 and QEMU)', { skip, timeout: 2_400_000 }, () => {
  let t: TestHost;
  let server: http.Server;
  let httpPort = 0;
  const file = randomBytes(FILE_BYTES);
  const sha = createHash('sha256').update(file).digest('hex');
  const forwards = new Map<string, number>();
  const serial = new Map<string, SerialWatch>();
  const sh = (name: string, cmd: string, ms = 120_000) => serial.get(name)!.sh(cmd, ms);

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/file') res.end(file);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    httpPort = (server.address() as net.AddressInfo).port;
    for (const g of GUESTS.filter((s) => s.network === 'default')) forwards.set(g.name, await freePort());
    t = await TestHost.start();
    // The first run's default network, redefined with the forwards and static leases, and an isolated one.
    await t.client.call('network.destroy', { network: 'default' });
    await t.client.call('network.define', { xml: natXml([...forwards].map(([name, port]) => ({ port, guest: GUESTS.find((g) => g.name === name)!.ip }))) });
    await t.client.call('network.start', { network: 'default' });
    await t.client.call('network.define', { xml: LAB_XML });
    await t.client.call('network.start', { network: 'lab' });
    for (const g of GUESTS) await t.client.call('domain.define', { xml: networkGuestXml(g) });
    for (const g of GUESTS) {
      const t0 = Date.now();
      await t.client.call('domain.start', { domain: g.name });
      const watch = await SerialWatch.open(t.client, g.name);
      const up = await watch.wait(/DOMUS-NET-UP eth0 ([\d.]+)\/(\d+) router=([\d.]+)/, BOOT);
      console.log(`# ${g.name} (${g.engine}) on ${g.network}: ${up[0]} ${Date.now() - t0} ms after start`);
      assert.equal(up[1], g.ip);
      serial.set(g.name, watch);
    }
  });
  after(async () => {
    await t?.stop();
    server?.close();
  });

  for (const name of ['nv', 'nq']) {
    it(`${name} fetches a file from the host's 127.0.0.1 through the gateway address (sha256)`, async () => {
      const t0 = Date.now();
      const out = await sh(name, `rm -f /tmp/f; wget -q -O /tmp/f http://192.168.122.1:${httpPort}/file && sha256sum /tmp/f`, 300_000);
      const ms = Date.now() - t0;
      console.log(`# ${name}: 1 MiB over NAT in ${ms} ms (serial round trip included)`);
      assert.match(out, new RegExp(sha));
    });
  }

  it('forwarded host ports on 127.0.0.1 reach httpd in each NAT guest, and the switch lists them as listening', async () => {
    for (const name of ['nv', 'nq']) {
      await sh(name, `mkdir -p /tmp/www; echo "served by ${name}" > /tmp/www/hello.txt; httpd -p 8080 -h /tmp/www`);
      const res = await get(`http://127.0.0.1:${forwards.get(name)}/hello.txt`);
      assert.equal(res.status, 200);
      assert.equal(res.body.trim(), `served by ${name}`);
    }
    const status = await controlRequest<{ ok: boolean; result: SwitchStatus }>(path.join(t.paths.networkRun, 'default', 'control.sock'), { id: 1, op: 'status' });
    const fwd = status.result.nat?.forwards ?? [];
    assert.deepEqual(fwd.map((f) => [f.port, f.listening]), [...forwards.values()].map((p) => [p, true]));
  });

  it('the isolated network has no NAT: the same wget from its guest fails', async () => {
    const out = await sh('iq', `rm -f /tmp/f; timeout 15 wget -q -O /tmp/f http://10.9.0.1:${httpPort}/file; echo rc=$?`, 60_000);
    assert.match(out, /rc=[1-9]/);
    const status = await controlRequest<{ ok: boolean; result: SwitchStatus }>(path.join(t.paths.networkRun, 'lab', 'control.sock'), { id: 1, op: 'status' });
    assert.equal(status.result.nat, undefined);
  });

  it('the two networks cannot reach each other', async () => {
    // Each gateway answers its own guests; neither carries a guest's packets to the other network.
    assert.match(await sh('nq', 'ping -c 2 -W 2 192.168.122.1'), /2 packets received/);
    assert.match(await sh('iq', 'ping -c 2 -W 2 10.9.0.1'), /2 packets received/);
    assert.match(await sh('nq', 'ping -c 2 -W 2 10.9.0.10'), /0 packets received/);
    assert.match(await sh('iq', 'ping -c 2 -W 2 192.168.122.11'), /0 packets received/);
    const out = await sh('iq', 'timeout 10 nc 192.168.122.11 8080 </dev/null; echo rc=$?', 60_000);
    assert.match(out, /rc=[1-9]/);
  });
});
