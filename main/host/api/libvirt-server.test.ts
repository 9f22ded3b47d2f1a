// Debian's virsh against the host's libvirt socket: the same commands against Domus and a private
// libvirtd give the same output where libvirt's semantics say they must; a v86 sample guest is
// started, paused, ballooned, shut down and destroyed by virsh while `virsh event --loop` sees each
// lifecycle event; hostile bytes on the socket cost only their own connection.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePacket } from '../libvirt/packet.js';
import { REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION } from '../libvirt/protocol/remote.js';
import { VIR_NET_CALL, VIR_NET_OK } from '../libvirt/protocol/virnet.js';
import { RpcClient } from '../libvirt/rpc-client.js';
import { LibvirtError, VIR_ERR } from '../libvirt/errors.js';
import { libvirtdSkip, runVirsh, startLibvirtd, type Libvirtd, type VirshResult } from '../../testing/libvirtd.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, guest, until } from '../../testing/harness.js';

const BOOT = 600_000;
const uriOf = (t: TestHost): string => `qemu+unix:///session?socket=${t.paths.libvirtSocket}`;

function ok(r: VirshResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

/** dominfo's "Field:   value" lines as a map. */
function fields(out: string): Map<string, string> {
  return new Map(out.split('\n').flatMap((l) => {
    const m = /^([^:]+):\s+(.*)$/.exec(l);
    return m ? [[m[1], m[2].trim()] as [string, string]] : [];
  }));
}

describe('virsh against Domus and a real libvirtd', { skip: libvirtdSkip(), timeout: 600_000 }, () => {
  let t: TestHost;
  let lv: Libvirtd;
  const name = `lvs-${process.pid}`;
  const uuid = 'a5ed0c91-ec2c-4807-adc1-deef395a74bb';
  const xmlFile = (): string => path.join(t.home, 'dom.xml');
  const both = async (...args: string[]): Promise<[VirshResult, VirshResult]> => [await runVirsh(uriOf(t), args), await lv.virsh(...args)];

  before(async () => {
    [t, lv] = await Promise.all([TestHost.start(), startLibvirtd()]);
    fs.writeFileSync(
      xmlFile(),
      `<domain type='qemu'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='KiB'>131072</memory>
  <currentMemory unit='KiB'>122880</currentMemory>
  <vcpu>1</vcpu>
  <os><type arch='i686'>hvm</type><kernel>${guest('vmlinuz')}</kernel><initrd>${guest('initrd.gz')}</initrd><cmdline>${SAMPLE_CMDLINE}</cmdline></os>
  <features><acpi/></features>
</domain>
`,
    );
  });
  after(async () => {
    await Promise.all([t?.stop(), lv?.stop()]);
  });

  it('define, list --all, dominfo, domstate --reason, dumpxml, undefine give the same answers', async () => {
    const [dDomus, dLv] = await both('define', xmlFile());
    assert.equal(ok(dDomus, 'Domus define'), ok(dLv, 'libvirtd define'));
    assert.match(dDomus.stdout, new RegExp(`Domain '${name}' defined from `));

    const [lDomus, lLv] = await both('list', '--all');
    assert.equal(ok(lDomus, 'Domus list'), ok(lLv, 'libvirtd list'), 'the same table, column for column');
    assert.match(lDomus.stdout, new RegExp(`^ -\\s+${name}\\s+shut off$`, 'm'));

    const [iDomus, iLv] = await both('dominfo', name);
    const fd = fields(ok(iDomus, 'Domus dominfo'));
    const fl = fields(ok(iLv, 'libvirtd dominfo'));
    for (const f of ['Id', 'Name', 'UUID', 'OS Type', 'State', 'CPU(s)', 'Max memory', 'Used memory', 'Persistent', 'Autostart', 'Managed save']) {
      assert.equal(fd.get(f), fl.get(f), `dominfo ${f}`);
    }
    assert.equal(fd.get('Used memory'), '122880 KiB');

    const [sDomus, sLv] = await both('domstate', '--reason', name);
    assert.equal(ok(sDomus, 'Domus domstate'), ok(sLv, 'libvirtd domstate'));
    assert.equal(sDomus.stdout.trim(), 'shut off (unknown)');

    const dump = ok(await runVirsh(uriOf(t), ['dumpxml', name]), 'Domus dumpxml');
    assert.equal(dump.trim(), (await t.client.call('domain.xml', { domain: name })).xml.trim(), "dumpxml is Domus's XML");

    const [nDomus, nLv] = await both('dominfo', 'no-such');
    assert.equal(nDomus.code, 1);
    assert.equal(nDomus.stderr.split('\n')[0], nLv.stderr.split('\n')[0]);
    assert.equal(nDomus.stderr.split('\n')[0], "error: failed to get domain 'no-such'");

    const [rDomus, rLv] = await both('-r', 'start', name);
    assert.equal(rDomus.code, 1);
    assert.equal(rDomus.stderr, rLv.stderr, 'a read-only connection is refused what changes a domain');
    assert.match(rDomus.stderr, /read only access prevents virDomainCreate/);

    const [uDomus, uLv] = await both('undefine', name);
    assert.equal(ok(uDomus, 'Domus undefine'), ok(uLv, 'libvirtd undefine'));
    const [eDomus, eLv] = await both('list', '--all');
    assert.equal(eDomus.stdout, eLv.stdout);
    assert.doesNotMatch(eDomus.stdout, new RegExp(name));
  });

  it('an unimplemented procedure is refused as libvirt refuses it, and the connection goes on', async () => {
    const r = await runVirsh(uriOf(t), ['domblklist', 'no-such']);
    assert.equal(r.code, 1);
    const client = await RpcClient.connect(uriOf(t), { keepaliveInterval: 0 });
    try {
      await assert.rejects(client.call('REMOTE_PROC_NODE_GET_INFO'), (err: LibvirtError) => {
        assert.equal(err.code, VIR_ERR.NO_SUPPORT);
        assert.equal(err.message, 'this function is not supported by the connection driver: virNodeGetInfo');
        return true;
      });
      assert.deepEqual(await client.call('REMOTE_PROC_CONNECT_GET_TYPE'), { type: 'Domus' });
    } finally {
      await client.close();
    }
  });
});

describe('virsh drives a v86 guest on Domus', { timeout: 1_200_000 }, () => {
  let t: TestHost;
  let events = '';
  let watcher: ReturnType<typeof spawn>;
  const virsh = (...args: string[]): Promise<VirshResult> => runVirsh(uriOf(t), args);
  const sawEvent = (text: string): Promise<void> => until(() => events.includes(`event 'lifecycle' for domain 'lv86': ${text}`), 60_000, `virsh event to print ${text}\n${events}`);

  before(async () => {
    t = await TestHost.start();
    watcher = spawn('virsh', ['-c', uriOf(t), 'event', '--loop', '--all'], { env: { ...process.env, LC_ALL: 'C' } });
    watcher.stdout!.on('data', (d: Buffer) => (events += d.toString()));
    // virsh registers its callbacks right after connecting; the first one is the lifecycle callback.
    await until(() => t.client.call('trace.subscribe', { op: 'virConnectDomainEventCallbackRegisterAny', backlog: true }).then((r) => r.backlog.length > 0), 30_000, 'virsh event to register');
    await t.client.call('trace.unsubscribe', {});
    await createOn(t.client, { name: 'lv86', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } }, 'v86');
    // A VNC server on a TCP port, for vncdisplay.
    const { xml } = await t.client.call('domain.xml', { domain: 'lv86', inactive: true, secure: true });
    await t.client.call('domain.define', { xml: xml.replace(/<graphics type='vnc'[^>]*\/>/, '').replace('</devices>', "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/></devices>") });
  });
  after(async () => {
    watcher?.kill();
    await t?.stop();
  });

  it('start, vncdisplay, suspend/resume, setmem and dommemstat, shutdown, destroy; events and the trace follow', async () => {
    await sawEvent('Defined Added');
    await sawEvent('Defined Updated');
    assert.equal(ok(await virsh('start', 'lv86'), 'start').trim(), "Domain 'lv86' started");
    await sawEvent('Started Booted');
    const serial = await SerialWatch.open(t.client, 'lv86');
    await serial.wait(/DOMUS-GUEST-READY/, BOOT);
    assert.equal(ok(await virsh('domstate', '--reason', 'lv86'), 'domstate').trim(), 'running (booted)');
    assert.match(ok(await virsh('list'), 'list'), /^ 1\s+lv86\s+running$/m);
    const vnc = await t.client.call('domain.vncDisplay', { domain: 'lv86' });
    assert.ok(vnc.display, JSON.stringify(vnc));
    assert.equal(ok(await virsh('vncdisplay', 'lv86'), 'vncdisplay').trim(), vnc.display);

    ok(await virsh('suspend', 'lv86'), 'suspend');
    await sawEvent('Suspended Paused');
    assert.equal(ok(await virsh('domstate', '--reason', 'lv86'), 'domstate').trim(), 'paused (user)');
    ok(await virsh('resume', 'lv86'), 'resume');
    await sawEvent('Resumed Unpaused');

    ok(await virsh('setmem', 'lv86', '100M'), 'setmem');
    assert.equal(fields(ok(await virsh('dominfo', 'lv86'), 'dominfo')).get('Used memory'), '102400 KiB');
    await until(async () => /^actual 102400$/m.test((await virsh('dommemstat', 'lv86')).stdout), 60_000, 'the balloon to reach 100 MiB');
    const stats = ok(await virsh('dommemstat', 'lv86'), 'dommemstat');
    assert.match(stats, /^rss \d+$/m);

    ok(await virsh('shutdown', 'lv86'), 'shutdown');
    await sawEvent('Stopped Shutdown');
    assert.equal(ok(await virsh('domstate', '--reason', 'lv86'), 'domstate').trim(), 'shut off (shutdown)');

    ok(await virsh('start', 'lv86'), 'start again');
    ok(await virsh('destroy', 'lv86'), 'destroy');
    await sawEvent('Stopped Destroyed');
    assert.equal(ok(await virsh('domstate', '--reason', 'lv86'), 'domstate').trim(), 'shut off (destroyed)');
    ok(await virsh('undefine', 'lv86'), 'undefine');
    await sawEvent('Undefined Removed');

    const { backlog } = await t.client.call('trace.subscribe', { op: 'virDomain', backlog: true });
    await t.client.call('trace.unsubscribe', {});
    const ops = backlog.filter((r) => r.client?.kind === 'virsh').map((r) => `${r.op}${r.ok ? '' : '!'}`);
    for (const op of ['virDomainCreate', 'virDomainSuspend', 'virDomainResume', 'virDomainSetMemoryFlags', 'virDomainShutdown', 'virDomainDestroy', 'virDomainUndefineFlags']) {
      assert.ok(ops.includes(op), `${op} in the trace: ${ops.join(' ')}`);
    }
    assert.ok(backlog.some((r) => r.op === 'virDomainDestroy' && r.domain === 'lv86'), 'calls name their domain');
  });

  it('hostile bytes cost only their own connection', async () => {
    const send = (bytes: Buffer): Promise<void> =>
      new Promise((resolve) => {
        const s = net.connect(t.paths.libvirtSocket);
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.on('data', () => s.destroy());
        s.end(bytes);
      });
    // A length beyond libvirt's maximum, a header shorter than its 24 bytes, a call to an unknown
    // program, a known procedure whose arguments are garbage.
    await send(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    await send(Buffer.from([0, 0, 0, 8, 1, 2, 3, 4]));
    await send(encodePacket({ prog: 0x1234, vers: 1, proc: 1, type: VIR_NET_CALL, serial: 1, status: VIR_NET_OK }));
    await send(encodePacket({ prog: REMOTE_PROGRAM, vers: REMOTE_PROTOCOL_VERSION, proc: 23, type: VIR_NET_CALL, serial: 2, status: VIR_NET_OK }, Buffer.from([0xff, 0xff, 0xff, 0xff])));
    assert.equal(ok(await virsh('list', '--all'), 'list after the garbage').split('\n')[0].trim(), 'Id   Name   State');
    assert.ok((fs.statSync(t.paths.libvirtSocket).mode & 0o777) === 0o600, 'the socket is owner-only');
  });
});
