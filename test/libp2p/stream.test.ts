import type { Stream } from '@libp2p/interface'
import type { QuicConnection } from '../../src/index.js'
import { afterEach, describe, expect, it } from 'vitest'
import { MsQuicStream, StreamResetCode, quicConnectionOf, type MsQuicTransportOptions } from '../../src/libp2p/index.js'
import { createNode, type TestNode } from './nodes.js'

const nodes: TestNode[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

/** Two nodes connected; `b` hands every stream of `protocol` to the returned queue. */
async function setup (protocol: string, options: MsQuicTransportOptions = {}): Promise<{ a: TestNode, b: TestNode, next: () => Promise<Stream> }> {
  const a = await createNode({ options })
  const b = await createNode({ options })
  nodes.push(a, b)
  const waiting: Array<(s: Stream) => void> = []
  const arrived: Stream[] = []
  await b.handle(protocol, stream => {
    const taker = waiting.shift()
    if (taker !== undefined) taker(stream)
    else arrived.push(stream)
  })
  await a.dial(b.getMultiaddrs()[0])
  const next = async (): Promise<Stream> => arrived.shift() ?? await new Promise<Stream>(resolve => waiting.push(resolve))
  return { a, b, next }
}

function collect (stream: Stream): { bytes: () => number, chunks: Uint8Array[], ended: Promise<void> } {
  const chunks: Uint8Array[] = []
  let bytes = 0
  const ended = (async () => {
    for await (const chunk of stream) {
      chunks.push(chunk.subarray())
      bytes += chunk.byteLength
    }
  })()
  return { bytes: () => bytes, chunks, ended }
}

describe('libp2p streams over StreamCore', () => {
  it('holds a sender back through QUIC flow control while the reader is paused, without a reset', async () => {
    // Receive windows well below the total: 1 MiB per stream (MsQuic holds that much for a reader
    // that does not read, besides the binding's 1 MiB budget), 4 MiB per connection.
    const { a, b, next } = await setup('/sink/1.0.0', { streamReceiveWindow: 1 << 20, connectionReceiveWindow: 4 << 20 })
    const stream = await a.dialProtocol(b.peerId, '/sink/1.0.0')
    const total = 32 << 20
    const chunk = Buffer.alloc(64 << 10)
    let sent = 0
    let waiting = false
    const writer = (async () => {
      for (let i = 0; sent < total; i++) {
        chunk.writeUInt32BE(i, 0)
        const more = stream.send(Buffer.from(chunk))
        sent += chunk.length
        if (!more) {
          waiting = true
          await stream.onDrain()
          waiting = false
        }
      }
      await stream.close()
    })()
    const remote = await next()
    expect(remote).toBeInstanceOf(MsQuicStream)
    remote.pause()
    // The writer blocks on the native send window, well short of the total: the paused reader's
    // side took only what QUIC flow control let through, and buffered none of it past its limit.
    await expect.poll(() => waiting && (remote as MsQuicStream).core.pendingBytes > 0, { timeout: 20_000 }).toBe(true)
    expect(sent).toBeLessThan(total / 2)
    expect(remote.status).toBe('open')
    expect(remote.readBufferLength).toBeLessThanOrEqual(remote.maxReadBufferLength)
    const received = collect(remote)
    remote.resume()
    await writer
    await received.ended
    expect(received.bytes()).toBe(total)
    const all = Buffer.concat(received.chunks)
    for (let i = 0; i < total / chunk.length; i++) expect(all.readUInt32BE(i * chunk.length)).toBe(i)
  })

  it('closeRead() sends STOP_SENDING: the writer sees its remote read side close', async () => {
    const { a, b, next } = await setup('/sink/1.0.0')
    const stream = await a.dialProtocol(b.peerId, '/sink/1.0.0')
    stream.send(Buffer.from('first'))
    const remote = await next()
    await remote.closeRead()
    await expect.poll(() => stream.remoteReadStatus).toBe('closed')
    expect((stream as MsQuicStream).core.write).toBe('stopped')
    expect((stream as MsQuicStream).core.writeError?.errorCode).toBe(BigInt(StreamResetCode.NO_ERROR))
  })

  it('resets carry application codes: the aborting error\'s own, or the libp2p code for the cause', async () => {
    const { a, b, next } = await setup('/sink/1.0.0')
    const first = await a.dialProtocol(b.peerId, '/sink/1.0.0')
    first.send(Buffer.from('x'))
    const firstRemote = await next() as MsQuicStream
    const reset = new Promise(resolve => firstRemote.addEventListener('close', resolve, { once: true }))
    first.abort(Object.assign(new Error('custom'), { errorCode: 0x1234 }))
    await reset
    expect(firstRemote.status).toBe('reset')
    expect(firstRemote.core.readError?.errorCode).toBe(0x1234n)

    const second = await a.dialProtocol(b.peerId, '/sink/1.0.0')
    second.send(Buffer.from('y'))
    const secondRemote = await next() as MsQuicStream
    const limited = Object.assign(new Error('too many'), { name: 'TooManyOutboundProtocolStreamsError' })
    const reset2 = new Promise(resolve => secondRemote.addEventListener('close', resolve, { once: true }))
    second.abort(limited)
    await reset2
    expect(secondRemote.core.readError?.errorCode).toBe(BigInt(StreamResetCode.RESOURCE_LIMIT_EXCEEDED))
  })

  it('a graceful connection close drains open streams; an abort closes at once with its code', async () => {
    const { a, b, next } = await setup('/sink/1.0.0')
    const connection = a.getConnections(b.peerId)[0]
    const stream = await connection.newStream('/sink/1.0.0')
    const data = Buffer.alloc(2 << 20, 3)
    stream.send(data)
    const remote = next().then(s => {
      const c = collect(s)
      return c.ended.then(async () => { await s.close(); return c.bytes() })
    })
    await connection.close()
    expect(await remote).toBe(data.length)
    const again = await a.dial(b.getMultiaddrs()[0])
    const quic = quicConnectionOf(again)
    expect(quic?.alpnProtocol).toBe('libp2p')
    // b's side of this connection: the one whose peer port is a's local port.
    const findRemote = (): QuicConnection | undefined => b.getConnections(a.peerId).map(c => quicConnectionOf(c)).find(c => c?.remoteAddress?.port === quic?.localAddress?.port)
    await expect.poll(findRemote).toBeDefined()
    const remoteQuic = findRemote()
    again.abort(Object.assign(new Error('go away'), { errorCode: 0x1006 }))
    const info = await remoteQuic?.closed
    expect(info?.by).toBe('peer')
    expect(info?.code).toBe(0x1006n)
  })

  it('small writes of one tick go out together, whole and in order, with the close behind them, also when the connection closes right after', async () => {
    const { a, b, next } = await setup('/sink/1.0.0')
    const connection = a.getConnections(b.peerId)[0]
    const received = Array.from({ length: 20 }, async () => await next().then(s => {
      const c = collect(s)
      return c.ended.then(() => Buffer.concat(c.chunks).toString())
    }))
    // Small sends wait for the end of the tick; close() must not leave them behind in JS.
    const streams = await Promise.all(Array.from({ length: 20 }, async () => await connection.newStream('/sink/1.0.0')))
    await Promise.all(streams.map(async (stream, i) => {
      stream.send(Buffer.from(`part one of ${i}, `))
      stream.send(Buffer.from('part two'))
      await stream.close()
    }))
    await connection.close()
    expect((await Promise.all(received)).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `part one of ${i}, part two`).sort())
  })

  it('keeps what the peer sent readable when the native stream closes before anyone read it', async () => {
    const { a, b, next } = await setup('/answer/1.0.0')
    const stream = await a.dialProtocol(b.peerId, '/answer/1.0.0') as MsQuicStream
    stream.send(Buffer.from('question'))
    const remote = await next()
    // The peer answers, ends its side and stops ours (as go-libp2p's Close() does), before we read.
    remote.send(Buffer.from('the answer'))
    await remote.close()
    await remote.closeRead()
    await expect.poll(() => stream.core.closed).toBe(true)
    const chunks: Uint8Array[] = []
    for await (const chunk of stream) chunks.push(chunk.subarray())
    expect(Buffer.concat(chunks).toString()).toBe('the answer')
  })
})

describe('libp2p streams that cannot leak', () => {
  // Each ending on a connection with 4 streams of credit, six times: a stream that kept its credit
  // would stop the fifth open. Every stream ends on both sides, in js-libp2p and natively.
  const CREDIT = 4
  const endings: Record<string, (local: Stream, remote: Stream) => Promise<void>> = {
    'abort()': async local => { local.abort(new Error('gave up')) },
    'closeRead(), then close()': async local => { await local.closeRead(); await local.close() },
    'close() (closeWrite), then reading to the end': async local => { await local.close(); for await (const chunk of local) void chunk },
    'a remote reset': async (_local, remote) => { remote.abort(new Error('the other side gave up')) },
    // A QUIC peer may reset only its sending side (quic-go's CancelWrite): a libp2p reset all the same.
    'a remote reset of its sending side only': async (_local, remote) => { (remote as MsQuicStream).core.reset(StreamResetCode.NO_ERROR) }
  }
  for (const [name, end] of Object.entries(endings)) {
    it(`${name}: both sides end, the credit comes back, no native stream is left`, async () => {
      const { a, b, next } = await setup('/ending/1.0.0', { maxStreams: CREDIT })
      const seen: Stream[] = []
      for (let round = 0; round < CREDIT + 2; round++) {
        const local = await a.dialProtocol(b.peerId, '/ending/1.0.0')
        local.send(Buffer.from('a request'))
        const remote = await next()
        // The remote side is a handler written as libp2p code is: read to the end, answer, close.
        const handled = (async () => {
          try {
            for await (const chunk of remote) void chunk
            if (remote.writeStatus === 'writable') remote.send(Buffer.from('the answer'))
            await remote.close()
          } catch {}
        })()
        await end(local, remote)
        await handled
        for (const s of [local, remote]) {
          if (s.status === 'open') await new Promise(resolve => s.addEventListener('close', resolve, { once: true }))
        }
        seen.push(local, remote)
      }
      expect(seen.every(s => ['closed', 'reset', 'aborted'].includes(s.status))).toBe(true)
      const quic = (node: TestNode): QuicConnection => quicConnectionOf(node.getConnections(node === a ? b.peerId : a.peerId)[0]) as QuicConnection
      await expect.poll(() => quic(a).stats().openStreams + quic(b).stats().openStreams).toBe(0)
      await expect.poll(() => a.getConnections(b.peerId)[0].streams.length + b.getConnections(a.peerId)[0].streams.length).toBe(0)
    })
  }
})
