/**
 * Adaptive negotiation limit: additive increase while negotiations stay fast, multiplicative
 * decrease when they slow down (the way TCP finds a congestion window). Latency, not throughput,
 * is the signal: a server that negotiates too much at once gets slower at each negotiation before
 * it gets slower overall. JS thread only.
 */
import { invalidArgValue } from '../errors.js'

/** Options for the router's adaptive mode. */
export interface AdaptiveLimitOptions {
  /** Negotiation time (milliseconds, 90th percentile over a window) to stay under. Default 20. */
  targetLatency?: number
  /** The limit never goes below this. Default 2. */
  min?: number
  /** Nor above this. Default: the router's `maxNegotiations`. */
  max?: number
  /** Negotiations per decision. Default 32. */
  window?: number
}

export class AdaptiveLimit {
  readonly #target: number
  readonly #min: number
  readonly #max: number
  readonly #window: number
  #limit: number
  #samples: number[] = []
  #saturated = false

  constructor (options: AdaptiveLimitOptions, start: number) {
    this.#target = positive('targetLatency', options.targetLatency ?? 20)
    this.#min = positive('min', options.min ?? 2)
    this.#max = positive('max', options.max ?? start)
    this.#window = positive('window', options.window ?? 32)
    if (this.#min > this.#max) throw invalidArgValue('min', `must not exceed max (${this.#max})`, this.#min, true)
    this.#limit = Math.min(Math.max(start, this.#min), this.#max)
  }

  get limit (): number {
    return this.#limit
  }

  /** The limit was reached: an increase is only earned while it is in use. */
  saturated (): void {
    this.#saturated = true
  }

  /** One negotiation took `milliseconds`; returns true when the limit changed. */
  observe (milliseconds: number): boolean {
    this.#samples.push(milliseconds)
    if (this.#samples.length < this.#window) return false
    const sorted = this.#samples.sort((a, b) => a - b)
    const p90 = sorted[Math.floor(sorted.length * 0.9)]
    this.#samples = []
    const before = this.#limit
    if (p90 > this.#target) this.#limit = Math.max(this.#min, Math.floor(this.#limit * 0.7))
    else if (this.#saturated) this.#limit = Math.min(this.#max, this.#limit + 1)
    this.#saturated = false
    return this.#limit !== before
  }
}

function positive (name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw invalidArgValue(name, 'must be a positive number', value, true)
  return value
}
