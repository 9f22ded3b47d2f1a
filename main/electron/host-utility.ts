// The host inside Electron's utility process. When a host daemon already serves this DOMUS_HOME
// (started by the CLI), this process relays to it instead, so there is only ever one host.
import net from 'node:net';
import path from 'node:path';
import type { MessagePortMain } from 'electron';
import type { HostUtilityRequest } from '../../shared/ipc.js';
import { JsonlConnection } from '../common/jsonl.js';
import { ApiSession } from '../host/api/session.js';
import { HostLockedError, runHost, type RunningHost } from '../host/daemon.js';
import { hostAnswers, hostPaths } from '../common/paths.js';
import { unixVncUpstream, VncLink, type VncUpstream } from '../host/api/vnc-link.js';
import { LOCAL_URIS } from '../host/connections/manager.js';

const paths = hostPaths();

function pipeVnc(port: MessagePortMain, upstream: VncUpstream | Promise<VncUpstream>): void {
  const link = new VncLink(upstream, {
    toViewer: (chunk) => port.postMessage(chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength)),
    closed: () => port.close(),
  });
  port.on('message', (e) => link.write(Buffer.from(e.data as ArrayBuffer)));
  port.on('close', () => link.close());
  port.start();
}

function relayApi(port: MessagePortMain): void {
  const sock = net.connect(paths.socket);
  const conn = new JsonlConnection(sock);
  conn.on('message', (msg) => port.postMessage(JSON.stringify(msg)));
  conn.on('close', () => port.close());
  port.on('message', (e) => {
    if (conn.isOpen) sock.write(String(e.data) + '\n');
  });
  port.on('close', () => conn.destroy());
  port.start();
}

function serveApi(running: RunningHost, port: MessagePortMain): void {
  const session = new ApiSession(running.services, { kind: 'electron', label: 'Electron window' }, (text) => port.postMessage(text));
  port.on('message', (e) => void session.receiveText(String(e.data)));
  port.on('close', () => session.close());
  port.start();
}

const JOIN_TIMEOUT_MS = 60_000;

/** This process's host, or undefined when another host serves this home (the API is relayed to it). */
async function startOrJoin(): Promise<RunningHost | undefined> {
  if (await hostAnswers(paths.socket)) return undefined;
  try {
    return await runHost(paths, () => process.exit(0));
  } catch (err) {
    if (!(err instanceof HostLockedError)) throw err;
    // That host is still starting (re-attaching to its guests): relay to it once it listens.
    const deadline = Date.now() + JOIN_TIMEOUT_MS;
    while (!(await hostAnswers(paths.socket))) {
      if (Date.now() > deadline) throw new Error(`${err.message}, but its socket ${paths.socket} did not answer within ${JOIN_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  }
}

async function main(): Promise<void> {
  const running = await startOrJoin();
  process.parentPort.on('message', (e) => {
    const port = e.ports[0];
    const req = e.data as HostUtilityRequest;
    if (req.kind === 'stop') {
      if (running) void running.stop();
      else process.exit(0);
      return;
    }
    if (!port) return;
    if (req.kind === 'vnc') {
      try {
        if (running) {
          const { host } = running;
          pipeVnc(
            port,
            req.connection === undefined || LOCAL_URIS.has(req.connection)
              ? unixVncUpstream(host.vncSocket(req.domain), host.vncPassword(req.domain))
              : host.connections.openVnc(req.connection, req.domain),
          );
        } else if (req.connection === undefined || LOCAL_URIS.has(req.connection)) pipeVnc(port, unixVncUpstream(path.join(paths.run, req.domain, 'vnc.sock'), undefined));
        // Relaying to a host daemon started by the CLI: its libvirt connections' displays are its own.
        else port.close();
      } catch {
        port.close();
      }
    } else if (req.kind === 'api') {
      if (running) serveApi(running, port);
      else relayApi(port);
    }
  });
}

void main();
