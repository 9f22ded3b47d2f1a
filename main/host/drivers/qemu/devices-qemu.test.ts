// What the QEMU command line promises, checked in a real QEMU (TCG, stopped with -S: no guest boots):
// each device of a definition is in QEMU's device tree, and the disks have their cache modes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineSkip, until } from '../../../testing/harness.js';
import { engineCapabilities } from '../../capabilities/engines.js';
import { parseDomainXml } from '../../domain/xml.js';
import { buildArgv, createSerialFiles, qemuPaths } from './argv.js';
import { channelSocket } from './argv-devices.js';
import { findQemu } from './binary.js';
import { QmpClient } from './qmp.js';

const skip = engineSkip('qemu');

describe('QEMU provides the devices of a definition', { skip, timeout: 120_000 }, () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let qmp: QmpClient | undefined;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-qdev-'));
  });
  after(() => {
    qmp?.close();
    child?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('tablet, sound card, virtio video, USB controller, second serial port, agent channel and disk cache modes', async () => {
    const disk = (name: string) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, Buffer.alloc(1 << 20));
      return file;
    };
    const xml = `<domain type='qemu'><name>devices</name><uuid>5f0a3c2e-8d1b-4b7e-9c55-3a1e2b4c6d70</uuid><memory unit='MiB'>64</memory>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <devices>
        <disk type='file' device='disk'><driver name='qemu' type='raw' cache='writeback'/><source file='${disk('a.img')}'/><target dev='hda' bus='ide'/></disk>
        <disk type='file' device='disk'><driver name='qemu' type='raw' cache='writethrough'/><source file='${disk('b.img')}'/><target dev='hdb' bus='ide'/></disk>
        <controller type='usb' model='qemu-xhci'/>
        <input type='tablet' bus='usb'/>
        <sound model='ich9'/>
        <video><model type='virtio'/></video>
        <serial type='pty'><target port='0'/></serial>
        <serial type='pty'><target port='1'/></serial>
        <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
      </devices></domain>`;
    const stateDir = path.join(dir, 'run');
    fs.mkdirSync(stateDir);
    const { argv, report } = buildArgv(parseDomainXml(xml), {
      stateDir,
      accel: 'tcg',
      nvramDir: dir,
      networkSocket: () => '/nonexistent',
      caps: engineCapabilities('qemu', { machine: 'pc' }),
    });
    assert.deepEqual(report, { warnings: [], errors: [] });
    createSerialFiles(qemuPaths(stateDir));
    child = spawn(findQemu().path!, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
    const files = qemuPaths(stateDir);
    await Promise.race([until(() => fs.existsSync(files.qmp), 30_000, 'the QMP socket'), exited.then((code) => assert.fail(`QEMU exited (${code}): ${stderr}`))]);
    qmp = await QmpClient.connect(files.qmp);

    const tree = await qmp.execute<string>('human-monitor-command', { 'command-line': 'info qtree' });
    const devices = [...tree.matchAll(/dev: ([\w-]+), id "([^"]*)"/g)].map((m) => `${m[1]}#${m[2]}`);
    for (const expected of ['qemu-xhci#usb0', 'usb-tablet#input0', 'ich9-intel-hda#sound0', 'hda-duplex#sound0-codec0', 'virtio-vga#video0', 'isa-serial#serial1', 'virtio-serial-pci#virtio-serial0', 'virtserialport#channel0']) {
      assert.ok(devices.includes(expected), `${expected} in ${devices.join(' ')}`);
    }
    assert.equal(devices.filter((d) => d.startsWith('isa-serial#')).length, 2, "Domus's console and the second port");
    assert.match(tree, /dev: virtserialport, id "channel0"[\s\S]*?name = "org\.qemu\.guest_agent\.0"/);
    assert.ok(fs.existsSync(channelSocket(stateDir, 0)), "the channel's socket is in the run directory");
    const chardevs = await qmp.execute<{ label: string; filename: string }[]>('query-chardev');
    assert.match(chardevs.find((c) => c.label === 'serial1')?.filename ?? '', /^pty:\/dev\/pts\/\d+$/);

    const blocks = await qmp.execute<{ device: string; inserted?: { cache: { writeback: boolean; direct: boolean } } }[]>('query-block');
    const cache = (id: string) => blocks.find((b) => b.device === id)?.inserted?.cache;
    assert.deepEqual(cache('drive-hda'), { writeback: true, direct: false, 'no-flush': false });
    assert.deepEqual(cache('drive-hdb'), { writeback: false, direct: false, 'no-flush': false });
  });
});
