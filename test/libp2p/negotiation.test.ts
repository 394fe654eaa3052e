import * as lp from 'it-length-prefixed'
import { afterEach, describe, expect, it } from 'vitest'
import { LAZY_NEGOTIATION_MARKER, MsQuicTransport, StreamResetCode, type MsQuicTransportOptions } from '../../src/libp2p/index.js'
import type { MsQuicMuxer } from '../../src/libp2p/muxer.js'
import type { MsQuicStream } from '../../src/libp2p/stream.js'
import { ECHO, createNode, echo, type TestNode } from './nodes.js'

const nodes: TestNode[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

async function node (options: MsQuicTransportOptions = {}): Promise<{ node: TestNode, transport: () => MsQuicTransport }> {
  let made: MsQuicTransport | undefined
  const n = await createNode({ transport: components => (made = new MsQuicTransport(components, options)) })
  nodes.push(n)
  return { node: n, transport: () => made as MsQuicTransport }
}

describe('bounded negotiation in the libp2p transport', () => {
  it('negotiates inbound and single-protocol outbound streams itself; js-libp2p takes them negotiated', async () => {
    const a = await node()
    const b = await node()
    await a.node.dial(b.node.getMultiaddrs()[0])
    // identify done both ways (its streams are negotiated here too)
    await expect.poll(async () => (await a.node.peerStore.get(b.node.peerId)).protocols).toContain(ECHO)
    await expect.poll(async () => (await b.node.peerStore.get(a.node.peerId)).protocols).toContain(ECHO)
    const before = b.transport().negotiation?.counts.completed ?? 0
    expect(Buffer.from(await echo(a.node, b.node.peerId, Buffer.from('hi'))).toString()).toBe('hi')
    expect(b.transport().negotiation?.counts.completed).toBe(before + 1)
    // an unknown protocol: the listener answers na, the dialer fails with UnsupportedProtocolError
    await expect(a.node.dialProtocol(b.node.peerId, '/nobody/1.0.0')).rejects.toMatchObject({ name: 'UnsupportedProtocolError' })
  })

  it('accepts a lazy dialer: proposal and data in one flight', async () => {
    const a = await node({ negotiation: false })
    const b = await node()
    const connection = await a.node.dial(b.node.getMultiaddrs()[0])
    const muxer = (connection as unknown as { muxer: MsQuicMuxer }).muxer
    const stream = await muxer.createStream()
    const frame = (text: string): Uint8Array => lp.encode.single(Buffer.from(text + '\n')).subarray()
    const chunks: Uint8Array[] = []
    const read = (async () => { for await (const chunk of stream) chunks.push(chunk.subarray()) })()
    // header, proposal, data and FIN in one flight
    stream.send(Buffer.concat([frame('/multistream/1.0.0'), frame(ECHO), Buffer.from('lazy data')]))
    await stream.close()
    await read
    const reply = Buffer.concat(chunks)
    const expected = Buffer.concat([frame('/multistream/1.0.0'), frame(ECHO), Buffer.from('lazy data')])
    expect(reply.equals(expected)).toBe(true)
    expect(b.transport().negotiation?.lazy).toBe(1)
  })

  it('refuses streams past the negotiation slots and queue at once with a busy reset', async () => {
    const a = await node({ negotiation: false })
    const b = await node({ negotiation: { maxNegotiationsPerConnection: 2, maxQueuedPerConnection: 2 } })
    const connection = await a.node.dial(b.node.getMultiaddrs()[0])
    await expect.poll(async () => (await a.node.peerStore.get(b.node.peerId)).protocols).toContain(ECHO)
    await expect.poll(async () => (await b.node.peerStore.get(a.node.peerId)).protocols).toContain(ECHO)
    await expect.poll(() => b.transport().negotiation?.active).toBe(0)
    const muxer = (connection as unknown as { muxer: MsQuicMuxer }).muxer
    const header = lp.encode.single(Buffer.from('/multistream/1.0.0\n')).subarray()
    // Ten streams that each hold a negotiation open: only the first byte of the header is sent.
    const streams = []
    for (let i = 0; i < 10; i++) {
      const stream = await muxer.createStream()
      stream.send(header.subarray(0, 1))
      streams.push(stream)
    }
    const refused = streams.slice(4)
    await Promise.all(refused.map(async s => { if (s.status === 'open') await new Promise(resolve => s.addEventListener('close', resolve, { once: true })) }))
    for (const s of refused) expect(s.core.readError?.errorCode).toBe(BigInt(StreamResetCode.RESOURCE_LIMIT_EXCEEDED))
    expect(b.transport().negotiation?.counts.busy).toBe(6)
    // The four held (two negotiating, two queued) complete once their proposals arrive.
    const answers = await Promise.all(streams.slice(0, 4).map(async s => {
      const chunks: Uint8Array[] = []
      const read = (async () => { for await (const chunk of s) chunks.push(chunk.subarray()) })()
      s.send(Buffer.concat([header.subarray(1), lp.encode.single(Buffer.from(ECHO + '\n')).subarray(), Buffer.from('x')]))
      await s.close()
      await read
      return Buffer.concat(chunks).toString()
    }))
    for (const answer of answers) expect(answer).toBe('\u0013/multistream/1.0.0\n\f/echo/1.0.0\nx')
    expect(b.transport().negotiation?.counts.timeout).toBe(0)
  })

  it('an overload through newStream/handle ends in success or a fast busy answer, never a timeout (100 streams, 50 ms handler)', async () => {
    const a = await node({ negotiation: { maxOutboundNegotiationsPerConnection: 100 } })
    const b = await node({ negotiation: { maxNegotiationsPerConnection: 2, maxQueuedPerConnection: 2 } })
    await b.node.handle('/slow/1.0.0', async stream => {
      await new Promise(resolve => setTimeout(resolve, 50))
      await stream.close()
    }, { maxInboundStreams: 1000 })
    await a.node.dial(b.node.getMultiaddrs()[0])
    const outcomes = await Promise.all(Array.from({ length: 100 }, async () => {
      try {
        const stream = await a.node.dialProtocol(b.node.peerId, '/slow/1.0.0', { maxOutboundStreams: 1000 } as any)
        await stream.close()
        return 'ok'
      } catch (error) {
        return (error as { code?: string }).code ?? (error as Error).name
      }
    }))
    const busy = outcomes.filter(o => o === 'ERR_LIBP2P_BUSY').length
    const ok = outcomes.filter(o => o === 'ok').length
    expect(ok + busy).toBe(100)
    expect(ok).toBeGreaterThan(0)
    expect(b.transport().negotiation?.counts.busy).toBe(busy)
    expect(b.transport().negotiation?.counts.timeout).toBe(0)
  })

  it('by default dials lazily a peer whose identify shows the marker, for the protocols it listed; never with lazyDial: false', async () => {
    const a = await node()
    const b = await node()
    const never = await node({ negotiation: { lazyDial: false } })
    for (const n of [a, b, never]) expect(n.node.getProtocols()).toContain(LAZY_NEGOTIATION_MARKER)
    for (const dialer of [a, never]) {
      await dialer.node.dial(b.node.getMultiaddrs()[0])
      await expect.poll(async () => (await dialer.node.peerStore.get(b.node.peerId)).protocols).toContain(LAZY_NEGOTIATION_MARKER)
    }
    const lazyBefore = b.transport().negotiation?.lazy ?? 0
    // The very first echo stream is lazy: identify listed the protocol.
    expect(Buffer.from(await echo(a.node, b.node.peerId, Buffer.from('first'))).toString()).toBe('first')
    expect(b.transport().negotiation?.lazy).toBe(lazyBefore + 1)
    expect(Buffer.from(await echo(never.node, b.node.peerId, Buffer.from('waits'))).toString()).toBe('waits')
    expect(b.transport().negotiation?.lazy).toBe(lazyBefore + 1)
    // The marker is not a protocol: a stream to it is refused.
    await expect((async () => {
      const stream = await a.node.dialProtocol(b.node.peerId, LAZY_NEGOTIATION_MARKER, { runOnLimitedConnection: true } as any)
      for await (const _ of stream);
    })()).rejects.toThrow()
  })

  it('does not dial lazily a peer without the marker (js-libp2p negotiating for itself)', async () => {
    const a = await node()
    const b = await node({ negotiation: false })
    expect(b.node.getProtocols()).not.toContain(LAZY_NEGOTIATION_MARKER)
    await a.node.dial(b.node.getMultiaddrs()[0])
    await expect.poll(async () => (await a.node.peerStore.get(b.node.peerId)).protocols).toContain(ECHO)
    // js-libp2p's own listener would hang on a FIN that came with a lazy proposal.
    for (let i = 0; i < 3; i++) expect(Buffer.from(await echo(a.node, b.node.peerId, Buffer.from(`n${i}`))).toString()).toBe(`n${i}`)
  })

  it('with lazyDial: true, dials a protocol the peer already accepted lazily: the proposal leaves with the data, and a later refusal resets the stream', async () => {
    const a = await node({ negotiation: { lazyDial: true } })
    const b = await node()
    // Without the marker in b's identify, only what b accepted on the connection is dialled lazily.
    await b.node.unhandle(LAZY_NEGOTIATION_MARKER)
    await a.node.dial(b.node.getMultiaddrs()[0])
    await expect.poll(async () => (await a.node.peerStore.get(b.node.peerId)).protocols).toContain(ECHO)
    const lazyBefore = b.transport().negotiation?.lazy ?? 0
    // The first stream waits for the answer; the second sends its proposal, data and FIN at once.
    expect(Buffer.from(await echo(a.node, b.node.peerId, Buffer.from('first'))).toString()).toBe('first')
    expect(b.transport().negotiation?.lazy).toBe(lazyBefore)
    expect(Buffer.from(await echo(a.node, b.node.peerId, Buffer.from('second'))).toString()).toBe('second')
    expect(b.transport().negotiation?.lazy).toBe(lazyBefore + 1)
    // The peer stops speaking it: newStream() resolves (the answer is not awaited); the listener
    // refuses the proposal with data behind it (it cannot answer na to a lazy dialer) by resetting
    // the stream, and the reader fails with that code.
    await b.node.unhandle(ECHO)
    const stream = await a.node.dialProtocol(b.node.peerId, ECHO, { maxOutboundStreams: 1024 } as any)
    stream.send(Buffer.from('late'))
    await expect((async () => { for await (const _ of stream); })()).rejects.toThrow()
    expect((stream as unknown as MsQuicStream).core.readError?.errorCode).toBe(BigInt(StreamResetCode.PROTOCOL_NEGOTIATION_FAILED))
  })

  it('times out a negotiation the dialer leaves unfinished, with one shared timer', async () => {
    const a = await node({ negotiation: false })
    const b = await node({ negotiation: { timeout: 200 } })
    const connection = await a.node.dial(b.node.getMultiaddrs()[0])
    await expect.poll(() => b.transport().negotiation?.active).toBe(0)
    const muxer = (connection as unknown as { muxer: MsQuicMuxer }).muxer
    const header = lp.encode.single(Buffer.from('/multistream/1.0.0\n')).subarray()
    const stalled = await Promise.all([0, 1, 2].map(async () => {
      const stream = await muxer.createStream()
      stream.send(header.subarray(0, 3))
      return stream
    }))
    // A complete one in between is not held up by them.
    expect(Buffer.from(await echo(a.node, b.node.peerId, Buffer.from('ok'))).toString()).toBe('ok')
    await Promise.all(stalled.map(async s => { if (s.status === 'open') await new Promise(resolve => s.addEventListener('close', resolve, { once: true })) }))
    for (const s of stalled) expect(s.core.readError?.errorCode).toBe(BigInt(StreamResetCode.PROTOCOL_NEGOTIATION_FAILED))
    expect(b.transport().negotiation?.counts.timeout).toBe(3)
  })
})
