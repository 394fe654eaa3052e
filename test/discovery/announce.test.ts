import { afterEach, describe, expect, it } from 'vitest'
import { compact } from '../../src/discovery/datastore.js'
import { ServiceRegistry } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

const pendingKinds = (registry: ServiceRegistry): string[] => [...registry.queries.pending.values()].map(q => q.kind)

describe('advertise(): discoverable first, published in full after', () => {
  it('resolves once the nearest peers have the provider record; the full publication goes on in `published`', async () => {
    await net.bootstrap()
    const [provider, ...others] = await net.members(6)
    const advertisement = await provider.advertise('early', { metadata: { n: 1 } })
    // The full publication (lookup, record and provider to the k closest) has only just begun.
    expect(pendingKinds(provider)).toContain('advertise')
    expect(provider.stats().outcomes).toMatchObject({ 'announce:success': 1 })
    // Every other member finds it now, through its own DHT lookup.
    for (const other of others) expect((await other.resolve('early', { timeout: 5_000 })).peerId).toBe(provider.peerId.toString())
    await advertisement.published
    expect(provider.stats().outcomes).toMatchObject({ 'advertise:success': 1 })
    expect(provider.stats().pending).toBe(0)
  })

  it("waits for the full publication with wait: 'published', or when announcePeers is 0", async () => {
    await net.bootstrap()
    const [a] = await net.members(3)
    const b = await net.member({ announcePeers: 0 })
    for (const [registry, options] of [[a, { wait: 'published' as const }], [b, {}]] as const) {
      const advertisement = await registry.advertise('full', options)
      expect(pendingKinds(registry)).not.toContain('advertise')
      await advertisement.published
      expect(registry.stats().outcomes['announce:success'] ?? 0).toBe(0)
      expect(registry.stats().outcomes).toMatchObject({ 'advertise:success': 1 })
    }
  })

  it('refuses a bad wait or announcePeers', async () => {
    const registry = await net.bootstrap()
    await expect(registry.advertise('x', { wait: 'soon' as any })).rejects.toThrow(TypeError)
    expect(() => new ServiceRegistry(registry.libp2p, { announcePeers: -1 })).toThrow(RangeError)
    expect(() => new ServiceRegistry(registry.libp2p, { announcePeers: 1.5 })).toThrow(RangeError)
  })
})

describe('the registry datastore', () => {
  it('compact() keeps a value that fills its buffer and copies a view into a larger one', () => {
    const whole = new Uint8Array([1, 2, 3])
    expect(compact(whole)).toBe(whole)
    const slab = new Uint8Array(65_536).fill(7)
    const view = slab.subarray(100, 600)
    const copy = compact(view)
    expect(copy).not.toBe(view)
    expect(copy.buffer.byteLength).toBe(500)
    expect(copy).toEqual(view)
  })

  it('stores the records peers send in buffers of their own size (kad-dht hands it views into 64 KiB slabs)', async () => {
    await net.bootstrap()
    const members = await net.members(4)
    for (const [i, m] of members.entries()) await m.advertise(`svc-${i}`, { metadata: { i }, wait: 'published' })
    let records = 0
    for (const registry of net.registries) {
      const data = (registry.libp2p as any).components.datastore.data as Map<string, Uint8Array>
      for (const [key, value] of data) {
        expect(value.buffer.byteLength, key).toBe(value.byteLength)
        if (key.startsWith('/dht/record/')) records++
      }
    }
    // Each of the 4 records is stored on every other node of this small network.
    expect(records).toBeGreaterThanOrEqual(4 * 3)
  })
})
