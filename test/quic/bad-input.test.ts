import { describe, it, expect } from 'vitest'
import { connect, createSelfSignedCertificate, listen, QuicErrorCode } from '../../src/index.js'
import { pair, testCertificate } from '../helpers.js'

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
})
