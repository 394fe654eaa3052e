/**
 * Negotiation metrics: plain counters and histograms any code can read (`snapshot()`), mirrored
 * into the package's metrics sink when one is given (a prom-client registry, libp2p's Metrics).
 * The router and dialProtocol() share the shape: the server side fills `queued` and
 * `negotiating`, the client side `slot`, `credit` and `peer`.
 */
import { invalidArgType } from '../errors.js'
import { HISTOGRAM_BUCKETS, MillisecondHistogram, promClientSink, type Histogram, type MetricsSink, type SinkCounter, type SinkGauge, type SinkHistogram } from '../metrics.js'

/** Where a negotiation spends its time; each has a histogram of milliseconds. */
export type NegotiationPhase =
  /** Server: a stream waiting for a negotiation slot. */
  | 'queued'
  /** Server: the multistream-select exchange, slot held. */
  | 'negotiating'
  /** Client: waiting for a negotiation slot of the connection. */
  | 'slot'
  /** Client: waiting for the peer's stream credit. */
  | 'credit'
  /** Client: the exchange with the peer. */
  | 'peer'

const PHASES: readonly NegotiationPhase[] = ['queued', 'negotiating', 'slot', 'credit', 'peer']

/** Histogram bucket upper bounds, in milliseconds (the package's one set). */
export const PHASE_BUCKETS: readonly number[] = HISTOGRAM_BUCKETS

/** One phase's histogram: `buckets[i]` counts observations ≤ `PHASE_BUCKETS[i]` (cumulative). */
export type PhaseHistogram = Histogram

/** What `snapshot()` returns. */
export interface NegotiationSnapshot {
  /** Negotiations running now. */
  inFlight: number
  /** Streams waiting for a slot now (server). */
  queued: number
  /** The most negotiations that ever ran at once. */
  peakInFlight: number
  completed: number
  /** Streams refused as busy (server), or refused by a busy peer (client). */
  rejectedBusy: number
  /** Negotiations that failed for any other reason, timeouts included. */
  failed: number
  timedOut: number
  /** The limit on concurrent negotiations now (it moves in adaptive mode). */
  limit: number
  phases: Record<NegotiationPhase, PhaseHistogram>
}

/** Options for {@link NegotiationMetrics}. */
export interface NegotiationMetricsOptions {
  /** A prom-client `Registry`: the metrics are registered there too (as with `sink: promClientSink(registry)`). */
  registry?: unknown
  /** Where the metrics go too, e.g. `libp2pSink(components.metrics)`; instead of `registry`. */
  sink?: MetricsSink
  /** Metric name prefix in the sink. Default `'node_msquic_negotiation_'`. */
  prefix?: string
}

type Outcome = 'completed' | 'busy' | 'failed' | 'timeout'

interface SinkMetrics {
  inFlight: SinkGauge
  queued: SinkGauge
  limit: SinkGauge
  outcomes: SinkCounter
  phases: SinkHistogram
}

/** Counters and histograms for one router, one client, or both. */
export class NegotiationMetrics {
  #inFlight = 0
  #queued = 0
  #peak = 0
  #limit = 0
  readonly #outcomes: Record<Outcome, number> = { completed: 0, busy: 0, failed: 0, timeout: 0 }
  readonly #phases = Object.fromEntries(PHASES.map(phase => [phase, new MillisecondHistogram()])) as Record<NegotiationPhase, MillisecondHistogram>
  readonly #sink?: SinkMetrics

  constructor (options: NegotiationMetricsOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
    const sink = options.sink ?? (options.registry !== undefined ? promClientSink(options.registry) : undefined)
    if (sink !== undefined) this.#sink = sinkMetrics(sink, options.prefix ?? 'node_msquic_negotiation_')
  }

  /** @internal */
  started (): void {
    this.#inFlight++
    if (this.#inFlight > this.#peak) this.#peak = this.#inFlight
    this.#sink?.inFlight.set(this.#inFlight)
  }

  /** @internal */
  finished (outcome: Outcome): void {
    this.#inFlight--
    this.#sink?.inFlight.set(this.#inFlight)
    this.count(outcome)
  }

  /** @internal An outcome for a stream that never ran a negotiation (refused while queued). */
  count (outcome: Outcome): void {
    this.#outcomes[outcome]++
    this.#sink?.outcomes.add(1, outcome)
  }

  /** @internal */
  setQueued (queued: number): void {
    this.#queued = queued
    this.#sink?.queued.set(queued)
  }

  /** @internal */
  setLimit (limit: number): void {
    this.#limit = limit
    this.#sink?.limit.set(limit)
  }

  /** @internal */
  observe (phase: NegotiationPhase, milliseconds: number): void {
    this.#phases[phase].observe(milliseconds)
    this.#sink?.phases.observe(milliseconds / 1000, phase)
  }

  /** A copy of every figure now. */
  snapshot (): NegotiationSnapshot {
    const phases = Object.fromEntries(PHASES.map(phase => [phase, this.#phases[phase].snapshot()])) as Record<NegotiationPhase, PhaseHistogram>
    return {
      inFlight: this.#inFlight,
      queued: this.#queued,
      peakInFlight: this.#peak,
      completed: this.#outcomes.completed,
      rejectedBusy: this.#outcomes.busy,
      failed: this.#outcomes.failed + this.#outcomes.timeout,
      timedOut: this.#outcomes.timeout,
      limit: this.#limit,
      phases
    }
  }
}

function sinkMetrics (sink: MetricsSink, prefix: string): SinkMetrics {
  return {
    inFlight: sink.gauge(`${prefix}in_flight`, { help: 'Protocol negotiations running now' }),
    queued: sink.gauge(`${prefix}queued`, { help: 'Streams waiting for a negotiation slot' }),
    limit: sink.gauge(`${prefix}limit`, { help: 'The limit on concurrent negotiations' }),
    outcomes: sink.counter(`${prefix}total`, { help: 'Negotiations by outcome', label: 'outcome' }),
    phases: sink.histogram(`${prefix}phase_seconds`, { help: 'Time spent in each negotiation phase', label: 'phase', buckets: PHASE_BUCKETS.map(ms => ms / 1000) })
  }
}
