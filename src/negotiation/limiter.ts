/**
 * The negotiation limiter: how many inbound protocol negotiations run at once, per connection and
 * overall; which streams wait for a slot (unread, oldest first, each as soon as its connection has
 * a slot) and which are refused as busy at once because too many wait already; and, optionally,
 * an overall limit that moves with negotiation latency (AdaptiveLimit). ProtocolRouter and the
 * libp2p transport's NegotiationGate both schedule through it. It counts and schedules: reading,
 * answering and resetting streams stay with the caller. JS thread only.
 */
import { invalidArgValue } from '../errors.js'
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
  /** Its negotiations running. */
  running = 0
  /** Its streams waiting for a slot. */
  queued = 0
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

interface Waiting {
  request: SlotRequest
  share: ConnectionShare
}

export class NegotiationLimiter {
  readonly #perConnection: number
  readonly #overall: number
  readonly #maxQueuedPerConnection: number
  readonly #maxQueued: number
  readonly #adaptive?: AdaptiveLimit
  readonly #onQueued?: (queued: number) => void
  readonly #onLimit?: (limit: number) => void
  readonly #waiting: Waiting[] = []
  #running = 0
  #closed = false

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
    return this.#running
  }

  /** Streams waiting for a slot now. */
  get queued (): number {
    return this.#waiting.length
  }

  /**
   * A stream of `share`'s connection asks for a slot: it starts at once when its connection and
   * the limiter have one free (request.start() runs before this returns), else it waits unless
   * too many wait already. `'refused'`: busy (or the limiter is closed), and the caller refuses it.
   */
  admit (share: ConnectionShare, request: SlotRequest): 'started' | 'queued' | 'refused' {
    if (this.#closed) return 'refused'
    if (this.#hasSlot(share)) {
      this.#start(share, request)
      return 'started'
    }
    if (share.queued >= this.#maxQueuedPerConnection || this.#waiting.length >= this.#maxQueued) return 'refused'
    share.queued++
    this.#waiting.push({ request, share })
    this.#onQueued?.(this.#waiting.length)
    this.#adaptive?.saturated()
    return 'queued'
  }

  /**
   * A negotiation of `share`'s connection ended, after `took` milliseconds (a sample for the
   * adaptive limit; omit it for one that never ran): its slot passes to the oldest waiting stream
   * that may take it.
   */
  release (share: ConnectionShare, took?: number): void {
    share.running--
    this.#running--
    if (took !== undefined && this.#adaptive?.observe(took) === true) this.#onLimit?.(this.limit)
    this.#startWaiting()
  }

  /** Takes no more streams: those waiting are dropped ('closed'). Negotiations running go on. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    const waiting = this.#waiting.splice(0)
    for (const { share } of waiting) share.queued--
    this.#onQueued?.(0)
    for (const { request } of waiting) request.drop('closed')
  }

  #hasSlot (share: ConnectionShare): boolean {
    return share.running < this.perConnection && this.#running < this.limit
  }

  #start (share: ConnectionShare, request: SlotRequest): void {
    share.running++
    this.#running++
    if (this.#running >= this.limit) this.#adaptive?.saturated()
    request.start()
  }

  #startWaiting (): void {
    const waiting = this.#waiting
    for (let i = 0; i < waiting.length && this.#running < this.limit;) {
      const next = waiting[i]
      if (next.request.gone()) {
        waiting.splice(i, 1)
        next.share.queued--
        next.request.drop('gone')
      } else if (this.#hasSlot(next.share)) {
        waiting.splice(i, 1)
        next.share.queued--
        this.#start(next.share, next.request)
      } else {
        i++
      }
    }
    this.#onQueued?.(waiting.length)
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
