/**
 * A fixed-bucket histogram of milliseconds, in the negotiation metrics' shape (same buckets), so
 * one exporter reads both layers.
 */
import { PHASE_BUCKETS, type PhaseHistogram } from '../negotiation/metrics.js'

/** Buckets: `buckets[i]` counts observations ≤ `HISTOGRAM_BUCKETS[i]` ms (cumulative). */
export const HISTOGRAM_BUCKETS = PHASE_BUCKETS

/** A histogram's figures; the same shape as the negotiation layer's. */
export type Histogram = PhaseHistogram

/** Counts observations into {@link HISTOGRAM_BUCKETS}. */
export class MillisecondHistogram {
  #count = 0
  #sum = 0
  #max = 0
  readonly #buckets = new Float64Array(HISTOGRAM_BUCKETS.length)

  observe (milliseconds: number): void {
    this.#count++
    this.#sum += milliseconds
    if (milliseconds > this.#max) this.#max = milliseconds
    // Cumulative buckets: only the first matching bucket is counted here, the sums are made on read.
    for (let i = 0; i < HISTOGRAM_BUCKETS.length; i++) {
      if (milliseconds <= HISTOGRAM_BUCKETS[i]) {
        this.#buckets[i]++
        return
      }
    }
  }

  /** A copy of the figures. */
  snapshot (): Histogram {
    let running = 0
    const buckets = Array.from(this.#buckets, n => (running += n))
    return { count: this.#count, sum: this.#sum, max: this.#max, buckets }
  }
}
