// v86's main loop in Node (src/main.js, v86 0.5.462): after each slice, `yield(t, tick)` schedules the
// next one, with setImmediate when t < 1 ms and setTimeout otherwise. A halted CPU returns the time to
// its next timer event as t, so for the last millisecond before every guest timer interrupt the
// loop re-polls the halted CPU back to back, a full core for that millisecond (measured: up to 1,400
// wakeups/s, ~10 % of a core, for an idle guest). Sleeping instead costs the guest at most 2 ms of
// timer latency. A running CPU returns t = 0 and keeps setImmediate, so a busy guest runs exactly as
// before.
//
// The sleep is rounded up, plus a millisecond: Node truncates a fractional delay and counts it from
// the current time floored to a whole millisecond, so setTimeout(t) can fire up to ~2 ms before t.
// The CPU then finds its timer not yet due and the loop wakes a second time for the same guest tick
// (measured on the idle sample guest: 2 wakeups per 4 ms tick, against 1 with the rounding; its runner
// 4.9 % -> 4.3 % of a core).

/** The part of v86's `v86` object (the main loop) replaced here. */
export interface V86MainLoop {
  yield(t: number, tick: number): void;
  yield_callback(tick: number): void;
}

/** The setTimeout delay that does not fire before `t` ms (fractional) have passed. */
export function sleepDelay(t: number): number {
  return Math.ceil(t) + 1;
}

/** Makes `loop` sleep, not spin, while its CPU waits for a timer. */
export function sleepWhenHalted(loop: V86MainLoop): void {
  if (typeof loop.yield !== 'function' || typeof loop.yield_callback !== 'function') {
    throw new Error('v86 main loop has no yield/yield_callback: the idle-sleep change no longer fits this v86 version');
  }
  loop.yield = (t, tick) => {
    if (t > 0) setTimeout(() => loop.yield_callback(tick), sleepDelay(t));
    else setImmediate(() => loop.yield_callback(tick));
  };
}
