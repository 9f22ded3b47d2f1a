// The runner's end of the sample guest's agent (build/guests/files/init, agent()): a line protocol on
// v86's virtio console port 0 (/dev/hvc0 in the guest). The agent announces itself with
// "DOMUS-AGENT-READY"; the runner sends "<id> <command>" lines. Only poweroff and reboot are used;
// the agent acknowledges them ("<id>= 0") before it runs them, which tells a live agent from one that
// announced itself and then died or hung.

const READY_LINE = 'DOMUS-AGENT-READY';
/** Guest output without a newline beyond this is not agent protocol; drop it. */
const MAX_LINE = 4096;

export class GuestAgent {
  private connected = false;
  private partial = '';
  private nextId = 1;
  /** Commands sent and not yet acknowledged, by id. */
  private readonly waiting = new Map<string, () => void>();

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
      const line = this.partial.slice(0, nl).replace(/\r$/, '');
      if (line === READY_LINE) this.connected = true;
      const ack = /^(\S+)= /.exec(line);
      if (ack) this.waiting.get(ack[1])?.();
      this.partial = this.partial.slice(nl + 1);
    }
    if (this.partial.length > MAX_LINE) this.partial = '';
  }

  /** Has the agent run `command`; throws when no agent is connected. */
  send(command: string): void {
    this.sendTracked(command);
  }

  /** Has the agent run `command`; resolves true once it acknowledges, false after `timeoutMs`. */
  request(command: string, timeoutMs: number): Promise<boolean> {
    const id = this.sendTracked(command);
    return new Promise((resolve) => {
      const finish = (acked: boolean): void => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(acked);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.waiting.set(id, () => finish(true));
    });
  }

  private sendTracked(command: string): string {
    if (!this.connected) throw new Error('the guest agent is not connected');
    const id = `r${this.nextId++}`;
    this.write(Buffer.from(`${id} ${command}\n`, 'latin1'));
    return id;
  }

  /** A new guest (boot, reboot) or a restored one whose agent was or was not connected. */
  reset(connected = false): void {
    this.connected = connected;
    this.partial = '';
  }
}
