import type { RfbChannel } from '@novnc/novnc';
import type { MessageTransport } from '@shared/client';

/**
 * The part of the renderer that differs between the web shell (WebSockets served by the host)
 * and the Electron shell (MessagePorts handed over by the preload).
 */
export interface Shell {
  readonly kind: 'web' | 'electron';
  /** Opens a fresh API connection; resolves once messages can be sent, rejects if it cannot open. */
  connectApi(): Promise<MessageTransport>;
  /**
   * What noVNC's RFB should connect to for a domain's display (of the libvirt `connection` when
   * given): a URL, or a WebSocket-like channel.
   */
  openVncChannel(domainUuid: string, connection?: string): string | RfbChannel;
}
