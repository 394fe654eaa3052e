import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_DHT_PROTOCOL, DiscoveryErrorCode, isDiscoveryError, type ServiceRegistry } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

/** A network whose only other DHT server takes every query and never answers. */
async function blackHole (): Promise<ServiceRegistry> {
  const hole = await net.bootstrap()
  const client = await net.member()
  await hole.libp2p.unhandle(DEFAULT_DHT_PROTOCOL)
  await hole.libp2p.handle(DEFAULT_DHT_PROTOCOL, () => {}, { maxInboundStreams: 10_000, force: true } as any)
  return client
}

describe('the query layer under shutdown, timeouts and aborts', () => {
  it('stop() rejects 100 queries in flight with ERR_DISCOVERY_SHUTDOWN within a second; nothing is left pending', async () => {
    const client = await blackHole()
    const settled: Array<Promise<unknown>> = []
    for (let i = 0; i < 70; i++) settled.push(client.resolve(`name-${i}`, { timeout: 60_000 }).then(() => 'resolved', (e: unknown) => e))
    for (let i = 0; i < 30; i++) {
      settled.push((async () => {
        for await (const _ of client.discover(`other-${i}`, { timeout: 60_000 }));
        return 'ended'
      })().catch((e: unknown) => e))
    }
    // Let them all be in flight (on a loaded machine the last ones take a while to start).
    const deadline = Date.now() + 20_000
    while (client.stats().pending < 100 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    expect(client.stats().pending).toBe(100)
    const started = performance.now()
    const stopping = client.stop()
    const results = await Promise.all(settled)
    const elapsed = performance.now() - started
    for (const result of results) {
      expect(isDiscoveryError(result, DiscoveryErrorCode.SHUTDOWN), String(result)).toBe(true)
    }
    expect(elapsed).toBeLessThan(1000)
    expect(client.queries.pending.size).toBe(0)
    expect(client.queries.timers).toBe(0)
    await stopping
    // A stopped registry refuses new queries the same way.
    await expect(client.resolve('late')).rejects.toMatchObject({ code: DiscoveryErrorCode.SHUTDOWN })
  })

  it('a deadline fails with ERR_DISCOVERY_TIMEOUT and an abort with ERR_DISCOVERY_ABORTED; both clean up', async () => {
    const client = await blackHole()
    await expect(client.resolve('slow', { timeout: 300 })).rejects.toMatchObject({ code: DiscoveryErrorCode.TIMEOUT })
    const controller = new AbortController()
    const aborted = client.resolve('slow', { timeout: 60_000, signal: controller.signal })
    setTimeout(() => controller.abort(new Error('changed my mind')), 100)
    const error = await aborted.then(() => undefined, (e: unknown) => e)
    expect(error).toMatchObject({ code: DiscoveryErrorCode.ABORTED, cause: { message: 'changed my mind' } })
    await expect(client.advertise('never-published', { timeout: 300, wait: 'published' })).rejects.toMatchObject({ code: DiscoveryErrorCode.TIMEOUT })
    // By default advertise() resolves once the provider record went to the nearest peer (a black
    // hole takes it: ADD_PROVIDER has no answer); the full publication still times out, in `published`.
    // (2 s: sending to the black hole alone took over 300 ms on a machine at load 20.)
    const advertisement = await client.advertise('half-published', { timeout: 2_000 })
    await expect(advertisement.published).rejects.toMatchObject({ code: DiscoveryErrorCode.TIMEOUT })
    expect(advertisement.lastError).toMatchObject({ code: DiscoveryErrorCode.TIMEOUT })
    advertisement.cancel()
    const iterator = client.discover('slow', { timeout: 300 })
    await expect(iterator.next()).rejects.toMatchObject({ code: DiscoveryErrorCode.TIMEOUT })
    expect(client.stats().pending).toBe(0)
    expect(client.stats().timers).toBe(0)
    expect(client.stats().outcomes).toMatchObject({ 'resolve:timeout': 1, 'resolve:aborted': 1, 'advertise:timeout': 2, 'announce:success': 1, 'discover:timeout': 1 })
  })

  it('breaking out of discover() ends its query', async () => {
    await net.bootstrap()
    const providers = await net.members(3)
    for (const p of providers) await p.advertise('many')
    const client = await net.member()
    let seen = 0
    for await (const _ of client.discover('many', { timeout: 5000 })) {
      seen++
      break
    }
    expect(seen).toBe(1)
    expect(client.stats().pending).toBe(0)
    expect(client.stats().timers).toBe(0)
    const limited: string[] = []
    for await (const r of client.discover('many', { limit: 2 })) limited.push(r.peerId)
    expect(limited).toHaveLength(2)
    expect(client.stats().pending).toBe(0)
  })
})
