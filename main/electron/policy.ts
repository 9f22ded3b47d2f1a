// What the Electron shell lets its windows do, as pure functions (no Electron import) so they are
// tested under plain Node: a window stays on the app's own pages, opens no other window than the
// app's console window, and a MessagePort to the host goes only to a page of ours that asked for it
// properly. The app has no links to the web, so nothing is handed to the system browser.
import type { PortRequest } from '../../shared/ipc.js';

/** The origin of the app's pages (main.ts serves the renderer on this privileged scheme). */
export const APP_ORIGIN = 'domus://app';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** shared/api.ts's ConnectionUri, without zod (the preload imports this module). */
const CONNECTION_URI = /^[a-z][a-z0-9]*(\+[a-z]+)?:\/\/[^\s]{0,1000}$/;

function parse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** True for a page of the app itself (domus://app/...); anything else, file: and about: included, is not. */
export function isAppUrl(url: string): boolean {
  const u = parse(url);
  // Chromium lowercases a standard scheme's host; Node's URL keeps a custom scheme's as written.
  return u !== undefined && u.protocol === 'domus:' && u.host.toLowerCase() === 'app' && u.username === '' && u.password === '';
}

/** will-navigate / will-redirect: a window may only move between the app's own pages. */
export function navigationAllowed(url: string): boolean {
  return isAppUrl(url);
}

/** A console route's domain key: a UUID, or a libvirt connection's URI, a space and a UUID (renderer/src/lib/connections.ts). */
function isDomainKey(encoded: string): boolean {
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    return false;
  }
  const space = key.lastIndexOf(' ');
  return space < 0 ? UUID.test(key) : UUID.test(key.slice(space + 1)) && CONNECTION_URI.test(key.slice(0, space));
}

/** setWindowOpenHandler: the renderer's console-only route (#/console/<key>/window) opens as a Domus window; all else is denied. */
export function windowOpenDecision(url: string): 'console-window' | 'deny' {
  if (!isAppUrl(url)) return 'deny';
  const u = new URL(url);
  const m = /^#\/console\/([^/]+)\/window$/.exec(u.hash);
  return u.pathname === '/index.html' && u.search === '' && m && isDomainKey(m[1]) ? 'console-window' : 'deny';
}

/** A port request (shared/ipc.ts's PortRequest) that passed the check: a VNC channel names its domain. */
export type CheckedPortRequest = { kind: 'api'; requestId: string } | { kind: 'vnc'; domain: string; connection?: string; requestId: string };

export interface PortRequestSender {
  /** The URL of the frame that sent the IPC message (undefined when Electron no longer knows it). */
  frameUrl: string | undefined;
  /** The sender is its window's top frame (not an iframe in it). */
  mainFrame: boolean;
  /** The sender's webContents belongs to one of the windows the app opened. */
  ourWindow: boolean;
}

/** The port-request IPC handler's check: who asked, and whether the request is well-formed. */
export function checkPortRequest(sender: PortRequestSender, req: unknown): { ok: true; request: CheckedPortRequest } | { ok: false; reason: string } {
  if (!sender.ourWindow) return { ok: false, reason: 'the sender is not a window of this app' };
  if (!sender.mainFrame) return { ok: false, reason: 'the sender is a subframe' };
  if (sender.frameUrl === undefined || !isAppUrl(sender.frameUrl)) return { ok: false, reason: `the sender's page ${sender.frameUrl ?? '(unknown)'} is not the app's` };
  if (typeof req !== 'object' || req === null || Array.isArray(req)) return { ok: false, reason: 'the request is not an object' };
  const { kind, domain, connection, requestId, ...rest } = req as Record<keyof PortRequest, unknown>;
  if (Object.keys(rest).length) return { ok: false, reason: `unknown fields: ${Object.keys(rest).join(', ')}` };
  if (typeof requestId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(requestId)) return { ok: false, reason: 'requestId is not a short identifier' };
  if (kind === 'api') {
    if (domain !== undefined || connection !== undefined) return { ok: false, reason: 'an API channel takes no domain' };
    return { ok: true, request: { kind, requestId } };
  }
  if (kind === 'vnc') {
    // The uuid becomes a path under the host's run directory: nothing else may get through.
    if (typeof domain !== 'string' || !UUID.test(domain)) return { ok: false, reason: 'a VNC channel needs a domain uuid' };
    if (connection === undefined) return { ok: true, request: { kind, domain, requestId } };
    if (typeof connection !== 'string' || !CONNECTION_URI.test(connection)) return { ok: false, reason: 'the connection is not a libvirt URI' };
    return { ok: true, request: { kind, domain, connection, requestId } };
  }
  return { ok: false, reason: `unknown channel kind ${JSON.stringify(kind)}` };
}
