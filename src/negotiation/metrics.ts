/**
 * Negotiation metrics: plain counters and histograms any code can read (`snapshot()`), mirrored
 * into a prom-client registry when one is given. The router and dialProtocol() share the shape:
 * the server side fills `queued` and `negotiating`, the client side `slot`, `credit` and `peer`.
 */
import { createRequire } from 'node:module'
import { invalidArgType } from '../errors.js'

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

/** Histogram bucket upper bounds, in milliseconds. */
export const PHASE_BUCKETS: readonly number[] = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]

/** One phase's histogram: `buckets[i]` counts observations ≤ `PHASE_BUCKETS[i]` (cumulative). */
export interface PhaseHistogram {
  count: number
  /** Milliseconds, summed. */
  sum: number
  max: number
  buckets: number[]
}

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
  /** A prom-client `Registry`: the metrics are registered there too. */
  registry?: unknown
  /** Metric name prefix for prom-client. Default `'node_msquic_negotiation_'`. */
  prefix?: string
}

type Outcome = 'completed' | 'busy' | 'failed' | 'timeout'

interface PromMetrics {
  inFlight: { set: (value: number) => void }
  queued: { set: (value: number) => void }
  limit: { set: (value: number) => void }
  outcomes: { inc: (labels: { outcome: Outcome }) => void }
  phases: { observe: (labels: { phase: NegotiationPhase }, seconds: number) => void }
}

/** Counters and histograms for one router, one client, or both. */
export class NegotiationMetrics {
  #inFlight = 0
  #queued = 0
  #peak = 0
  #limit = 0
  readonly #outcomes: Record<Outcome, number> = { completed: 0, busy: 0, failed: 0, timeout: 0 }
  readonly #phases = Object.fromEntries(PHASES.map(phase => [phase, empty()])) as Record<NegotiationPhase, PhaseHistogram>
  readonly #prom?: PromMetrics

  constructor (options: NegotiationMetricsOptions = {}) {
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
    if (options.registry !== undefined) this.#prom = promMetrics(options.registry, options.prefix ?? 'node_msquic_negotiation_')
  }

  /** @internal */
  started (): void {
    this.#inFlight++
    if (this.#inFlight > this.#peak) this.#peak = this.#inFlight
    this.#prom?.inFlight.set(this.#inFlight)
  }

  /** @internal */
  finished (outcome: Outcome): void {
    this.#inFlight--
    this.#prom?.inFlight.set(this.#inFlight)
    this.count(outcome)
  }

  /** @internal An outcome for a stream that never ran a negotiation (refused while queued). */
  count (outcome: Outcome): void {
    this.#outcomes[outcome]++
    this.#prom?.outcomes.inc({ outcome })
  }

  /** @internal */
  setQueued (queued: number): void {
    this.#queued = queued
    this.#prom?.queued.set(queued)
  }

  /** @internal */
  setLimit (limit: number): void {
    this.#limit = limit
    this.#prom?.limit.set(limit)
  }

  /** @internal */
  observe (phase: NegotiationPhase, milliseconds: number): void {
    const histogram = this.#phases[phase]
    histogram.count++
    histogram.sum += milliseconds
    if (milliseconds > histogram.max) histogram.max = milliseconds
    for (let i = 0; i < PHASE_BUCKETS.length; i++) if (milliseconds <= PHASE_BUCKETS[i]) histogram.buckets[i]++
    this.#prom?.phases.observe({ phase }, milliseconds / 1000)
  }

  /** A copy of every figure now. */
  snapshot (): NegotiationSnapshot {
    const phases = Object.fromEntries(PHASES.map(phase => {
      const h = this.#phases[phase]
      return [phase, { ...h, buckets: [...h.buckets] }]
    })) as Record<NegotiationPhase, PhaseHistogram>
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

function empty (): PhaseHistogram {
  return { count: 0, sum: 0, max: 0, buckets: PHASE_BUCKETS.map(() => 0) }
}

// prom-client is an optional peer dependency: loaded only when a registry is passed.
function promMetrics (registry: unknown, prefix: string): PromMetrics {
  let prom: any
  try {
    prom = createRequire(import.meta.url)('prom-client')
  } catch (error) {
    throw Object.assign(new Error('The metrics registry needs the prom-client package (npm install prom-client)', { cause: error }), { code: 'ERR_MODULE_NOT_FOUND' })
  }
  if (!(registry instanceof prom.Registry)) throw invalidArgType('registry', 'a prom-client Registry', registry)
  const registers = [registry]
  return {
    inFlight: new prom.Gauge({ name: `${prefix}in_flight`, help: 'Protocol negotiations running now', registers }),
    queued: new prom.Gauge({ name: `${prefix}queued`, help: 'Streams waiting for a negotiation slot', registers }),
    limit: new prom.Gauge({ name: `${prefix}limit`, help: 'The limit on concurrent negotiations', registers }),
    outcomes: new prom.Counter({ name: `${prefix}total`, help: 'Negotiations by outcome', labelNames: ['outcome'], registers }),
    phases: new prom.Histogram({
      name: `${prefix}phase_seconds`,
      help: 'Time spent in each negotiation phase',
      labelNames: ['phase'],
      buckets: PHASE_BUCKETS.map(ms => ms / 1000),
      registers
    })
  }
}
