/**
 * Time for the limits layer: a clock object passed in, so tests drive expiry with a fake clock
 * instead of waiting. JS thread only.
 */
import { invalidArgType } from '../args.js'

/** What the limits layer needs of time. Milliseconds throughout. */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences matter). */
  now: () => number
  /**
   * Calls `callback` once after `ms`. The system clock's timers are unref'd, so a pending sweep
   * never keeps a process alive.
   */
  setTimeout: (callback: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

/** The real clock: `performance.now()` and unref'd timers. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (callback: () => void, ms: number): unknown => setTimeout(callback, ms).unref(),
  clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout)
})

/** Checks a `clock` option; the system clock when absent. */
export function clockOption (clock: unknown): Clock {
  if (clock === undefined) return systemClock
  if (typeof clock !== 'object' || clock === null) throw invalidArgType('clock', 'an object with now(), setTimeout() and clearTimeout()', clock)
  const { now, setTimeout, clearTimeout } = clock as Partial<Clock>
  if (typeof now !== 'function' || typeof setTimeout !== 'function' || typeof clearTimeout !== 'function') {
    throw invalidArgType('clock', 'an object with now(), setTimeout() and clearTimeout()', clock)
  }
  return clock as Clock
}
