// A real libvirtd (private, per run) as a Domus connection: the CLI's `-c URI`, the API with a
// connection, libvirt's events arriving as Domus events, libvirt's errors in virsh's words, and a
// saved connection that fails and retries when its daemon goes away.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ConnectionState, Events } from '../../../shared/api.js';
import { runCli, TestHost, until, within } from '../../testing/harness.js';
import { libvirtdSkip, startLibvirtd, type Libvirtd } from '../../testing/libvirtd.js';

const skip = libvirtdSkip();

const xml = (name: string): string =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>` +
  `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;

describe('a libvirt host as a connection', { skip }, () => {
  let daemon: Libvirtd;
  let t: TestHost;
  const events: { name: keyof Events; data: unknown; connection?: string; at: number }[] = [];

  before(async () => {
    daemon = await startLibvirtd();
    // libvirtd probes QEMU's capabilities at the first QEMU domain (about 30 s under TCG on a loaded
    // machine): done here, so that the timings below are the connection's, not the probe's.
    await daemon.virsh('domcapabilities', '--virttype', 'qemu');
    t = await TestHost.start();
    for (const name of ['domain.defined', 'domain.lifecycle', 'domain.undefined', 'connection.state'] as const) {
      t.client.on(name, (data, connection) => events.push({ name, data, connection, at: Date.now() }));
    }
  });
  after(async () => {
    await t?.stop();
    await daemon?.stop();
  });

  const cli = (...args: string[]) => runCli(t.home, ['-c', daemon.uri, ...args]);

  test('domus -c URI: list, define, dominfo, start, destroy, dumpxml and undefine act on libvirtd', async () => {
    const empty = await cli('list', '--all');
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /Id\s+Name\s+State/);

    const file = `${daemon.dir}/one.xml`;
    fs.writeFileSync(file, xml('one'));
    const defined = await cli('define', file);
    assert.equal(defined.code, 0, defined.stderr);
    assert.match((await daemon.virsh('list', '--all', '--name')).stdout, /^one$/m);

    const info = await cli('dominfo', 'one');
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^State:\s+shut off$/m);
    assert.match(info.stdout, /^Max memory:\s+32768 KiB$/m);

    assert.equal((await cli('start', 'one')).code, 0);
    assert.match((await daemon.virsh('domstate', 'one', '--reason')).stdout, /running \(booted\)/);
    const listed = await cli('list');
    assert.match(listed.stdout, /^\s*\d+\s+one\s+running$/m);

    assert.equal((await cli('destroy', 'one')).code, 0);
    assert.match((await daemon.virsh('domstate', 'one', '--reason')).stdout, /shut off \(destroyed\)/);

    const dumped = await cli('dumpxml', 'one');
    assert.match(dumped.stdout, /<name>one<\/name>/);
    assert.match(dumped.stdout, /<emulator>\/usr\/bin\/qemu-system-x86_64<\/emulator>/, 'the XML is libvirt\'s own');

    assert.equal((await cli('undefine', 'one')).code, 0);
    assert.doesNotMatch((await daemon.virsh('list', '--all', '--name')).stdout, /^one$/m);
  });

  test('libvirt errors read as virsh prints them', async () => {
    const missing = await cli('dominfo', 'no-such-domain');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: failed to get domain 'no-such-domain'$/m);
    const bad = await runCli(t.home, ['-c', 'qemu+unix:///system?socket=/nonexistent/sock', 'list']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: failed to connect to the hypervisor$/m);
    assert.match(bad.stderr, /\/nonexistent\/sock/);
  });

  test('a domain defined by virsh on the host appears through events within a second, tagged with the connection', async () => {
    events.length = 0;
    await t.client.call('connection.open', { uri: daemon.uri });
    const file = `${daemon.dir}/two.xml`;
    fs.writeFileSync(file, xml('two'));
    const virsh = await daemon.virsh('define', file);
    assert.equal(virsh.code, 0, virsh.stderr);
    // libvirtd has defined it once virsh returns (the define itself can take long: libvirtd may
    // probe QEMU first); the event must be here within a second of that.
    const defineDone = Date.now();
    await until(() => events.some((e) => e.name === 'domain.defined' && e.connection === daemon.uri), 1000, 'domain.defined from libvirtd');
    const event = events.find((e) => e.name === 'domain.defined')!;
    const elapsed = event.at - defineDone;
    const defined = event.data as Events['domain.defined'];
    assert.equal(defined.domain.name, 'two');
    assert.equal(defined.domain.state, 'shutoff');
    assert.ok(elapsed < 1000, `event ${elapsed} ms after the define`);

    const { domains } = await t.client.call('domain.list', { all: true }, { connection: daemon.uri });
    assert.deepEqual(domains.map((d) => d.name), ['two']);
    const local = await t.client.call('domain.list', { all: true });
    assert.ok(!local.domains.some((d) => d.name === 'two'), 'the local list stays the host\'s own');

    await daemon.virsh('start', 'two');
    await until(() => events.some((e) => e.name === 'domain.lifecycle' && (e.data as Events['domain.lifecycle']).event === 'started'), 5000, 'started event');
    await daemon.virsh('destroy', 'two');
    await until(() => events.some((e) => e.name === 'domain.lifecycle' && (e.data as Events['domain.lifecycle']).event === 'stopped'), 5000, 'stopped event');
    await daemon.virsh('undefine', 'two');
    await until(() => events.some((e) => e.name === 'domain.undefined' && e.connection === daemon.uri), 5000, 'undefined event');

    const trace = await t.client.call('trace.subscribe', { backlog: true, op: 'domain.list' });
    await t.client.call('trace.unsubscribe', {});
    assert.ok(trace.backlog.some((r) => r.connection === daemon.uri), 'the trace names the connection of libvirt calls');
  });

  test('a saved connection survives a host restart; when libvirtd goes away it fails, retries with backoff, and comes back with it', async () => {
    const { connection } = await t.client.call('connection.add', { uri: daemon.uri, autoconnect: true });
    assert.equal(connection.state, 'connected');
    assert.match(connection.hypervisor ?? '', /^QEMU \d+\.\d+\.\d+$/);
    assert.ok((await t.client.call('connection.list', {})).connections.some((c) => c.uri === daemon.uri && c.autoconnect));

    // A new host on the same home reconnects by itself.
    await t.killHost();
    await t.reconnect();
    await until(
      async () => (await t.client.call('connection.list', {})).connections.some((c) => c.uri === daemon.uri && c.state === 'connected'),
      15_000,
      'the saved connection to come back after a host restart',
    );
    for (const name of ['connection.state'] as const) t.client.on(name, (data, connection) => events.push({ name, data, connection, at: Date.now() }));

    events.length = 0;
    await daemon.halt();
    const failed = await within(
      new Promise<ConnectionState>((resolve) => {
        t.client.on('connection.state', ({ connection: c }) => {
          if (c.uri === daemon.uri && c.state === 'failed') resolve(c);
        });
      }),
      15_000,
      'the connection to fail after libvirtd stopped',
    );
    assert.ok(failed.error, 'says why');
    assert.ok(failed.retryAt && failed.retryAt > Date.now() - 1000, 'a retry is scheduled');
    const call = await t.client.call('domain.list', { all: true }, { connection: daemon.uri }).catch((err: Error) => err);
    assert.match((call as Error).message, /is (failed|connecting)/);

    await daemon.restart();
    await until(
      async () => (await t.client.call('connection.list', {})).connections.some((c) => c.uri === daemon.uri && c.state === 'connected'),
      40_000,
      'the connection to come back once libvirtd is back',
    );
    const { domains } = await t.client.call('domain.list', { all: true }, { connection: daemon.uri });
    assert.deepEqual(domains.map((d) => d.name), [], 'calls work again (the tests above left no domain)');
  });
});
