/**
 * A counting semaphore with a FIFO of waiters that an AbortSignal can leave: a dialer's
 * negotiation slots per connection (dialProtocol's, and the libp2p transport's outbound ones).
 * JS thread only.
 */
interface Waiter {
  resolve: () => void
  reject: (error: unknown) => void
  signal?: AbortSignal
  onAbort: () => void
}

export class SlotPool {
  #capacity: number
  #used = 0
  readonly #waiters: Waiter[] = []

  constructor (capacity: number) {
    this.#capacity = capacity
  }

  get capacity (): number {
    return this.#capacity
  }

  /** A new capacity applies to the next acquire() and release(). */
  set capacity (capacity: number) {
    this.#capacity = capacity
    this.#wakeUp()
  }

  /** Slots taken now. */
  get used (): number {
    return this.#used
  }

  /** Takes a slot if one is free and nobody waits for one; false otherwise. */
  tryAcquire (): boolean {
    if (this.#used >= this.#capacity || this.#waiters.length > 0) return false
    this.#used++
    return true
  }

  /** Resolves once a slot is this caller's; rejects with the signal's reason if it aborts first. */
  async acquire (signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) throw signal.reason
    if (this.tryAcquire()) return
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter)
          if (index >= 0) this.#waiters.splice(index, 1)
          reject(signal?.reason)
        }
      }
      signal?.addEventListener('abort', waiter.onAbort, { once: true })
      this.#waiters.push(waiter)
    })
  }

  release (): void {
    this.#used--
    this.#wakeUp()
  }

  #wakeUp (): void {
    while (this.#used < this.#capacity && this.#waiters.length > 0) {
      const waiter = this.#waiters.shift() as Waiter
      waiter.signal?.removeEventListener('abort', waiter.onAbort)
      this.#used++
      waiter.resolve()
    }
  }
}
