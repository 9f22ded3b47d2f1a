// The guest console from outside, through the host: <graphics type='vnc'> opens TCP listeners
// (autoport, two guests get two ports), passwd= guards them and the unix socket, `domus vncdisplay`
// prints virsh's form, Debian's vncsnapshot (a stock TightVNC client) reads a frame equal to
// `domus screenshot`, the GUI's console WebSocket gets the guest without the password, and
// `domus send-key` types into the guest and reboots it with Ctrl+Alt+Del; the serial console is
// shared by its clients and gets every byte once while the host is stopped. On every engine and on
// a libvirt connection (libvirtd's QEMU listens for VNC on TCP only, and the host reaches it through
// the connection).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { createWebSocketStream, WebSocket } from 'ws';
import { PNG } from 'pngjs';
import { connectHost } from '../cli/connect.js';
import { APP_ROOT } from '../common/paths.js';
import { RfbClient } from '../testing/rfb-client.js';
import { sshdSkip, startSshd } from '../testing/sshd.js';
import { libvirtConnection } from './connections/open.js';
import { RpcClient } from './libvirt/rpc-client.js';
import { vncAuthResponse } from '../common/vnc-auth.js';
import { CONNECTION_ENGINES, SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, guestsBuilt, sleep, until, webShellSession, type CliResult } from '../testing/harness.js';

const BOOT = 600_000; // the machine is shared; boots can be several times slower than alone
const PASSWORD = 'sekrit42';
const pvSpec = (name: string) => ({
  name,
  memoryMiB: 128,
  vcpus: 1,
  boot: { kind: 'pv' as const, kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE },
});

/** vncpasswd's file format: the password DES-encrypted with VNC's fixed key (bit-reversed, as in RFB auth). */
function vncPasswdFile(password: string): Buffer {
  const fixedKey = String.fromCharCode(23, 82, 107, 6, 35, 78, 88, 7);
  const plain = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(plain, 0, 0, 8);
  return vncAuthResponse(fixedKey, plain);
}

/** Decodes a JPEG (vncsnapshot writes only JPEG) to RGBA with Chromium, already used by the e2e tests. */
async function decodeJpeg(file: string): Promise<{ width: number; height: number; rgba: Buffer }> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const url = `data:image/jpeg;base64,${fs.readFileSync(file).toString('base64')}`;
    const r = await page.evaluate(async (src) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const g = c.getContext('2d')!;
      g.drawImage(img, 0, 0);
      return { width: img.width, height: img.height, data: Array.from(g.getImageData(0, 0, img.width, img.height).data) };
    }, url);
    return { width: r.width, height: r.height, rgba: Buffer.from(r.data) };
  } finally {
    await browser.close();
  }
}

/** Key names that type `text` on a US keyboard, one send-key call per character. */
function keysFor(ch: string): string[] {
  const plain: Record<string, string> = { ' ': 'SPACE', '-': 'MINUS', '/': 'SLASH', '.': 'DOT', '\n': 'ENTER' };
  const shifted: Record<string, string> = { '>': 'DOT', '|': 'BACKSLASH' };
  if (/[a-z0-9]/.test(ch)) return [`KEY_${ch.toUpperCase()}`];
  if (/[A-Z]/.test(ch)) return ['KEY_LEFTSHIFT', `KEY_${ch}`];
  if (ch in plain) return [`KEY_${plain[ch]}`];
  if (ch in shifted) return ['KEY_LEFTSHIFT', `KEY_${shifted[ch]}`];
  throw new Error(`no key for ${JSON.stringify(ch)}`);
}

for (const engine of CONNECTION_ENGINES) describe(`console: VNC listeners, vncdisplay, vncsnapshot, send-key, serial (${engine})`, { skip: guestsBuilt() ? engineSkip(engine) : 'sample guests not built', timeout: 1_800_000 }, () => {
  let t: TestHost;
  const serial: Record<string, SerialWatch> = {};
  const libvirt = engine === 'libvirt';
  /** The CLI on the test's connection, as `domus -c URI` (the host's own engines need no -c). */
  const cli = (args: string[]): Promise<CliResult> => t.cli(libvirt ? ['-c', t.libvirtd!.uri, ...args] : args);

  async function defineWithGraphics(name: string, graphics: string): Promise<void> {
    await createOn(t.client, pvSpec(name), engine);
    const { xml, generation } = await t.client.call('domain.xml', { domain: name, inactive: true, secure: true });
    // The libvirt sample already has a display (QEMU takes one VNC display per domain): this one replaces it.
    const withGraphics = xml.replace(/\s*<graphics type=(['"])vnc\1[^>]*(\/>|>[\s\S]*?<\/graphics>)/, '').replace(/<\/devices>/, `  ${graphics}\n  </devices>`);
    assert.notEqual(withGraphics, xml);
    await t.client.call('domain.define', { xml: withGraphics, expectGeneration: generation });
  }

  before(async () => {
    t = await TestHost.start(engine);
    await defineWithGraphics('vnc-a', `<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${PASSWORD}'/>`);
    await defineWithGraphics('vnc-b', `<graphics type='vnc' autoport='yes'/>`);
    // The displays are what is tested, not the boot: on Domus's engines both guests come from a
    // post-boot state (the VNC listener is host-side; a later test here boots vnc-b cold).
    if (libvirt) {
      for (const name of ['vnc-a', 'vnc-b']) {
        await t.client.call('domain.start', { domain: name });
        serial[name] = await SerialWatch.open(t.client, name);
      }
      await Promise.all(Object.values(serial).map((s) => s.wait(/DOMUS-GUEST-READY/, BOOT)));
    } else {
      for (const name of ['vnc-a', 'vnc-b']) serial[name] = await t.bootOrRestore(name, BOOT);
    }
  });
  after(async () => {
    await t?.stop();
  });

  it('two guests get two TCP ports from 5900 up; vncdisplay prints them as virsh does', async () => {
    const a = await t.client.call('domain.vncDisplay', { domain: 'vnc-a' });
    const b = await t.client.call('domain.vncDisplay', { domain: 'vnc-b' });
    assert.ok(a.tcp && b.tcp, 'both have a TCP listener');
    assert.equal(a.tcp.address, '127.0.0.1');
    assert.ok(a.tcp.port >= 5900 && b.tcp.port >= 5900);
    assert.notEqual(a.tcp.port, b.tcp.port);
    assert.equal(a.passwordRequired, true);
    assert.equal(b.passwordRequired, false);
    const out = await cli(['vncdisplay', 'vnc-a']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, `127.0.0.1:${a.tcp.port - 5900}\n`);
    // As libvirt's live XML: the port the display got, and no password without --security-info.
    const live = await cli(['dumpxml', 'vnc-a']);
    assert.match(live.stdout, new RegExp(`<graphics type='vnc' port='${a.tcp.port}' autoport='yes' listen='127.0.0.1'>\\s*<listen type='address' address='127.0.0.1'/>`));
    assert.doesNotMatch(live.stdout, /passwd=/);
    assert.match((await cli(['dumpxml', 'vnc-a', '--security-info'])).stdout, new RegExp(`port='${a.tcp.port}'[^>]*passwd='${PASSWORD}'`));
    assert.match((await cli(['dumpxml', 'vnc-a', '--inactive'])).stdout, /<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'\/?>/);
    const none = await cli(['vncdisplay', 'nosuch']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /error: failed to get domain 'nosuch'/);
  });

  it('passwd= guards the TCP listener and the unix socket; without it, no password is asked', async () => {
    const a = await t.client.call('domain.vncDisplay', { domain: 'vnc-a' });
    const b = await t.client.call('domain.vncDisplay', { domain: 'vnc-b' });
    // libvirtd's QEMU has no unix socket unless the XML asks for one: only its TCP listener there.
    assert.equal(a.socket === undefined, libvirt);
    const opens = [() => RfbClient.openTcp(a.tcp!.port), ...(a.socket ? [() => RfbClient.open(a.socket!)] : [])];
    for (const open of opens) {
      const bad = await open();
      await assert.rejects(bad.handshake({ password: 'wrong' }), /security failure: authentication failed/i);
      bad.close();
      const good = await open();
      await good.handshake({ password: PASSWORD });
      assert.ok(good.width > 0);
      good.close();
    }
    const free = await RfbClient.openTcp(b.tcp!.port);
    await free.handshake({});
    assert.ok(free.width > 0);
    free.close();
  });

  it("Debian's vncsnapshot reads a frame over TCP that matches domus screenshot", async () => {
    const a = await t.client.call('domain.vncDisplay', { domain: 'vnc-a' });
    const dir = fs.mkdtempSync(path.join(t.home, 'snap-'));
    const passwd = path.join(dir, 'passwd');
    fs.writeFileSync(passwd, vncPasswdFile(PASSWORD), { mode: 0o600 });
    await serial['vnc-a'].sh(`printf '\\033[2J\\033[1;1Hvncsnapshot test: ABC abc 0123\\n' > /dev/tty1`);
    await t.client.call('domain.suspend', { domain: 'vnc-a' });
    try {
      const shotFile = path.join(dir, 'host.png');
      const shot = await cli(['screenshot', 'vnc-a', shotFile]);
      assert.equal(shot.code, 0, shot.stderr);
      const host = PNG.sync.read(fs.readFileSync(shotFile));
      const jpg = path.join(dir, 'snap.jpg');
      const wrong = path.join(dir, 'wrong');
      fs.writeFileSync(wrong, vncPasswdFile('wrong'), { mode: 0o600 });
      await assert.rejects(promisify(execFile)('vncsnapshot', ['-quiet', '-passwd', wrong, a.display!, jpg], { timeout: 60_000 }), 'a wrong password is refused');
      assert.ok(!fs.existsSync(jpg));
      for (const encodings of ['tight copyrect', 'raw']) {
        fs.rmSync(jpg, { force: true });
        await promisify(execFile)('vncsnapshot', ['-quiet', '-passwd', passwd, '-encodings', encodings, '-quality', '100', a.display!, jpg], { timeout: 60_000 });
        const snap = await decodeJpeg(jpg);
        assert.deepEqual({ w: snap.width, h: snap.height }, { w: host.width, h: host.height });
        // JPEG is lossy: count pixels whose channels differ by more than a little.
        let off = 0;
        let lit = 0;
        for (let i = 0; i < host.data.length; i += 4) {
          let d = 0;
          for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(host.data[i + c] - snap.rgba[i + c]));
          if (d > 40) off++;
          if (host.data[i] > 128) lit++;
        }
        assert.ok(lit > 500, 'the screen shows text');
        assert.ok(off < host.width * host.height * 0.005, `${encodings}: ${off} of ${host.width * host.height} pixels differ`);
      }
    } finally {
      await t.client.call('domain.resume', { domain: 'vnc-a' });
    }
  });

  it("the GUI's console (the host's /vnc/<uuid> WebSocket) gets the guest; the host answers passwd= for it", async () => {
    const shell = await webShellSession(t.client);
    const { uuid } = await t.client.call('domain.info', { domain: 'vnc-a' });
    const query = libvirt ? `?connection=${encodeURIComponent(t.libvirtd!.uri)}` : '';
    const ws = new WebSocket(`ws://${shell.host}/vnc/${uuid}${query}`, { headers: { cookie: shell.cookie } });
    // The stream listens from the start: the host may send its RFB version in the same breath as
    // the WebSocket opens, and a message with no listener yet would be lost.
    const viewer = RfbClient.fromStream(createWebSocketStream(ws));
    try {
      // No password given: the viewer is offered security None, the host logs in upstream.
      await viewer.handshake({});
      assert.ok(viewer.width >= 640 && viewer.height >= 400, `${viewer.width}x${viewer.height}`);
      viewer.requestUpdate(false);
      const rects = await viewer.readUpdate(60_000);
      const covered = rects.reduce((n, r) => n + (r.pixels ? r.w * r.h : 0), 0);
      assert.equal(covered, viewer.width * viewer.height, 'a full frame of raw pixels');
    } finally {
      viewer.close();
    }
  });

  // virt-manager's way to a remote host's display: through the connection's own ssh, nc on the far side.
  it('over qemu+ssh, the display is reached through the same ssh, with the password from the XML', { skip: !libvirt ? 'a libvirt connection only' : sshdSkip() }, async (ctx) => {
    const sshd = await startSshd();
    ctx.after(() => sshd.stop());
    const uri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?socket=${t.libvirtd!.socket}&keyfile=${sshd.clientKey}`;
    const conn = libvirtConnection(uri, (u) => RpcClient.connect(u, { sshArgs: sshd.sshArgs() }));
    await conn.open();
    ctx.after(() => conn.close());
    for (const [name, password] of [['vnc-a', PASSWORD], ['vnc-b', undefined]] as const) {
      const up = await conn.openVnc!(name);
      assert.equal(up.password, password);
      assert.ok(!(up.stream instanceof net.Socket), 'a tunnel, not a direct connection');
      const viewer = RfbClient.fromStream(up.stream);
      try {
        await viewer.handshake({ password });
        assert.ok(viewer.width >= 640, `${name}: ${viewer.width}x${viewer.height}`);
      } finally {
        viewer.close();
      }
    }
  });

  it('send-key types on the guest keyboard (Linux key names, Shift held by the sequence)', async () => {
    const from = serial['vnc-b'].text.length;
    for (const ch of 'echo sendkey-ok | tee /dev/ttyS0 >/dev/null\n') {
      await t.client.call('domain.sendKey', { domain: 'vnc-b', codeset: 'linux', holdtimeMs: 0, keycodes: keysFor(ch) });
    }
    await serial['vnc-b'].wait(/sendkey-ok/, 60_000, from);
    // The same keys as USB HID usages: "echo usb-ok >/dev/ttyS0", Shift as usage 0xE1.
    const usb = serial['vnc-b'].text.length;
    const usages: number[][] = [[0x08], [0x06], [0x0b], [0x12], [0x2c], [0x18], [0x16], [0x05], [0x2d], [0x12], [0x0e], [0x2c],
      [0xe1, 0x37], [0x38], [0x07], [0x08], [0x19], [0x38], [0x17], [0x17], [0x1c], [0xe1, 0x16], [0x27], [0x28]];
    for (const keycodes of usages) await t.client.call('domain.sendKey', { domain: 'vnc-b', codeset: 'usb', holdtimeMs: 0, keycodes });
    await serial['vnc-b'].wait(/usb-ok/, 60_000, usb);
    // And as XT scancodes: "echo 42 >/dev/ttyS0".
    const xt = serial['vnc-b'].text.length;
    const xtKeys = [[0x12], [0x2e], [0x23], [0x18], [0x39], [0x05], [0x03], [0x39], [0x2a, 0x34], [0x35], [0x20], [0x12], [0x2f], [0x35], [0x14], [0x14], [0x15], [0x2a, 0x1f], [0x0b], [0x1c]];
    for (const keycodes of xtKeys) await t.client.call('domain.sendKey', { domain: 'vnc-b', codeset: 'xt', holdtimeMs: 0, keycodes });
    await serial['vnc-b'].wait(/42\r?\n/, 60_000, xt);
    // Text, typed key by key (domain.sendKeys, `domus send-text`).
    const typed = serial['vnc-b'].text.length;
    await t.client.call('domain.sendKeys', { domain: 'vnc-b', text: 'echo Typed-$((6*7)) >/dev/ttyS0\n' });
    await serial['vnc-b'].wait(/Typed-42/, 60_000, typed);
  });

  it('send-key refuses an unknown key name, naming it', async () => {
    const r = await cli(['send-key', 'vnc-b', 'KEY_LEFTCTRL', 'KEY_NOSUCH']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /error: .*KEY_NOSUCH/);
    const names = await cli(['send-key', 'vnc-b', '--codeset', 'xt', 'KEY_A']);
    assert.match(names.stderr, /KEY_A.*linux codeset/);
  });

  it('the serial console is shared: a second client gets the backlog and the output, a client that did not open it gets none', async () => {
    const connection = libvirt ? t.libvirtd!.uri : undefined;
    const second = await connectHost(t.paths, false, connection);
    const bystander = await connectHost(t.paths, false, connection);
    let overheard = 0;
    bystander.on('domain.serial', () => overheard++);
    try {
      await serial['vnc-b'].sh('echo earlier-$((6*7))');
      const watch = await SerialWatch.open(second, 'vnc-b');
      assert.match(watch.text, /earlier-42/, 'the backlog holds what the guest printed before this client opened the console');
      const from = watch.text.length;
      assert.equal(await serial['vnc-b'].sh('echo shared-$((6*7))'), 'shared-42\n');
      await watch.wait(/shared-42/, 30_000, from);
      // One client leaving does not close the line for the other.
      await second.call('domain.serialClose', { domain: 'vnc-b' });
      assert.equal(await serial['vnc-b'].sh('echo still-$((6*7))'), 'still-42\n');
      assert.doesNotMatch(watch.text.slice(from), /still-42/);
      assert.equal(overheard, 0, 'serial output went to a client that did not open the console');
    } finally {
      second.close();
      bystander.close();
    }
  });

  it('serial output made while the host is stopped arrives once, every byte in order', async () => {
    const s = serial['vnc-b'];
    const from = s.text.length;
    const count = 3000;
    // The guest waits a second before printing, so that it prints while the host is stopped: QEMU's
    // serial socket (the old chardev) then filled, and its log doubled the bytes it retried.
    await t.client.call('domain.serialWrite', { domain: 'vnc-b', data: Buffer.from(`sleep 1; seq 1 ${count}; echo seq-done-$((6*7))\n`).toString('base64') });
    await s.wait(/seq-done-\$/, 30_000, from);
    const host = t.daemonPid();
    process.kill(host, 'SIGSTOP');
    try {
      await sleep(3000);
    } finally {
      process.kill(host, 'SIGCONT');
    }
    await s.wait(/seq-done-42/, 60_000, from);
    const printed = s.text.slice(from).replace(/\r/g, '');
    const body = printed.slice(printed.indexOf('\n1\n') + 1, printed.indexOf('seq-done-42'));
    const expected = Array.from({ length: count }, (_, i) => `${i + 1}\n`).join('');
    const at = [...expected].findIndex((c, i) => body[i] !== c);
    assert.ok(body === expected, `serial output differs at byte ${at}: ${JSON.stringify(body.slice(Math.max(0, at - 20), at + 20))}, printed ${JSON.stringify(expected.slice(Math.max(0, at - 20), at + 20))}`);
  });

  it('domus console NAME attaches to the serial line, types into it and leaves with Ctrl+]', async () => {
    const child = spawn(process.execPath, [path.join(APP_ROOT, 'bin', 'domus.mjs'), ...(libvirt ? ['-c', t.libvirtd!.uri] : []), 'console', 'vnc-b'], {
      env: { ...process.env, DOMUS_HOME: t.home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await until(() => out.includes('Escape character is ^]'), 30_000, `domus console to attach (stderr: ${err})`);
      child.stdin.write('echo console-$((40+2))\n');
      await until(() => /console-42/.test(out), 30_000, 'the command typed in domus console to answer');
      child.stdin.write(Buffer.from([0x1d]));
      assert.equal(await exited, 0, err);
    } finally {
      child.kill();
    }
  });

  it('domus send-key NAME KEY_LEFTCTRL KEY_LEFTALT KEY_DELETE reboots the guest', async () => {
    const s = serial['vnc-b'];
    const from = s.text.length;
    const r = await cli(['send-key', 'vnc-b', 'KEY_LEFTCTRL', 'KEY_LEFTALT', 'KEY_DELETE']);
    assert.equal(r.code, 0, r.stderr);
    await s.wait(/reboot: Restarting system/, 120_000, from);
    await s.wait(/DOMUS-GUEST-READY/, BOOT, from);
    assert.equal((await t.client.call('domain.info', { domain: 'vnc-b' })).state, 'running');
  });

  it('a stopped domain has no serial console; after its next start the console opens again, and closes with its last viewer', async () => {
    await t.client.call('domain.destroy', { domain: 'vnc-b' });
    await assert.rejects(t.client.call('domain.serialOpen', { domain: 'vnc-b' }), /not running/);
    await t.client.call('domain.start', { domain: 'vnc-b' });
    serial['vnc-b'] = await SerialWatch.open(t.client, 'vnc-b');
    await serial['vnc-b'].wait(/DOMUS-GUEST-READY/, BOOT);
    // The shell may print its prompt only now: the answer is a line of what comes back.
    assert.match(await serial['vnc-b'].sh('echo again-$((6*7))'), /^again-42$/m);
    if (!libvirt) return;
    // libvirtd lets one client at a time have a console: while Domus's stream is open, another is refused.
    const other = await RpcClient.connect(t.libvirtd!.uri);
    try {
      const { dom } = await other.call('REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME', { name: 'vnc-b' });
      await assert.rejects(other.openStream('REMOTE_PROC_DOMAIN_OPEN_CONSOLE', { dom, dev_name: null, flags: 0 }), /Active console session exists/);
      await t.client.call('domain.serialClose', { domain: 'vnc-b' });
      const mine = await other.openStream('REMOTE_PROC_DOMAIN_OPEN_CONSOLE', { dom, dev_name: null, flags: 0 });
      await mine.abort();
    } finally {
      await other.close();
    }
  });

  // Domus's own runners outlive their host; libvirtd's guests are libvirtd's, whatever Domus host asks.
  it('a new host re-attaching to the guests knows their TCP displays; the password still guards them', { skip: libvirt && 'the guests of a libvirt connection are not the host\'s to re-attach' }, async () => {
    const before = await t.client.call('domain.vncDisplay', { domain: 'vnc-a' });
    await t.killHost();
    await t.reconnect();
    const after = await t.client.call('domain.vncDisplay', { domain: 'vnc-a' });
    assert.deepEqual(after.tcp, before.tcp);
    assert.equal((await cli(['vncdisplay', 'vnc-a'])).stdout, `127.0.0.1:${before.tcp!.port - 5900}\n`);
    const bad = await RfbClient.openTcp(after.tcp!.port);
    await assert.rejects(bad.handshake({ password: 'wrong' }), /security failure: authentication failed/i);
    bad.close();
    const good = await RfbClient.openTcp(after.tcp!.port);
    await good.handshake({ password: PASSWORD });
    good.close();
  });
});
