import { identify } from '@libp2p/identify'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { createLibp2p, type Libp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { MsQuicTransport } from '../../src/libp2p/index.js'
import { ECHO, echo, echoHandler } from './nodes.js'

const nodes: Libp2p[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

async function values (registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) return {}
  const { values } = await metric.get()
  return Object.fromEntries(values.map(v => [Object.values(v.labels).join(','), v.value]))
}

describe('negotiation metrics through libp2p components.metrics', () => {
  it('counts negotiations in a prometheus registry with the numbers the transport counted', async () => {
    const registry = new Registry()
    let transport: MsQuicTransport | undefined
    const server = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'] },
      transports: [components => (transport = new MsQuicTransport(components))],
      metrics: prometheusMetrics({ registry, preserveExistingMetrics: true, collectDefaultMetrics: false }),
      connectionMonitor: { enabled: false },
      services: { identify: identify() }
    })
    nodes.push(server)
    await server.handle(ECHO, echoHandler, { maxInboundStreams: 64 })
    const client = await createLibp2p({ transports: [components => new MsQuicTransport(components)], connectionMonitor: { enabled: false }, services: { identify: identify() } })
    nodes.push(client)
    await client.dial(server.getMultiaddrs()[0])
    for (let i = 0; i < 5; i++) expect(Buffer.from(await echo(client, server.peerId, Buffer.from(`m${i}`))).toString()).toBe(`m${i}`)
    // A protocol the server does not speak: it answers na, the client gives up, the negotiation fails.
    await expect(client.dialProtocol(server.peerId, '/nobody/1.0.0')).rejects.toMatchObject({ name: 'UnsupportedProtocolError' })
    const counts = transport?.negotiation?.counts
    await expect.poll(() => counts?.failed).toBe(1)
    await expect.poll(() => transport?.negotiation?.active).toBe(0)
    // identify's stream and the five echoes at least
    expect(counts?.completed).toBeGreaterThanOrEqual(6)
    const outcomes = await values(registry, 'libp2p_msquic_negotiations_total')
    expect(outcomes.completed).toBe(counts?.completed)
    expect(outcomes.failed).toBe(1)
    expect(outcomes.busy ?? 0).toBe(0)
    const state = await values(registry, 'libp2p_msquic_negotiations')
    expect(state).toEqual({ active: 0, queued: 0 })
  })
})
