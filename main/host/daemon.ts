// The per-user host process (libvirt's session daemon): one per DOMUS_HOME, listening on
// <run>/domusd.sock and, on request, serving the web shell. Guests live in their own runner
// processes, so stopping or killing the host never stops a guest. Entry points: domusd.ts, Electron.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/fsutil.js';
import { claimPidLock, type PidLock } from '../common/locks.js';
import type { HostServices } from './api/session.js';
import { Host } from './host.js';
import { log } from './log.js';
import { APP_ROOT, hostPaths, type HostPaths } from '../common/paths.js';
import { listenLibvirt } from './api/libvirt-server.js';
import { listenLibvirtTls } from './api/libvirt-tls.js';
import { readListenConfig, tlsUri } from './migration/listen-config.js';
import { listenUnix, type UnixListener } from './api/unix.js';
import { WebShell } from './api/web-shell.js';

export interface RunningHost {
  host: Host;
  services: HostServices;
  stop(): Promise<void>;
}

/** Another host holds this home's lock (it may still be re-attaching, before its socket exists). */
export class HostLockedError extends Error {
  constructor(
    readonly home: string,
    readonly pid: number,
  ) {
    super(`another Domus host (pid ${pid || 'unknown'}) is running for ${home}`);
    this.name = 'HostLockedError';
  }
}

export async function runHost(paths: HostPaths, onStopped: () => void): Promise<RunningHost> {
  // Whatever the host and its children (runners, QEMU, QEMU's `cat` into a save) create is the
  // user's alone: saves hold guest memory, definitions VNC passwords, logs console output.
  process.umask(0o077);
  fs.mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  // Before anything else, the socket and the runners included: two hosts on one home would both
  // drive the same runners, and the later one would remove the earlier one's socket. A flock (see
  // common/locks.ts) rather than the socket answering: a host re-attaching has no socket yet, and a
  // host killed by SIGKILL leaves no stale lock behind.
  const claim = claimPidLock(paths.lock);
  if ('heldBy' in claim) throw new HostLockedError(paths.home, claim.heldBy);
  const lock: PidLock = claim;
  fs.mkdirSync(paths.run, { recursive: true, mode: 0o700 });
  const host = new Host(paths);
  let web: WebShell | undefined;
  let stopping: Promise<void> | undefined;
  const services: HostServices = {
    host,
    webShellUrl: async () => {
      web ??= new WebShell(services, path.join(APP_ROOT, 'dist', 'renderer'));
      await web.listen();
      return web.oneTimeUrl();
    },
    stop: () => void stop(),
  };
  let server: UnixListener;
  let libvirt: UnixListener;
  let libvirtTls: UnixListener | undefined;
  try {
    const tlsListen = readListenConfig(path.join(paths.home, 'domusd.conf'));
    await host.init();
    // The pid file first: whoever sees the socket answer may read it.
    writeFileAtomic(paths.daemonPid, `${process.pid}\n`);
    libvirt = await listenLibvirt(host, paths.libvirtSocket);
    if (tlsListen) {
      libvirtTls = await listenLibvirtTls(host, tlsListen);
      host.canonicalUri = tlsUri(host.drivers.defaultDriver.uri, tlsListen);
    }
    server = await listenUnix(services, paths.socket);
  } catch (err) {
    await libvirtTls?.close();
    lock.release();
    throw err;
  }
  log('info', `domusd ${process.pid} serving ${paths.home}`);

  function stop(): Promise<void> {
    stopping ??= (async () => {
      log('info', 'domusd stopping: running domains follow their on-stop policy');
      await host.stopAll();
      host.detachAll();
      web?.close();
      await Promise.all([server.close(), libvirt.close(), libvirtTls?.close()]);
      fs.rmSync(paths.socket, { force: true });
      fs.rmSync(paths.libvirtSocket, { force: true });
      fs.rmSync(paths.daemonPid, { force: true });
      lock.release();
      onStopped();
    })();
    return stopping;
  }
  return { host, services, stop };
}
