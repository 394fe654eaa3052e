// What a registry tells peers about its own addresses: never loopback ones when it has another,
// `announce` instead of the listening ones, never `noAnnounce` ones (ServiceRegistryInit).
import { networkInterfaces } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { isLoopback, publishable } from '../../src/discovery/addresses.js'
import { ServiceRegistry, recordKey, verifyRecordForKey } from '../../src/discovery/index.js'
import { Network } from './network.js'

const net = new Network()
afterEach(async () => { await net.stop() })

const ma = (s: string): ReturnType<typeof multiaddr> => multiaddr(s)
/** This host's IPv4 addresses other than loopback (CI machines have one at least). */
const external = Object.values(networkInterfaces()).flat().filter(i => i?.family === 'IPv4' && !i.internal).map(i => i!.address)

describe('publishable()', () => {
  it('leaves loopback addresses out when another is left, keeps them on a loopback-only node', () => {
    const lo = ma('/ip4/127.0.0.1/udp/4001/quic-v1')
    const lo6 = ma('/ip6/::1/udp/4001/quic-v1')
    const lan = ma('/ip4/198.18.0.7/udp/4001/quic-v1')
    expect([lo, lo6, ma('/ip4/127.1.2.3/udp/1/quic-v1')].every(isLoopback)).toBe(true)
    expect(isLoopback(lan)).toBe(false)
    expect(publishable([lo, lan, lo6]).map(String)).toEqual([lan.toString()])
    expect(publishable([lo, lo6]).map(String)).toEqual([lo.toString(), lo6.toString()])
  })

  it('leaves out noAnnounce addresses: whole ones or their beginning, with or without /p2p/', () => {
    const id = '12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'
    const a = ma(`/ip4/198.18.0.7/udp/4001/quic-v1/p2p/${id}`)
    const b = ma(`/ip4/172.17.0.1/udp/4001/quic-v1/p2p/${id}`)
    expect(publishable([a, b], ['/ip4/172.17.0.1']).map(String)).toEqual([a.toString()])
    expect(publishable([a, b], ['/ip4/198.18.0.7/udp/4001/quic-v1']).map(String)).toEqual([b.toString()])
    // A prefix ends at a component: /ip4/198.18.0.7 is not /ip4/198.18.0.70.
    expect(publishable([ma('/ip4/198.18.0.70/udp/1/quic-v1')], ['/ip4/198.18.0.7']).length).toBe(1)
  })
})

describe('a registry listening on every interface', () => {
  it.skipIf(external.length === 0)('tells peers no loopback address: identify, records and provider entries carry the others', async () => {
    const provider = await ServiceRegistry.create({ listen: ['/ip4/0.0.0.0/udp/0/quic-v1'] })
    net.registries.push(provider)
    const addrs = provider.multiaddrs.map(String)
    expect(addrs.length).toBeGreaterThan(0)
    expect(addrs.some(a => a.startsWith('/ip4/127.'))).toBe(false)
    expect(addrs.some(a => external.some(ip => a.startsWith(`/ip4/${ip}/udp/`)))).toBe(true)
    // A client on another "host" bootstraps from the non-loopback address and finds a record without loopback.
    const client = await ServiceRegistry.create({ listen: ['/ip4/0.0.0.0/udp/0/quic-v1'], bootstrap: [addrs[0]] })
    net.registries.push(client)
    await provider.advertise('everywhere', { wait: 'published' })
    const record = await client.resolve('everywhere')
    expect(record.multiaddrs.length).toBeGreaterThan(0)
    expect(record.multiaddrs.some(a => a.startsWith('/ip4/127.'))).toBe(false)
    // The DHT copy says the same.
    const dht = (client.libp2p.services as any).dht
    for await (const event of dht.get(recordKey('everywhere', provider.peerId))) {
      if (event.name !== 'VALUE') continue
      expect((await verifyRecordForKey(recordKey('everywhere', provider.peerId), event.value)).multiaddrs).toEqual(record.multiaddrs)
      break
    }
    // What the client's peer store learned of the provider (identify): no loopback either.
    const peer = await client.libp2p.peerStore.get(provider.peerId)
    expect(peer.addresses.map(a => a.multiaddr.toString()).some(a => a.startsWith('/ip4/127.'))).toBe(false)
  })

  it('announces what it is given instead (addresses.announce), and never a noAnnounce address', async () => {
    const announced = '/ip4/198.18.0.99/udp/4001/quic-v1'
    await net.bootstrap()
    const registry = await net.member({ announce: [announced, '/ip4/198.18.0.98/udp/4001/quic-v1'], noAnnounce: ['/ip4/198.18.0.98'] })
    expect(registry.multiaddrs.map(a => a.toString().replace(/\/p2p\/.*/, ''))).toEqual([announced])
    const ad = await registry.advertise('announced')
    expect(ad.record?.multiaddrs.map(a => a.replace(/\/p2p\/.*/, ''))).toEqual([announced])
  })

  it('refuses announce and noAnnounce that are not multiaddrs', async () => {
    // One multiaddr or an array of them, as listen and bootstrap take.
    await expect(ServiceRegistry.create({ announce: 4001 as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(ServiceRegistry.create({ announce: [{}] as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(ServiceRegistry.create({ noAnnounce: ['not a multiaddr'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
  })
})
