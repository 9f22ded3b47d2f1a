// Slows down password guessing on a VNC listener. RFB's DES challenge takes 8 bytes of password, so
// nothing but the rate of attempts stands between a listener and a brute force. Each listener has
// its own throttle (an attack on the TCP port does not slow the host's viewers on vnc.sock).
// Checks run one at a time, in order of arrival, at most one per `minIntervalMs`; after a failure
// the next check waits `baseDelayMs`, doubling with each further failure up to `maxDelayMs`, and a
// success resets that. Connections opened in parallel wait their turn, so they gain nothing; beyond
// `maxWaiting` of them, a connection is refused without its response being checked.

export interface AuthThrottleOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  minIntervalMs: number;
  maxWaiting: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = { baseDelayMs: 250, maxDelayMs: 8000, minIntervalMs: 100, maxWaiting: 16 };

export class AuthThrottle {
  private nextAt = 0;
  private failures = 0;
  private waiting = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE) {}

  /**
   * Runs `check` (true: the response was right) in this listener's turn. Returns false, and never
   * runs it, when too many connections are already waiting.
   */
  enqueue(check: () => boolean): boolean {
    if (this.waiting >= this.options.maxWaiting) return false;
    this.waiting++;
    this.queue = this.queue.then(async () => {
      const wait = this.nextAt - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.waiting--;
      const ok = check();
      const { baseDelayMs, maxDelayMs, minIntervalMs } = this.options;
      this.failures = ok ? 0 : this.failures + 1;
      const delay = ok ? minIntervalMs : Math.max(minIntervalMs, Math.min(baseDelayMs * 2 ** Math.min(this.failures - 1, 30), maxDelayMs));
      this.nextAt = Date.now() + delay;
    });
    return true;
  }
}
