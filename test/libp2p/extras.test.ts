import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { msquic, quicConnectionOf } from '../../src/libp2p/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createNode, echo, type TestNode } from './nodes.js'

const nodes: Array<{ stop: () => void | Promise<void> }> = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

describe('libp2p transport extras', () => {
  it('dials and listens over IPv6', async () => {
    const a = await createNode({ listen: ['/ip6/::1/udp/0/quic-v1'] })
    const b = await createNode({ listen: ['/ip6/::1/udp/0/quic-v1'] })
    nodes.push(a, b)
    const addr = b.getMultiaddrs()[0]
    expect(addr.toString()).toMatch(/^\/ip6\/::1\/udp\/\d+\/quic-v1\/p2p\//)
    await a.dial(addr)
    expect(Buffer.from(await echo(a, b.peerId, Buffer.from('v6'))).toString()).toBe('v6')
    expect(quicConnectionOf(a.getConnections(b.peerId)[0])?.remoteAddress?.family).toBe('IPv6')
  })

  it('keeps the QUIC connection reachable: datagrams and stats', async () => {
    const a = await createNode({ options: { datagrams: true } })
    const b = await createNode({ options: { datagrams: true } })
    nodes.push(a, b)
    const connection = await a.dial(b.getMultiaddrs()[0])
    const quic = quicConnectionOf(connection)
    await expect.poll(() => b.getConnections(a.peerId).length).toBe(1)
    const remote = quicConnectionOf(b.getConnections(a.peerId)[0])
    expect(quic).toBeDefined()
    expect(remote).toBeDefined()
    await expect.poll(() => quic?.maxDatagramSize ?? 0).toBeGreaterThan(0)
    const arrived = once(remote as NonNullable<typeof remote>, 'datagram')
    // Datagrams may be lost: send until one arrives.
    const timer = setInterval(() => { quic?.sendDatagram(Buffer.from('datagram over libp2p')) }, 10)
    try {
      const [data] = await arrived
      expect(Buffer.from(data as Buffer).toString()).toBe('datagram over libp2p')
    } finally {
      clearInterval(timer)
    }
    const stats = quic?.stats()
    expect(stats?.bytesSent).toBeGreaterThan(0)
    expect(stats?.rttUs).toBeGreaterThanOrEqual(0)
  })

  it('takes announce addresses (updateAnnounceAddrs does not throw) and still listens', async () => {
    const announce = '/ip4/203.0.113.7/udp/4001/quic-v1'
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'], announce: [announce] },
      transports: [msquic()],
      services: { identify: identify(), ping: ping() }
    })
    nodes.push(node)
    expect(node.getMultiaddrs().map(ma => ma.toString().replace(/\/p2p\/.*/, ''))).toEqual([announce])
    // The listener's own address is still dialable.
    const other: TestNode = await createNode()
    nodes.push(other)
    const transportManager = (node as unknown as { components: { transportManager: { getAddrs: () => Multiaddr[] } } }).components.transportManager
    const [listenAddr] = transportManager.getAddrs()
    expect(listenAddr.toString()).toMatch(/^\/ip4\/127\.0\.0\.1\/udp\/\d+\/quic-v1$/)
    const connection = await other.dial(listenAddr.encapsulate(`/p2p/${node.peerId.toString()}`))
    expect(connection.remotePeer.equals(node.peerId)).toBe(true)
  })
})
