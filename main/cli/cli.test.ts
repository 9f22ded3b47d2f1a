// The `domus` CLI end to end: virsh's commands and output shapes, the background daemon it starts,
// and the error paths, against a real host and a real guest.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { processAlive } from '../common/fsutil.js';
import { hostPaths } from '../common/paths.js';
import { APP_ROOT } from '../common/paths.js';
import { SAMPLE_CMDLINE, guest, killLeftovers, runCli, until } from '../testing/harness.js';

// The daemon the CLI starts inherits a PATH without QEMU, so KVM definitions run on v86 here, with the
// warnings of that fallback (the QEMU engine's own CLI paths are in main/host/drivers/qemu/).
const V86_ONLY = { PATH: '/nonexistent-bin' };

describe('domus CLI', { timeout: 300_000 }, () => {
  let home: string;
  let work: string;
  const domus = (...args: string[]) => runCli(home, args, undefined, V86_ONLY);
  const xmlFile = (name: string, body: string): string => {
    const file = path.join(work, name);
    fs.writeFileSync(file, body);
    return file;
  };
  const pvXml = (name: string, kernel: string) => `<domain type='kvm'>
  <name>${name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <kernel>${kernel}</kernel>
    <initrd>${guest('initrd.gz')}</initrd>
    <cmdline>${SAMPLE_CMDLINE}</cmdline>
  </os>
  <devices>
    <controller type='usb' model='qemu-xhci'/>
    <input type='tablet' bus='usb'/>
    <serial type='pty'><target port='0'/></serial>
  </devices>
</domain>
`;

  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-cli-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-cli-work-'));
  });
  after(() => {
    killLeftovers(hostPaths(home));
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('defines, starts, lists, screenshots, destroys and undefines a guest', async () => {
    const status = await domus('daemon', 'status');
    assert.equal(status.stdout, 'domusd is not running\n');
    assert.equal(status.code, 3);

    const file = xmlFile('guest.xml', pvXml('cli-guest', guest('vmlinuz')));
    const def = await domus('define', file);
    assert.equal(def.code, 0, def.stderr);
    assert.equal(def.stdout, `Domain 'cli-guest' defined from ${file}\n\n`);
    assert.match(def.stderr, /warning: .*USB/i, 'what v86 cannot provide is reported as a warning');

    const daemon = await domus('daemon', 'status');
    assert.match(daemon.stdout, /^domusd is running \(pid \d+, v86:\/\/\/session/);

    // `event --loop` shows lifecycle events live, in virsh's words.
    const events = spawn(process.execPath, [path.join(APP_ROOT, 'bin', 'domus.mjs'), 'event', '--loop', '--domain', 'cli-guest'], {
      env: { ...process.env, DOMUS_HOME: home },
    });
    let eventOut = '';
    events.stdout.on('data', (d: Buffer) => (eventOut += d.toString()));
    // Ready once it sees an event: a description change emits 'Defined Updated'.
    await until(async () => {
      assert.equal((await domus('desc', 'cli-guest', '--config', 'a CLI test guest')).code, 0);
      return eventOut.includes("event 'lifecycle' for domain 'cli-guest': Defined Updated\n");
    }, 20_000, 'the event listener');

    const start = await domus('start', 'cli-guest');
    assert.equal(start.code, 0, start.stderr);
    assert.equal(start.stdout, "Domain 'cli-guest' started\n\n");
    await until(() => eventOut.includes("event 'lifecycle' for domain 'cli-guest': Started Booted\n"), 10_000, 'the Started event');

    // `start` returned; the guest keeps running in the background and a later `list` sees it.
    const list = await domus('list');
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^ Id\s+Name\s+State\n-+\n 1\s+cli-guest\s+running\n\n$/);
    assert.equal((await domus('list', '--all', '--name')).stdout, 'cli-guest\n\n');

    const info = await domus('dominfo', 'cli-guest');
    assert.match(info.stdout, /^Id:\s+1$/m);
    assert.match(info.stdout, /^State:\s+running$/m);
    assert.match(info.stdout, /^Max memory:\s+131072 KiB$/m);
    assert.match((await domus('dumpxml', 'cli-guest')).stdout, /<controller type='usb' model='qemu-xhci'\/>/);

    // The console shows the boot; wait until the guest is up before the screenshot.
    const pid = Number.parseInt(fs.readFileSync(path.join(hostPaths(home).run, (await uuidOf('cli-guest')), 'runner.pid'), 'utf8'), 10);
    const shotFile = path.join(work, 'shot.png');
    await until(async () => {
      const r = await domus('screenshot', 'cli-guest', shotFile);
      assert.equal(r.stdout, `Screenshot saved to ${shotFile}, with type of image/png\n\n`);
      const png = PNG.sync.read(fs.readFileSync(shotFile));
      let lit = 0;
      for (let i = 0; i < png.data.length; i += 4) if (png.data[i] | png.data[i + 1] | png.data[i + 2]) lit++;
      return lit > 1000;
    }, 90_000, 'text on the guest screen');

    // `console`: interactive serial, ended with Ctrl+].
    const con = spawn(process.execPath, [path.join(APP_ROOT, 'bin', 'domus.mjs'), 'console', 'cli-guest'], {
      env: { ...process.env, DOMUS_HOME: home },
    });
    let conOut = '';
    con.stdout.on('data', (d: Buffer) => (conOut += d.toString('latin1')));
    await until(() => conOut.includes("Connected to domain 'cli-guest'\nEscape character is ^] (Ctrl + ])"), 10_000, 'console banner');
    await until(() => conOut.includes('DOMUS-GUEST-READY'), 90_000, 'the boot log on the console');
    con.stdin.write('echo CON$((2*21))X\n');
    await until(() => conOut.includes('CON42X'), 30_000, 'the command output on the console');
    const conExit = new Promise<number | null>((r) => con.on('exit', r));
    con.stdin.write('\x1d');
    assert.equal(await conExit, 0);

    const destroy = await domus('destroy', 'cli-guest');
    assert.equal(destroy.stdout, "Domain 'cli-guest' destroyed\n\n");
    await until(() => eventOut.includes("event 'lifecycle' for domain 'cli-guest': Stopped Destroyed\n"), 10_000, 'the Stopped event');
    events.kill('SIGINT');
    await until(() => !processAlive(pid), 5000, 'the runner to exit');
    assert.match((await domus('list', '--all')).stdout, / -\s+cli-guest\s+shut off\n/);

    const undef = await domus('undefine', 'cli-guest');
    assert.equal(undef.stdout, "Domain 'cli-guest' has been undefined\n\n");
    assert.equal((await domus('list', '--all', '--name')).stdout, '\n');
  });

  it('boots a definition as virt-install writes it on a KVM host, with warnings for what v86 lacks', async () => {
    const fixture = fs.readFileSync(path.join(APP_ROOT, 'main', 'host', 'domain', 'fixtures', 'virt-install-debian12.xml'), 'utf8');
    const iso = /<source file='([^']+\.iso)'\/>/.exec(fixture);
    assert.ok(iso, 'the fixture has a CD-ROM with an ISO');
    const file = xmlFile('virt-install.xml', fixture.replace(iso[1], guest('tiny.iso')));
    const def = await domus('define', file);
    assert.equal(def.code, 0, def.stderr);
    assert.match(def.stderr, /warning: disk vda is qcow2; v86 needs raw images, so it is skipped/);
    assert.match(def.stderr, /warning: SPICE is not available/);
    const name = /<name>([^<]+)<\/name>/.exec(fixture)![1];
    const start = await domus('start', name);
    assert.equal(start.code, 0, start.stderr);
    const con = spawn(process.execPath, [path.join(APP_ROOT, 'bin', 'domus.mjs'), 'console', name], { env: { ...process.env, DOMUS_HOME: home } });
    let out = '';
    con.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    await until(() => out.includes('DOMUS-GUEST-READY'), 120_000, 'DOMUS-GUEST-READY from the virt-install definition');
    con.stdin.write('\x1d');
    assert.equal((await domus('destroy', name)).code, 0);
    assert.equal((await domus('undefine', name)).code, 0);
  });

  async function uuidOf(name: string): Promise<string> {
    return (await domus('domuuid', name)).stdout.trim();
  }

  it('reports bad XML, unknown domains and a missing kernel the way virsh does', async () => {
    const bad = await domus('define', xmlFile('bad.xml', '<domain type="kvm"><name>x</name><memory>12'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: Failed to define domain from .*bad\.xml\nerror: .*XML/);

    const unknown = await domus('start', 'no-such-domain');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, "error: failed to get domain 'no-such-domain'\n");

    assert.equal((await domus('define', xmlFile('nokernel.xml', pvXml('nokernel', '/does/not/exist/vmlinuz')))).code, 0);
    const start = await domus('start', 'nokernel');
    assert.equal(start.code, 1);
    assert.equal(
      start.stderr,
      "error: Failed to start domain 'nokernel'\nerror: operation failed: cannot access kernel '/does/not/exist/vmlinuz': No such file or directory\n",
    );
    assert.match((await domus('domstate', 'nokernel', '--reason')).stdout, /^shut off \(failed\)/);

    // An option the command does not take is refused before anything is done, as virsh does.
    const typo = await domus('destroy', 'nokernel', '--graceful');
    assert.equal(typo.code, 1);
    assert.equal(typo.stderr, "error: command 'destroy' doesn't support option --graceful\n");
    assert.match((await domus('dumpxml', 'nokernel', '--inactiv')).stderr, /^error: command 'dumpxml' doesn't support option --inactiv\n$/);
    // A missing domain argument names the command, as virsh's error does.
    for (const command of ['suspend', 'reset']) {
      const bare = await domus(command);
      assert.equal(bare.code, 1);
      assert.equal(bare.stderr, `error: command '${command}' requires <domain> option\n`);
    }

    const missing = await domus('define', path.join(work, 'absent.xml'));
    assert.match(missing.stderr, /^error: Failed to open file '.*absent\.xml': No such file or directory\n$/);
    // A libvirt URI is opened by the host (which runs with this PATH, where there is no ssh): it says
    // why it cannot, and serves on.
    const noSsh = await domus('-c', 'qemu+ssh://127.0.0.1:1/system', 'list');
    assert.equal(noSsh.code, 1);
    assert.equal(noSsh.stderr, 'error: failed to connect to the hypervisor\nerror: cannot run ssh: spawn ssh ENOENT\n');
    const bogus = await domus('-c', 'nonsense', 'list');
    assert.equal(bogus.code, 1);
    assert.match(bogus.stderr, /^error: failed to connect to the hypervisor\nerror: no connection driver available for nonsense\n$/);
    assert.equal((await domus('list')).code, 0, 'the host serves on');

    const stop = await domus('daemon', 'stop');
    assert.match(stop.stdout, /^domusd \(pid \d+\) stopped/);
  });
});
