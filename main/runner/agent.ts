// The runner's end of the sample guest's agent (build/guests/files/init, agent()): a line protocol on
// v86's virtio console port 0 (/dev/hvc0 in the guest). The agent announces itself with
// "DOMUS-AGENT-READY"; the runner sends "<id> <command>" lines. Only fire-and-forget commands are
// used (poweroff, reboot: they end the agent with the guest), so replies are not tracked.

const READY_LINE = 'DOMUS-AGENT-READY';
/** Guest output without a newline beyond this is not agent protocol; drop it. */
const MAX_LINE = 4096;

export class GuestAgent {
  private connected = false;
  private partial = '';
  private nextId = 1;

  constructor(private readonly write: (bytes: Uint8Array) => void) {}

  /** The agent of the running guest has announced itself (and the guest has not rebooted since). */
  get isConnected(): boolean {
    return this.connected;
  }

  /** Bytes the guest wrote to the channel. */
  receive(bytes: Uint8Array): void {
    this.partial += Buffer.from(bytes).toString('latin1');
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      if (this.partial.slice(0, nl).replace(/\r$/, '') === READY_LINE) this.connected = true;
      this.partial = this.partial.slice(nl + 1);
    }
    if (this.partial.length > MAX_LINE) this.partial = '';
  }

  /** Has the agent run `command`; throws when no agent is connected. */
  send(command: string): void {
    if (!this.connected) throw new Error('the guest agent is not connected');
    this.write(Buffer.from(`r${this.nextId++} ${command}\n`, 'latin1'));
  }

  /** A new guest (boot, reboot) or a restored one whose agent was or was not connected. */
  reset(connected = false): void {
    this.connected = connected;
    this.partial = '';
  }
}
