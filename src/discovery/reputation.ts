/**
 * Peers' reputation from their answers, failures and latency: it orders fan-out (best first) and
 * sets resolve()'s automatic hedge. One per registry, given to the components that ask peers. JS thread only.
 */
import { AUTO_HEDGE_MIN, AUTO_HEDGE_QUANTILE, AUTO_HEDGE_SAMPLES, HEDGE_DELAY } from './options.js'

interface PeerScore {
  answers: number
  failures: number
  /** Exponentially weighted mean answer latency (ms). */
  latency: number
}

/** Answer latencies {@link Reputation.quantile} reads: the most recent ones, of every peer. */
const RECENT_LATENCIES = 256

/** Peers' reputation from their answers, failures and latency; orders fan-out (best first). */
export class Reputation {
  readonly #peers = new Map<string, PeerScore>()
  readonly #max: number
  // The last RECENT_LATENCIES answer latencies (a ring), and a sorted copy made on demand.
  readonly #recent = new Float64Array(RECENT_LATENCIES)
  #recorded = 0
  #sorted: Float64Array | undefined

  constructor (maxPeers = 10_000) {
    this.#max = maxPeers
  }

  #entry (peer: string): PeerScore {
    let entry = this.#peers.get(peer)
    if (entry === undefined) {
      // Forget the longest-known peer past the cap (a Map iterates in insertion order).
      if (this.#peers.size >= this.#max) this.#peers.delete(this.#peers.keys().next().value!)
      entry = { answers: 0, failures: 0, latency: 0 }
      this.#peers.set(peer, entry)
    }
    return entry
  }

  /** `peer` answered in `ms`. */
  answered (peer: string, ms: number): void {
    const entry = this.#entry(peer)
    entry.latency = entry.answers === 0 ? ms : entry.latency * 0.8 + ms * 0.2
    entry.answers++
    this.#recent[this.#recorded++ % RECENT_LATENCIES] = ms
    this.#sorted = undefined
  }

  /**
   * The `q`-quantile (0 to 1) of the most recent answer latencies of all peers (ms), or undefined
   * while fewer than `minSamples` are known. Sorts at most once per answer (256 numbers).
   */
  quantile (q: number, minSamples = 1): number | undefined {
    const count = Math.min(this.#recorded, RECENT_LATENCIES)
    if (count === 0 || count < minSamples) return undefined
    this.#sorted ??= this.#recent.slice(0, count).sort()
    // Nearest rank: the smallest latency with at least q of them at or below it.
    return this.#sorted[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))]
  }

  /** `peer` failed to answer (error, timeout or a bad record). */
  failed (peer: string): void {
    this.#entry(peer).failures++
  }

  /** Higher is better: the share of answers (with a prior of one each way), discounted by latency. */
  score (peer: string): number {
    const entry = this.#peers.get(peer)
    if (entry === undefined) return 0.5
    return (entry.answers + 1) / (entry.answers + entry.failures + 2) / (1 + entry.latency / 100)
  }

  /** `peers` sorted best first (stable for equal scores). */
  order<T> (peers: readonly T[], id: (peer: T) => string = String): T[] {
    return peers.map((peer, i) => ({ peer, i, score: this.score(id(peer)) }))
      .sort((a, b) => b.score - a.score || a.i - b.i)
      .map(entry => entry.peer)
  }

  /** A copy of one peer's figures, if known. */
  get (peer: string): Readonly<PeerScore> | undefined {
    const entry = this.#peers.get(peer)
    return entry === undefined ? undefined : { ...entry }
  }

  /** Peers with a reputation. */
  get size (): number {
    return this.#peers.size
  }
}

/** resolve()'s automatic hedge now (ms): see AUTO_HEDGE_QUANTILE. */
export function autoHedge (reputation: Reputation): number {
  const recent = reputation.quantile(AUTO_HEDGE_QUANTILE, AUTO_HEDGE_SAMPLES)
  return recent === undefined ? HEDGE_DELAY : Math.max(AUTO_HEDGE_MIN, recent)
}
