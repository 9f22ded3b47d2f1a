// Web shell: the host serves this page and accepts WebSockets on the same origin. The session
// secret travels in the HttpOnly cookie the host set when its one-time address (/?token=…) was
// opened; that address redirected here without the token.
import type { MessageTransport } from '@shared/client';
import type { Shell } from './shell';
import { TransportBase } from './transport';

function socketUrl(path: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

function describeClose(ev: CloseEvent): string {
  return ev.reason ? `${ev.reason} (code ${ev.code})` : `code ${ev.code}`;
}

/** One JSON message per text frame. */
class WebSocketTransport extends TransportBase {
  constructor(private readonly socket: WebSocket) {
    super();
    socket.addEventListener('message', (ev) => {
      if (typeof ev.data === 'string') this.received(ev.data);
    });
    socket.addEventListener('close', (ev) => this.closed(describeClose(ev)));
  }

  send(text: string): void {
    this.socket.send(text);
  }

  close(): void {
    // The socket's close event reports it ("client closed (code 1000)").
    this.socket.close(1000, 'client closed');
  }
}

function connectApi(): Promise<MessageTransport> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(socketUrl('/api'));
    const opened = (): void => {
      socket.removeEventListener('close', failed);
      resolve(new WebSocketTransport(socket));
    };
    const failed = (ev: CloseEvent): void => {
      socket.removeEventListener('open', opened);
      reject(new Error(`could not reach the Domus host (${describeClose(ev)})`));
    };
    socket.addEventListener('open', opened, { once: true });
    socket.addEventListener('close', failed, { once: true });
  });
}

export const webShell: Shell = {
  kind: 'web',
  connectApi,
  // noVNC opens this URL itself (binary frames of raw RFB, no subprotocol).
  openVncChannel: (domainUuid, connection) =>
    socketUrl(`/vnc/${encodeURIComponent(domainUuid)}${connection === undefined ? '' : `?connection=${encodeURIComponent(connection)}`}`),
};
