/**
 * The one abortable FIFO semaphore of the package: `capacity` units, waiters served in arrival
 * order, a waiter that aborts leaves the queue at once, close() drops every waiter with the owning
 * layer's coded error. Under it: the dialer's negotiation slots (dialProtocol and the libp2p
 * transport's outbound streams), the negotiation limiter's overall slots, and ProviderPool's runs
 * waiting for a provider with room.
 *
 * A waiter may carry a limit of its own (`admits`, e.g. its connection's slots): it is served
 * first among the waiters that may take a unit now, so one full connection does not hold back the
 * others. Grants are synchronous (the callback form runs inside release()), which the negotiation
 * limiter needs to start a stream in the same turn. JS thread only.
 */
import { limitsClosedError } from './errors.js'

/** Gives a unit back; calling it again does nothing. */
export type Release = () => void

/** Why a waiter left without a unit. */
export type DropReason = 'gone' | 'aborted' | 'closed'

/** A waiter in callback form (see Semaphore.wait()). */
export interface SemaphoreWaiter {
  /** A limit of its own besides the semaphore's: whether it may take a unit now. Default yes. */
  admits?: () => boolean
  /** Whether it no longer wants a unit: it is dropped (`'gone'`) at its turn. */
  gone?: () => boolean
  /** Leaves the queue (`'aborted'`) when this aborts. */
  signal?: AbortSignal
  /** The unit is its own; it calls `release` once done. */
  granted: (release: Release) => void
  /** It left without a unit; `error` is the layer's error (aborted, closed) or undefined (gone). */
  dropped: (reason: DropReason, error: unknown) => void
}

export interface SemaphoreOptions {
  /**
   * What waiters are dropped with on close(), and what acquire() rejects with after it: the owning
   * layer's coded error. Default: ERR_LIMITS_CLOSED.
   */
  closedError?: () => unknown
  /** What an aborted acquire() rejects with. Default: the signal's reason. */
  abortedError?: (signal: AbortSignal) => unknown
}

export class Semaphore {
  #capacity: number
  #used = 0
  #closed = false
  #serving = false
  #again = false
  // A Set keeps insertion order (FIFO) and removes an aborted waiter in O(1).
  readonly #queue = new Set<SemaphoreWaiter>()
  // The abort listeners of waiters with a signal.
  readonly #onAbort = new Map<SemaphoreWaiter, () => void>()
  readonly #closedError: () => unknown
  readonly #abortedError: (signal: AbortSignal) => unknown

  constructor (capacity: number, options: SemaphoreOptions = {}) {
    this.#capacity = capacity
    this.#closedError = options.closedError ?? (() => limitsClosedError('The semaphore'))
    this.#abortedError = options.abortedError ?? (signal => signal.reason)
  }

  get capacity (): number {
    return this.#capacity
  }

  /** A new capacity applies at once: raising it serves waiters, lowering it waits for releases. */
  set capacity (capacity: number) {
    this.#capacity = capacity
    this.serve()
  }

  /** Units taken now. */
  get used (): number {
    return this.#used
  }

  /** Waiters queued now. */
  get waiting (): number {
    return this.#queue.size
  }

  get closed (): boolean {
    return this.#closed
  }

  /**
   * A unit now, or undefined: none is free, `admits` says no, or the semaphore is closed. Waiters
   * never hold back a caller that may take a free unit: any waiter that could have it was served
   * when it came free.
   */
  tryAcquire (admits?: () => boolean): Release | undefined {
    if (this.#closed || this.#used >= this.#capacity || admits?.() === false) return undefined
    return this.#take()
  }

  /** Resolves with a unit once it is this caller's; rejects if `signal` aborts first or close() is called. */
  acquire (signal?: AbortSignal): Promise<Release> {
    // Not async: a free unit resolves without an extra promise and turn.
    if (signal?.aborted === true) return Promise.reject(this.#abortedError(signal))
    if (this.#closed) return Promise.reject(this.#closedError())
    const release = this.tryAcquire()
    if (release !== undefined) return Promise.resolve(release)
    return new Promise((resolve, reject) => {
      this.wait({ signal, granted: resolve, dropped: (_reason, error) => { reject(error) } })
    })
  }

  /**
   * Queues `waiter` (or serves it at once when it may take a free unit), in callback form: the
   * grant runs synchronously, inside the release() or serve() that freed the unit.
   */
  wait (waiter: SemaphoreWaiter): void {
    if (this.#closed) {
      waiter.dropped('closed', this.#closedError())
      return
    }
    // admits() is called as the waiter's method (a waiter may be a class instance).
    if (this.#used < this.#capacity && (waiter.admits === undefined || waiter.admits())) {
      waiter.granted(this.#take())
      return
    }
    const signal = waiter.signal
    if (signal?.aborted === true) {
      waiter.dropped('aborted', this.#abortedError(signal))
      return
    }
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (this.#leave(waiter)) waiter.dropped('aborted', this.#abortedError(signal))
      }
      this.#onAbort.set(waiter, onAbort)
      signal.addEventListener('abort', onAbort, { once: true })
    }
    this.#queue.add(waiter)
  }

  /**
   * Hands free units to waiters, oldest first among those that may take one now. The semaphore
   * runs it on every release; an owner runs it when a waiter's own limit (`admits`) may have
   * changed.
   */
  serve (): void {
    // A grant that releases at once (or lets its owner release another unit) serves again: once
    // this pass is over, not inside it, so a long queue is not rescanned per grant.
    if (this.#serving) {
      this.#again = true
      return
    }
    this.#serving = true
    try {
      do {
        this.#again = false
        this.#pass()
      } while (this.#again)
    } finally {
      this.#serving = false
    }
  }

  #pass (): void {
    for (const waiter of this.#queue) {
      if (this.#used >= this.#capacity) return
      if (waiter.gone?.() === true) {
        this.#leave(waiter)
        waiter.dropped('gone', undefined)
      } else if (waiter.admits === undefined || waiter.admits()) {
        this.#leave(waiter)
        waiter.granted(this.#take())
      }
    }
  }

  /** Drops every waiter (`'closed'`, with the layer's error) and grants nothing more. Units held stay until released. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    const waiters = [...this.#queue]
    for (const waiter of waiters) this.#leave(waiter)
    for (const waiter of waiters) waiter.dropped('closed', this.#closedError())
  }

  #take (): Release {
    this.#used++
    let released = false
    return () => {
      if (released) return
      released = true
      this.#used--
      if (!this.#closed && this.#queue.size > 0) this.serve()
    }
  }

  /** Takes `waiter` out of the queue; false if it was not there. */
  #leave (waiter: SemaphoreWaiter): boolean {
    if (!this.#queue.delete(waiter)) return false
    const onAbort = this.#onAbort.get(waiter)
    if (onAbort !== undefined) {
      this.#onAbort.delete(waiter)
      waiter.signal?.removeEventListener('abort', onAbort)
    }
    return true
  }
}
