/**
 * The package's one metrics sink: what the layers count into (a counter to add to, a gauge to set,
 * a histogram to observe, each with an optional label), and its two adapters, a prom-client
 * `Registry` ({@link promClientSink}) and libp2p's `Metrics` ({@link libp2pSink}). Beside it the
 * in-process millisecond histogram every layer's `stats()`/`snapshot()` reads. A bottom module of
 * the package root like errors.ts and args.ts: it imports no layer. JS thread only.
 */
import { createRequire } from 'node:module'
import { invalidArgType } from './args.js'

/** How a metric is declared: its help text, its one label's name, and (histograms) its bucket bounds. */
export interface MetricOptions {
  help: string
  /** The name of its one label (e.g. `'outcome'`); each update then gives the label's value. */
  label?: string
  /** Histograms: the bucket upper bounds, in the unit observed. */
  buckets?: readonly number[]
  /**
   * Gauges read when the metrics are collected (a scrape) instead of set: the value, or with a
   * `label` one value per label value. The gauge's `set()` then does nothing.
   */
  collect?: () => number | Record<string, number>
}

export interface SinkCounter {
  /** Adds `value` (default 1), under `label`'s value when the counter has a label. */
  add: (value?: number, label?: string) => void
}

export interface SinkGauge {
  set: (value: number, label?: string) => void
}

export interface SinkHistogram {
  observe: (value: number, label?: string) => void
}

/** Where a layer's metrics go: each metric is declared once by name, then updated. */
export interface MetricsSink {
  counter: (name: string, options: MetricOptions) => SinkCounter
  gauge: (name: string, options: MetricOptions) => SinkGauge
  histogram: (name: string, options: MetricOptions) => SinkHistogram
}

/**
 * A sink into a prom-client `Registry`. prom-client is an optional peer dependency, loaded only
 * here: without it this throws ERR_MODULE_NOT_FOUND; a registry that is not prom-client's throws
 * ERR_INVALID_ARG_TYPE (`name` is the option it came from).
 */
export function promClientSink (registry: unknown, name = 'registry'): MetricsSink {
  let prom: any
  try {
    prom = createRequire(import.meta.url)('prom-client')
  } catch (error) {
    throw Object.assign(new Error('The metrics registry needs the prom-client package (npm install prom-client)', { cause: error }), { code: 'ERR_MODULE_NOT_FOUND' })
  }
  if (!(registry instanceof prom.Registry)) throw invalidArgType(name, 'a prom-client Registry', registry)
  // `extra`: what one kind adds (a collected gauge's `collect`).
  const declare = (Kind: any, metric: string, options: MetricOptions, extra: object = {}): any => new Kind({
    name: metric,
    help: options.help,
    registers: [registry],
    ...(options.label !== undefined && { labelNames: [options.label] }),
    ...(options.buckets !== undefined && { buckets: [...options.buckets] }),
    ...extra
  })
  // prom-client takes labels as an object beside the value: { [label]: value }.
  const labels = (options: MetricOptions, value: string | undefined): Record<string, string> | undefined =>
    options.label === undefined || value === undefined ? undefined : { [options.label]: value }
  return {
    counter: (metric, options) => {
      const counter = declare(prom.Counter, metric, options)
      return { add: (value = 1, label) => { const l = labels(options, label); if (l === undefined) counter.inc(value); else counter.inc(l, value) } }
    },
    gauge: (metric, options) => {
      const { collect } = options
      if (collect !== undefined) {
        declare(prom.Gauge, metric, options, {
          // prom-client calls it with the gauge as `this` on each scrape.
          collect (this: any) {
            const value = collect()
            if (typeof value === 'number') this.set(value)
            else for (const [key, n] of Object.entries(value)) this.set(labels(options, key) ?? {}, n)
          }
        })
        return { set: () => {} }
      }
      const gauge = declare(prom.Gauge, metric, options)
      return { set: (value, label) => { const l = labels(options, label); if (l === undefined) gauge.set(value); else gauge.set(l, value) } }
    },
    histogram: (metric, options) => {
      const histogram = declare(prom.Histogram, metric, options)
      return { observe: (value, label) => { const l = labels(options, label); if (l === undefined) histogram.observe(value); else histogram.observe(l, value) } }
    }
  }
}

/**
 * The part of libp2p's `Metrics` (@libp2p/interface) a sink uses, written out here: the package
 * root's types must not need libp2p's packages, which a QUIC-only user does not install.
 */
export interface Libp2pMetricsLike {
  registerCounter: (name: string, options: { help?: string }) => { increment: (value?: number) => void }
  registerCounterGroup: (name: string, options: { help?: string, label?: string }) => { increment: (values: Record<string, number | true>) => void }
  registerMetric: (name: string, options: { help?: string, calculate?: () => number }) => { update: (value: number) => void } | void
  registerMetricGroup: (name: string, options: { help?: string, label?: string, calculate?: () => Record<string, number> }) => { update: (values: Record<string, number>) => void } | void
  registerHistogram: (name: string, options: { help?: string, buckets?: number[] }) => { observe: (value: number) => void }
  registerHistogramGroup: (name: string, options: { help?: string, label?: string, buckets?: number[] }) => { observe: (values: Record<string, number>) => void }
}

/**
 * A sink into libp2p's `Metrics` (`components.metrics`, e.g. @libp2p/prometheus-metrics): a
 * metric with a label is one of libp2p's groups, keyed by the label's value.
 */
export function libp2pSink (metrics: Libp2pMetricsLike): MetricsSink {
  return {
    counter: (name, { help, label }) => {
      if (label === undefined) {
        const counter = metrics.registerCounter(name, { help })
        return { add: (value = 1) => { counter.increment(value) } }
      }
      const group = metrics.registerCounterGroup(name, { help, label })
      return { add: (value = 1, key) => { if (key !== undefined) group.increment({ [key]: value }) } }
    },
    gauge: (name, { help, label, collect }) => {
      if (collect !== undefined) {
        // libp2p's calculated metrics: read on each scrape.
        if (label === undefined) metrics.registerMetric(name, { help, calculate: () => collect() as number })
        else metrics.registerMetricGroup(name, { help, label, calculate: () => collect() as Record<string, number> })
        return { set: () => {} }
      }
      if (label === undefined) {
        const gauge = metrics.registerMetric(name, { help }) as { update: (value: number) => void }
        return { set: value => { gauge.update(value) } }
      }
      const group = metrics.registerMetricGroup(name, { help, label }) as { update: (values: Record<string, number>) => void }
      return { set: (value, key) => { if (key !== undefined) group.update({ [key]: value }) } }
    },
    histogram: (name, { help, label, buckets }) => {
      const options = { help, ...(buckets !== undefined && { buckets: [...buckets] }) }
      if (label === undefined) {
        const histogram = metrics.registerHistogram(name, options)
        return { observe: value => { histogram.observe(value) } }
      }
      const group = metrics.registerHistogramGroup(name, { ...options, label })
      return { observe: (value, key) => { if (key !== undefined) group.observe({ [key]: value }) } }
    }
  }
}

/** Millisecond bucket upper bounds of every in-process histogram. */
export const HISTOGRAM_BUCKETS: readonly number[] = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]

/** A histogram's figures: `buckets[i]` counts observations ≤ `HISTOGRAM_BUCKETS[i]` ms (cumulative). */
export interface Histogram {
  count: number
  /** Milliseconds, summed. */
  sum: number
  max: number
  buckets: number[]
}

/** Counts milliseconds into {@link HISTOGRAM_BUCKETS}, for a layer's stats()/snapshot(). */
export class MillisecondHistogram {
  #count = 0
  #sum = 0
  #max = 0
  readonly #buckets = new Float64Array(HISTOGRAM_BUCKETS.length)

  observe (milliseconds: number): void {
    this.#count++
    this.#sum += milliseconds
    if (milliseconds > this.#max) this.#max = milliseconds
    // Only the first matching bucket is counted here; the cumulative sums are made on read.
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
