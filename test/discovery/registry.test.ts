import { afterEach, describe, expect, it } from 'vitest'
import { DiscoveryErrorCode, MAX_METADATA_BYTES, type ServiceRecord } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

describe('ServiceRegistry', () => {
  it('advertises, resolves, discovers and calls providers on a loopback network', async () => {
    await net.bootstrap()
    const providers = await net.members(3)
    const client = await net.member()
    for (const [i, p] of providers.entries()) {
      await p.handle('/hello/1', request => `hello ${Buffer.from(request).toString()} from ${i}`)
      await p.advertise('hello', { metadata: { index: i }, ttl: 30_000 })
    }
    const record = await client.resolve('hello', { fanOut: 3, timeout: 5_000 })
    expect(record.name).toBe('hello')
    expect(providers.map(p => p.peerId.toString())).toContain(record.peerId)
    expect(record.multiaddrs.length).toBeGreaterThan(0)
    expect(record.expiresAt).toBeGreaterThan(Date.now())

    const found: ServiceRecord[] = []
    for await (const r of client.discover('hello', { timeout: 5_000 })) found.push(r)
    expect(new Set(found.map(r => r.peerId))).toEqual(new Set(providers.map(p => p.peerId.toString())))
    for (const r of found) {
      const index = (r.metadata as { index: number }).index
      expect(r.peerId).toBe(providers[index].peerId.toString())
      const answer = Buffer.from(await client.request(r, '/hello/1', 'client')).toString()
      expect(answer).toBe(`hello client from ${index}`)
    }
    expect(client.stats().pending).toBe(0)
    expect(client.stats().timers).toBe(0)
  })

  it('returns bytes metadata as bytes, and refuses oversized metadata before publishing', async () => {
    await net.bootstrap()
    const [p, c] = await net.members(2)
    await p.advertise('bytes', { metadata: new Uint8Array([1, 2, 3]) })
    const record = await c.resolve('bytes')
    expect(record.metadata).toBeInstanceOf(Uint8Array)
    expect([...(record.metadata as Uint8Array)]).toEqual([1, 2, 3])
    await expect(p.advertise('big', { metadata: 'x'.repeat(MAX_METADATA_BYTES + 10) })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  })

  it('withdraws: the provider is skipped; an unknown name is ERR_DISCOVERY_NOT_FOUND', async () => {
    await net.bootstrap()
    const [p, c] = await net.members(2)
    const ad = await p.advertise('gone-soon', { ttl: 30_000 })
    expect((await c.resolve('gone-soon')).peerId).toBe(p.peerId.toString())
    await ad.withdraw()
    await expect(c.resolve('gone-soon', { timeout: 3_000 })).rejects.toMatchObject({ code: DiscoveryErrorCode.NOT_FOUND })
    await expect(c.resolve('never-advertised', { timeout: 3_000 })).rejects.toMatchObject({ code: DiscoveryErrorCode.NOT_FOUND })
    expect(c.stats().pending).toBe(0)
  })
})
