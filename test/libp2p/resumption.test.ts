/**
 * Session resumption in the libp2p transport: a second dial to a peer resumes the first one's
 * session (no certificate sent or verified again), both ends still know who the other is (the
 * client from the ticket cache, the server from its own ticket, which carries the client's
 * certificate), and 0-RTT when the dial asks for it and the listener takes it.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { quicConnectionOf, type MsQuicTransportOptions } from '../../src/libp2p/index.js'
import { createNode, echo, ECHO, type NodeOptions, type TestNode } from './nodes.js'

const nodes: TestNode[] = []
async function node (options?: MsQuicTransportOptions, connectionGater?: NodeOptions['connectionGater']): Promise<TestNode> {
  // Dials follow each other fast here: js-libp2p's default of 5 new connections per second from a
  // host would refuse them (before the handshake, in our admission).
  const n = await createNode({ options, connectionManager: { inboundConnectionThreshold: 1000 }, connectionGater })
  nodes.push(n)
  return n
}
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

/** Dials `to` from `from`, waits for identify both ways, and returns both ends' connections. */
async function dialAndClose (from: TestNode, to: TestNode, options: Record<string, unknown> = {}): Promise<{ outbound: Connection, inbound: Connection }> {
  const inboundOpened = new Promise<Connection>(resolve => {
    const onOpen = (event: CustomEvent<Connection>): void => {
      if (!event.detail.remotePeer.equals(from.peerId)) return
      to.removeEventListener('connection:open', onOpen)
      resolve(event.detail)
    }
    to.addEventListener('connection:open', onOpen)
  })
  const outbound = await from.dial(to.getMultiaddrs()[0], options)
  const inbound = await inboundOpened
  return { outbound, inbound }
}

const resumed = (connection: Connection): boolean | undefined => quicConnectionOf(connection)?.sessionResumed

describe('session resumption in the libp2p transport', () => {
  it('resumes a second connection to a peer, and both ends know who the other is', async () => {
    const a = await node()
    const b = await node()
    const first = await dialAndClose(a, b)
    expect(resumed(first.outbound)).toBe(false)
    // The ticket arrives after the handshake.
    await expect.poll(() => quicConnectionOf(first.outbound)?.sessionTicket).toBeDefined()
    await first.outbound.close()

    for (let i = 0; i < 3; i++) {
      const again = await dialAndClose(a, b)
      expect(resumed(again.outbound)).toBe(true)
      expect(resumed(again.inbound)).toBe(true)
      expect(again.outbound.remotePeer.equals(b.peerId)).toBe(true)
      expect(again.inbound.remotePeer.equals(a.peerId)).toBe(true)
      // Streams both ways, identify included.
      expect(Buffer.from(await echo(a, b.peerId, Buffer.from('over a resumed session'))).toString()).toBe('over a resumed session')
      expect(Buffer.from(await echo(b, a.peerId, Buffer.from('and back'))).toString()).toBe('and back')
      await expect.poll(async () => (await b.peerStore.get(a.peerId)).protocols).toContain(ECHO)
      await again.outbound.close()
    }
  })

  it('uses no ticket for an address dialled as another peer: the dial fails on the peer id, as without tickets', async () => {
    const a = await node()
    const b = await node()
    const c = await node()
    const first = await dialAndClose(a, b)
    await expect.poll(() => quicConnectionOf(first.outbound)?.sessionTicket).toBeDefined()
    await first.outbound.close()
    const bAsC = multiaddr(b.getMultiaddrs()[0].toString().replace(b.peerId.toString(), c.peerId.toString()))
    await expect(a.dial(bAsC)).rejects.toThrow(/Dialed .* but .* answered|peer id/i)
  })

  it('falls back to a full handshake, verified, when the listener cannot read the ticket (restarted)', async () => {
    const a = await node()
    const b = await node()
    const first = await dialAndClose(a, b)
    await expect.poll(() => quicConnectionOf(first.outbound)?.sessionTicket).toBeDefined()
    const address = b.getMultiaddrs()[0]
    await first.outbound.close()
    // A new node with b's key on b's port: new ticket keys.
    const privateKey = (b as unknown as { components: { privateKey: any } }).components?.privateKey
    await b.stop()
    nodes.splice(nodes.indexOf(b), 1)
    const b2 = await createNode({ privateKey, listen: [address.decapsulateCode(421).toString()] })
    nodes.push(b2)
    const again = await dialAndClose(a, b2)
    expect(resumed(again.outbound)).toBe(false)
    expect(again.outbound.remotePeer.equals(b2.peerId)).toBe(true)
    expect(Buffer.from(await echo(a, b2.peerId, Buffer.from('full again'))).toString()).toBe('full again')
  })

  it('never resumes with sessionTickets: false on either side', async () => {
    for (const [dialer, listener] of [[{ sessionTickets: false }, {}], [{}, { sessionTickets: false }]] as const) {
      const a = await node(dialer)
      const b = await node(listener)
      for (let i = 0; i < 2; i++) {
        const c = await dialAndClose(a, b)
        await new Promise(resolve => setTimeout(resolve, 50))
        expect(resumed(c.outbound)).toBe(false)
        await c.outbound.close()
      }
    }
    await expect(node({ sessionTickets: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(node({ earlyData: 1 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
  })

  it('sends the first streams of a resumed dial as 0-RTT (earlyData: true) to a listener that takes it, and as 1-RTT to one that does not', async () => {
    for (const mode of ['0rtt', true] as const) {
      const a = await node({ earlyData: true })
      // The listener's gater takes 50 ms over each connection, and the handshake waits for it: the
      // dialer's first stream, opened meanwhile, is sent before the handshake completed even on a
      // loaded machine (on a quiet one a loopback handshake takes a millisecond).
      const b = await node({ sessionTickets: mode }, { denyInboundConnection: async () => { await new Promise(resolve => setTimeout(resolve, 50)); return false } })
      const early: boolean[] = []
      await b.handle('/fetch/1.0.0', async (stream: Stream) => {
        early.push((stream as unknown as { earlyData: boolean }).earlyData)
        for await (const chunk of stream) stream.send(chunk)
        await stream.close()
      })
      const first = await dialAndClose(a, b)
      await expect.poll(() => quicConnectionOf(first.outbound)?.sessionTicket).toBeDefined()
      await first.outbound.close()
      // A stream goes as 0-RTT data only if js-libp2p opened it before the handshake completed
      // (its upgrade runs meanwhile; the gater above holds the handshake long enough).
      const connection = await a.dial(b.getMultiaddrs()[0])
      expect(quicConnectionOf(connection)?.earlyData).toBe(true)
      const stream = await connection.newStream('/fetch/1.0.0')
      stream.send(Buffer.from('record?'))
      await stream.close()
      const chunks: Uint8Array[] = []
      for await (const chunk of stream) chunks.push(chunk.subarray())
      expect(Buffer.concat(chunks).toString()).toBe('record?')
      expect(connection.remotePeer.equals(b.peerId)).toBe(true)
      await connection.close()
      expect(early).toEqual([mode === '0rtt'])
    }
  })
})
