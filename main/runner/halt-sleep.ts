// v86's main loop in Node (src/main.js, v86 0.5.462): after each slice, `yield(t, tick)` schedules the
// next one, with setImmediate when t < 1 ms and setTimeout otherwise. A halted CPU returns the time to
// its next timer event as t, so for the last millisecond before every guest timer interrupt the
// loop re-polls the halted CPU back to back, a full core for that millisecond (measured: up to 1,400
// wakeups/s, ~10 % of a core, for an idle guest). Sleeping instead costs the guest at most 1 ms of
// timer latency (Node's setTimeout floor). A running CPU returns t = 0 and keeps setImmediate, so a
// busy guest runs exactly as before.

/** The part of v86's `v86` object (the main loop) replaced here. */
export interface V86MainLoop {
  yield(t: number, tick: number): void;
  yield_callback(tick: number): void;
}

/** Makes `loop` sleep, not spin, while its CPU waits less than a millisecond for a timer. */
export function sleepWhenHalted(loop: V86MainLoop): void {
  if (typeof loop.yield !== 'function' || typeof loop.yield_callback !== 'function') {
    throw new Error('v86 main loop has no yield/yield_callback: the idle-sleep change no longer fits this v86 version');
  }
  loop.yield = (t, tick) => {
    if (t > 0) setTimeout(() => loop.yield_callback(tick), t);
    else setImmediate(() => loop.yield_callback(tick));
  };
}
