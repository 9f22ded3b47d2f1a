// Test support: an OpenSSH server on 127.0.0.1 with a host key and client keys made for the test
// (one plain, one with a passphrase, one the server does not accept), and the ssh options that pin
// that host key (known_hosts written by the test, strict checking), also as an ssh command for
// libvirt URIs' `command=` (a Domus host spawns ssh itself and takes no ssh options).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { shellQuote } from '../common/shell.js';
import { freePort } from './libvirtd.js';

export interface Sshd {
  port: number;
  /** The client's private key (authorized for root). */
  clientKey: string;
  /** A client key authorized for root whose file needs PASSPHRASE. */
  passphraseKey: string;
  /** A client key the server does not accept. */
  refusedKey: string;
  /** Options for ssh: this test's known_hosts only, strict host key checking (or 'ask'), no user config. */
  sshArgs(knownHosts?: string, strict?: 'yes' | 'ask'): string[];
  /** An executable that runs ssh with sshArgs(knownHosts, strict), this test's keys only and no agent. */
  sshCommand(knownHosts?: string, strict?: 'yes' | 'ask'): string;
  /** A known_hosts file that pins this server's real host key. */
  knownHosts: string;
  /** A known_hosts file that pins another key for the same address (the wrong-host-key case). */
  wrongKnownHosts: string;
  stop(): Promise<void>;
}

export function sshdSkip(): string | false {
  if (process.getuid?.() !== 0) return 'sshd tests need root';
  for (const bin of ['/usr/sbin/sshd', '/usr/bin/ssh', '/usr/bin/ssh-keygen']) {
    if (!fs.existsSync(bin)) return `${bin} is missing (build/install-deps.sh installs openssh-server, openssh-client)`;
  }
  return false;
}

export const PASSPHRASE = 'domus test passphrase';

function keygen(file: string, passphrase = ''): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'domus-test', '-f', file]);
  return fs.readFileSync(`${file}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
}

export async function startSshd(): Promise<Sshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-sshd-'));
  const port = await freePort();
  const hostKey = keygen(path.join(dir, 'host_key'));
  const otherKey = keygen(path.join(dir, 'other_key'));
  const clientPub = keygen(path.join(dir, 'client_key'));
  const passphrasePub = keygen(path.join(dir, 'passphrase_key'), PASSPHRASE);
  keygen(path.join(dir, 'refused_key'));
  fs.writeFileSync(path.join(dir, 'authorized_keys'), `${clientPub}\n${passphrasePub}\n`);
  const knownHosts = path.join(dir, 'known_hosts');
  const wrongKnownHosts = path.join(dir, 'wrong_known_hosts');
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  fs.writeFileSync(wrongKnownHosts, `[127.0.0.1]:${port} ${otherKey}\n`);
  fs.writeFileSync(
    path.join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      `PidFile ${dir}/sshd.pid`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // the temp dir is not the layout StrictModes expects of a home directory
      'StrictModes no',
    ].join('\n') + '\n',
  );
  // sshd's privilege-separation directory, which its Debian service would create
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const log = fs.openSync(path.join(dir, 'sshd.log'), 'a');
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const onExit = (): void => void child.kill('SIGKILL');
  process.on('exit', onExit);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    process.off('exit', onExit);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(true)).on('error', () => resolve(false));
      s.once('connect', () => s.destroy());
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const text = fs.readFileSync(path.join(dir, 'sshd.log'), 'utf8');
      await stop();
      throw new Error(`sshd did not start: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const sshArgs = (kh = knownHosts, strict = 'yes'): string[] => ['-F', '/dev/null', '-o', `UserKnownHostsFile=${kh}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', `StrictHostKeyChecking=${strict}`];
  let commands = 0;
  const sshCommand = (kh = knownHosts, strict: 'yes' | 'ask' = 'yes'): string => {
    const file = path.join(dir, `ssh-${++commands}`);
    const args = [...sshArgs(kh, strict), '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none'].map(shellQuote).join(' ');
    fs.writeFileSync(file, `#!/bin/sh\nexec /usr/bin/ssh ${args} "$@"\n`, { mode: 0o700 });
    return file;
  };
  return {
    port,
    clientKey: path.join(dir, 'client_key'),
    passphraseKey: path.join(dir, 'passphrase_key'),
    refusedKey: path.join(dir, 'refused_key'),
    knownHosts,
    wrongKnownHosts,
    sshArgs,
    sshCommand,
    stop,
  };
}
