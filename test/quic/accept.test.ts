import { describe, it, expect } from 'vitest'
import { connect, listen, QuicErrorCode, type QuicConnection, type QuicStream } from '../../src/index.js'
import { pair, readAll, testCertificate, until } from '../helpers.js'

/** Stream `index`'s payload: its index (4 bytes) then 1 KiB that differs per stream. */
function payload (index: number): Buffer {
  const data = Buffer.alloc(4 + 1024)
  data.writeUInt32BE(index, 0)
  for (let i = 4; i < data.length; i++) data[i] = (index * 31 + i) & 0xff
  return data
}

async function checkStreams (server: QuicConnection, count: number): Promise<void> {
  const seen = new Set<number>()
  for (let i = 0; i < count; i++) {
    const stream = await server.acceptStream()
    const data = await readAll(stream)
    const index = data.readUInt32BE(0)
    expect(data.equals(payload(index))).toBe(true)
    expect(seen.has(index)).toBe(false)
    seen.add(index)
    if (!stream.unidirectional) stream.end()
  }
  expect(seen.size).toBe(count)
}

describe('accepting streams late', () => {
  for (const unidirectional of [false, true]) {
    it(`should hand over 1,000 ${unidirectional ? 'unidirectional' : 'bidirectional'} streams opened before the first acceptStream()`, async () => {
      const { listener, client, server } = await pair({ maxBidirectionalStreams: 1000, maxUnidirectionalStreams: 1000 })
      const started = performance.now()
      const opened: QuicStream[] = []
      for (let i = 0; i < 1000; i++) {
        const stream = await client.openStream({ unidirectional })
        stream.end(payload(i))
        opened.push(stream)
      }
      // Every stream is queued (natively, then in the connection) before anyone accepts.
      await until(() => server.pendingStreams === 1000, '1,000 queued streams')
      await checkStreams(server, 1000)
      console.log(`late accept (${unidirectional ? 'uni' : 'bidi'}): 1,000 streams x 1 KiB queued and verified in ${(performance.now() - started).toFixed(0)} ms`)
      expect(server.pendingStreams).toBe(0)
      await client.close()
      await listener.close()
    })
  }

  it('should lose and duplicate nothing when accepts are aborted while streams keep arriving', async () => {
    const { listener, client, server } = await pair({ maxBidirectionalStreams: 1000 })
    const total = 300
    const sending = (async () => {
      for (let i = 0; i < total; i++) {
        const stream = await client.openStream()
        stream.end(payload(i))
        // Bursts with gaps, so accepts sometimes wait on an empty queue and time out there.
        if (i % 5 === 4) await new Promise(resolve => setTimeout(resolve, 4))
      }
    })()
    const seen = new Set<number>()
    let aborted = 0
    while (seen.size < total) {
      // Half of the accepts give up almost at once, some of them while a stream is arriving.
      const signal = AbortSignal.timeout(seen.size % 2 === 0 ? 1 : 50)
      let stream: QuicStream
      try {
        stream = await server.acceptStream({ signal })
      } catch (error) {
        expect((error as { code: string }).code).toBe(QuicErrorCode.ABORTED)
        aborted++
        continue
      }
      const data = await readAll(stream)
      const index = data.readUInt32BE(0)
      expect(seen.has(index)).toBe(false)
      expect(data.equals(payload(index))).toBe(true)
      seen.add(index)
      stream.end()
    }
    await sending
    expect(seen.size).toBe(total)
    expect(server.pendingStreams).toBe(0)
    expect(aborted).toBeGreaterThan(10)
    console.log(`aborted accepts: ${aborted} aborted, ${total} streams each accepted once`)
    await client.close()
    await listener.close()
  })
})

describe('accepting connections late', () => {
  it('should queue 200 clients that connect before the server accepts, and accept them all afterwards', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    const port = listener.address().port
    const clients = await Promise.all(Array.from({ length: 200 }, () => connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })))
    await until(() => listener.pendingConnections === 200, '200 queued connections')
    const accepted: QuicConnection[] = []
    for (let i = 0; i < 200; i++) accepted.push(await listener.accept())
    const clientPorts = new Set(clients.map(c => c.localAddress?.port))
    const serverSeen = new Set(accepted.map(c => c.remoteAddress?.port))
    expect(serverSeen.size).toBe(200)
    expect([...serverSeen].every(p => clientPorts.has(p))).toBe(true)
    expect(listener.stats()).toMatchObject({ pending: 0, refused: 0, accepted: 200 })
    await Promise.all(clients.map(c => c.close()))
    await listener.close()
  })

  it('should refuse connections beyond the backlog with a clear error, and count them', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, backlog: 2 })
    const port = listener.address().port
    const first = await Promise.all([0, 1].map(() => connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })))
    // The server counts a connection as waiting once the client's last handshake flight arrived.
    await until(() => listener.stats().waiting === 2, 'two connections waiting')
    await expect(connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })).rejects.toMatchObject({ code: QuicErrorCode.CONNECTION_REFUSED })
    expect(listener.stats()).toMatchObject({ refused: 1, refusedBy: { backlog: 1 } })
    // Taking one from the backlog makes room again.
    await listener.accept()
    const third = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
    await Promise.all([...first, third].map(c => c.close()))
    await listener.close()
  })

  it('should accept one direction\'s streams without the other\'s, and both in order by default', async () => {
    const { listener, client, server } = await pair()
    // Arrival order: uni 0, bidi 1, uni 2, bidi 3, uni 4.
    for (let i = 0; i < 5; i++) {
      const stream = await client.openStream({ unidirectional: i % 2 === 0 })
      stream.end(String(i))
    }
    await until(() => server.pendingStreams === 5, 'five queued streams')
    const text = async (stream: QuicStream): Promise<string> => (await readAll(stream)).toString()
    const bidi = await server.acceptStream({ unidirectional: false })
    expect([bidi.unidirectional, await text(bidi)]).toEqual([false, '1'])
    const uni = await server.acceptStream({ unidirectional: true })
    expect([uni.unidirectional, await text(uni)]).toEqual([true, '0'])
    // The combined queue still hands out the oldest of either.
    expect(await text(await server.acceptStream())).toBe('2')
    const third = await server.acceptStream()
    expect(await text(third)).toBe('3')
    // A waiting taker of one kind is not given the other.
    const waitingUni = server.acceptStream({ unidirectional: true })
    const waitingBidi = server.acceptStream({ unidirectional: false })
    expect(await text(await waitingUni)).toBe('4')
    const late = await client.openStream()
    late.end('5')
    const fifth = await waitingBidi
    expect(await text(fifth)).toBe('5')
    for (const stream of [bidi, third, fifth]) stream.end()
    await readAll(late)
    await expect(server.acceptStream({ unidirectional: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await client.close()
    await listener.close()
  })
})
