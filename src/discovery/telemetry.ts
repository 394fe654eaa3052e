/**
 * Metrics through the package's one metrics sink (the registry gives it libp2p's
 * `components.metrics`, so @libp2p/prometheus-metrics or any other implementation picks them up)
 * and tracing spans through `@opentelemetry/api`, an optional peer dependency: without it, or
 * without an SDK registered by the application, spans are no-ops.
 */
import type { MetricsSink, SinkCounter, SinkHistogram } from '../metrics.js'
import { outcomeOf, type QueryOutcome, type QueryReport } from './query-layer.js'

/** Metric names share this prefix. */
export const METRICS_PREFIX = 'node_msquic_discovery'

/**
 * Where one resolve's time went (ms): the provider search until its first provider (`search`), and
 * for the fetch that won, the wait before it was started (`queued`: a hedge period, or providers
 * asked before it), the connection (`connect`: 0 on one already open), the protocol negotiation of
 * its stream (`negotiate`), the request until its answer (`exchange`: with `via: 'dht'`, the DHT
 * read that answered instead) and the record's verification (`verify`). Set on the resolve span as
 * `discovery.<phase>_ms` and observed in the `phase_duration_seconds` histogram.
 */
export interface ResolveTimes {
  search?: number
  queued?: number
  connect?: number
  negotiate?: number
  exchange?: number
  verify?: number
  via?: 'direct' | 'dht'
}

/** The phases of {@link ResolveTimes}, in the order they happen. */
export const RESOLVE_PHASES = ['search', 'queued', 'connect', 'negotiate', 'exchange', 'verify'] as const

/** The slice of an OpenTelemetry span the registry uses. */
export interface SpanLike {
  setAttribute: (key: string, value: string | number | boolean) => unknown
  setStatus: (status: { code: number, message?: string }) => unknown
  recordException: (error: Error) => unknown
  end: () => void
}

interface TracerLike {
  startSpan: (name: string, options?: { attributes?: Record<string, string | number | boolean> }) => SpanLike
}

const noopSpan: SpanLike = { setAttribute: () => noopSpan, setStatus: () => noopSpan, recordException: () => {}, end: () => {} }

let api: { trace: { getTracer: (name: string, version?: string) => TracerLike } } | null | undefined
/** Loads @opentelemetry/api once, if installed. */
export async function loadTracing (): Promise<void> {
  if (api !== undefined) return
  try {
    api = await import('@opentelemetry/api') as unknown as typeof api
  } catch {
    api = null
  }
}

/** OpenTelemetry's span status codes (`SpanStatusCode`). */
const STATUS_OK = 1
const STATUS_ERROR = 2

/** Counters and histograms of one registry, and its span factory. */
export class Telemetry {
  readonly #queries?: SinkCounter
  readonly #latency?: SinkHistogram
  readonly #rejected?: SinkCounter
  readonly #retries?: SinkCounter
  readonly #events?: SinkCounter
  readonly #lookups?: SinkCounter
  readonly #phases?: SinkHistogram
  /** Rejected records by reason, also kept here (and in stats()) without a metrics component. */
  readonly rejected: Record<string, number> = {}
  retries = 0
  readonly outcomes: Record<string, number> = {}
  /** Provider searches by where they found their first provider (RegistryStats.lookups). */
  readonly lookups = { local: 0, nearby: 0, iterative: 0, none: 0 }
  /** kad-dht query events handled (RegistryStats.dhtEvents); the metric takes them as each query ends. */
  dhtEvents = 0
  #reported = 0

  constructor (sink: MetricsSink | undefined, gauges: { records: () => number, peers: () => number, pending: () => number, advertised: () => number }) {
    if (sink === undefined) return
    this.#queries = sink.counter(`${METRICS_PREFIX}_queries_total`, { label: 'outcome', help: 'Discovery queries by kind and outcome' })
    this.#latency = sink.histogram(`${METRICS_PREFIX}_query_duration_seconds`, { label: 'kind', help: 'Discovery query latency by kind', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] })
    this.#rejected = sink.counter(`${METRICS_PREFIX}_records_rejected_total`, { label: 'reason', help: 'Service records refused, by reason' })
    this.#retries = sink.counter(`${METRICS_PREFIX}_retries_total`, { help: 'Query attempts retried after a network error' })
    this.#events = sink.counter(`${METRICS_PREFIX}_dht_events_total`, { help: 'kad-dht query events handled by the query layer' })
    this.#lookups = sink.counter(`${METRICS_PREFIX}_lookups_total`, { label: 'source', help: 'Provider searches by where they found their first provider: local, nearby, iterative, none' })
    this.#phases = sink.histogram(`${METRICS_PREFIX}_phase_duration_seconds`, { label: 'phase', help: 'Where successful resolves spent their time: search, queued, connect, negotiate, exchange, verify', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] })
    sink.gauge(`${METRICS_PREFIX}_state`, {
      label: 'gauge',
      help: 'Discovery gauges: records stored, peers known, queries pending, services advertised',
      collect: () => ({ records: gauges.records(), peers: gauges.peers(), pending: gauges.pending(), advertised: gauges.advertised() })
    })
  }

  /** Counts a finished query of `kind` and its latency. */
  query (kind: string, outcome: QueryOutcome, ms: number): void {
    const key = `${kind}:${outcome}`
    this.outcomes[key] = (this.outcomes[key] ?? 0) + 1
    this.#queries?.add(1, key)
    this.#latency?.observe(ms / 1000, kind)
  }

  record (reason: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1
    this.#rejected?.add(1, reason)
  }

  /** Counts a provider search by where it found its first provider. */
  lookup (source: keyof Telemetry['lookups']): void {
    this.lookups[source]++
    this.#lookups?.add(1, source)
  }

  /** Puts a resolve's phases on its span and into the phases histogram. */
  phases (span: SpanLike, times: ResolveTimes): void {
    for (const phase of RESOLVE_PHASES) {
      const ms = times[phase]
      if (ms === undefined) continue
      span.setAttribute(`discovery.${phase}_ms`, Math.round(ms * 1000) / 1000)
      this.#phases?.observe(ms / 1000, phase)
    }
    if (times.via !== undefined) span.setAttribute('discovery.via', times.via)
  }

  retry (): void {
    this.retries++
    this.#retries?.add()
  }

  /**
   * The report of one query to QueryLayer.run() or stream(): its span (opened as the query begins,
   * unless given open already: then a refused query ends it too) ended with the query's outcome,
   * `discovery.peers_contacted` read from `peers()` and whatever `last()` adds; the query counted
   * with its latency, and the DHT events handled since the last query ended.
   */
  traced<T> (span: SpanLike | (() => SpanLike), figures: { peers: () => number, outcome?: (result: T) => QueryOutcome, last?: (span: SpanLike, outcome: QueryOutcome) => void }): QueryReport<T> {
    let open = typeof span === 'function' ? undefined : span
    return {
      refused: open === undefined ? undefined : error => { Telemetry.end(open!, outcomeOf(error), error) },
      begun: () => { open ??= (span as () => SpanLike)() },
      outcome: figures.outcome,
      ended: (query, outcome, failure) => {
        figures.last?.(open!, outcome)
        open!.setAttribute('discovery.peers_contacted', figures.peers())
        Telemetry.end(open!, outcome, failure)
        this.query(query.kind, outcome, performance.now() - query.started)
        if (this.dhtEvents > this.#reported) this.#events?.add(this.dhtEvents - this.#reported)
        this.#reported = this.dhtEvents
      }
    }
  }

  /** Starts a span (a no-op one without @opentelemetry/api or a registered SDK). */
  span (name: string, attributes: Record<string, string | number | boolean>): SpanLike {
    if (api == null) return noopSpan
    return api.trace.getTracer('node-msquic/discovery').startSpan(name, { attributes })
  }

  /** Ends `span` with the query's outcome (and the error, if any). */
  static end (span: SpanLike, outcome: QueryOutcome, error?: unknown): void {
    span.setAttribute('discovery.outcome', outcome)
    if (outcome === 'success') span.setStatus({ code: STATUS_OK })
    else {
      span.setStatus({ code: STATUS_ERROR, message: error instanceof Error ? error.message : outcome })
      if (error instanceof Error) span.recordException(error)
    }
    span.end()
  }
}
