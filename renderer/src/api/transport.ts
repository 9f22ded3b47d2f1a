import type { MessageTransport } from '@shared/client';

/**
 * What every shell's MessageTransport does the same way: hands each message to the one receiver,
 * and reports the close once, also to a receiver registered after it (a close can race the
 * client's registration). Subclasses move the text and call received() and closed().
 */
export abstract class TransportBase implements MessageTransport {
  private messageHandler: ((text: string) => void) | undefined;
  private closeHandler: ((reason: string) => void) | undefined;
  private closedReason: string | undefined;

  abstract send(text: string): void;
  abstract close(): void;

  onMessage(handler: (text: string) => void): void {
    this.messageHandler = handler;
  }

  onClose(handler: (reason: string) => void): void {
    this.closeHandler = handler;
    if (this.closedReason !== undefined) handler(this.closedReason);
  }

  protected received(text: string): void {
    this.messageHandler?.(text);
  }

  protected closed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.closeHandler?.(reason);
  }
}
