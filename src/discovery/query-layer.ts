/**
 * The async query layer: every discovery query has an id in one pending map, one deadline timer
 * and one AbortSignal that the DHT is always given. Every way out (answer, timeout, abort, error,
 * shutdown) goes through Query.end(), which removes the entry and clears its timers. JS thread only.
 */
import { setMaxListeners } from 'node:events'
import { DiscoveryError, DiscoveryErrorCode, stoppedError } from './errors.js'
import { DEFAULT_QUERY_TIMEOUT, milliseconds, type QueryOptions } from './options.js'

export { DEFAULT_QUERY_TIMEOUT, type QueryOptions }
/** The first retry's backoff (ms); it doubles per attempt, with jitter, up to MAX_BACKOFF. */
export const BASE_BACKOFF = 25
/** The longest backoff between two attempts (ms). */
export const MAX_BACKOFF = 1_000

/**
 * @internal The abort reason of a query's signal once the query has ended normally: whatever still
 * runs under it (the losers of a race) stops. One shared object: a query's end costs no stack capture
 * (the registry ends its own helpers' signals with it too).
 */
export const ENDED = new DiscoveryError(DiscoveryErrorCode.ABORTED, 'the query ended')

/** How a query ended; the outcome label of the queries metric. */
export type QueryOutcome = 'success' | 'not-found' | 'timeout' | 'aborted' | 'shutdown' | 'error'

/** Maps a query's failure to its outcome label. */
export function outcomeOf (error: unknown): QueryOutcome {
  if (error instanceof DiscoveryError) {
    switch (error.code) {
      case DiscoveryErrorCode.NOT_FOUND: return 'not-found'
      case DiscoveryErrorCode.TIMEOUT: return 'timeout'
      case DiscoveryErrorCode.ABORTED: return 'aborted'
      case DiscoveryErrorCode.SHUTDOWN: return 'shutdown'
    }
  }
  return 'error'
}

/** One pending query. Its `signal` aborts, with the DiscoveryError as reason, when it fails. */
export class Query {
  /** Unique in its layer; the key of the pending map. */
  readonly id: number
  /** What the query is (`resolve`, `discover`, `advertise`, …): the metrics label. */
  readonly kind: string
  /** When it began (`performance.now()`). */
  readonly started = performance.now()
  /** When it times out (`performance.now()` clock). */
  readonly deadline: number
  /** Aborted when the query times out, is aborted or is shut down; pass it to every DHT call. */
  readonly signal: AbortSignal
  /** Rejects with the query's DiscoveryError when it fails (never resolves). */
  readonly failed: Promise<never>
  readonly #controller = new AbortController()
  readonly #owner: QueryLayer
  readonly #callerSignal?: AbortSignal
  readonly #onCallerAbort?: () => void
  #timer: NodeJS.Timeout | undefined
  #reject!: (error: DiscoveryError) => void
  #ended = false

  /** @internal */
  constructor (owner: QueryLayer, id: number, kind: string, options: QueryOptions) {
    this.#owner = owner
    this.id = id
    this.kind = kind
    const timeout = options.timeout ?? DEFAULT_QUERY_TIMEOUT
    milliseconds('timeout', timeout)
    this.deadline = this.started + timeout
    this.signal = this.#controller.signal
    // One query hands its signal to many DHT sub-queries at once.
    setMaxListeners(Infinity, this.signal)
    this.failed = new Promise<never>((resolve, reject) => { this.#reject = reject })
    this.failed.catch(() => {})
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.fail(new DiscoveryError(DiscoveryErrorCode.TIMEOUT, `${kind} timed out after ${timeout} ms`))
    }, timeout)
    this.#timer.unref()
    owner.timerCount++
    const signal = options.signal
    if (signal !== undefined) {
      this.#callerSignal = signal
      this.#onCallerAbort = () => this.fail(new DiscoveryError(DiscoveryErrorCode.ABORTED, `${kind} was aborted`, { cause: signal.reason }))
      if (signal.aborted) queueMicrotask(this.#onCallerAbort)
      else signal.addEventListener('abort', this.#onCallerAbort, { once: true })
    }
  }

  /** Milliseconds left before the deadline. */
  get remaining (): number {
    return this.deadline - performance.now()
  }

  /** Whether end() has run (the query is out of the pending map). */
  get ended (): boolean {
    return this.#ended
  }

  /** Fails the query (first call wins): aborts its signal and rejects `failed` with `error`. */
  fail (error: DiscoveryError): void {
    if (this.#ended || this.signal.aborted) return
    this.#controller.abort(error)
    this.#reject(error)
  }

  /** Takes the query out of the pending map and clears its timers. Idempotent. */
  end (): void {
    if (this.#ended) return
    this.#ended = true
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    this.#owner.timerCount--
    this.#callerSignal?.removeEventListener('abort', this.#onCallerAbort!)
    // Whatever is still running for this query (losers of a race, a drained iterator) stops now.
    if (!this.signal.aborted) this.#controller.abort(ENDED)
    this.#owner.pending.delete(this.id)
  }

  /** Waits `ms`, or rejects with the query's error if it fails first; the timer counts as the query's. */
  async sleep (ms: number): Promise<void> {
    if (this.signal.aborted) throw this.signal.reason
    this.#owner.timerCount++
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { this.signal.removeEventListener('abort', onAbort); resolve() }, ms)
        const onAbort = (): void => { clearTimeout(timer); reject(this.signal.reason) }
        this.signal.addEventListener('abort', onAbort, { once: true })
      })
    } finally {
      this.#owner.timerCount--
    }
  }

  /**
   * Runs `attempt` until it succeeds, retrying failures that `retryable` accepts with exponential
   * backoff (and jitter) while the deadline leaves room. `onRetry` is told of each retry.
   */
  async retry<T> (attempt: (signal: AbortSignal, n: number) => Promise<T>, retryable: (error: unknown) => boolean, onRetry?: () => void): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt(this.signal, n)
      } catch (error) {
        if (this.signal.aborted) throw this.signal.reason
        const delay = Math.min(MAX_BACKOFF, BASE_BACKOFF * 2 ** n) * (0.5 + Math.random() / 2)
        if (!retryable(error) || this.remaining <= delay) throw error
        onRetry?.()
        await this.sleep(delay)
      }
    }
  }

  /** Runs `work` under this query: settles with it, or rejects as soon as the query fails. */
  async race<T> (work: Promise<T>): Promise<T> {
    work.catch(() => {})
    return await Promise.race([work, this.failed])
  }
}

/** The pending map and its bookkeeping: one per registry. */
export class QueryLayer {
  /** Every pending query by id; empty when nothing is in flight. */
  readonly pending = new Map<number, Query>()
  /** Deadline and backoff timers armed now; 0 when nothing is in flight. @internal */
  timerCount = 0
  #nextId = 1
  #closed = false
  /** Queries begun since construction: the layer's event count. */
  begun = 0

  /** Whether close() has run. */
  get closed (): boolean {
    return this.#closed
  }

  /** Armed deadline and backoff timers. */
  get timers (): number {
    return this.timerCount
  }

  /** Starts a query: it is in `pending` until its end(). Throws ERR_DISCOVERY_SHUTDOWN once closed. */
  begin (kind: string, options: QueryOptions = {}): Query {
    if (this.#closed) throw stoppedError(kind)
    const query = new Query(this, this.#nextId++, kind, options)
    this.pending.set(query.id, query)
    this.begun++
    return query
  }

  /** Runs `fn` as one query: the query ends however `fn` settles, or as soon as the query fails. */
  async run<T> (kind: string, options: QueryOptions, fn: (query: Query) => Promise<T>): Promise<T> {
    const query = this.begin(kind, options)
    try {
      return await query.race(fn(query))
    } finally {
      query.end()
    }
  }

  /** Fails every pending query with ERR_DISCOVERY_SHUTDOWN, at once, and refuses new ones. */
  close (): void {
    this.#closed = true
    for (const query of [...this.pending.values()]) {
      query.fail(new DiscoveryError(DiscoveryErrorCode.SHUTDOWN, `the registry stopped; ${query.kind} ${query.id} cancelled`))
      query.end()
    }
  }
}

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
