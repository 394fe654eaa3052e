import { once } from 'node:events'
import { describe, it, expect } from 'vitest'
import { QuicErrorCode, type QuicConnection } from '../../src/index.js'
import { pair, until } from '../helpers.js'

const ready = (connection: QuicConnection): Promise<void> => until(() => connection.maxDatagramSize > 0, 'datagrams to be allowed', 5000)

describe('datagrams', () => {
  it('should deliver datagrams both ways, without assuming their order', async () => {
    const { listener, client, server } = await pair({ datagrams: true }, { datagrams: true })
    await Promise.all([ready(client), ready(server)])
    expect(client.maxDatagramSize).toBeGreaterThan(1000)
    const received = new Set<string>()
    server.on('datagram', data => received.add(data.toString()))
    const sent: string[] = []
    for (let i = 0; i < 50; i++) {
      const text = `datagram ${i}`
      if (client.sendDatagram(Buffer.from(text))) sent.push(text)
      if (i % 10 === 9) await new Promise(resolve => setTimeout(resolve, 5))
    }
    // Unreliable by definition, but loopback loses nothing in practice.
    await until(() => received.size === sent.length, 'the datagrams', 5000)
    expect([...received].sort()).toEqual([...sent].sort())
    const reply = once(client, 'datagram')
    server.sendDatagram(Buffer.from('back'))
    expect((await reply)[0].toString()).toBe('back')
    await client.close()
    await listener.close()
  })

  it('should let a side send to a peer that takes datagrams, whether or not it takes them itself', async () => {
    // `datagrams: true` advertises that a side receives them; sending needs only the peer's consent.
    const { listener, client, server } = await pair({ datagrams: true }, {})
    await ready(client)
    const received = once(server, 'datagram')
    expect(client.sendDatagram(Buffer.from('one way'))).toBe(true)
    expect((await received)[0].toString()).toBe('one way')
    expect(server.maxDatagramSize).toBe(0)
    expect(() => server.sendDatagram(Buffer.from('back'))).toThrow(expect.objectContaining({ code: QuicErrorCode.DATAGRAMS_DISABLED }))
    await client.close()
    await listener.close()
  })

  it('should keep datagrams that arrive before anyone listens (a server connection not yet accepted)', async () => {
    const { cert, key } = await (await import('../helpers.js')).testCertificate()
    const { connect, listen } = await import('../../src/index.js')
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, datagrams: true })
    const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert, datagrams: true })
    await ready(client)
    for (let i = 0; i < 20; i++) client.sendDatagram(Buffer.from(`early ${i}`))
    // The server's connection is accepted only now, after the datagrams arrived.
    await new Promise(resolve => setTimeout(resolve, 50))
    const server = await listener.accept()
    const received: string[] = []
    server.on('datagram', data => received.push(data.toString()))
    await until(() => received.length === 20, 'the 20 early datagrams')
    expect(received.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `early ${i}`).sort())
    await client.close()
    await listener.close()
  })

  it('should report a full send queue instead of growing it', async () => {
    const { listener, client } = await pair({ datagrams: true }, { datagrams: true, datagramSendQueue: 8 })
    await ready(client)
    let refused = 0
    for (let i = 0; i < 1000; i++) if (!client.sendDatagram(Buffer.alloc(1000, i))) refused++
    expect(refused).toBeGreaterThan(0)
    console.log(`datagram send queue of 8: ${1000 - refused} of 1,000 queued in a tight loop, ${refused} refused`)
    await client.close()
    await listener.close()
  })

  it('should say when a full send queue has room again (datagramDrain, sendDatagramWait)', async () => {
    const { listener, client, server } = await pair({ datagrams: true }, { datagrams: true, datagramSendQueue: 4 })
    await ready(client)
    let received = 0
    server.on('datagram', () => { received++ })
    let drains = 0
    client.on('datagramDrain', () => { drains++ })
    // Fill the queue, then every send waits for room instead of failing: all 2,000 go out.
    while (client.sendDatagram(Buffer.alloc(1000))) {}
    for (let i = 0; i < 2000; i++) await client.sendDatagramWait(Buffer.alloc(1000, i))
    expect(drains).toBeGreaterThan(0)
    await until(() => received > 1500, 'most datagrams to arrive (loopback may still drop a few)')
    await expect(client.sendDatagramWait(Buffer.alloc(10), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: QuicErrorCode.ABORTED })
    console.log(`datagram send queue of 4: 2,000 sent with sendDatagramWait, ${drains} drain events, ${received} received`)
    await client.close()
    await listener.close()
  })

  it('should refuse oversize datagrams, and datagrams on a connection without them, clearly', async () => {
    const { listener, client } = await pair({ datagrams: true }, { datagrams: true })
    await ready(client)
    expect(() => client.sendDatagram(Buffer.alloc(client.maxDatagramSize + 1))).toThrow(expect.objectContaining({ code: QuicErrorCode.DATAGRAM_TOO_LARGE }))
    expect(client.sendDatagram(Buffer.alloc(client.maxDatagramSize))).toBe(true)
    expect(() => client.sendDatagram('text' as unknown as Uint8Array)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    await client.close()
    await listener.close()
    const plain = await pair()
    expect(plain.client.maxDatagramSize).toBe(0)
    expect(() => plain.client.sendDatagram(Buffer.from('x'))).toThrow(expect.objectContaining({ code: QuicErrorCode.DATAGRAMS_DISABLED }))
    await plain.client.close()
    await plain.listener.close()
  })
})

describe('statistics', () => {
  it('should report MsQuic\'s connection figures and open streams', async () => {
    const { listener, client, server } = await pair()
    const stream = await client.openStream()
    stream.write(Buffer.alloc(256 * 1024, 1))
    const inbound = await server.acceptStream()
    let received = 0
    inbound.on('data', chunk => { received += chunk.length })
    await until(() => received === 256 * 1024, 'the bytes')
    const stats = client.stats()
    expect(stats.openStreams).toBe(1)
    expect(stats.rttUs).toBeGreaterThan(0)
    expect(stats.bytesSent).toBeGreaterThan(256 * 1024)
    expect(stats.streamBytesSent).toBeGreaterThanOrEqual(256 * 1024)
    expect(stats.packetsSent).toBeGreaterThan(100)
    expect(stats.congestionWindow).toBeGreaterThan(0)
    expect(stats.handshakeUs).toBeGreaterThan(0)
    expect(server.stats().streamBytesReceived).toBeGreaterThanOrEqual(256 * 1024)
    const reset = once(inbound, 'error')
    stream.destroy()
    expect((await reset)[0]).toMatchObject({ code: QuicErrorCode.STREAM_RESET })
    await until(() => client.stats().openStreams === 0, 'the stream to close')
    expect(listener.stats()).toMatchObject({ pending: 0, refused: 0, accepted: 1 })
    await client.close()
    expect(() => client.stats()).toThrow(expect.objectContaining({ code: QuicErrorCode.CLOSED }))
    await listener.close()
  })
})
