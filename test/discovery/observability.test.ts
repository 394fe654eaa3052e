import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { trace } from '@opentelemetry/api'
import { Registry } from 'prom-client'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DiscoveryErrorCode, METRICS_PREFIX } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

const exporter = new InMemorySpanExporter()
beforeAll(() => { trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })) })
afterAll(() => { trace.disable() })

/** A libp2p metrics implementation that keeps what it is given, by metric name. */
function recordingMetrics (): { factory: () => any, values: Map<string, Record<string, number>>, calculated: Map<string, () => unknown> } {
  const values = new Map<string, Record<string, number>>()
  const calculated = new Map<string, () => unknown>()
  const group = (name: string): any => {
    const v: Record<string, number> = {}
    values.set(name, v)
    const add = (key: string, n: number): void => { v[key] = (v[key] ?? 0) + n }
    return {
      increment: (x?: number | Record<string, number | true>) => { if (typeof x === 'object') for (const [k, n] of Object.entries(x)) add(k, n === true ? 1 : n); else add('', x ?? 1) },
      observe: (x: number | Record<string, number>) => { if (typeof x === 'object') for (const k of Object.keys(x)) add(`${k}:count`, 1); else add('count', 1) },
      update: () => {}, decrement: () => {}, reset: () => {}, timer: () => () => {}
    }
  }
  const register = (name: string, options?: { calculate?: () => unknown }): any => {
    if (options?.calculate !== undefined) { calculated.set(name, options.calculate); return undefined }
    return group(name)
  }
  const metrics = {
    trackMultiaddrConnection: () => {}, trackProtocolStream: () => {},
    registerMetric: register, registerMetricGroup: register, registerCounter: register, registerCounterGroup: register,
    registerHistogram: register, registerHistogramGroup: register, registerSummary: register, registerSummaryGroup: register,
    traceFunction: (_: string, fn: unknown) => fn, createTrace: () => undefined
  }
  return { factory: () => metrics, values, calculated }
}

describe('observability', () => {
  it('counts queries by outcome, latency, rejected records and gauges through components.metrics', async () => {
    await net.bootstrap()
    const provider = await net.member()
    const recorded = recordingMetrics()
    const client = await net.member({ metrics: recorded.factory })
    await provider.advertise('metered')
    await client.resolve('metered')
    await client.resolve('metered', { fanOut: 1 })
    await expect(client.resolve('unknown-name', { timeout: 2000 })).rejects.toMatchObject({ code: DiscoveryErrorCode.NOT_FOUND })
    expect(recorded.values.get(`${METRICS_PREFIX}_queries_total`)).toMatchObject({ 'resolve:success': 2, 'resolve:not-found': 1 })
    expect(recorded.values.get(`${METRICS_PREFIX}_query_duration_seconds`)).toMatchObject({ 'resolve:count': 3 })
    expect(recorded.values.get(`${METRICS_PREFIX}_dht_events_total`)?.[''] ?? 0).toBeGreaterThan(0)
    // Where the two successful resolves spent their time, phase by phase (ResolveTimes).
    expect(recorded.values.get(`${METRICS_PREFIX}_phase_duration_seconds`)).toMatchObject({ 'search:count': 2, 'negotiate:count': 2, 'exchange:count': 2, 'verify:count': 2 })
    // Two searches found the provider (in the node's own store or from the nearest peers), one found none.
    const lookups = recorded.values.get(`${METRICS_PREFIX}_lookups_total`) ?? {}
    expect((lookups.local ?? 0) + (lookups.nearby ?? 0) + (lookups.iterative ?? 0)).toBe(2)
    expect(lookups.none).toBe(1)
    expect(client.stats().lookups).toMatchObject(lookups)
    const gauges = await recorded.calculated.get(`${METRICS_PREFIX}_state`)!() as Record<string, number>
    expect(gauges).toMatchObject({ pending: 0 })
    expect(gauges.peers).toBeGreaterThan(0)
  })

  it('is usable with prom-client through @libp2p/prometheus-metrics', async () => {
    await net.bootstrap()
    const provider = await net.member()
    const registry = new Registry()
    const client = await net.member({ metrics: prometheusMetrics({ registry, collectDefaultMetrics: false }) })
    await provider.advertise('scraped')
    await client.resolve('scraped')
    const text = await registry.metrics()
    expect(text).toMatch(new RegExp(`${METRICS_PREFIX}_queries_total\\{outcome="resolve:success"\\} 1`))
    expect(text).toContain(`${METRICS_PREFIX}_query_duration_seconds_bucket`)
    expect(text).toMatch(new RegExp(`${METRICS_PREFIX}_state\\{gauge="pending"\\} 0`))
  })

  it('records discovery.resolve and discovery.advertise spans with peers contacted and outcome', async () => {
    exporter.reset()
    await net.bootstrap()
    const [provider, client] = await net.members(2)
    // The advertise span ends with the full publication (advertise() resolves once discoverable).
    await (await provider.advertise('traced')).published
    await client.resolve('traced', { fanOut: 2 })
    await expect(client.resolve('not-there', { timeout: 2000 })).rejects.toMatchObject({ code: DiscoveryErrorCode.NOT_FOUND })
    const spans = exporter.getFinishedSpans()
    const advertise = spans.find(s => s.name === 'discovery.advertise')
    expect(advertise?.attributes).toMatchObject({ 'discovery.name': 'traced', 'discovery.outcome': 'success' })
    const announce = spans.find(s => s.name === 'discovery.announce')
    expect(announce?.attributes).toMatchObject({ 'discovery.name': 'traced', 'discovery.outcome': 'success' })
    expect(announce?.attributes['discovery.peers_contacted']).toBeGreaterThanOrEqual(1)
    const resolves = spans.filter(s => s.name === 'discovery.resolve')
    expect(resolves.map(s => s.attributes['discovery.outcome'])).toEqual(['success', 'not-found'])
    expect(resolves[0].attributes).toMatchObject({ 'discovery.name': 'traced', 'discovery.fan_out': 2 })
    expect(resolves[0].attributes['discovery.peers_contacted']).toBeGreaterThanOrEqual(1)
    expect(resolves[1].status.code).toBe(2)
    expect(['local', 'nearby', 'iterative']).toContain(resolves[0].attributes['discovery.lookup'])
    expect(resolves[1].attributes['discovery.lookup']).toBe('none')
    // Where the resolve's time went: the search, then the fetch that answered, phase by phase.
    for (const phase of ['search', 'queued', 'connect', 'negotiate', 'exchange', 'verify']) expect(resolves[0].attributes[`discovery.${phase}_ms`]).toBeGreaterThanOrEqual(0)
    expect(resolves[0].attributes['discovery.via']).toBe('direct')
    expect(resolves[1].attributes['discovery.search_ms']).toBeUndefined()
    // A publication's wait for its turn (ServiceRegistryOptions.publications).
    expect(advertise?.attributes['discovery.queued_ms']).toBeGreaterThanOrEqual(0)
  })
})
