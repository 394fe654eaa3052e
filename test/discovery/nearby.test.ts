import { createHash } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { NEARBY_TIMEOUT, PROVIDERS_PROTOCOL, RecordRejection, ServiceRegistry, nameToCid } from '../../src/discovery/index.js'
import { decodeProviders, encodeProviders } from '../../src/discovery/nearby.js'
import { answerProviders } from '../../src/discovery/rpc/providers.js'
import { Network } from './network.js'
import { until } from '../helpers.js'

const net = new Network()
afterEach(async () => { await net.stop() })

const dhtOf = (registry: ServiceRegistry): any => (registry.libp2p.services as any).dht

/** The peers `asker`'s one-hop lookup of `name` asks: the 3 of its routing table closest to the key. */
function nearest (asker: ServiceRegistry, name: string): ServiceRegistry[] {
  const kadId = createHash('sha256').update(nameToCid(name).multihash.bytes).digest()
  const ids = (dhtOf(asker).routingTable.closestPeers(kadId, { count: 3 }) as PeerId[]).map(String)
  expect(ids.length).toBeGreaterThan(0)
  return net.registries.filter(r => ids.includes(r.peerId.toString()))
}

/** A network where `provider` has fully published `name`, and a node that joined after it (its own provider store holds nothing). */
async function lateJoiner (name: string, init = {}): Promise<{ provider: ServiceRegistry, asker: ServiceRegistry }> {
  await net.bootstrap()
  const [provider] = await net.members(6)
  await provider.advertise(name, { metadata: { n: 1 }, wait: 'published' })
  const asker = await net.member(init)
  // Its routing table fills from the bootstrap node's answers: the tests pick the nearest peers from
  // it, so it must be complete first (else the peers asked are not the ones the test set up).
  await until(() => dhtOf(asker).routingTable.size === net.registries.length - 1, 'a full routing table')
  expect(await dhtOf(asker).providers.getProviders(nameToCid(name))).toEqual([])
  return { provider, asker }
}

describe('provider search: own store, then one round to the nearest peers, then the iterative query', () => {
  it('finds a provider by asking the nearest peers once, without an iterative query', async () => {
    const { provider, asker } = await lateJoiner('one-hop')
    const record = await asker.resolve('one-hop', { timeout: 5_000 })
    expect(record.peerId).toBe(provider.peerId.toString())
    expect(asker.stats().lookups).toMatchObject({ nearby: 1, iterative: 0, local: 0 })
    // A node that holds the provider record finds it in its own store.
    const holder = net.registries.find(r => r !== provider && r !== asker)!
    await holder.resolve('one-hop', { timeout: 5_000 })
    expect(holder.stats().lookups).toMatchObject({ local: 1, nearby: 0, iterative: 0 })
  })

  it('asks the nearest peers one at a time (hedged): one request when the closest answers', async () => {
    const { provider, asker } = await lateJoiner('hedged-round')
    let asked = 0
    for (const peer of nearest(asker, 'hedged-round')) {
      await peer.libp2p.unhandle(PROVIDERS_PROTOCOL)
      await peer.libp2p.handle(PROVIDERS_PROTOCOL, async stream => { asked++; await answerProviders(stream, dhtOf(peer), peer.libp2p) })
    }
    // Answers have been slow here: the next peer would be asked only after 2 s without one.
    for (let n = 0; n < 16; n++) asker.reputation.answered('someone', 2_000)
    expect((await asker.resolve('hedged-round', { timeout: 5_000 })).peerId).toBe(provider.peerId.toString())
    expect(asker.stats().lookups).toMatchObject({ nearby: 1, iterative: 0 })
    expect(asked).toBe(1)
  })

  it('falls back to kad-dht\'s iterative query when the nearest peers store no provider', async () => {
    const { provider, asker } = await lateJoiner('far')
    const cid = nameToCid('far')
    // None of the nearest peers stores the provider record any more (the provider included, if it is one of them).
    for (const peer of nearest(asker, 'far')) await dhtOf(peer).providers.removeProvider(cid, provider.peerId)
    const record = await asker.resolve('far', { timeout: 5_000 })
    expect(record.peerId).toBe(provider.peerId.toString())
    expect(asker.stats().lookups).toMatchObject({ nearby: 0, iterative: 1 })
  })

  it('counts a malformed answer as rejected, marks the peer down, and still finds the provider', async () => {
    const { provider, asker } = await lateJoiner('garbage')
    // All of the nearest answer garbage (the provider too, if it is one of them: its record protocol
    // still serves): they are asked one after another (hedged), each answer refused.
    const liars = nearest(asker, 'garbage')
    expect(liars.length).toBeGreaterThan(0)
    for (const liar of liars) {
      await liar.libp2p.unhandle(PROVIDERS_PROTOCOL)
      await liar.libp2p.handle(PROVIDERS_PROTOCOL, async stream => {
        for await (const _ of stream) { /* the request */ }
        stream.send(new Uint8Array([0xff, 0x00, 0x7b, 0x5b]))
        await stream.close()
      })
    }
    const record = await asker.resolve('garbage', { timeout: 5_000 })
    expect(record.peerId).toBe(provider.peerId.toString())
    expect(asker.stats().rejected.malformed).toBeGreaterThanOrEqual(1)
    expect(asker.reputation.score(liars[0].peerId.toString())).toBeLessThan(asker.reputation.score('a peer never seen'))
  })

  it('gives up on nearest peers that do not answer (NEARBY_TIMEOUT) and finds the provider anyway', async () => {
    const { provider, asker } = await lateJoiner('silent')
    // As peers that have gone away without closing their connections: the request is taken, never
    // answered (the provider too, if it is one of them: it still serves its record).
    for (const peer of nearest(asker, 'silent')) {
      await peer.libp2p.unhandle(PROVIDERS_PROTOCOL)
      await peer.libp2p.handle(PROVIDERS_PROTOCOL, async () => { await new Promise(() => {}) })
    }
    // Waiting on them for good would end in ERR_DISCOVERY_TIMEOUT.
    const record = await asker.resolve('silent', { timeout: NEARBY_TIMEOUT * 4 })
    expect(record.peerId).toBe(provider.peerId.toString())
    expect(asker.stats().lookups).toMatchObject({ nearby: 0, iterative: 1 })
  })

  it('asks no one with nearbyPeers: 0, and refuses a bad nearbyPeers', async () => {
    const { asker } = await lateJoiner('iterative', { nearbyPeers: 0 })
    await asker.resolve('iterative', { timeout: 5_000 })
    expect(asker.stats().lookups).toMatchObject({ nearby: 0, iterative: 1 })
    expect(() => new ServiceRegistry(asker.libp2p, { nearbyPeers: -1 })).toThrow(RangeError)
    expect(() => new ServiceRegistry(asker.libp2p, { nearbyPeers: 2.5 })).toThrow(RangeError)
  })
})

describe('the providers answer', () => {
  const id = peerIdFromString('12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5')
  it('round-trips peer ids and addresses', () => {
    const list = [{ id, multiaddrs: [multiaddr('/ip4/127.0.0.1/udp/4001/quic-v1')] }]
    const decoded = decodeProviders(encodeProviders(list))
    expect(decoded.map(p => [p.id.toString(), p.multiaddrs.map(String)])).toEqual([[id.toString(), ['/ip4/127.0.0.1/udp/4001/quic-v1']]])
    expect(decodeProviders(new Uint8Array())).toEqual([])
  })

  it.each([
    ['garbage bytes', new Uint8Array([0xff, 0x00, 0x7b])],
    ['not a list', Buffer.from('{"id":"x"}')],
    ['a bad peer id', Buffer.from('[{"id":"not-a-peer","addrs":[]}]')],
    ['a bad address', Buffer.from(`[{"id":"${id.toString()}","addrs":["/nope/1"]}]`)],
    ['more than 20 providers', Buffer.from(JSON.stringify(Array.from({ length: 21 }, () => ({ id: id.toString(), addrs: [] }))))]
  ])('refuses %s as malformed', (_, bytes) => {
    expect(() => decodeProviders(bytes)).toThrow(RecordRejection)
    try { decodeProviders(bytes) } catch (error) { expect((error as RecordRejection).reason).toBe('malformed') }
  })
})
