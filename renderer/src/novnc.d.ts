// noVNC 1.7 ships no type declarations; this covers the part of RFB's public API Domus uses
// (see node_modules/@novnc/novnc/docs/API.md).
declare module '@novnc/novnc' {
  /**
   * What RFB accepts instead of a URL: a WebSocket-like object. noVNC's Websock.attach() checks
   * that each of these names is an own property or a prototype member, then assigns the on*
   * handlers and `binaryType` itself.
   */
  export interface RfbChannel {
    binaryType: string;
    protocol: string;
    /** WebSocket's numeric states or RTCDataChannel's names ("connecting", "open", ...). */
    readyState: number | string;
    onopen: ((ev: Event) => void) | null;
    onmessage: ((ev: MessageEvent) => void) | null;
    onclose: ((ev: CloseEvent) => void) | null;
    onerror: ((ev: Event) => void) | null;
    send(data: ArrayBuffer | ArrayBufferView): void;
    close(): void;
  }

  export interface RfbOptions {
    shared?: boolean;
    credentials?: { username?: string; password?: string; target?: string };
    repeaterID?: string;
    wsProtocols?: string[];
  }

  export interface RfbEventMap {
    connect: CustomEvent<Record<string, never>>;
    disconnect: CustomEvent<{ clean: boolean }>;
    securityfailure: CustomEvent<{ status: number; reason?: string }>;
    credentialsrequired: CustomEvent<{ types: string[] }>;
    desktopname: CustomEvent<{ name: string }>;
  }

  export default class RFB {
    constructor(target: HTMLElement, urlOrChannel: string | RfbChannel, options?: RfbOptions);
    scaleViewport: boolean;
    resizeSession: boolean;
    clipViewport: boolean;
    viewOnly: boolean;
    focusOnClick: boolean;
    showDotCursor: boolean;
    background: string;
    qualityLevel: number;
    compressionLevel: number;
    disconnect(): void;
    sendKey(keysym: number, code: string | null, down?: boolean): void;
    sendCredentials(credentials: { username?: string; password?: string; target?: string }): void;
    focus(options?: FocusOptions): void;
    blur(): void;
    addEventListener<K extends keyof RfbEventMap>(type: K, listener: (ev: RfbEventMap[K]) => void): void;
    removeEventListener<K extends keyof RfbEventMap>(type: K, listener: (ev: RfbEventMap[K]) => void): void;
  }
}
