/**
 * Giving memory back when the connections are gone. Bulk transfers leave the process with a
 * high-water mark of freed memory that glibc keeps: freed buffers stay in the per-thread arenas of
 * MsQuic's workers and of Node's worker threads, and glibc returns only the top of each heap by
 * itself (bench/memory.mjs: after four worker threads downloaded 256 MiB each, 475 MiB stayed
 * resident with every connection closed; 130 MiB after a trim). So when this thread's last
 * connection closes, a trim runs after a short idle delay. JS thread.
 */
import { invalidArgValue } from '../args.js'
import { runtime } from '../native.js'

let open = 0
let delayMs: number | false = 1000
let timer: NodeJS.Timeout | undefined

/**
 * Returns the allocator's free memory to the system now (glibc's malloc_trim over every arena;
 * elsewhere it does nothing and returns false). Takes a few tens of milliseconds when there is much
 * to return. Returns whether memory was released.
 */
export function trimMemory (): boolean {
  return runtime().trimMemory()
}

/**
 * How long after this thread's last connection closed the allocator is trimmed (see trimMemory());
 * false turns the automatic trim off. Default 1000 ms.
 */
export function setIdleTrim (ms: number | false): void {
  if (ms !== false && (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > 2 ** 31 - 1)) {
    throw invalidArgValue('ms', 'must be a non-negative integer or false', ms, typeof ms === 'number')
  }
  delayMs = ms
  if (ms === false) cancel()
}

/** @internal A connection object came to life on this thread. */
export function connectionOpened (): void {
  open++
  cancel()
}

/** @internal A connection of this thread closed (or moved away). */
export function connectionGone (): void {
  if (--open > 0 || delayMs === false) return
  cancel()
  timer = setTimeout(() => { timer = undefined; if (open === 0) trimMemory() }, delayMs)
  timer.unref()
}

function cancel (): void {
  if (timer !== undefined) clearTimeout(timer)
  timer = undefined
}
