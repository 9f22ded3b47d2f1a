// Electron shell: the preload's bridge asks the main process for a MessagePort, which arrives in
// this page as window.postMessage({ domusPort: id }, '*', [port]).
import type { RfbChannel } from '@novnc/novnc';
import { BRIDGE_KEY, type DomusBridge, type PortKind, type PortMessage } from '@shared/ipc';
import type { Shell } from './shell';
import { TransportBase } from './transport';

declare global {
  interface Window {
    [BRIDGE_KEY]?: DomusBridge;
  }
}

/** A port that has not arrived by then is taken as a host that is down. */
const PORT_TIMEOUT_MS = 10_000;

const waitingForPort = new Map<string, (port: MessagePort | undefined) => void>();

function receivePort(ev: MessageEvent): void {
  const data: unknown = ev.data;
  if (typeof data !== 'object' || data === null || !('domusPort' in data)) return;
  const id = (data as Record<keyof PortMessage, unknown>).domusPort;
  if (typeof id !== 'string') return;
  const deliver = waitingForPort.get(id);
  const port = ev.ports[0];
  if (deliver) deliver(port);
  else port?.close(); // Arrived after its request timed out: nobody will use it.
}

function requestPort(bridge: DomusBridge, kind: PortKind, domainUuid?: string, connection?: string): Promise<MessagePort> {
  const id = bridge.requestPort(kind, domainUuid, connection);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waitingForPort.delete(id);
      reject(new Error('the Domus host did not answer'));
    }, PORT_TIMEOUT_MS);
    waitingForPort.set(id, (port) => {
      clearTimeout(timer);
      waitingForPort.delete(id);
      if (port) resolve(port);
      else reject(new Error('the Domus host refused the connection'));
    });
  });
}

/**
 * Electron emits a non-standard 'close' event on a renderer MessagePort when the other end is
 * closed or its process goes away; that is how a host restart becomes visible here.
 */
function onPortClosed(port: MessagePort, handler: () => void): void {
  port.addEventListener('close', handler, { once: true });
}

/** One JSON string per message. */
class PortTransport extends TransportBase {
  constructor(private readonly port: MessagePort) {
    super();
    port.addEventListener('message', (ev) => {
      if (typeof ev.data === 'string') this.received(ev.data);
    });
    onPortClosed(port, () => this.closed('the host closed the connection'));
    port.start();
  }

  send(text: string): void {
    this.port.postMessage(text);
  }

  close(): void {
    this.port.close();
    // A port reports no close of its own end.
    this.closed('client closed');
  }
}

type ChannelState = 'connecting' | 'open' | 'closing' | 'closed';

/**
 * A MessagePort carrying raw RFB bytes, dressed as the WebSocket-like channel noVNC's RFB accepts.
 * The port is requested at once; until it arrives the channel reports "connecting".
 */
class PortChannel implements RfbChannel {
  // Own, initialised fields: noVNC checks for these names before attaching.
  binaryType = 'arraybuffer';
  protocol = '';
  readyState: ChannelState = 'connecting';
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  private port: MessagePort | null = null;

  constructor(port: Promise<MessagePort>) {
    port.then(
      (p) => this.attach(p),
      (err: unknown) => {
        this.onerror?.(new Event('error'));
        this.finish(1006, err instanceof Error ? err.message : String(err));
      },
    );
  }

  send(data: ArrayBuffer | ArrayBufferView): void {
    if (!this.port || this.readyState !== 'open') return;
    // noVNC hands a view into its reusable send buffer: copy exactly those bytes into a fresh
    // ArrayBuffer, which can then be transferred instead of cloned.
    const view =
      data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const copy = new Uint8Array(view);
    this.port.postMessage(copy.buffer, [copy.buffer]);
  }

  close(): void {
    if (this.readyState === 'closed' || this.readyState === 'closing') return;
    this.readyState = 'closing';
    this.port?.close();
    // WebSocket reports its close asynchronously; noVNC's disconnect path expects the same.
    setTimeout(() => this.finish(1000, ''), 0);
  }

  private attach(port: MessagePort): void {
    if (this.readyState !== 'connecting') {
      port.close(); // Closed by noVNC before the port arrived.
      return;
    }
    this.port = port;
    port.addEventListener('message', (ev) => {
      if (this.readyState === 'open') this.onmessage?.(new MessageEvent('message', { data: ev.data }));
    });
    onPortClosed(port, () => this.finish(1000, 'the host closed the display'));
    port.start();
    this.readyState = 'open';
    this.onopen?.(new Event('open'));
  }

  private finish(code: number, reason: string): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.port = null;
    this.onclose?.(new CloseEvent('close', { code, reason, wasClean: code === 1000 }));
  }
}

export function createElectronShell(bridge: DomusBridge): Shell {
  window.addEventListener('message', receivePort);
  return {
    kind: 'electron',
    connectApi: async () => new PortTransport(await requestPort(bridge, 'api')),
    openVncChannel: (domainUuid, connection) => new PortChannel(requestPort(bridge, 'vnc', domainUuid, connection)),
  };
}
