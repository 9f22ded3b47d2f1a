// The switch as a process (dist/netswitch/main.mjs), driven the way the host drives it: started
// with a network's configuration, found again by a second host-side instance (a restarted host),
// frames between two ports in `-netdev stream` framing, a DHCP exchange over a port, link state and
// leases on the control socket, clear errors for a network that is not running, and stop. No guests.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeFrame, FrameDecoder } from '../../common/frame-stream.js';
import { processAlive } from '../../common/fsutil.js';
import { killProcess, waitGone } from '../../common/process.js';
import { DHCP, DHCP_OPTION } from '../../netswitch/dhcp.js';
import { BROADCAST_MAC, buildEthernet, buildIpv4, buildUdp, ETHERTYPE_IPV4, IP_PROTO_UDP, macBytes, parseEthernet, parseIpv4, parseUdp } from '../../netswitch/packets.js';
import type { SwitchStatus } from '../../netswitch/protocol.js';
import { until } from '../../testing/harness.js';
import { NetworkSwitches } from './switches.js';
import { DEFAULT_NETWORK_XML, parseNetworkXml } from './network-xml.js';

/** A fake NIC: a port connection that collects the frames it is sent. */
async function plug(socketPath: string): Promise<{ frames: Buffer[]; send: (f: Buffer) => void; close: () => void }> {
  const sock = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const frames: Buffer[] = [];
  const decoder = new FrameDecoder((f) => frames.push(f), () => assert.fail('the switch broke the framing'));
  sock.on('data', (d) => decoder.push(d));
  return { frames, send: (f) => sock.write(encodeFrame(f)), close: () => sock.destroy() };
}

function discover(mac: Buffer): Buffer {
  const p = Buffer.alloc(244 + 4);
  p[0] = 1;
  p[1] = 1;
  p[2] = 6;
  p.writeUInt32BE(0xabcdef01, 4);
  p.set(mac, 28);
  p.writeUInt32BE(0x63825363, 236);
  p.set([DHCP_OPTION.MESSAGE_TYPE, 1, DHCP.DISCOVER, 255], 240);
  return buildEthernet(BROADCAST_MAC, mac, ETHERTYPE_IPV4, buildIpv4(0, 0xffffffff, IP_PROTO_UDP, buildUdp(0, 0xffffffff, 68, 67, p)));
}

describe('network switch process', { timeout: 120_000 }, () => {
  let home: string;
  let switches: NetworkSwitches;
  let pid = 0;

  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-net-'));
    switches = new NetworkSwitches(path.join(home, 'run', 'networks'));
  });
  after(async () => {
    if (pid) killProcess(pid);
    await waitGone(pid, 5000);
    fs.rmSync(home, { recursive: true, force: true });
  });

  const config = { ...parseNetworkXml(DEFAULT_NETWORK_XML, 'default').config, mac: '52:54:00:d0:4d:01' };

  it('starts once, even when asked twice at once; a second host finds it running', async () => {
    await assert.rejects(switches.require('default'), /network 'default' is not active/);
    const [a, b] = await Promise.all([switches.start('default', config), switches.start('default', config)]);
    assert.equal(a.ports, b.ports);
    const status = await switches.status('default');
    pid = status.pid;
    assert.ok(processAlive(pid));
    assert.equal(status.address, '192.168.122.1');
    const again = new NetworkSwitches(path.join(home, 'run', 'networks'));
    assert.equal((await again.require('default')).ports, a.ports);
    await again.start('default', config);
    assert.equal((await again.status('default')).pid, pid, 'no second switch');
  });

  it('forwards between ports, answers DHCP on a port, and applies link state by MAC', async () => {
    const files = switches.paths('default');
    const [a, b] = [await plug(files.ports), await plug(files.ports)];
    const A = macBytes('52:54:00:20:00:01');
    const B = macBytes('52:54:00:20:00:02');
    try {
      a.send(discover(A));
      await until(() => a.frames.length > 0 && b.frames.length > 0, 10_000, 'the OFFER and the flooded DISCOVER');
      const offer = parseUdp(parseIpv4(parseEthernet(a.frames.at(-1)!)!.payload)!.payload)!;
      assert.equal(offer.dstPort, 68);
      assert.equal(offer.payload.readUInt32BE(16) >>> 24, 192, 'an address offered');
      const data = (dst: Buffer, src: Buffer) => buildEthernet(dst, src, 0x88b5, Buffer.alloc(60, 1));
      b.send(data(A, B));
      await until(() => a.frames.length >= 2, 10_000, 'the frame from b');
      await switches.setLink('default', '52:54:00:20:00:02', 'down');
      const before = a.frames.length;
      b.send(data(A, B));
      a.send(data(B, A));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(a.frames.length, before, 'nothing from the downed port');
      const status: SwitchStatus = await switches.status('default');
      assert.deepEqual(status.linkDown, ['52:54:00:20:00:02']);
      assert.equal(status.ports.find((p) => p.mac === '52:54:00:20:00:02')?.link, 'down');
      await switches.setLink('default', '52:54:00:20:00:02', 'up');
      b.send(data(A, B));
      await until(() => a.frames.length > before, 10_000, 'the frame after link up');
    } finally {
      a.close();
      b.close();
    }
    await until(async () => (await switches.status('default')).ports.length === 0, 10_000, 'the ports to close');
  });

  it('refuses bad control requests and networks that do not run clearly', async () => {
    await assert.rejects(switches.request('default', { op: 'link', state: 'down' }), /link needs a mac or a port/);
    await assert.rejects(switches.require('lab'), /network 'lab' is not active/);
    await assert.rejects(switches.leases('lab'), /network 'lab' is not active/);
  });

  it('stops when asked, removing its sockets', async () => {
    await switches.stop('default');
    assert.ok(!processAlive(pid), 'the switch exited');
    assert.equal(await switches.running('default'), false);
    assert.ok(!fs.existsSync(switches.paths('default').ports));
    assert.ok(!fs.existsSync(switches.paths('default').control));
  });
});
