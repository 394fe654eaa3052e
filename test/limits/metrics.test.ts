/**
 * The one metrics sink: the transient manager's figures through both adapters (a prom-client
 * registry, and libp2p's Metrics over @libp2p/prometheus-metrics, as a libp2p node would give it),
 * with the same numbers its stats() reports.
 */
import { defaultLogger } from '@libp2p/logger'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { Registry } from 'prom-client'
import { describe, it, expect } from 'vitest'
import { TransientConnectionManager, libp2pSink, promClientSink, type MetricsSink } from '../../src/limits/index.js'
import { FakeClock } from './fake-clock.js'

async function values (registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) return {}
  const { values } = await metric.get()
  return Object.fromEntries(values.map(v => [Object.values(v.labels).join(','), v.value]))
}

async function exercise (metrics: MetricsSink): Promise<TransientConnectionManager> {
  const clock = new FakeClock()
  const manager = new TransientConnectionManager({ budget: 2, ttl: 1000, clock, metrics })
  const promoted = manager.tryReserve(1)
  const released = manager.tryReserve(2)
  expect(manager.tryReserve(3)).toBeNull()
  clock.advance(25)
  promoted?.promote('peer')
  released?.release('closed')
  manager.tryReserve(4)
  return manager
}

describe('metrics sink', () => {
  it('should count the transient manager into a prom-client registry', async () => {
    const registry = new Registry()
    const manager = await exercise(promClientSink(registry))
    expect(await values(registry, 'node_msquic_transient_total')).toEqual({ reserved: 3, rejected_budget: 1, promoted: 1, released: 1 })
    expect(await values(registry, 'node_msquic_transient_reservations')).toEqual({ '': manager.count })
    expect(await registry.metrics()).toContain('node_msquic_transient_promote_seconds_sum 0.025')
    expect(() => promClientSink({})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => new TransientConnectionManager({ budget: 1, ttl: 1, metrics: {} as MetricsSink })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })

  it('should read collected gauges on each scrape, through both adapters', async () => {
    for (const adapter of ['prom-client', 'libp2p'] as const) {
      const registry = new Registry()
      const sink = adapter === 'prom-client' ? promClientSink(registry) : libp2pSink(prometheusMetrics({ registry, collectDefaultMetrics: false })({ logger: defaultLogger() } as any))
      let running = 1
      sink.gauge('node_msquic_test_state', { label: 'state', help: 'running and queued', collect: () => ({ running, queued: 2 * running }) })
      sink.gauge('node_msquic_test_level', { help: 'one value', collect: () => running * 10 })
      expect(await values(registry, 'node_msquic_test_state'), adapter).toEqual({ running: 1, queued: 2 })
      running = 3
      expect(await values(registry, 'node_msquic_test_state'), adapter).toEqual({ running: 3, queued: 6 })
      expect(await values(registry, 'node_msquic_test_level'), adapter).toEqual({ '': 30 })
    }
  })

  it('should count the same figures through libp2p\'s Metrics', async () => {
    const registry = new Registry()
    const metrics = prometheusMetrics({ registry, collectDefaultMetrics: false })({ logger: defaultLogger() } as any)
    const manager = await exercise(libp2pSink(metrics))
    const stats = manager.stats()
    expect(await values(registry, 'node_msquic_transient_total')).toEqual({ reserved: stats.reserved, rejected_budget: stats.rejected.budget, promoted: stats.promoted, released: stats.released })
    expect(await values(registry, 'node_msquic_transient_reservations')).toEqual({ '': stats.count })
  })
})
