// A libvirt domain's consoles, as virt-manager and virsh reach them: the VNC display read from the
// live XML (vncdisplay, and the stream the host's own viewers are linked to), screenshots
// (REMOTE_PROC_DOMAIN_SCREENSHOT: QEMU sends PPM, made PNG here), keys (REMOTE_PROC_DOMAIN_SEND_KEY)
// and the serial console (REMOTE_PROC_DOMAIN_OPEN_CONSOLE), one stream per domain shared by the
// clients that opened it, with a backlog as the host keeps for its own guests.
//
// virDomainOpenGraphicsFD (libvirtd hands over a connected socket) is not used: its reply carries
// the descriptor by SCM_RIGHTS on the unix socket, which Node's sockets cannot receive.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { VncDisplay } from '../../../shared/api.js';
import { KeycodeError, keyFromCode, type Codeset } from '../../common/keycodes.js';
import { PAUSE, textToScancodes } from '../../common/keymap.js';
import { encodePng } from '../../common/png.js';
import { shellQuote } from '../../common/shell.js';
import type { VncUpstream } from '../api/vnc-link.js';
import { childElements, firstChild, parseXmlTree, type XmlElement } from '../domain/xml-tree.js';
import { HostError, invalidArg, operationFailed, operationInvalid } from '../errors.js';
import type { RpcStream } from '../libvirt/rpc-client.js';
import { sshBase, spawnSsh } from '../libvirt/transports.js';
import { uuidText, type LibvirtConnection, type LibvirtMethods, type NonnullDomain } from './libvirt.js';
import { SerialHistory } from '../serial-history.js';

/** virDomainXMLFlags: VIR_DOMAIN_XML_SECURE (the VNC password). */
const XML_SECURE = 1;
/** virKeycodeSet: QEMU's own numbering, which libvirt hands to QEMU untranslated. */
const KEYCODE_SET_QNUM = 9;
/** VIR_DOMAIN_SEND_KEY_MAX_KEYS. */
const SEND_KEY_MAX = 16;
/** How long send-key holds the keys when no hold time is given (QEMU's default). */
const SEND_KEY_HOLD_MS = 100;
/** Hold time of each typed key (domain.sendKeys): short, as a typist's. */
const TYPING_HOLD_MS = 20;
/** How long closing a console waits for libvirtd to confirm its abort. */
const CONSOLE_CLOSE_WAIT_MS = 5000;
const VNC_PORT_BASE = 5900;

interface VncGraphics {
  port?: number;
  /** The listen address (the element's, or its first <listen type='address'>). */
  address?: string;
  /** <listen type='socket'>: a unix socket on the libvirt host. */
  socket?: string;
  passwd?: string;
}

/** One domain's serial line: its console stream while open, the clients that opened it, its backlog. */
interface SerialLine {
  uuid: string;
  name: string;
  stream?: RpcStream;
  opening?: Promise<RpcStream>;
  /** The last stream's abort, until libvirtd confirms it: a new one waits for it. */
  closing?: Promise<void>;
  clients: Set<string>;
  history: SerialHistory;
}

/** A set-1 key (keymap.ts) in QEMU's numbering: the 0xE0 prefix folded into bit 7. */
function qnum(key: number): number {
  if (key === PAUSE) return 0xc6;
  return key > 0xff ? 0x80 | (key & 0x7f) : key;
}

const isWildcard = (address: string): boolean => address === '0.0.0.0' || address === '::' || address === '[::]';

/** The first <graphics type='vnc'> of a live definition. */
function vncGraphics(xml: string): VncGraphics | undefined {
  const root = parseXmlTree(xml).find((n): n is XmlElement => n.type === 'element' && n.name === 'domain');
  const devices = root && firstChild(root, 'devices');
  const g = devices && childElements(devices, 'graphics').find((e) => e.attributes.type === 'vnc');
  if (!g) return undefined;
  const listens = childElements(g, 'listen');
  const port = Number(g.attributes.port);
  return {
    port: Number.isInteger(port) && port > 0 ? port : undefined,
    address: g.attributes.listen ?? listens.find((l) => l.attributes.type === 'address')?.attributes.address,
    socket: g.attributes.socket ?? listens.find((l) => l.attributes.type === 'socket')?.attributes.socket,
    passwd: g.attributes.passwd || undefined,
  };
}

/** A PPM (P6, what QEMU's screendump writes) as RGBA. */
function decodePpm(data: Buffer): { width: number; height: number; rgba: Buffer } {
  let at = 0;
  const token = (): string => {
    for (;;) {
      while (at < data.length && /\s/.test(String.fromCharCode(data[at]))) at++;
      if (data[at] !== 0x23) break;
      while (at < data.length && data[at] !== 0x0a) at++;
    }
    const start = at;
    while (at < data.length && !/\s/.test(String.fromCharCode(data[at]))) at++;
    return data.subarray(start, at).toString('latin1');
  };
  const magic = token();
  const width = Number(token());
  const height = Number(token());
  const max = Number(token());
  at++;
  if (magic !== 'P6' || !(width > 0 && height > 0) || max !== 255 || data.length - at < width * height * 3) {
    throw operationFailed(`the screenshot is not a PPM image Domus reads (${magic} ${width}x${height}, max ${max}, ${data.length} bytes)`);
  }
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0, o = 0; i < width * height * 3; i += 3, o += 4) {
    rgba[o] = data[at + i];
    rgba[o + 1] = data[at + i + 1];
    rgba[o + 2] = data[at + i + 2];
    rgba[o + 3] = 255;
  }
  return { width, height, rgba };
}

/** Everything a stream sends until its end, then the stream finished (virStreamRecvAll, virStreamFinish). */
/** The most a screenshot may take: an 8K display as PPM, with room for its header. A host that sends more is cut off. */
export const MAX_SCREENSHOT_BYTES = 7680 * 4320 * 3 + 4096;

async function readAll(stream: RpcStream, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > max) {
      await stream.abort().catch(() => undefined);
      throw operationFailed(`the screenshot is larger than ${max} bytes; the host sent more than any display needs`);
    }
    chunks.push(chunk as Buffer);
  }
  await stream.finish();
  return Buffer.concat(chunks);
}

function connectTcp(host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', (err) => reject(operationFailed(`cannot connect to the VNC display at ${host}:${port}: ${err.message}`)));
  });
}

/** The console methods of a libvirt connection; also sets its openVnc, for the host's own viewers. */
export function consoleMethods(conn: LibvirtConnection): LibvirtMethods {
  const lines = new Map<string, SerialLine>();
  /** Streams closeLine has closed: what they still deliver is dropped. */
  const closedStreams = new WeakSet<RpcStream>();

  async function graphicsOf(dom: NonnullDomain): Promise<VncGraphics> {
    const { xml } = await conn.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags: XML_SECURE });
    const g = vncGraphics(xml as string);
    if (!g) throw operationInvalid(`domain '${dom.name}' has no VNC display`);
    if (g.port === undefined && g.socket === undefined) throw operationInvalid(`domain '${dom.name}' is not running, or its VNC display has no port yet`);
    return g;
  }

  /** virsh vncdisplay's answer, and where the display listens. */
  async function vncDisplay(ref: string): Promise<VncDisplay> {
    const g = await graphicsOf(await conn.lookup(ref));
    const out: VncDisplay = { passwordRequired: g.passwd !== undefined };
    if (g.socket) out.socket = g.socket;
    if (g.port !== undefined) {
      const address = g.address ?? '127.0.0.1';
      out.tcp = { address, port: g.port };
      const host = isWildcard(address) ? '' : address.includes(':') ? `[${address}]` : address;
      out.display = g.port >= VNC_PORT_BASE ? `${host}:${g.port - VNC_PORT_BASE}` : `${host}::${g.port}`;
    }
    return out;
  }

  /**
   * The display as virt-manager reaches it: on this machine, its socket or its address; on a TCP
   * or TLS host, that host at the display's port; over ssh, `nc` on the far side through the same
   * ssh as the connection's own tunnel.
   */
  async function openVnc(ref: string): Promise<VncUpstream> {
    const g = await graphicsOf(await conn.lookup(ref));
    const rpc = conn.client();
    const uri = rpc.uri;
    if (!uri) throw operationInvalid(`connection ${conn.uri} was not opened from a URI`);
    const address = g.address === undefined || isWildcard(g.address) ? '127.0.0.1' : g.address;
    // Both come from the host's XML and end up as nc's arguments on the far side: an address that
    // is not one, or a relative socket path, could be an option there.
    if (!net.isIP(address) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(address)) {
      throw operationFailed(`the VNC listen address of domain '${ref}' in the host's XML, '${address}', is not an IP address or host name`);
    }
    if (g.socket !== undefined && !g.socket.startsWith('/')) throw operationFailed(`the VNC socket of domain '${ref}' in the host's XML, '${g.socket}', is not an absolute path`);
    let stream: Duplex;
    if (uri.transport === 'ssh') {
      const { command, args } = sshBase(uri, rpc.options);
      const script = g.socket ? `exec nc -U ${shellQuote(g.socket)}` : `exec nc ${shellQuote(address)} ${g.port}`;
      args.push('--', uri.host ?? 'localhost', `sh -c ${shellQuote(script)}`);
      stream = await spawnSsh({ command, args }, rpc.options);
    } else if (uri.transport === 'unix') {
      stream = g.socket ? net.connect(g.socket) : await connectTcp(address, g.port!);
    } else {
      if (g.port === undefined) throw operationUnsupportedOnSocket(ref, conn.uri);
      stream = await connectTcp(uri.host ?? 'localhost', g.port);
    }
    return { stream, password: g.passwd };
  }

  async function screenshot(ref: string): Promise<{ png: string; width: number; height: number }> {
    const dom = await conn.lookup(ref);
    const data = await readAll(await conn.client().openStream('REMOTE_PROC_DOMAIN_SCREENSHOT', { dom, screen: 0, flags: 0 }), MAX_SCREENSHOT_BYTES);
    if (data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
      return { png: data.toString('base64'), width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
    }
    const { width, height, rgba } = decodePpm(data);
    return { png: encodePng(width, height, rgba).toString('base64'), width, height };
  }

  async function sendKeys(dom: NonnullDomain, keys: number[], holdtime: number): Promise<void> {
    await conn.rpcCall('REMOTE_PROC_DOMAIN_SEND_KEY', { dom, codeset: KEYCODE_SET_QNUM, holdtime, keycodes: keys.map(qnum), flags: 0 });
  }

  /** Make/break bytes (set 1, as keymap.ts types text) as send-key calls: the keys down at each release go together. */
  function scancodeGroups(bytes: number[]): number[][] {
    const groups: number[][] = [];
    let down: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      let code = bytes[i];
      if (code === 0xe1) {
        // Pause: its whole make sequence, and no break.
        groups.push([PAUSE]);
        i += 5;
        continue;
      }
      let extended = false;
      if (code === 0xe0 && i + 1 < bytes.length) {
        extended = true;
        code = bytes[++i];
      }
      const key = (extended ? 0xe000 : 0) | (code & 0x7f);
      if (code & 0x80) {
        if (down.includes(key)) {
          groups.push(down);
          down = [];
        }
      } else if (!down.includes(key)) down.push(key);
    }
    if (down.length) groups.push(down);
    return groups;
  }

  /**
   * Resolves once libvirtd has confirmed the abort (until then it refuses another console client), or
   * after CONSOLE_CLOSE_WAIT_MS if it does not say.
   */
  function closeLine(line: SerialLine): Promise<void> {
    const stream = line.stream;
    line.stream = undefined;
    if (!stream) return line.closing ?? Promise.resolve();
    closedStreams.add(stream);
    let timer: NodeJS.Timeout | undefined;
    const closing = Promise.race([stream.abort().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, CONSOLE_CLOSE_WAIT_MS)))]).then(() => {
      clearTimeout(timer);
      stream.destroy();
      if (line.closing === closing) line.closing = undefined;
    });
    line.closing = closing;
    return closing;
  }

  async function openLine(line: SerialLine, dom: NonnullDomain): Promise<RpcStream> {
    const stream = await conn.client().openStream('REMOTE_PROC_DOMAIN_OPEN_CONSOLE', { dom, dev_name: null, flags: 0 });
    stream.on('data', (data: Buffer) => {
      // Late bytes of a closed stream would land in the next boot's history.
      if (closedStreams.has(stream)) return;
      line.history.push(data);
      conn.emitEvent('domain.serial', { uuid: line.uuid, data: data.toString('base64') });
    });
    const gone = (): void => {
      if (line.stream === stream) line.stream = undefined;
    };
    stream.on('end', gone);
    stream.on('close', gone);
    stream.on('error', gone);
    return stream;
  }

  /** The line of a domain named by UUID or name among the open ones, else looked up. */
  async function lineOf(ref: string): Promise<{ line?: SerialLine; uuid: string; name: string; dom?: NonnullDomain }> {
    for (const line of lines.values()) if (line.uuid === ref.toLowerCase() || line.name === ref) return { line, uuid: line.uuid, name: line.name };
    const dom = await conn.lookup(ref);
    const uuid = uuidText(dom.uuid);
    return { line: lines.get(uuid), uuid, name: dom.name, dom };
  }

  conn.openVnc = openVnc;
  // A stopped domain's console is gone, and so is its boot's backlog (cleared at the stop, not at the
  // next start, whose event may come after that boot's first output); an undefined domain's too.
  conn.on('event', (name: string, data: { domain?: { uuid: string }; event?: string; uuid?: string }) => {
    if (name === 'domain.undefined' && data.uuid) {
      const line = lines.get(data.uuid);
      if (line) void closeLine(line);
      lines.delete(data.uuid);
    }
    if (name !== 'domain.lifecycle' || !data.domain) return;
    const line = lines.get(data.domain.uuid);
    if (!line) return;
    if (data.event !== 'stopped' && data.event !== 'crashed') return;
    void closeLine(line);
    line.history.clear();
  });

  return {
    'domain.vncDisplay': (p) => vncDisplay(p.domain!),
    'domain.screenshot': (p) => screenshot(p.domain!),
    'domain.sendKey': async (p) => {
      const dom = await conn.lookup(p.domain!);
      let keys: number[];
      try {
        keys = (p.keycodes as (string | number)[]).map((k) => keyFromCode(p.codeset as Codeset, k));
      } catch (err) {
        if (err instanceof KeycodeError) throw invalidArg(err.message);
        throw err;
      }
      if (keys.length > SEND_KEY_MAX) throw invalidArg(`at most ${SEND_KEY_MAX} keys at once`);
      // libvirt's holdtime 0 is QEMU's default; Domus's default is the same 100 ms.
      await sendKeys(dom, keys, (p.holdtimeMs as number | undefined) ?? SEND_KEY_HOLD_MS);
      return {};
    },
    'domain.sendKeys': async (p) => {
      const dom = await conn.lookup(p.domain!);
      let bytes: number[];
      try {
        bytes = typeof p.text === 'string' ? textToScancodes(p.text) : (p.scancodes as number[]);
      } catch (err) {
        throw invalidArg((err as Error).message);
      }
      for (const keys of scancodeGroups(bytes)) await sendKeys(dom, keys, TYPING_HOLD_MS);
      return {};
    },
    'domain.serialOpen': async (p) => {
      const client = String(p.client ?? '');
      const found = await lineOf(p.domain!);
      const dom = found.dom ?? (await conn.lookup(found.uuid));
      const line = found.line ?? { uuid: found.uuid, name: found.name, clients: new Set<string>(), history: new SerialHistory() };
      lines.set(line.uuid, line);
      if (!line.stream) {
        await line.closing;
        line.opening ??= openLine(line, dom).finally(() => (line.opening = undefined));
        line.stream = await line.opening;
      }
      line.clients.add(client);
      return { backlog: line.history.contents().toString('base64'), uuid: line.uuid };
    },
    'domain.serialClose': async (p) => {
      const { line, uuid } = await lineOf(p.domain!);
      if (line) {
        line.clients.delete(String(p.client ?? ''));
        // The backlog stays for the next viewer, as the host keeps its own guests'.
        if (!line.clients.size) await closeLine(line);
      }
      return { uuid };
    },
    'domain.serialWrite': async (p) => {
      const { line, name } = await lineOf(p.domain!);
      if (!line?.stream) throw operationInvalid(`the serial console of domain '${name}' is not open here (open it first: domain.serialOpen)`);
      const stream = line.stream;
      await new Promise<void>((resolve, reject) => stream.write(Buffer.from(p.data as string, 'base64'), (err) => (err ? reject(err) : resolve())));
      return {};
    },
  };
}

function operationUnsupportedOnSocket(ref: string, uri: string): HostError {
  return new HostError('OPERATION_UNSUPPORTED', `the VNC display of domain '${ref}' is a unix socket on ${uri}, which Domus reaches only on this machine or over ssh`);
}
