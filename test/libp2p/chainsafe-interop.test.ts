/**
 * Interop with @chainsafe/libp2p-quic 2.1.1 (quinn + rustls, rust-libp2p's TLS verifier): our node
 * dials theirs and theirs dials ours; identify, ping, and echo on 1,000 streams at concurrency 10.
 */
import { quic } from '@chainsafe/libp2p-quic'
import { afterEach, describe, expect, it } from 'vitest'
import { MUXER_PROTOCOL, quicConnectionOf } from '../../src/libp2p/index.js'
import { createNode, echo, pool, type TestNode } from './nodes.js'

const nodes: TestNode[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

async function pairWithChainsafe (): Promise<{ ours: TestNode, theirs: TestNode }> {
  const ours = await createNode()
  const theirs = await createNode({ transport: quic() })
  nodes.push(ours, theirs)
  return { ours, theirs }
}

async function exercise (dialer: TestNode, listener: TestNode): Promise<void> {
  const connection = await dialer.dial(listener.getMultiaddrs()[0])
  expect(connection.remotePeer.equals(listener.peerId)).toBe(true)

  // identify both ways
  await expect.poll(async () => (await dialer.peerStore.get(listener.peerId)).protocols).toContain('/echo/1.0.0')
  await expect.poll(async () => (await listener.peerStore.get(dialer.peerId)).protocols).toContain('/echo/1.0.0')
  const agent = (await dialer.peerStore.get(listener.peerId)).metadata.get('AgentVersion')
  expect(agent).toBeDefined()

  // ping both ways
  expect(await dialer.services.ping.ping(listener.peerId)).toBeGreaterThanOrEqual(0)
  expect(await listener.services.ping.ping(dialer.peerId)).toBeGreaterThanOrEqual(0)

  // 1,000 echo streams at concurrency 10, from the dialer
  let ok = 0
  await pool(1000, 10, async i => {
    const payload = Buffer.from(`echo ${i} `.repeat(4))
    if (Buffer.from(await echo(dialer, listener.peerId, payload)).equals(payload)) ok++
  })
  expect(ok).toBe(1000)
  expect(dialer.getConnections(listener.peerId)).toHaveLength(1)
}

describe('interop with @chainsafe/libp2p-quic 2.1.1', () => {
  it('our node dials theirs: identify, ping, 1,000 echo streams at concurrency 10', async () => {
    const { ours, theirs } = await pairWithChainsafe()
    await exercise(ours, theirs)
    expect(quicConnectionOf(ours.getConnections(theirs.peerId)[0])?.alpnProtocol).toBe('libp2p')
    expect(ours.getConnections(theirs.peerId)[0].multiplexer).toBe(MUXER_PROTOCOL)
  })

  it('their node dials ours: identify, ping, 1,000 echo streams at concurrency 10', async () => {
    const { ours, theirs } = await pairWithChainsafe()
    await exercise(theirs, ours)
    // The connection on our side is ours (native QUIC), authenticated from their certificate.
    const inbound = ours.getConnections(theirs.peerId)[0]
    expect(inbound.direction).toBe('inbound')
    expect(quicConnectionOf(inbound)?.peerCertificate).toBeDefined()
  })
})
