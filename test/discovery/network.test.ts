import { afterEach, describe, expect, it } from 'vitest'
import { DiscoveryErrorCode, type Advertisement, type ServiceRegistry } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

async function pool (count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => { while (next < count) await task(next++) }))
}

// Records live a minute, so nothing refreshes on its own during the test: expiry is driven by a
// clock shared by every node (real time plus `skew`), which the test moves past the TTL.
const TTL = 60_000
let skew = 0
const now = (): number => Date.now() + skew

describe('a 30-node network in one process', () => {
  it('every node resolves every other node\'s service; after churn the stopped ones disappear within their TTL', async () => {
    skew = 0
    await net.bootstrap({ now })
    const nodes = await net.members(30, { defaultTtl: TTL, now })
    const names = new Map<ServiceRegistry, string>()
    const ads = new Map<ServiceRegistry, Advertisement>()
    // Each publication in full (wait: 'published'): the 31 nodes share one JavaScript thread, and 30
    // publications still going on behind 870 resolutions would make this a load test (announce.test.ts
    // tests resolving right after advertise() returns).
    await pool(nodes.length, 5, async i => {
      names.set(nodes[i], `service-${i}`)
      ads.set(nodes[i], await nodes[i].advertise(`service-${i}`, { metadata: { index: i }, wait: 'published' }))
    })

    // 30 × 29 resolutions, every record checked.
    const failures: string[] = []
    const pairs = nodes.flatMap((from, a) => nodes.map((to, b) => [from, to, a, b] as const)).filter(([, , a, b]) => a !== b)
    await pool(pairs.length, 8, async i => {
      const [from, to, , b] = pairs[i]
      try {
        const record = await from.resolve(`service-${b}`, { fanOut: 3, timeout: 10_000 })
        if (record.peerId !== to.peerId.toString() || record.name !== `service-${b}` || (record.metadata as { index: number }).index !== b ||
            record.expiresAt <= now() || record.multiaddrs.length === 0) failures.push(`${i}: wrong record ${JSON.stringify(record)}`)
      } catch (error) {
        failures.push(`${i}: ${(error as Error).message}`)
      }
    })
    expect(failures).toEqual([])

    // Churn: a third stops without withdrawing, five join and advertise.
    const stopped = nodes.slice(0, 10)
    const alive = nodes.slice(10)
    // Their last records are fresh (a whole TTL from now), whatever the phase above took.
    await pool(stopped.length, 5, async i => { await ads.get(stopped[i])!.refresh() })
    await Promise.all(stopped.map(async n => { await n.stop() }))
    const joined = await net.members(5, { defaultTtl: TTL, now })
    await Promise.all(joined.map(async (n, i) => { ads.set(n, await n.advertise(`joined-${i}`)) }))
    const askers = [...alive.slice(0, 3), joined[0]]
    // Within the TTL the stopped ones' records are still in the DHT, but the first failed connection
    // to one gives it away: its name is not found (at once, no timeout), and it is skipped from then on.
    await expect(askers[0].resolve('service-0', { timeout: 8_000 })).rejects.toMatchObject({ code: DiscoveryErrorCode.NOT_FOUND })
    expect(askers[0].isUnreachable(stopped[0].peerId)).toBe(true)

    // One TTL later: the live providers have refreshed (as their timers would have), the stopped ones could not.
    skew += TTL + 1
    await pool(alive.length + joined.length, 5, async i => { await ads.get([...alive, ...joined][i])!.refresh() })
    for (const asker of askers) {
      for (let i = 0; i < 10; i++) {
        await expect(asker.resolve(`service-${i}`, { timeout: 8_000 }), `service-${i}`).rejects.toMatchObject({ code: DiscoveryErrorCode.NOT_FOUND })
      }
    }
    const live = [...alive.map(n => [n, names.get(n)!] as const), ...joined.map((n, i) => [n, `joined-${i}`] as const)]
    await pool(live.length * askers.length, 8, async i => {
      const [provider, name] = live[i % live.length]
      const asker = askers[Math.floor(i / live.length)]
      const record = await asker.resolve(name, { timeout: 8_000 })
      expect(record.peerId).toBe(provider.peerId.toString())
      expect(record.expiresAt).toBeGreaterThan(now())
    })
    // Only refreshes due on their own timers may still be publishing; no lookup is left pending.
    for (const n of [...alive, ...joined]) expect([...n.queries.pending.values()].filter(q => q.kind !== 'advertise')).toEqual([])
  }, 400_000)
})

describe('refresh and expiry in real time (short TTLs)', () => {
  it('a record outlives its TTL through refreshes, and is gone one TTL after its provider stops', async () => {
    await net.bootstrap()
    const [provider, client] = await net.members(2)
    const ad = await provider.advertise('short-lived', { ttl: 600 })
    const first = await client.resolve('short-lived')
    await new Promise(resolve => setTimeout(resolve, 1500))
    const later = await client.resolve('short-lived')
    expect(ad.refreshes).toBeGreaterThanOrEqual(2)
    expect(later.sequence).toBeGreaterThan(first.sequence)
    expect(later.expiresAt).toBeGreaterThan(first.expiresAt)
    await provider.stop()
    await new Promise(resolve => setTimeout(resolve, 700))
    await expect(client.resolve('short-lived', { timeout: 3000 })).rejects.toMatchObject({ code: DiscoveryErrorCode.NOT_FOUND })
    expect(provider.queries.timers).toBe(0)
  })

  it('watch() reports added, updated and gone', async () => {
    await net.bootstrap()
    const [a, b, watcher] = await net.members(3)
    const controller = new AbortController()
    const events: string[] = []
    const watching = (async () => {
      for await (const event of watcher.watch('watched', { interval: 100, signal: controller.signal })) {
        events.push(`${event.type} ${event.record.peerId === a.peerId.toString() ? 'a' : 'b'}`)
      }
    })()
    const adA = await a.advertise('watched', { ttl: 30_000 })
    await expect.poll(() => events, { timeout: 5000 }).toContain('added a')
    await b.advertise('watched', { ttl: 30_000 })
    await expect.poll(() => events, { timeout: 5000 }).toContain('added b')
    await adA.refresh()
    await expect.poll(() => events, { timeout: 5000 }).toContain('updated a')
    await adA.withdraw()
    await expect.poll(() => events, { timeout: 5000 }).toContain('gone a')
    controller.abort()
    await watching
    expect(events.filter(e => e.endsWith(' b'))).toEqual(['added b'])
    expect(watcher.stats().pending).toBe(0)
  })
})
