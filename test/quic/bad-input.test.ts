import { describe, it, expect } from 'vitest'
import { connect, createSelfSignedCertificate, listen, QuicErrorCode, type QuicStream } from '../../src/index.js'
import { pair, readAll, testCertificate, until } from '../helpers.js'

describe('bad input', () => {
  it('should refuse ports out of range', async () => {
    const { cert, key } = await testCertificate()
    await expect(listen({ port: 70000, alpn: 'test', cert, key })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    await expect(listen({ port: -1, alpn: 'test', cert, key })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(connect({ host: '127.0.0.1', port: 0, alpn: 'test' })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(connect({ host: '127.0.0.1', port: 1.5, alpn: 'test' })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(connect({ host: '127.0.0.1', port: '443' as unknown as number, alpn: 'test' })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  })

  it('should refuse an empty ALPN and one over 255 bytes', async () => {
    const { cert, key } = await testCertificate()
    await expect(listen({ port: 0, alpn: '', cert, key })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(listen({ port: 0, alpn: [], cert, key })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(connect({ host: '127.0.0.1', port: 1, alpn: 'x'.repeat(256) })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(connect({ host: '127.0.0.1', port: 1, alpn: 42 as unknown as string })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
  })

  it('should report an unreadable certificate or key clearly', async () => {
    const { key } = await testCertificate()
    await expect(listen({ port: 0, alpn: 'test', cert: 'not a certificate', key })).rejects.toMatchObject({ code: QuicErrorCode.INVALID_CREDENTIALS })
    const other = await createSelfSignedCertificate()
    await expect(listen({ port: 0, alpn: 'test', cert: other.cert, key })).rejects.toMatchObject({ code: QuicErrorCode.INVALID_CREDENTIALS })
    await expect(listen({ port: 0, alpn: 'test', cert: 42 as unknown as string, key })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(listen({ port: 0, alpn: 'test' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
  })

  it('should refuse invalid settings', async () => {
    const { cert, key } = await testCertificate()
    await expect(listen({ port: 0, alpn: 'test', cert, key, maxBidirectionalStreams: 70000 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(listen({ port: 0, alpn: 'test', cert, key, streamReceiveWindow: 1000 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(createSelfSignedCertificate({ hosts: ['bad host!'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
  })

  it('should fail a write after end with Node\'s error, and keep the connection working', async () => {
    const { listener, client } = await pair()
    const stream = await client.openStream()
    stream.end('done')
    stream.on('error', () => {})
    const error = await new Promise<Error>(resolve => { stream.write('more', resolve as (e?: Error | null) => void) })
    expect(error).toMatchObject({ code: 'ERR_STREAM_WRITE_AFTER_END' })
    const again = await client.openStream()
    again.end()
    expect(() => again.reset(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    await expect(client.close({ code: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(client.close({ code: 2n ** 62n })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await client.close()
    await listener.close()
  })

  it('should reject using a closed connection with ERR_QUIC_CLOSED', async () => {
    const { listener, client } = await pair()
    await client.close()
    await expect(client.openStream()).rejects.toMatchObject({ code: QuicErrorCode.CLOSED })
    await expect(client.acceptStream()).rejects.toMatchObject({ code: QuicErrorCode.CLOSED })
    expect(() => client.setStreamLimits({ bidirectional: 1 })).toThrow(expect.objectContaining({ code: QuicErrorCode.CLOSED }))
    await listener.close()
  })

  it('should refuse misuse with a coded error before anything native starts', async () => {
    const { listener, client, server } = await pair()
    const notSignal = { aborted: false } as unknown as AbortSignal
    const invalidType = expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' })
    const { cert } = await testCertificate()
    const before = client.stats().openStreams
    await expect(connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert, signal: notSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(client.openStream({ signal: notSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    // Nothing started: no stream counts, no connection reached the listener.
    expect(client.stats().openStreams).toBe(before)
    expect(listener.pendingConnections).toBe(0)
    await expect(client.acceptStream({ signal: notSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(listener.accept({ signal: notSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(listener.accept(0 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(client.acceptStream(0 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(client.close(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    await expect(client.close(0 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    expect(() => client.setStreamLimits(0 as never)).toThrow(invalidType)
    await expect(createSelfSignedCertificate(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    const { setWorkerCount, dialProtocol, QuicConnection, QuicStream } = await import('../../src/index.js')
    expect(() => setWorkerCount('2' as never)).toThrow(invalidType)
    expect(() => setWorkerCount(0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    await expect(dialProtocol(client, '/x/1.0.0', { signal: notSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    // Handles: unknown ids and corrupted state are refused before the native slot is claimed.
    expect(() => QuicConnection.adopt({ kind: 'node-msquic/connection', id: 123456, streams: [] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    const stream = await client.openStream()
    const handle = stream.transfer()
    expect(() => QuicStream.adopt({ ...handle, state: { ...handle.state, core: { ...handle.state.core, read: 'bogus' } } } as never)).toThrow(invalidType)
    const adopted = QuicStream.adopt(handle)  // the real handle is still adoptable
    adopted.end('after all')
    const inbound = await server.acceptStream()
    let text = ''
    for await (const chunk of inbound.iterator({ destroyOnReturn: false })) text += String(chunk)
    expect(text).toBe('after all')
    inbound.end()
    await readAll(adopted)
    await client.close()
    await listener.close()
  })

  it('should check write() and end() arguments before the stream\'s state, in every state (as Node\'s Writable does)', async () => {
    const { listener, client, server } = await pair()
    // The server stops every stream's request at once (STOP_SENDING): the write side fails.
    void (async () => { for await (const s of server) { s.on('error', () => {}); s.stopSending(3); s.resume() } })()
    const states: Record<string, (s: QuicStream) => Promise<void>> = {
      open: async () => {},
      ended: async s => { s.end() },
      'reset by this side': async s => { s.reset(1) },
      'stopped by this side': async s => { s.stopSending(1) },
      destroyed: async s => { s.destroy() },
      'failed (the peer\'s STOP_SENDING)': async s => { s.write('x'); await until(() => s.writeState === 'stopped', 'STOP_SENDING') },
      'failed, directions kept (autoDestroy: false)': async s => { s.write('x'); await until(() => s.writeState === 'stopped', 'STOP_SENDING') }
    }
    const bad: Array<[string, unknown, string]> = [
      ['undefined', undefined, 'ERR_INVALID_ARG_TYPE'],
      ['a function', () => {}, 'ERR_INVALID_ARG_TYPE'],
      ['a number', 5, 'ERR_INVALID_ARG_TYPE'],
      ['an object', {}, 'ERR_INVALID_ARG_TYPE'],
      ['null', null, 'ERR_STREAM_NULL_VALUES']
    ]
    for (const [state, reach] of Object.entries(states)) {
      for (const [what, chunk, code] of bad) {
        const s = await client.openStream({ autoDestroy: !state.includes('autoDestroy') })
        s.on('error', () => {})
        await reach(s)
        expect(() => s.write(chunk as never), `write(${what}) on a stream ${state}`).toThrow(expect.objectContaining({ code }))
        // end(chunk) writes a chunk other than null/undefined, and takes a function as its callback.
        if (typeof chunk !== 'function' && chunk !== undefined && chunk !== null) {
          expect(() => s.end(chunk as never), `end(${what}) on a stream ${state}`).toThrow(expect.objectContaining({ code }))
        }
        s.destroy()
      }
    }
    await client.close()
    await listener.close()
  })
})
