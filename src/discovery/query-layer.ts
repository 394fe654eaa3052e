/**
 * The async query layer: every discovery query has an id in one pending map, one deadline timer
 * and one AbortSignal that the DHT is always given. Every way out (answer, timeout, abort, error,
 * shutdown) goes through Query.end(), which removes the entry and clears its timers. JS thread only.
 */
import { setMaxListeners } from 'node:events'
import { DiscoveryError, DiscoveryErrorCode, isDiscoveryError, stoppedError } from './errors.js'
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

/** Whether an error is worth another attempt (network trouble, not a verdict). */
export function retryable (error: unknown): boolean {
  if (isDiscoveryError(error)) return error.code === DiscoveryErrorCode.DIAL_FAILED
  return true
}

/**
 * What {@link QueryLayer.run} and {@link QueryLayer.stream} tell as a query begins and ends: the
 * registry's spans and metrics hang on it (Telemetry.traced()).
 */
export interface QueryReport<T> {
  /** The layer refused the query (it is closed): `error` is what the call throws. */
  refused?: (error: unknown) => void
  /** The query began (it is in the pending map). */
  begun?: (query: Query) => void
  /** The outcome of a query that settled with `result`. Default 'success'. */
  outcome?: (result: T) => QueryOutcome
  /** The query ended (it is out of the pending map): its outcome, and its failure if it failed. */
  ended?: (query: Query, outcome: QueryOutcome, failure?: unknown) => void
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

  /**
   * The error this query failed with, given the `error` its work threw: the query's own
   * DiscoveryError when its signal fired first, a DiscoveryError as it is, anything else as
   * ERR_DISCOVERY_DIAL_FAILED (network trouble) with the error as `cause`.
   */
  failure (error: unknown): unknown {
    if (this.signal.aborted && isDiscoveryError(this.signal.reason)) return this.signal.reason
    if (isDiscoveryError(error)) return error
    return new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, (error as Error)?.message ?? String(error), { cause: error })
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

  /**
   * Runs `fn` as one query: the query ends however `fn` settles, or as soon as the query fails,
   * and rejects then with {@link Query.failure}. `report` is told of its beginning and its end.
   */
  async run<T> (kind: string, options: QueryOptions, fn: (query: Query) => Promise<T>, report: QueryReport<T> = {}): Promise<T> {
    const query = this.#start(kind, options, report)
    let result: T
    try {
      result = await query.race(fn(query))
    } catch (error) {
      const failure = query.failure(error)
      query.end()
      report.ended?.(query, outcomeOf(failure), failure)
      throw failure
    }
    query.end()
    report.ended?.(query, report.outcome?.(result) ?? 'success')
    return result
  }

  /**
   * Runs `fn`'s items as one query, yielding them as they come: the query ends when they end, when
   * the caller stops reading, or when it fails (the iterator throws {@link Query.failure} then). A
   * deadline after the first item just ends the stream. `report.outcome` is given the items' count.
   * Begins at the first next(), as any async generator.
   */
  async * stream<T> (kind: string, options: QueryOptions, fn: (query: Query) => AsyncIterable<T>, report: QueryReport<number> = {}): AsyncGenerator<T, void, undefined> {
    const query = this.#start(kind, options, report)
    let count = 0
    let failure: unknown
    try {
      for await (const item of fn(query)) {
        count++
        yield item
      }
    } catch (error) {
      if (!(count > 0 && isDiscoveryError(error, DiscoveryErrorCode.TIMEOUT))) failure = query.failure(error)
    } finally {
      query.end()
      report.ended?.(query, failure !== undefined ? outcomeOf(failure) : report.outcome?.(count) ?? 'success', failure)
    }
    if (failure !== undefined) throw failure
  }

  #start (kind: string, options: QueryOptions, report: QueryReport<any>): Query {
    let query: Query
    try {
      query = this.begin(kind, options)
    } catch (error) {
      report.refused?.(error)
      throw error
    }
    report.begun?.(query)
    return query
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
