// Where Domus keeps its files. DOMUS_HOME overrides the XDG data dir, as the README says.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePrivateDir, tightenTree } from './fsutil.js';

export interface HostPaths {
  home: string;
  /** Persistent definitions: one libvirt XML file per domain (<uuid>.xml). */
  domains: string;
  /** Runtime state: the daemon socket and one state dir per running domain. */
  run: string;
  socket: string;
  /** libvirt's RPC protocol for virsh and other libvirt clients (api/libvirt-server.ts). */
  libvirtSocket: string;
  /** Held (flock) by the one host serving this home, for as long as it lives. */
  lock: string;
  daemonPid: string;
  log: string;
  /** The `default` storage pool's directory (created on first use). */
  images: string;
  /** Storage pool definitions: one JSON file per pool (<name>.json). */
  pools: string;
  /** One empty file per autostart domain (<uuid>). */
  autostart: string;
  /** Managed saves (<uuid>.state). */
  saves: string;
  /** Logs kept after a domain stops (qemu-<name>.log). */
  logs: string;
  /** Core dumps of guests that panicked with <on_crash>coredump-*</on_crash> (<name>-<time>.core). */
  dumps: string;
  /** UEFI variable stores of domains whose <nvram> names no file (<uuid>_VARS.fd). */
  nvram: string;
  /** Domain snapshots: <uuid>/snaps/<name>/ (snapshot.xml, memory state, disk stores, thumbnail), <uuid>/current. */
  snapshots: string;
  /** Virtual network definitions (<name>.xml, libvirt's network XML). */
  networks: string;
  /** One directory per running virtual network switch (run/networks/<name>/). */
  networkRun: string;
}

export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOMUS_HOME) return path.resolve(env.DOMUS_HOME);
  const data = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'domus');
}

export function hostPaths(home: string = resolveHome()): HostPaths {
  const run = path.join(home, 'run');
  return {
    home,
    domains: path.join(home, 'domains'),
    run,
    socket: path.join(run, 'domusd.sock'),
    libvirtSocket: path.join(home, 'libvirt-sock'),
    lock: path.join(home, 'domusd.lock'),
    daemonPid: path.join(run, 'domusd.pid'),
    log: path.join(home, 'domusd.log'),
    images: path.join(home, 'images'),
    pools: path.join(home, 'storage', 'pools'),
    autostart: path.join(home, 'autostart'),
    saves: path.join(home, 'save'),
    logs: path.join(home, 'logs'),
    dumps: path.join(home, 'dump'),
    nvram: path.join(home, 'nvram'),
    snapshots: path.join(home, 'snapshots'),
    networks: path.join(home, 'networks'),
    networkRun: path.join(run, 'networks'),
  };
}

/**
 * Makes DOMUS_HOME and everything in it that can hold guest memory, VNC passwords or console
 * output owner-only (0700 directories, no group/other bits on files), creating the directories
 * and tightening what an earlier version left looser. Returns the paths it had to tighten.
 */
export function securePrivateFiles(paths: HostPaths): string[] {
  const changed = fs.existsSync(paths.home) && fs.statSync(paths.home).mode & 0o077 ? [paths.home] : [];
  ensurePrivateDir(paths.home);
  for (const dir of [paths.domains, paths.autostart, paths.saves, paths.run, paths.logs, paths.dumps, paths.nvram, paths.snapshots]) {
    ensurePrivateDir(dir);
    changed.push(...tightenTree(dir));
  }
  // The host's own files at the top (domusd.log, the accelerator cache…); the pools and downloads
  // directories hold disk images, which the 0700 home already keeps private.
  for (const entry of fs.readdirSync(paths.home, { withFileTypes: true })) {
    if (entry.isFile()) changed.push(...tightenTree(path.join(paths.home, entry.name)));
  }
  return changed;
}

/** The repository (or installed app) root: dist/ and node_modules/ live under it. */
export const APP_ROOT = findAppRoot(path.dirname(fileURLToPath(import.meta.url)));

function findAppRoot(from: string): string {
  // Both the sources (main/common/) and the bundles (dist/host/, dist/cli/…) sit two levels below the root.
  return path.resolve(from, '..', '..');
}

/** True when another host already answers on this home's socket. */
export function hostAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!fs.existsSync(socketPath)) return resolve(false);
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
