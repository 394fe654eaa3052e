/**
 * A FIFO of things received before anyone asked for them (connections, peer streams), and of the
 * callers waiting for one. An item goes to exactly one taker: the oldest waiter if there is one,
 * else it waits in order. An aborted take leaves the queue untouched, so nothing is lost or handed
 * out twice. JS thread only.
 */
import { abortedError } from '../errors.js'

interface Waiter<T> {
  resolve: (item: T) => void
  reject: (error: Error) => void
  signal?: AbortSignal
  onAbort?: () => void
  /** Takes only items this accepts (e.g. one direction's streams); all when absent. */
  match?: (item: T) => boolean
}

export class AcceptQueue<T> {
  #items: T[] = []
  #head = 0
  #waiters: Array<Waiter<T>> = []
  // Why it closed: made when first needed (an error's stack trace costs; most queues close unwatched).
  #closed?: () => Error
  readonly #what: string
  readonly #onTake: (item: T) => void

  /** `onTake` runs once per item, at the moment it is handed to a taker. */
  constructor (what: string, onTake: (item: T) => void) {
    this.#what = what
    this.#onTake = onTake
  }

  /** Items waiting for a taker. */
  get size (): number {
    return this.#items.length - this.#head
  }

  push (item: T): void {
    const index = this.#waiters.findIndex(waiter => waiter.match === undefined || waiter.match(item))
    if (index >= 0) {
      const [waiter] = this.#waiters.splice(index, 1)
      this.#settle(waiter)
      this.#onTake(item)
      waiter.resolve(item)
      return
    }
    this.#items.push(item)
  }

  /**
   * The oldest item (that `match` accepts, if given); waits for one. After close(), items already
   * queued are still handed out.
   */
  take (signal?: AbortSignal, match?: (item: T) => boolean): Promise<T> {
    const index = this.#find(match)
    if (index >= 0) {
      const item = this.#items[index]
      if (index === this.#head) {
        this.#items[this.#head++] = undefined as T
        if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head)
          this.#head = 0
        }
      } else {
        this.#items.splice(index, 1)
      }
      this.#onTake(item)
      return Promise.resolve(item)
    }
    if (this.#closed !== undefined) return Promise.reject(this.#closed())
    if (signal?.aborted === true) return Promise.reject(abortedError(signal, this.#what))
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject, signal, match }
      if (signal !== undefined) {
        waiter.onAbort = () => {
          const index = this.#waiters.indexOf(waiter)
          if (index >= 0) this.#waiters.splice(index, 1)
          reject(abortedError(signal, this.#what))
        }
        signal.addEventListener('abort', waiter.onAbort, { once: true })
      }
      this.#waiters.push(waiter)
    })
  }

  /** Rejects current and future takes with `error` once the queued items are gone. Idempotent. */
  close (error: Error | (() => Error)): void {
    if (this.#closed !== undefined) return
    let made: Error | undefined
    this.#closed = () => (made ??= typeof error === 'function' ? error() : error)
    for (const waiter of this.#waiters.splice(0)) {
      this.#settle(waiter)
      waiter.reject(this.#closed())
    }
  }

  /** Removes and returns every queued item (used to shut them down). */
  drain (): T[] {
    const items = this.#items.slice(this.#head)
    this.#items = []
    this.#head = 0
    return items
  }

  // The index of the oldest item `match` accepts, or -1.
  #find (match: ((item: T) => boolean) | undefined): number {
    if (match === undefined) return this.size > 0 ? this.#head : -1
    for (let i = this.#head; i < this.#items.length; i++) if (match(this.#items[i])) return i
    return -1
  }

  #settle (waiter: Waiter<T>): void {
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort)
  }
}
