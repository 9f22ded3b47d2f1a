// qemu+ssh:// connections with the real parts: an sshd on 127.0.0.1, the system ssh spawned by a
// Domus host, a private libvirtd behind it. ssh's passphrase question reaches the API's clients
// (connection.prompt) and their answer (connection.answer) opens the connection; a wrong answer
// is asked again, a cancel fails the connection as "authentication cancelled"; keys the server
// refuses and a wrong host key fail clearly without a retry storm; a dropped tunnel reconnects.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ConnectionState, Events } from '../../../shared/api.js';
import { APP_ROOT } from '../../common/paths.js';
import { shellQuote } from '../../common/shell.js';
import { runCli, sleep, TestHost, until } from '../../testing/harness.js';
import { libvirtdSkip, startLibvirtd, type Libvirtd } from '../../testing/libvirtd.js';
import { PASSPHRASE, sshdSkip, startSshd, type Sshd } from '../../testing/sshd.js';

describe('qemu+ssh:// connections: prompts and failures', { skip: libvirtdSkip() || sshdSkip(), timeout: 240_000 }, () => {
  let daemon: Libvirtd;
  let sshd: Sshd;
  let t: TestHost;
  const prompts: Events['connection.prompt'][] = [];
  const ended: Events['connection.promptEnded'][] = [];
  const states: ConnectionState[] = [];

  before(async () => {
    daemon = await startLibvirtd();
    fs.writeFileSync(`${daemon.dir}/over-ssh.xml`, `<domain type='qemu'><name>over-ssh</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>`);
    assert.equal((await daemon.virsh('define', `${daemon.dir}/over-ssh.xml`)).code, 0);
    sshd = await startSshd();
    t = await TestHost.start();
    t.client.on('connection.prompt', (p) => prompts.push(p));
    t.client.on('connection.promptEnded', (e) => ended.push(e));
    t.client.on('connection.state', ({ connection }) => states.push(connection));
  });
  after(async () => {
    await t?.stop();
    await sshd?.stop();
    await daemon?.stop();
  });

  /** Each URI names an ssh command of its own, so that every test has its own connection. */
  const sshUri = (key: string, knownHosts = sshd.knownHosts): string =>
    `qemu+ssh://root@127.0.0.1:${sshd.port}/system?socket=${daemon.socket}&keyfile=${key}&command=${sshd.sshCommand(knownHosts)}`;
  const nextPrompt = async (uri: string, count: number): Promise<Events['connection.prompt']> => {
    await until(() => prompts.filter((p) => p.uri === uri).length >= count, 20_000, `ssh's question #${count} for ${uri}`);
    return prompts.filter((p) => p.uri === uri)[count - 1];
  };
  const stateOf = async (uri: string): Promise<ConnectionState | undefined> => (await t.client.call('connection.list', {})).connections.find((c) => c.uri === uri);

  test('a key with a passphrase: ssh asks through the API, the answer opens the connection, and the trace keeps no answer', async () => {
    const uri = sshUri(sshd.passphraseKey);
    const opening = t.client.call('connection.open', { uri });
    const asked = await nextPrompt(uri, 1);
    assert.match(asked.text, /^Enter passphrase for key '.*passphrase_key':$/);
    assert.equal(asked.secret, true);
    assert.deepEqual((await t.client.call('connection.prompts', {})).prompts, [asked], 'a client that comes later can list it');

    await t.client.call('connection.answer', { id: asked.id, answer: PASSPHRASE });
    const { connection } = await opening;
    assert.equal(connection.state, 'connected');
    assert.deepEqual(ended.filter((e) => e.id === asked.id), [{ uri, id: asked.id, outcome: 'answered' }]);
    const { domains } = await t.client.call('domain.list', { all: true }, { connection: uri });
    assert.deepEqual(domains.map((d) => d.name), ['over-ssh']);

    await assert.rejects(t.client.call('connection.answer', { id: asked.id, answer: PASSPHRASE }), /no ssh prompt .* is waiting/, 'an id answers once');
    await assert.rejects(t.client.call('connection.answer', { id: asked.id }), /give either answer or cancel/);
    const { backlog } = await t.client.call('trace.subscribe', { backlog: true, op: 'connection.answer' });
    await t.client.call('trace.unsubscribe', {});
    assert.ok(backlog.some((r) => (r.args as { answer?: string }).answer === '***'), 'the answer is traced as ***');
    assert.ok(!JSON.stringify(backlog).includes(PASSPHRASE), 'the passphrase is nowhere in the trace');
    assert.ok(!fs.readFileSync(`${t.home}/domusd.log`, 'utf8').includes(PASSPHRASE), 'nor in the host log');
    await t.client.call('connection.close', { uri });
  });

  test('a wrong passphrase is asked again; a cancel fails the connection as "authentication cancelled", with no retry', async () => {
    const uri = sshUri(sshd.passphraseKey);
    const adding = t.client.call('connection.add', { uri, autoconnect: true });
    const first = await nextPrompt(uri, 1);
    await t.client.call('connection.answer', { id: first.id, answer: 'not the passphrase' });
    const again = await nextPrompt(uri, 2);
    // ssh asks the same question again (its "Bad passphrase" is for terminals), with a new id.
    assert.equal(again.text, first.text);
    assert.notEqual(again.id, first.id);
    await t.client.call('connection.answer', { id: again.id, cancel: true });
    const { connection } = await adding;
    assert.equal(connection.state, 'failed');
    assert.equal(connection.error, `authentication cancelled: ssh asked "${again.text}" and the prompt was cancelled`);
    assert.equal(connection.retryAt, undefined, 'a cancelled login is not retried: it would only ask again');
    await sleep(2500);
    assert.equal(prompts.filter((p) => p.uri === uri).length, 2, 'no more questions');
    assert.equal((await stateOf(uri))?.state, 'failed');
    await t.client.call('connection.remove', { uri });
  });

  test('closing a connection while ssh asks cancels the question; the connection ends closed, not failed, and does not retry', async () => {
    const uri = sshUri(sshd.passphraseKey);
    const adding = t.client.call('connection.add', { uri, autoconnect: true });
    const asked = await nextPrompt(uri, 1);
    const closed = await t.client.call('connection.close', { uri });
    assert.equal(closed.connection.state, 'disconnected');
    assert.equal((await adding).connection.state, 'disconnected', 'the attempt under way ends as the close left it');
    await until(() => ended.some((e) => e.id === asked.id), 5000, 'the question to end');
    assert.equal(ended.find((e) => e.id === asked.id)?.outcome, 'cancelled');
    await sleep(2500);
    assert.equal((await stateOf(uri))?.state, 'disconnected', 'closed by the user: not failed');
    assert.equal(states.filter((s) => s.uri === uri && s.state === 'connecting').length, 1, 'and not tried again');
    await t.client.call('connection.remove', { uri });
  });

  test('keys the server refuses: a clear error, state failed, no retry storm', async () => {
    const uri = sshUri(sshd.refusedKey);
    const { connection } = await t.client.call('connection.add', { uri, autoconnect: true });
    assert.equal(connection.state, 'failed');
    assert.match(connection.error ?? '', /^authentication failed: ssh exited with status 255: .*Permission denied \(publickey\)/);
    assert.equal(connection.retryAt, undefined);
    await sleep(2500);
    assert.equal(states.filter((s) => s.uri === uri && s.state === 'connecting').length, 1, 'one attempt only');
    assert.ok(!prompts.some((p) => p.uri === uri), 'a key without a passphrase asks nothing');
    await t.client.call('connection.remove', { uri });
  });

  test('an unknown host key is asked about in the open; "yes" trusts it and connects', async () => {
    const knownHosts = `${daemon.dir}/empty_known_hosts`;
    fs.writeFileSync(knownHosts, '');
    const uri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?socket=${daemon.socket}&keyfile=${sshd.clientKey}&command=${sshd.sshCommand(knownHosts, 'ask')}`;
    const opening = t.client.call('connection.open', { uri });
    const asked = await nextPrompt(uri, 1);
    assert.match(asked.text, /^The authenticity of host '\[127\.0\.0\.1\]:\d+ .*' can't be established\.\nED25519 key fingerprint is SHA256:\S+\.\n[^]*Are you sure you want to continue connecting \(yes\/no\/\[fingerprint\]\)\?$/);
    assert.equal(asked.secret, false);
    await t.client.call('connection.answer', { id: asked.id, answer: 'yes' });
    assert.equal((await opening).connection.state, 'connected');
    assert.match(fs.readFileSync(knownHosts, 'utf8'), /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 /m, 'ssh remembers the key');
    await t.client.call('connection.close', { uri });
  });

  test('a wrong host key: the connection fails saying so', async () => {
    const uri = sshUri(sshd.clientKey, sshd.wrongKnownHosts);
    await assert.rejects(t.client.call('connection.open', { uri }), /authentication failed: .*Host key verification failed/);
    const state = await stateOf(uri);
    assert.equal(state?.state, 'failed');
    assert.match(state?.error ?? '', /Host key verification failed/);
    await t.client.call('connection.close', { uri });
  });

  test('domus -c URI without a terminal cannot answer: it says so and fails', async () => {
    const uri = sshUri(sshd.passphraseKey);
    const r = await runCli(t.home, ['-c', uri, 'list', '--all']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ssh asks "Enter passphrase for key '.*passphrase_key':", but there is no terminal to answer it on/);
    assert.match(r.stderr, /^error: failed to connect to the hypervisor$/m);
    assert.match(r.stderr, /^error: authentication cancelled: ssh asked .* and the prompt was cancelled$/m);
  });

  test('domus -c URI on a terminal asks there, without echo, and goes on with the answer', async () => {
    const uri = sshUri(sshd.passphraseKey);
    // script(1) gives the CLI a terminal; what is written to its stdin is typed on that terminal.
    const cmd = [process.execPath, path.join(APP_ROOT, 'bin', 'domus.mjs'), '-c', uri, 'list', '--all'].map(shellQuote).join(' ');
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env: { ...process.env, DOMUS_HOME: t.home }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Enter passphrase for key '.*passphrase_key': $/.test(out)) child.stdin.write(`${PASSPHRASE}\r`);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, out);
    assert.match(out, /^\s*-\s+over-ssh\s+shut off\s*$/m);
    assert.ok(!out.includes(PASSPHRASE), 'the passphrase is not echoed');
  });

  test('a tunnel that drops: the connection fails, says why, and reconnects with backoff', async () => {
    const uri = sshUri(sshd.clientKey);
    assert.equal((await t.client.call('connection.add', { uri, autoconnect: true })).connection.state, 'connected');
    // The host's ssh for this connection (its key file and this test's port are on its command line).
    const host = t.daemonPid();
    const ssh = fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .find((pid) => {
        try {
          const ppid = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
          const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          return ppid === host && argv.includes(sshd.clientKey) && argv.includes(String(sshd.port));
        } catch {
          return false;
        }
      });
    assert.ok(ssh, 'found the host\'s ssh');
    states.length = 0;
    process.kill(Number(ssh), 'SIGTERM');
    await until(() => states.some((s) => s.uri === uri && s.state === 'failed'), 15_000, 'the connection to fail');
    const failed = states.find((s) => s.uri === uri && s.state === 'failed')!;
    assert.ok(failed.error, 'says why');
    assert.ok(failed.retryAt, 'a retry is scheduled');
    await until(() => states.some((s) => s.uri === uri && s.state === 'connected'), 15_000, 'the connection to come back');
    const { domains } = await t.client.call('domain.list', { all: true }, { connection: uri });
    assert.deepEqual(domains.map((d) => d.name), ['over-ssh']);
    await t.client.call('connection.remove', { uri });
  });
});
