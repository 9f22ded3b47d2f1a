// A running guest's consoles: the screen (screenshot, VNC socket, password and display), the
// keyboard (text, scancodes, virsh send-key) and the serial port with its scrollback.
import type { VncDisplay } from '../../shared/api.js';
import { KeycodeError, keyFromCode, sendKeySequence, type Codeset } from '../common/keycodes.js';
import { VNC_PORT_BASE } from '../runner/protocol.js';
import { invalidArg } from './errors.js';
import type { DomainRegistry } from './registry.js';

/** How long send-key holds the keys when no hold time is given (QEMU's default). */
const SEND_KEY_HOLD_MS = 100;

export class Consoles {
  constructor(private readonly registry: DomainRegistry) {}

  async screenshot(ref: string): Promise<{ png: Buffer; width: number; height: number }> {
    return this.live(ref).screenshot();
  }

  async sendKeys(ref: string, keys: { text?: string; scancodes?: number[] }): Promise<void> {
    const live = this.live(ref);
    if (keys.text !== undefined) await live.sendText(keys.text);
    if (keys.scancodes !== undefined) await live.sendScancodes(keys.scancodes);
  }

  /** virsh send-key: the keys pressed in order, held, then released in reverse order. */
  async sendKey(ref: string, req: { codeset: Codeset; holdtimeMs?: number; keycodes: (string | number)[] }): Promise<void> {
    const live = this.live(ref);
    let keys: number[];
    try {
      keys = req.keycodes.map((k) => keyFromCode(req.codeset, k));
    } catch (err) {
      if (err instanceof KeycodeError) throw invalidArg(err.message);
      throw err;
    }
    const { press, release } = sendKeySequence(keys);
    await live.sendScancodes(press);
    await new Promise((r) => setTimeout(r, req.holdtimeMs ?? SEND_KEY_HOLD_MS));
    await live.sendScancodes(release);
  }

  async serialWrite(ref: string, data: Buffer): Promise<void> {
    await this.live(ref).serialWrite(data);
  }

  /** What a newly opened serial viewer sees first: the recent output of this boot. */
  serialHistory(ref: string): { uuid: string; history: Buffer } {
    const rec = this.registry.lookup(ref);
    this.registry.requireLive(rec);
    return { uuid: rec.doc.config.uuid, history: rec.serialHistory.contents() };
  }

  vncSocket(ref: string): string {
    return this.live(ref).vncSocket;
  }

  /** The VNC password a Domus client needs for a running domain (passwd= of its live definition). */
  vncPassword(ref: string): string | undefined {
    const rec = this.registry.lookup(ref);
    this.registry.requireLive(rec);
    return (rec.liveDoc ?? rec.doc).config.graphics.find((g) => g.type === 'vnc')?.passwd || undefined;
  }

  /** virsh vncdisplay: the TCP listener as "address:display", else the unix socket. */
  vncDisplay(ref: string): VncDisplay {
    const live = this.live(ref);
    const out: VncDisplay = { socket: live.vncSocket, passwordRequired: this.vncPassword(ref) !== undefined };
    if (live.vncTcp) {
      const { address, port } = live.vncTcp;
      out.tcp = { address, port };
      // As virsh prints it: a wildcard address is left out, IPv6 is bracketed; a port below 5900 has
      // no display number and is written with VNC's double colon.
      const host = address === '0.0.0.0' || address === '::' ? '' : address.includes(':') ? `[${address}]` : address;
      out.display = port >= VNC_PORT_BASE ? `${host}:${port - VNC_PORT_BASE}` : `${host}::${port}`;
    }
    return out;
  }

  private live(ref: string) {
    return this.registry.requireLive(this.registry.lookup(ref));
  }
}
