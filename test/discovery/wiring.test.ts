import { afterEach, describe, expect, it } from 'vitest'
import { OperationLimiter } from '../../src/limits/index.js'
import { createNode, type TestNode } from '../libp2p/nodes.js'
import { Network } from './network.js'

const net = new Network()
const plain: TestNode[] = []
afterEach(async () => {
  await Promise.all(plain.splice(0).map(async n => { await n.stop() }))
  await net.stop()
})

describe('limits wired into discovery', () => {
  it('service calls go through one OperationLimiter and a ProviderPool that follows the providers', async () => {
    await net.bootstrap()
    const [p1, p2, caller] = await net.members(3)
    let inFlight = 0
    let peak = 0
    for (const p of [p1, p2]) {
      await p.handle('/work/1', async request => {
        inFlight++
        peak = Math.max(peak, inFlight)
        await new Promise(resolve => setTimeout(resolve, 10))
        inFlight--
        return `${p.peerId.toString()} ${Buffer.from(request).toString()}`
      })
    }
    const ad1 = await p1.advertise('worker')
    await p2.advertise('worker')
    const limiter = new OperationLimiter({ capacity: 4, classes: { interactive: { guaranteed: 2 }, batch: { guaranteed: 1, ceiling: 2 } } })
    const client = caller.client('worker', { protocol: '/work/1', limiter, maxPerProvider: 3, watch: { interval: 100 } })
    await client.ready()
    await expect.poll(() => client.providers.length, { timeout: 5000 }).toBe(2)

    const served = new Map<string, number>()
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const cls = i % 3 === 0 ? 'batch' : 'interactive'
      const { response, provider } = await client.request(cls, `job ${i}`)
      const [who, ...rest] = Buffer.from(response).toString().split(' ')
      expect(who).toBe(provider)
      expect(rest.join(' ')).toBe(`job ${i}`)
      served.set(provider, (served.get(provider) ?? 0) + 1)
    }))
    // Never more calls at once than the limiter's capacity, over both providers together.
    expect(peak).toBeLessThanOrEqual(4)
    expect([...served.values()].reduce((a, b) => a + b)).toBe(40)
    expect(limiter.inUse).toBe(0)

    // A provider that withdraws leaves the pool; calls go on to the other.
    await ad1.withdraw()
    await expect.poll(() => client.providers, { timeout: 5000 }).toEqual([p2.peerId.toString()])
    const { provider } = await client.request('interactive', 'after')
    expect(provider).toBe(p2.peerId.toString())
    await client.close()
  })

  it('the TransientConnectionManager owns connections outside the routing table: budget, promotion, expiry', async () => {
    const registry = await net.bootstrap({ transient: { budget: 2, ttl: 400 } })
    const member = await net.member()
    // DHT members enter the routing table: their connections are promoted.
    await expect.poll(() => registry.transient!.stats().promoted, { timeout: 5000 }).toBeGreaterThanOrEqual(1)
    expect(member.stats().routingTable).toBeGreaterThan(0)

    // Plain libp2p nodes (no DHT) never do: they are transient, two at most, and expire.
    for (let i = 0; i < 3; i++) plain.push(await createNode())
    const results = await Promise.allSettled(plain.map(async n => await n.dial(registry.multiaddrs[0])))
    // The refused one may be closed before or after its dial resolves on the dialling side.
    expect(results.filter(r => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(2)
    await expect.poll(() => registry.transient!.stats().rejected.budget, { timeout: 3000 }).toBeGreaterThanOrEqual(1)
    expect(registry.transient!.count).toBeLessThanOrEqual(2)
    // The refused one is closed at once; the others when their reservations expire.
    await expect.poll(() => plain.filter(n => n.getConnections(registry.peerId).length > 0).length, { timeout: 5000 }).toBe(0)
    expect(registry.transient!.stats().expired).toBeGreaterThanOrEqual(1)
    expect(registry.transient!.count).toBe(0)
    expect(registry.libp2p.getConnections(member.peerId).length).toBe(1)
  })

  it('counts a connection once: the transport holds its reservation, the registry promotes it', async () => {
    const registry = await net.bootstrap({ transient: { budget: 64, ttl: 60_000 } })
    let opened = 0
    registry.libp2p.addEventListener('connection:open', () => { opened++ })
    await net.members(3)
    await expect.poll(() => registry.stats().routingTable, { timeout: 5000 }).toBe(3)
    await expect.poll(() => registry.transient!.stats().promoted, { timeout: 5000 }).toBe(opened)
    // One reservation per connection (two, before the transport and the registry shared one).
    expect(registry.transient!.stats().reserved).toBe(opened)
    expect(registry.transient!.count).toBe(0)
  })
})
