/**
 * The negotiation limiter: how many inbound protocol negotiations run at once, per connection and
 * overall; which streams wait for a slot (unread, oldest first, each as soon as its connection has
 * a slot) and which are refused as busy at once because too many wait already; and, optionally,
 * an overall limit that moves with negotiation latency (AdaptiveLimit). ProtocolRouter and the
 * libp2p transport's NegotiationGate both schedule through it. It counts and schedules: reading,
 * answering and resetting streams stay with the caller. JS thread only.
 */
import { NegotiationError, NegotiationErrorCode, invalidArgValue } from '../errors.js'
import { Semaphore, type DropReason, type Release, type SemaphoreWaiter } from '../limits/semaphore.js'
import { AdaptiveLimit, type AdaptiveLimitOptions } from './adaptive.js'
import { DEFAULT_NEGOTIATIONS, DEFAULT_NEGOTIATIONS_PER_CONNECTION } from './defaults.js'

/** The limits on negotiations at once, as ProtocolRouter and the libp2p transport take them. */
export interface NegotiationLimits {
  /** Negotiations at once per connection. Default 8; Infinity for no limit (ProtocolRouter then leaves stream credit to MsQuic). */
  maxNegotiationsPerConnection?: number
  /** Negotiations at once over all connections. Default 64; Infinity for no limit. */
  maxNegotiations?: number
  /**
   * Streams of one connection that may wait for a slot (they arrived on credit granted earlier,
   * e.g. the connection's first credit); one more is refused as busy. Default: `maxNegotiationsPerConnection`.
   */
  maxQueuedPerConnection?: number
  /**
   * Streams of all connections that may wait for a slot. Credit is granted per connection, so
   * many connections bursting at once can bring more streams than the overall limit: they wait
   * here. Default: 4 × `maxNegotiations`.
   */
  maxQueued?: number
}

/** Options for {@link NegotiationLimiter}. */
export interface NegotiationLimiterOptions extends NegotiationLimits {
  /** Move the overall limit with negotiation latency (see AdaptiveLimitOptions); off by default. */
  adaptive?: boolean | AdaptiveLimitOptions
  /** Told the number of waiting streams whenever it may have changed. */
  onQueued?: (queued: number) => void
  /** Told the overall limit whenever it changed (adaptive mode). */
  onLimit?: (limit: number) => void
}

/** One connection's part of the counts: one per connection, counted by the limiter (read only). */
export class ConnectionShare {
  /** Its streams waiting for a slot. */
  queued = 0
  /** @internal The overall slots its running negotiations hold (interchangeable, given back last first). */
  readonly slots: Release[] = []

  /** Its negotiations running: one slot each. */
  get running (): number {
    return this.slots.length
  }
}

/** A stream that asks for a slot. */
export interface SlotRequest {
  /** Whether it no longer needs one (its stream ended while it waited): it is dropped at its turn. */
  gone: () => boolean
  /** The slot is its own (now, or at its turn): it calls release() once its negotiation ends. */
  start: () => void
  /** It was dropped while waiting: at its turn because it was gone, or because the limiter closed. */
  drop: (reason: 'gone' | 'closed') => void
}

export class NegotiationLimiter {
  readonly #perConnection: number
  readonly #overall: number
  readonly #maxQueuedPerConnection: number
  readonly #maxQueued: number
  readonly #adaptive?: AdaptiveLimit
  readonly #onQueued?: (queued: number) => void
  readonly #onLimit?: (limit: number) => void
  // The overall slots; a waiter's own connection limit is its `admits`.
  readonly #slots: Semaphore

  constructor (options: NegotiationLimiterOptions = {}) {
    this.#perConnection = checkLimit('maxNegotiationsPerConnection', options.maxNegotiationsPerConnection, DEFAULT_NEGOTIATIONS_PER_CONNECTION)
    this.#overall = checkLimit('maxNegotiations', options.maxNegotiations, DEFAULT_NEGOTIATIONS)
    this.#maxQueuedPerConnection = checkLimit('maxQueuedPerConnection', options.maxQueuedPerConnection, this.#perConnection, true)
    this.#maxQueued = checkLimit('maxQueued', options.maxQueued, this.#overall * 4, true)
    if (options.adaptive !== undefined && options.adaptive !== false) {
      if (this.#overall === Infinity) throw invalidArgValue('adaptive', 'needs a finite maxNegotiations', options.adaptive)
      this.#adaptive = new AdaptiveLimit(options.adaptive === true ? {} : options.adaptive, this.#overall)
    }
    this.#onQueued = options.onQueued
    this.#onLimit = options.onLimit
    this.#slots = new Semaphore(this.limit, { closedError: () => new NegotiationError(NegotiationErrorCode.BUSY, 'The negotiation limiter is closed') })
  }

  /** The limit per connection as configured. */
  get maxPerConnection (): number {
    return this.#perConnection
  }

  /** How many streams of one connection may wait. */
  get maxQueuedPerConnection (): number {
    return this.#maxQueuedPerConnection
  }

  /** The overall limit now (it moves in adaptive mode). */
  get limit (): number {
    return this.#adaptive?.limit ?? this.#overall
  }

  /** The most one connection may run now: its own limit, within the overall one. */
  get perConnection (): number {
    return Math.min(this.#perConnection, this.limit)
  }

  /** Negotiations running now. */
  get running (): number {
    return this.#slots.used
  }

  /** Streams waiting for a slot now. */
  get queued (): number {
    return this.#slots.waiting
  }

  /**
   * A stream of `share`'s connection asks for a slot: it starts at once when its connection and
   * the limiter have one free (request.start() runs before this returns), else it waits unless
   * too many wait already. `'refused'`: busy (or the limiter is closed), and the caller refuses it.
   */
  admit (share: ConnectionShare, request: SlotRequest): 'started' | 'queued' | 'refused' {
    if (this.#slots.closed) return 'refused'
    const release = share.running < this.perConnection ? this.#slots.tryAcquire() : undefined
    if (release !== undefined) {
      this.start(share, request, release)
      return 'started'
    }
    if (share.queued >= this.#maxQueuedPerConnection || this.#slots.waiting >= this.#maxQueued) return 'refused'
    share.queued++
    this.#slots.wait(new Waiting(this, share, request))
    this.#onQueued?.(this.#slots.waiting)
    this.#adaptive?.saturated()
    return 'queued'
  }

  /**
   * A negotiation of `share`'s connection ended, after `took` milliseconds (a sample for the
   * adaptive limit; omit it for one that never ran): its slot passes to the oldest waiting stream
   * that may take it.
   */
  release (share: ConnectionShare, took?: number): void {
    if (took !== undefined && this.#adaptive?.observe(took) === true) {
      this.#slots.capacity = this.limit
      this.#onLimit?.(this.limit)
    }
    // Its overall unit passes on to the oldest waiter that may take it (this connection's own
    // slot is free again too: the slot leaves the share first).
    share.slots.pop()?.()
    this.#onQueued?.(this.#slots.waiting)
  }

  /** Takes no more streams: those waiting are dropped ('closed'). Negotiations running go on. Idempotent. */
  close (): void {
    if (this.#slots.closed) return
    this.#slots.close()
    this.#onQueued?.(0)
  }

  /** @internal A waiting stream's slot came (see Waiting). */
  start (share: ConnectionShare, request: SlotRequest, release: Release): void {
    share.slots.push(release)
    if (this.#slots.used >= this.limit) this.#adaptive?.saturated()
    request.start()
  }
}

/** A stream waiting in the limiter's semaphore: its own limit is its connection's slots. (A class, not closures: one object per waiting stream.) */
class Waiting implements SemaphoreWaiter {
  readonly #limiter: NegotiationLimiter
  readonly #share: ConnectionShare
  readonly #request: SlotRequest

  constructor (limiter: NegotiationLimiter, share: ConnectionShare, request: SlotRequest) {
    this.#limiter = limiter
    this.#share = share
    this.#request = request
  }

  admits (): boolean {
    return this.#share.running < this.#limiter.perConnection
  }

  gone (): boolean {
    return this.#request.gone()
  }

  granted (release: Release): void {
    this.#share.queued--
    this.#limiter.start(this.#share, this.#request, release)
  }

  dropped (reason: DropReason): void {
    this.#share.queued--
    this.#request.drop(reason === 'gone' ? 'gone' : 'closed')
  }
}

/**
 * A limit option: `fallback` when undefined, else a positive integer (non-negative with `zero`)
 * or Infinity; anything else is `ERR_OUT_OF_RANGE`.
 */
export function checkLimit (name: string, value: unknown, fallback: number, zero = false): number {
  if (value === undefined) return fallback
  if (value === Infinity) return Infinity
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (zero ? 0 : 1)) {
    throw invalidArgValue(name, `must be ${zero ? 'a non-negative' : 'a positive'} integer or Infinity`, value, true)
  }
  return value
}
