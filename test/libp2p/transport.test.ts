import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { parseQuicAddress, quicConnectionOf, quicV1Filter } from '../../src/libp2p/index.js'
import { createNode, echo, pool, type TestNode } from './nodes.js'

const nodes: TestNode[] = []
async function node (...args: Parameters<typeof createNode>): Promise<TestNode> {
  const n = await createNode(...args)
  nodes.push(n)
  return n
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

describe('libp2p transport on MsQuic', () => {
  it('filters exactly /ip4|ip6/…/udp/…/quic-v1 (with an optional /p2p)', () => {
    const id = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
    const good = ['/ip4/1.2.3.4/udp/1234/quic-v1', '/ip6/::1/udp/1/quic-v1', `/ip4/1.2.3.4/udp/1234/quic-v1/p2p/${id}`]
    const bad = ['/ip4/1.2.3.4/udp/1234/quic', '/ip4/1.2.3.4/tcp/1234', '/ip4/1.2.3.4/udp/1234/quic-v1/webtransport', '/dns4/example.com/udp/1/quic-v1']
    const all = [...good, ...bad].map(s => multiaddr(s))
    expect(quicV1Filter(all).map(ma => ma.toString())).toEqual(good)
  })

  it('connects two js-libp2p nodes: identify, ping and echo over native QUIC streams', async () => {
    const a = await node()
    const b = await node()
    const [addr] = b.getMultiaddrs()
    expect(addr.toString()).toMatch(/\/ip4\/127\.0\.0\.1\/udp\/\d+\/quic-v1\/p2p\//)
    const connection = await a.dial(addr)
    expect(connection.remotePeer.equals(b.peerId)).toBe(true)
    expect(connection.multiplexer).toBe('quic')
    expect(connection.encryption).toBe('native')
    expect(quicConnectionOf(connection)?.alpnProtocol).toBe('libp2p')

    // identify ran both ways: each side knows the other's protocols
    await expect.poll(async () => (await a.peerStore.get(b.peerId)).protocols).toContain('/echo/1.0.0')
    await expect.poll(async () => (await b.peerStore.get(a.peerId)).protocols).toContain('/ipfs/ping/1.0.0')

    const rtt = await a.services.ping.ping(b.peerId)
    expect(rtt).toBeGreaterThanOrEqual(0)
    const back = await b.services.ping.ping(a.peerId)
    expect(back).toBeGreaterThanOrEqual(0)

    const data = Buffer.from('hello over msquic')
    expect(Buffer.from(await echo(a, b.peerId, data)).toString()).toBe('hello over msquic')
    const big = Buffer.alloc(3 << 20, 7)
    big.writeUInt32BE(0xdeadbeef, big.length - 4)
    expect(Buffer.from(await echo(a, b.peerId, big)).equals(big)).toBe(true)
  })

  it('runs 1,000 echo streams on one connection at concurrency 10, and 100 at concurrency 100', async () => {
    const a = await node()
    const b = await node()
    await a.dial(b.getMultiaddrs()[0])
    let ok = 0
    await pool(1000, 10, async i => {
      const payload = Buffer.from(`stream ${i}`)
      if (Buffer.from(await echo(a, b.peerId, payload)).equals(payload)) ok++
    })
    expect(ok).toBe(1000)
    let ok100 = 0
    await pool(100, 100, async i => {
      const payload = Buffer.alloc(64, i)
      if (Buffer.from(await echo(b, a.peerId, payload)).equals(payload)) ok100++
    })
    expect(ok100).toBe(100)
    expect(a.getConnections(b.peerId)).toHaveLength(1)
  })

  it('refuses a dial whose /p2p/ is someone else, with a clear error', async () => {
    const b = await node()
    const a = await node()
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const { port } = parseQuicAddress(b.getMultiaddrs()[0])
    const wrong = multiaddr(`/ip4/127.0.0.1/udp/${port}/quic-v1/p2p/${other.toString()}`)
    const error = await a.dial(wrong).then(() => undefined, (e: unknown) => e)
    expect(String((error as Error)?.message ?? '') + String(((error as AggregateError)?.errors ?? []).map((e: Error) => e.message))).toMatch(/Dialed .* but .* answered/)
    expect(a.getConnections()).toHaveLength(0)
  })

  it('honours the dial signal', async () => {
    const a = await node()
    const b = await node()
    const controller = new AbortController()
    controller.abort()
    await expect(a.dial(b.getMultiaddrs()[0], { signal: controller.signal })).rejects.toThrow()
    expect(a.getConnections()).toHaveLength(0)
  })

  it('expands a wildcard listen address from the interfaces present', async () => {
    const a = await node({ listen: ['/ip4/0.0.0.0/udp/0/quic-v1'] })
    const addrs = a.getMultiaddrs().map(ma => ma.toString())
    expect(addrs.some(s => s.startsWith('/ip4/127.0.0.1/udp/'))).toBe(true)
    expect(addrs.every(s => !s.includes('0.0.0.0'))).toBe(true)
    const b = await node()
    const loopback = a.getMultiaddrs().find(ma => ma.toString().startsWith('/ip4/127.0.0.1/')) as ReturnType<typeof multiaddr>
    const rtt = await b.services.ping.ping(loopback)
    expect(rtt).toBeGreaterThanOrEqual(0)
  })

  it('ends streams with the connection when the peer stops', async () => {
    const a = await node()
    const b = await node()
    const connection = await a.dial(b.getMultiaddrs()[0])
    const stream = await connection.newStream('/echo/1.0.0')
    const closed = new Promise(resolve => stream.addEventListener('close', resolve, { once: true }))
    await b.stop()
    await closed
    await expect.poll(() => connection.status).toBe('closed')
  })
})
