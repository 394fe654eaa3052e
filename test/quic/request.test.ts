/**
 * The request path: connection.request() and serveRequests(), collected natively on both sides.
 */
import { describe, it, expect } from 'vitest'
import { QuicErrorCode, RequestResetCode, connect } from '../../src/index.js'
import { pair, testCertificate, until } from '../helpers.js'

const echo = (body: Buffer): Buffer => body

describe('request path', () => {
  it('should carry bodies from 0 bytes to the cap, both ways, byte for byte', async () => {
    const { listener, client, server } = await pair()
    const cap = 256 * 1024
    server.serveRequests(body => Buffer.concat([body, Buffer.from('!')]), { maxRequestBytes: cap })
    for (const size of [0, 1, 63, 64, 1200, 65_536, cap]) {
      const body = Buffer.alloc(size)
      for (let i = 0; i < size; i++) body[i] = (i * 31 + size) & 0xff
      const reply = await client.request(body, { maxResponseBytes: cap + 1 })
      expect(reply.length).toBe(size + 1)
      expect(reply.subarray(0, size).equals(body)).toBe(true)
    }
    expect(await client.request('text').then(String)).toBe('text!')
    await client.close()
    await listener.close()
  })

  it('should refuse a request over the server\'s cap and a reply over the client\'s cap', async () => {
    const { listener, client, server } = await pair()
    server.serveRequests(body => Buffer.alloc(body.length * 2), { maxRequestBytes: 1000 })
    // Over the server's cap: the server aborts the stream, the client hears the code.
    await expect(client.request(Buffer.alloc(1001))).rejects.toMatchObject({
      code: QuicErrorCode.STREAM_RESET, errorCode: RequestResetCode.MESSAGE_TOO_LARGE
    })
    // Over the client's cap: the client aborts the stream itself.
    await expect(client.request(Buffer.alloc(600), { maxResponseBytes: 1000 })).rejects.toMatchObject({ code: QuicErrorCode.MESSAGE_TOO_LARGE })
    // The connection serves on.
    expect((await client.request(Buffer.alloc(10))).length).toBe(20)
    await until(() => client.stats().openStreams === 0 && server.stats().openStreams === 0, 'every stream to close')
    await client.close()
    await listener.close()
  })

  it('should reset with the handler\'s code when it throws, and report the error', async () => {
    const { listener, client, server } = await pair()
    server.serveRequests(async body => {
      if (body.toString() === 'coded') throw Object.assign(new Error('no such thing'), { errorCode: 404 })
      if (body.toString() === 'plain') throw new Error('broken')
      return 'fine'
    })
    const reported: unknown[] = []
    server.on('requestError', error => reported.push(error))
    await expect(client.request('coded')).rejects.toMatchObject({ code: QuicErrorCode.STREAM_RESET, errorCode: 404n })
    await expect(client.request('plain')).rejects.toMatchObject({ errorCode: RequestResetCode.HANDLER_FAILED })
    expect((await client.request('ok')).toString()).toBe('fine')
    expect(reported.map(error => (error as Error).message)).toEqual(['no such thing', 'broken'])
    await client.close()
    await listener.close()
  })

  it('should abort a request through its signal and its timeout', async () => {
    const { listener, client, server } = await pair()
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    server.serveRequests(async body => { await gate; return body })
    const controller = new AbortController()
    const aborted = client.request('slow', { signal: controller.signal })
    setTimeout(() => controller.abort(), 20)
    await expect(aborted).rejects.toMatchObject({ code: QuicErrorCode.ABORTED })
    await expect(client.request('slow', { timeout: 30 })).rejects.toMatchObject({ code: QuicErrorCode.TIMEOUT })
    await expect(client.request('x', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: QuicErrorCode.ABORTED })
    release()
    // The late answers to the aborted requests go nowhere; a new request still works.
    expect((await client.request('after')).toString()).toBe('after')
    await until(() => client.stats().openStreams === 0, 'the aborted streams to close')
    await client.close()
    await listener.close()
  })

  it('should reject bad arguments before anything starts', async () => {
    const { listener, client, server } = await pair()
    await expect(client.request(42 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(client.request('x', { maxResponseBytes: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(client.request('x', { timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(client.request('x', { signal: 'no' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    expect(() => server.serveRequests('no' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => server.serveRequests(echo, { concurrency: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => server.serveRequests(echo, { maxRequestBytes: 2 ** 40 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    server.serveRequests(echo)
    expect(() => server.serveRequests(echo)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
    expect(client.stats().openStreams).toBe(0)
    await client.close()
    await listener.close()
  })

  it('should keep requests beyond the concurrency waiting in stream credit (listener) or in order (connection)', async () => {
    const { listener, client, server } = await pair()
    let running = 0
    let peak = 0
    const slow = async (body: Buffer): Promise<Buffer> => {
      peak = Math.max(peak, ++running)
      await new Promise(resolve => setTimeout(resolve, 5))
      running--
      return body
    }
    // On an open connection: the credit it granted before (100) still lets 40 arrive; 4 run at once.
    server.serveRequests(slow, { concurrency: 4 })
    const replies = await Promise.all(Array.from({ length: 40 }, async (_, i) => (await client.request(String(i))).toString()))
    expect(replies).toEqual(Array.from({ length: 40 }, (_, i) => String(i)))
    expect(peak).toBe(4)
    // From the listener: the peer is granted 4 streams from the handshake on; the others wait in QUIC.
    listener.serveRequests(slow, { concurrency: 4 })
    const { connect } = await import('../../src/index.js')
    const second = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: (await testCertificate()).cert })
    peak = 0
    await Promise.all(Array.from({ length: 40 }, async (_, i) => expect((await second.request(String(i))).toString()).toBe(String(i))))
    expect(peak).toBe(4)
    await second.close()
    await client.close()
    await listener.close()
  })

  it('should fail pending requests when the connection closes mid-request', async () => {
    const { listener, client, server } = await pair()
    server.serveRequests(() => new Promise<string>(() => {}))  // never answers
    // Each outcome is caught as it happens: no rejection is ever without its handler.
    const pending = Array.from({ length: 10 }, async () => await client.request('hang').then(() => 'answered', (error: unknown) => error))
    await until(() => server.stats().openStreams === 10, 'the requests to arrive')
    await server.close({ code: 7 })
    for (const outcome of await Promise.all(pending)) expect(outcome).toMatchObject({ code: QuicErrorCode.PEER_CLOSED, errorCode: 7n })
    await listener.close()
    await client.closed
  })

  it('should serve every connection of a listener from its first stream on', async () => {
    const { listener, client } = await pair()
    listener.serveRequests(body => Buffer.from(body.toString().toUpperCase()))
    // A connection made after serveRequests(): its first request arrives before any accept.
    const second = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: (await testCertificate()).cert })
    expect((await second.request('abc')).toString()).toBe('ABC')
    await second.close()
    await client.close()
    await listener.close()
  })

  it('should answer 10,000 requests at concurrency 100, every reply checked', async () => {
    const { listener, client, server } = await pair()
    server.serveRequests(body => Buffer.concat([body, body]))
    let next = 0
    let checked = 0
    await Promise.all(Array.from({ length: 100 }, async () => {
      while (next < 10_000) {
        const i = next++
        const body = Buffer.from(`request ${i}`)
        const reply = await client.request(body)
        expect(reply.equals(Buffer.concat([body, body]))).toBe(true)
        checked++
      }
    }))
    expect(checked).toBe(10_000)
    await until(() => client.stats().openStreams === 0 && server.stats().openStreams === 0, 'every stream to close')
    await client.close()
    await listener.close()
  })

  it('should start a Duplex stream with its first bytes in the same call (openStream({ body }))', async () => {
    const { listener, client, server } = await pair()
    const stream = await client.openStream({ body: Buffer.from('first bytes'), end: true })
    expect(stream.writableEnded || !stream.writable).toBe(true)
    const inbound = await server.acceptStream()
    const chunks: Buffer[] = []
    for await (const chunk of inbound.iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).toString()).toBe('first bytes')
    inbound.end('reply')
    let reply = ''
    for await (const chunk of stream) reply += String(chunk)
    expect(reply).toBe('reply')
    // Without end: the stream stays writable.
    const open = await client.openStream({ body: Buffer.from('a') })
    open.end('b')
    const second = await server.acceptStream()
    let text = ''
    for await (const chunk of second.iterator({ destroyOnReturn: false })) text += String(chunk)
    expect(text).toBe('ab')
    expect(open.writableFinished).toBe(true)
    second.end()
    await open.acknowledged
    await client.close()
    await listener.close()
  })
})
