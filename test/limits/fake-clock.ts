import type { Clock } from '../../src/limits/index.js'

/** A clock that moves only when told to; advance() fires the timers that fall due, in order. */
export class FakeClock implements Clock {
  #now = 0
  #nextId = 1
  readonly #timers = new Map<number, { at: number, callback: () => void }>()

  now = (): number => this.#now

  setTimeout = (callback: () => void, ms: number): unknown => {
    const id = this.#nextId++
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback })
    return id
  }

  clearTimeout = (handle: unknown): void => {
    this.#timers.delete(handle as number)
  }

  /** Timers pending now. */
  get pending (): number {
    return this.#timers.size
  }

  /** Moves time forward by `ms`, firing each timer due on the way at its own time. */
  advance (ms: number): void {
    const end = this.#now + ms
    for (;;) {
      let next: [number, { at: number, callback: () => void }] | undefined
      for (const entry of this.#timers) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry
      if (next === undefined) break
      this.#timers.delete(next[0])
      this.#now = Math.max(this.#now, next[1].at)
      next[1].callback()
    }
    this.#now = end
  }
}
