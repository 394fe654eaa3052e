/**
 * Timeouts of one length on one timer, for the libp2p transport's negotiations (a timer per
 * negotiation costs about as much as the negotiation). JS thread only.
 */

interface Deadline {
  at: number
  fire: () => void
  prev: Deadline | undefined
  next: Deadline | undefined
}

/** A list in deadline order, since each is added `ms` from now; cancelling unlinks. */
export class Deadlines {
  readonly #ms: number
  #head: Deadline | undefined
  #tail: Deadline | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #run = (): void => {
    this.#timer = undefined
    const now = performance.now()
    while (this.#head !== undefined && this.#head.at <= now) {
      const due = this.#head
      this.#unlink(due)
      due.fire()
    }
    this.#arm()
  }

  constructor (ms: number) {
    this.#ms = ms
  }

  /** Calls `fire` in `ms` unless the returned function is called first (never, for Infinity). */
  add (fire: () => void): () => void {
    if (this.#ms === Infinity) return noop
    const entry: Deadline = { at: performance.now() + this.#ms, fire, prev: this.#tail, next: undefined }
    if (this.#tail === undefined) this.#head = entry
    else this.#tail.next = entry
    this.#tail = entry
    this.#arm()
    return () => {
      if (entry.at !== -1) this.#unlink(entry)
    }
  }

  #unlink (entry: Deadline): void {
    if (entry.prev === undefined) this.#head = entry.next
    else entry.prev.next = entry.next
    if (entry.next === undefined) this.#tail = entry.prev
    else entry.next.prev = entry.prev
    entry.prev = entry.next = undefined
    entry.at = -1
  }

  // One timer for the earliest deadline (a cancelled head leaves it early: it re-arms then).
  #arm (): void {
    if (this.#timer !== undefined || this.#head === undefined) return
    this.#timer = setTimeout(this.#run, Math.max(0, this.#head.at - performance.now()))
    this.#timer.unref()
  }
}

function noop (): void {}
