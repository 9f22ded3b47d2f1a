// No request kills the host or a guest: a corpus of malformed input (bad request targets, bad
// percent-escapes, oversized headers, half-open and reset sockets, garbage before and after the RFB
// handshake, random bytes, invalid UTF-8 and JSON, huge lines) thrown at every listener the host and
// a running guest have: the web shell's HTTP and WebSockets (/api, /vnc/<uuid> through the host's
// VNC link), the local API socket, the runner's control socket and its RFB server on the unix socket
// and the TCP port of <graphics type='vnc' port='-1'>, the libvirt socket, then more connections than the host and the
// runner may open files. Afterwards the same host and runner serve on.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { encodePacket } from './libvirt/packet.js';
import { REMOTE_PROC_CONNECT_OPEN, REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, REMOTE_PROGRAM, remote_connect_open_args } from './libvirt/protocol/remote.js';
import { VIR_NET_CALL, VIR_NET_OK, VIR_NET_STREAM } from './libvirt/protocol/virnet.js';
import { RpcClient } from './libvirt/rpc-client.js';
import { encode } from './libvirt/xdr.js';
import { RfbClient } from '../testing/rfb-client.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, guest, guestsBuilt, until, webShellSession, within } from '../testing/harness.js';

const NAME = 'fuzzed';

/** Sets a running process's open-files limit. */
async function prlimit(pid: number, soft: number, hard: number): Promise<void> {
  await promisify(execFile)('prlimit', [`--pid=${pid}`, `--nofile=${soft}:${hard}`]);
}
const PASSWORD = 'hardened';
const BOOT = 600_000; // the machine is shared; boots can be several times slower than alone

/** Bytes that are not UTF-8 (a lone continuation byte, an overlong form, a surrogate half). */
const BAD_UTF8 = Buffer.from([0xff, 0xfe, 0x80, 0xc0, 0xaf, 0xed, 0xa0, 0x80]);

describe('malformed input on every listener', { skip: guestsBuilt() ? false : 'sample guests not built', timeout: 900_000 }, () => {
  let t: TestHost;
  let uuid: string;
  let serial: SerialWatch;
  let shell: { origin: string; host: string; cookie: string };
  let webPort: number;
  let vncPort: number;
  const sent: Record<string, number> = {};

  /**
   * Opens one connection, writes `chunks`, then half-closes it ('end'), resets it ('reset') or waits
   * for an answer ('wait'); the connection is dropped after 3 s. Resolves with what the server answered.
   */
  function throwAt(listener: string, connect: () => net.Socket, chunks: (string | Buffer)[], how: 'end' | 'reset' | 'wait' = 'end'): Promise<string> {
    sent[listener] = (sent[listener] ?? 0) + 1;
    return new Promise((resolve) => {
      const sock = connect();
      let answer = '';
      const timer = setTimeout(() => sock.destroy(), 3000);
      sock.on('data', (d: Buffer) => {
        if (answer.length < 4096) answer += d.toString('latin1');
        if (how === 'wait') sock.destroy();
      });
      sock.on('error', () => undefined);
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(answer);
      });
      sock.on('connect', () => {
        for (const c of chunks) sock.write(c);
        // A unix socket has no reset: there, closing mid-request is as abrupt as it gets.
        if (how === 'reset') sock.remotePort === undefined ? sock.destroy() : sock.resetAndDestroy();
        else if (how === 'end') sock.end();
      });
    });
  }

  const http = (chunks: (string | Buffer)[], how: 'end' | 'reset' | 'wait' = 'end') => throwAt('web shell HTTP', () => net.connect(webPort, '127.0.0.1'), chunks, how);
  const request = (target: string, headers = ''): string => `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n${headers}\r\n`;
  const upgrade = (target: string, headers = ''): string =>
    request(target, `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n${headers}`);

  /** An authenticated WebSocket; each of `messages` is one malformed message. */
  async function throwFrames(listener: string, target: string, messages: { data: Buffer | string; binary: boolean }[]): Promise<void> {
    const ws = new WebSocket(`ws://${shell.host}${target}`, { headers: { cookie: shell.cookie } });
    ws.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`${target}: HTTP ${res.statusCode}`)));
    });
    for (const m of messages) {
      if (ws.readyState !== ws.OPEN) break;
      sent[listener] = (sent[listener] ?? 0) + 1;
      ws.send(m.data, { binary: m.binary });
    }
    // The server answers the close frame once it has read the messages before it, unless it closed
    // first (ws gives up on an unanswered close frame after 30 s).
    if (ws.readyState === ws.OPEN) ws.close();
    await closed;
  }

  before(async () => {
    t = await TestHost.start();
    await t.client.call('domain.create', {
      spec: { name: NAME, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } },
    });
    const { xml, generation } = await t.client.call('domain.xml', { domain: NAME, inactive: true, secure: true });
    const graphics = `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${PASSWORD}'/>`;
    await t.client.call('domain.define', { xml: xml.replace(/<\/devices>/, `  ${graphics}\n  </devices>`), expectGeneration: generation });
    uuid = (await t.client.call('domain.start', { domain: NAME })).domain.uuid;
    serial = await SerialWatch.open(t.client, uuid);
    shell = await webShellSession(t.client);
    webPort = Number(new URL(shell.origin).port);
    const display = await t.client.call('domain.vncDisplay', { domain: NAME });
    assert.ok(display.tcp, 'the domain has a VNC TCP port');
    vncPort = display.tcp.port;
  });
  after(async () => {
    await t?.stop();
  });

  it('answers 400 (or closes that connection) and keeps serving the host, the web shell and the guest', async () => {
    const hostPid = t.daemonPid();
    const runnerPid = t.runnerPid(uuid);
    const cookie = `Cookie: ${shell.cookie}\r\n`;

    // Web shell HTTP: bad request targets and escapes, with and without the session.
    const badTargets = [
      'http://[',
      'http://127.0.0.1:1/',
      'https://[::1/x',
      '*',
      '//evil.example/x',
      '?token=x',
      '/%',
      '/%zz',
      '/%E0%A4%A',
      '/assets/%ff%fe',
      '/%C0%AF..%C0%AF..%C0%AFetc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/%00',
      '/..%00/x',
      `/${'a'.repeat(300)}`,
      `/${'a/'.repeat(3000)}`,
      '/?token=%zz',
      `/?token=${'A'.repeat(4000)}`,
      '/?token=&token=&token=',
      '/assets/\u00e9',
    ];
    for (const target of badTargets) {
      for (const headers of ['', cookie]) {
        const answer = await http([request(target, headers)]);
        assert.match(answer, /^HTTP\/1\.1 [1-5]\d\d /, `an answer to GET ${target}`);
      }
    }
    assert.match(await http([request('http://[')]), /^HTTP\/1\.1 400 /);
    assert.match(await http([request('/%E0%A4%A', cookie)]), /^HTTP\/1\.1 400 /);
    assert.match(await http([request('/%00', cookie)]), /^HTTP\/1\.1 400 /);
    assert.match(await http([request(`/${'a'.repeat(300)}`, cookie)]), /^HTTP\/1\.1 404 /);
    const rawHttp: (string | Buffer)[][] = [
      [`GET / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`],
      [request('/', `${cookie}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: 1\r\n`).join('')}`)],
      [crypto.randomBytes(4096)],
      [Buffer.concat([Buffer.from('GET /'), BAD_UTF8, Buffer.from(` HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n\r\n`)])],
      [`GET / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\nCookie: domus_token=`, BAD_UTF8, '\r\n\r\n'],
      ['GET / HTTP/9.9\r\n\r\n'],
      ['\0\0\0\0\r\n\r\n'],
      [`GET / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\nHost: evil\r\n\r\n`],
      [`GET / HTTP/1.1\r\nno colon here\r\n\r\n`],
      [`POST / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n${cookie}Content-Length: -1\r\n\r\n`],
      [`POST / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n${cookie}Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n`],
      [`POST / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n${cookie}Content-Length: 1000000\r\n\r\nshort`],
      [`CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n`],
      [`OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n\r\n`],
    ];
    for (const chunks of rawHttp) await http(chunks);
    // Half-open and reset: a request cut short, then a half-close or a reset; a silent connection.
    await http([`GET / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n`]);
    await http([`GET / HTTP/1.1\r\nHost: 127.0.0.1:${webPort}\r\n`], 'reset');
    await http([request('/', cookie)], 'reset');
    await http([], 'end');
    await http([], 'reset');

    // Web shell WebSocket handshakes: bad targets, bad escapes, bad handshakes, resets mid-way.
    for (const target of ['http://[', '/%E0%A4%A', '/api?token=%zz', '/vnc/%', '/vnc/%E0%A4%A', '/vnc/%00', `/vnc/${'€'.repeat(200)}`, `/vnc/${'a'.repeat(5000)}`, '/vnc/', '/nowhere']) {
      for (const headers of ['', cookie]) await http([upgrade(target, headers)]);
    }
    await http([upgrade(`/vnc/${encodeURIComponent('€'.repeat(200))}`, cookie)], 'wait');
    await http([request('/api', `${cookie}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: x\r\n`)]);
    await http([request('/api', `${cookie}Connection: Upgrade\r\nUpgrade: websocket\r\n`)]);
    await http([upgrade('/api', cookie)], 'reset');
    await http([upgrade('/api', `${cookie}Origin: http://evil.example\r\n`)], 'reset');
    await http([upgrade(`/vnc/${uuid}`, cookie)], 'reset');
    await http([upgrade('/api', cookie), crypto.randomBytes(1024)]);
    await http([upgrade(`/vnc/${uuid}`, cookie), crypto.randomBytes(1024)]);

    // The API over a WebSocket: frames that are not requests.
    const notRequests = [
      'not json',
      '{"type":"request","id":1,"method":"host.status"',
      'null',
      '[]',
      '1e400',
      '{"type":"request","id":-1,"method":"host.status"}',
      '{"type":"request","id":1.5,"method":"host.status"}',
      '{"type":"request","id":1,"method":"no.such.method"}',
      '{"type":"request","id":1,"method":"domain.info","params":{"domain":{"$gt":""}}}',
      '{"type":"request","id":1,"method":"domain.info","params":[1,2]}',
      '{"__proto__":{"polluted":1},"type":"request","id":1,"method":"host.status"}',
      `${'['.repeat(200_000)}${']'.repeat(200_000)}`,
      `{"type":"request","id":1,"method":"domain.info","params":{"domain":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
    ];
    await throwFrames('web shell /api', '/api', [
      ...notRequests.map((data) => ({ data, binary: false })),
      { data: crypto.randomBytes(4096), binary: true },
      { data: Buffer.concat([Buffer.from('{"a":"'), BAD_UTF8, Buffer.from('"}')]), binary: false },
    ]);
    await throwFrames('web shell /api', '/api', [{ data: Buffer.alloc(17 << 20, 0x61), binary: false }]);

    // The GUI's VNC link (the host answers the password upstream): garbage before its handshake.
    const rfbGarbage: Buffer[] = [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      crypto.randomBytes(12),
      crypto.randomBytes(64 * 1024),
      Buffer.from('RFB 004.000\n'),
      Buffer.from('RFB 003.00x\n'),
      Buffer.from('RFB 003.008\n\x00'),
      Buffer.from('RFB 003.008\n\xff'),
      Buffer.from('RFB 003.008\n\x02'),
      Buffer.from('RFB 003.003\n\x07'),
    ];
    for (const g of rfbGarbage) await throwFrames('web shell /vnc', `/vnc/${uuid}`, [{ data: g, binary: true }]);

    // The runner's RFB server, on its TCP port and its unix socket.
    const vncSock = path.join(t.paths.run, uuid, 'vnc.sock');
    const rfbListeners: [string, () => net.Socket, () => Promise<RfbClient>][] = [
      ['VNC TCP port', () => net.connect(vncPort, '127.0.0.1'), () => RfbClient.openTcp(vncPort)],
      ['VNC unix socket', () => net.connect(vncSock), () => RfbClient.open(vncSock)],
    ];
    for (const [listener, connect] of rfbListeners) {
      for (const g of rfbGarbage) await throwAt(listener, connect, [g]);
      await throwAt(listener, connect, ['RFB 003.008\n', Buffer.from([2]), crypto.randomBytes(16)], 'wait');
      await throwAt(listener, connect, ['RFB 003.008\n', Buffer.from([2]), crypto.randomBytes(5)]);
      await throwAt(listener, connect, ['RFB 003.008']);
      await throwAt(listener, connect, [], 'reset');
      await throwAt(listener, connect, ['RFB 003.008\n'], 'reset');
    }
    // After a good handshake: messages with impossible fields, each on its own connection.
    const pixelFormat = (fields: number[]): Buffer => Buffer.from([0, 0, 0, 0, ...fields, 0, 0, 0].slice(0, 20));
    const afterHandshake: Buffer[] = [
      Buffer.from([7]),
      pixelFormat([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      pixelFormat([13, 24, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 40, 50, 60]),
      pixelFormat([32, 24, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from([2, 0, 0xff, 0xff, 0, 0, 0, 0]),
      Buffer.from([3, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([3, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([5, 0xff, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([4, 1, 0, 0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([255, 5]),
      Buffer.from([255, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      crypto.randomBytes(64 * 1024),
    ];
    for (const [listener, , open] of rfbListeners) {
      for (const g of afterHandshake) {
        sent[listener] = (sent[listener] ?? 0) + 1;
        const viewer = await open();
        await viewer.handshake({ password: PASSWORD });
        viewer.socket.on('error', () => undefined);
        const closed = viewer.socket.closed ? Promise.resolve() : new Promise((r) => viewer.socket.once('close', r));
        // Half-closed after the message: the server closes its end once it has read all of it.
        viewer.socket.end(g);
        await within(closed, 10_000, `${listener}: the server to close the connection after ${g.subarray(0, 8).toString('hex')}…`);
      }
    }

    // The local API socket and the runner's control socket: JSON lines that are not requests.
    const lineListeners: [string, () => net.Socket][] = [
      ['local API socket', () => net.connect(t.paths.socket)],
      ['runner control socket', () => net.connect(path.join(t.paths.run, uuid, 'control.sock'))],
    ];
    for (const [listener, connect] of lineListeners) {
      for (const line of notRequests) await throwAt(listener, connect, [line, '\n'], 'wait');
      await throwAt(listener, connect, [crypto.randomBytes(64 * 1024)]);
      await throwAt(listener, connect, [Buffer.concat([crypto.randomBytes(4096), Buffer.from('\n'), crypto.randomBytes(4096), Buffer.from('\n')])]);
      await throwAt(listener, connect, [Buffer.concat([Buffer.from('{"type":"request","id":1,"method":"'), BAD_UTF8, Buffer.from('"}\n')])], 'wait');
      await throwAt(listener, connect, [Buffer.concat([BAD_UTF8, Buffer.from('\n')])], 'wait');
      await throwAt(listener, connect, ['\0\0\0\n'], 'wait');
      await throwAt(listener, connect, [Buffer.alloc(17 << 20, 0x61), '\n']);
      await throwAt(listener, connect, ['"', Buffer.alloc(15 << 20, 0x61), '"\n'], 'wait');
      await throwAt(listener, connect, ['{"type":"request","id":1,']);
      await throwAt(listener, connect, ['{"type":"request","id":1,'], 'reset');
    }

    // The libvirt socket: impossible lengths, truncated headers, unknown programs and procedures,
    // arguments that are not their procedure's XDR (before and after CONNECT_OPEN), stream packets.
    const libvirt = (chunks: (string | Buffer)[], how: 'end' | 'reset' | 'wait' = 'end') => throwAt('libvirt socket', () => net.connect(t.paths.libvirtSocket), chunks, how);
    const call = (prog: number, proc: number, payload: Uint8Array = Buffer.alloc(0), type: number = VIR_NET_CALL) => encodePacket({ prog, vers: 1, proc, type: type as 0, serial: 7, status: VIR_NET_OK }, payload);
    const open = call(REMOTE_PROGRAM, REMOTE_PROC_CONNECT_OPEN, encode(remote_connect_open_args, { name: null, flags: 0 }));
    const garbage: Buffer[] = [crypto.randomBytes(64 * 1024), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0, 0, 0, 4]), Buffer.from([0, 0, 0, 40, 1, 2, 3]), Buffer.alloc(17 << 20, 0x61)];
    for (const g of garbage) await libvirt([g]);
    await libvirt([call(0x12345678, 1)], 'wait');
    await libvirt([call(REMOTE_PROGRAM, 0x7fffffff)], 'wait');
    await libvirt([call(REMOTE_PROGRAM, REMOTE_PROC_CONNECT_OPEN, crypto.randomBytes(40))], 'wait');
    await libvirt([call(REMOTE_PROGRAM, REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, Buffer.from([0, 0x40, 0, 1]))], 'wait');
    await libvirt([open, call(REMOTE_PROGRAM, REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x61]))]);
    await libvirt([open, call(REMOTE_PROGRAM, REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, Buffer.concat([Buffer.from([0, 0, 0, 3]), BAD_UTF8.subarray(0, 3), Buffer.from([0])]))]);
    await libvirt([open, call(REMOTE_PROGRAM, REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, crypto.randomBytes(256), VIR_NET_STREAM)]);
    await libvirt([open, call(REMOTE_PROGRAM, REMOTE_PROC_CONNECT_OPEN, Buffer.alloc(0))], 'reset');

    // More connections than the process may open files (libuv then accepts and drops them).
    const floods: [number, () => net.Socket][] = [
      [hostPid, () => net.connect(webPort, '127.0.0.1')],
      [hostPid, () => net.connect(t.paths.socket)],
      [hostPid, () => net.connect(t.paths.libvirtSocket)],
      [runnerPid!, () => net.connect(vncPort, '127.0.0.1')],
    ];
    let flooded = 0;
    for (const [pid, connect] of floods) {
      const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
      const [, soft, hard] = /Max open files\s+(\d+)\s+(\d+)/.exec(limits)!;
      const open = fs.readdirSync(`/proc/${pid}/fd`).length;
      await prlimit(pid, open + 16, Number(hard));
      try {
        const socks = Array.from({ length: 48 }, connect);
        let dropped = 0;
        for (const sock of socks) {
          sock.on('error', () => undefined);
          sock.on('close', () => dropped++);
        }
        const full = (): boolean => fs.readdirSync(`/proc/${pid}/fd`).length >= open + 16;
        await until(() => full() && dropped > 0, 20_000, `pid ${pid} to fill its open-files table and drop the connections beyond it`);
        for (const sock of socks) sock.destroy();
        flooded += socks.length;
      } finally {
        await prlimit(pid, Number(soft), Number(hard));
      }
    }
    console.log(`connections beyond the open-files limit: ${flooded}`);

    const total = Object.values(sent).reduce((a, b) => a + b, 0);
    const byListener = Object.entries(sent)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(`malformed inputs sent: ${total} (${byListener})`);
    assert.ok(total > 200, `${total} malformed inputs`);

    // The same host and runner serve on, with the guest running.
    assert.equal(t.daemonPid(), hostPid);
    assert.equal(t.runnerPid(uuid), runnerPid);
    assert.equal((await t.client.call('domain.info', { domain: NAME })).state, 'running');
    assert.equal((await t.client.call('host.status', {})).pid, hostPid);
    const lv = await RpcClient.connect(`qemu+unix:///session?socket=${t.paths.libvirtSocket}`, { keepaliveInterval: 0 });
    assert.equal((await lv.call('REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS', { need_results: 1, flags: 0 })).domains[0]?.name, NAME);
    await lv.close();
    assert.equal((await fetch(`${shell.origin}/`, { headers: { cookie: shell.cookie } })).status, 200);
    const viewer = await RfbClient.openTcp(vncPort);
    await viewer.handshake({ password: PASSWORD });
    assert.ok(viewer.width > 0 && viewer.height > 0);
    viewer.socket.destroy();
    await serial.wait(/DOMUS-GUEST-READY/, BOOT);
    assert.match(await serial.sh('echo alive$((40+2))'), /alive42/);
    // Every fault was met where it arose, not by a catch-all.
    assert.doesNotMatch(fs.readFileSync(t.paths.log, 'utf8'), /request (from \S+ )?failed:/);
  });
});
