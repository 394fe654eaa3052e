import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { describe, it, expect, vi } from 'vitest'
import { connect, listen, QuicConnection, QuicErrorCode } from '../../src/index.js'
import { Ev, kOnNativeEvent } from '../../src/native.js'
import { pair, readAll, testCertificate } from '../helpers.js'

describe('connection failures', () => {
  it('should fail with ERR_QUIC_UNREACHABLE when nothing listens on the port', async () => {
    const silent = createSocket('udp4')
    silent.bind(0, '127.0.0.1')
    await once(silent, 'listening')
    const port = silent.address().port
    silent.close()
    await expect(connect({ host: '127.0.0.1', port, alpn: 'test', rejectUnauthorized: false }))
      .rejects.toMatchObject({ code: QuicErrorCode.UNREACHABLE })
  })

  it('should reject a start MsQuic refuses at once, and still end the connection natively', async () => {
    // ConnectionStart runs on the runtime's blocking-calls thread; MsQuic refuses a server name
    // over 65,535 bytes there, synchronously. The connection, never started, is then shut down
    // silently, and MsQuic must still give it its final event: the native wrapper is freed on it.
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    const events: number[] = []
    const original = QuicConnection.prototype[kOnNativeEvent]
    const spy = vi.spyOn(QuicConnection.prototype, kOnNativeEvent).mockImplementation(function (this: QuicConnection, type, status, value, code, extra) {
      events.push(type)
      original.call(this, type, status, value, code, extra)
    })
    try {
      for (let i = 0; i < 3; i++) {
        await expect(connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert, servername: 'a'.repeat(70_000) }))
          .rejects.toMatchObject({ message: expect.stringContaining('could not start'), statusName: 'QUIC_STATUS_INVALID_PARAMETER' })
      }
      await expect.poll(() => events.filter(type => type === Ev.ConnectionShutdownComplete).length).toBe(3)
      expect(events.filter(type => type === Ev.ConnectionStartFailed)).toHaveLength(3)
      // The listener and the runtime go on: a good connection after them.
      const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert })
      await client.close()
    } finally {
      spy.mockRestore()
      await listener.close()
    }
  })

  it('should abort a connection attempt through its signal', async () => {
    // A UDP socket that swallows every packet: the handshake can only wait.
    const silent = createSocket('udp4')
    silent.bind(0, '127.0.0.1')
    await once(silent, 'listening')
    const controller = new AbortController()
    const attempt = connect({ host: '127.0.0.1', port: silent.address().port, alpn: 'test', rejectUnauthorized: false, signal: controller.signal })
    setTimeout(() => controller.abort(), 100)
    await expect(attempt).rejects.toMatchObject({ code: QuicErrorCode.ABORTED })
    await expect(connect({ host: '127.0.0.1', port: 1, alpn: 'test', signal: AbortSignal.abort() })).rejects.toMatchObject({ code: QuicErrorCode.ABORTED })
    silent.close()
  })

  it('should close idle connections with ERR_QUIC_IDLE_TIMEOUT on both sides', async () => {
    const { listener, client, server } = await pair({ idleTimeout: 300 }, { idleTimeout: 300 })
    const [clientInfo, serverInfo] = await Promise.all([client.closed, server.closed])
    expect(clientInfo).toMatchObject({ by: 'transport', error: { code: QuicErrorCode.IDLE_TIMEOUT } })
    expect(serverInfo).toMatchObject({ by: 'transport', error: { code: QuicErrorCode.IDLE_TIMEOUT } })
    await listener.close()
  })

  it('should keep an idle connection open with keep-alive', async () => {
    const { listener, client, server } = await pair({ idleTimeout: 300 }, { idleTimeout: 300, keepAliveInterval: 100 })
    await new Promise(resolve => setTimeout(resolve, 900))
    const stream = await client.openStream()
    stream.end('still here')
    const inbound = await server.acceptStream()
    expect((await readAll(inbound)).toString()).toBe('still here')
    inbound.end()
    await client.close()
    await listener.close()
  })

  it('should tell the peer the application error code it closed with', async () => {
    const { listener, client, server } = await pair()
    await server.close({ code: 42n, reason: 'maintenance' })
    expect(await server.closed).toEqual({ by: 'local', code: 42n, reason: 'maintenance' })
    expect(await client.closed).toMatchObject({ by: 'peer', code: 42n, error: { code: QuicErrorCode.PEER_CLOSED, errorCode: 42n } })
    await listener.close()
  })

  it('should close gracefully: refuse new streams, let open ones finish, then close with the code', async () => {
    const { listener, client, server } = await pair()
    const stream = await client.openStream()
    stream.write('first half, ')
    const inbound = await server.acceptStream()
    let closedAt = 0
    const closing = client.close({ code: 7, graceful: true }).then(info => { closedAt = Date.now(); return info })
    await expect(client.openStream()).rejects.toMatchObject({ code: QuicErrorCode.CLOSED })
    // A stream the server opens now is refused with the closing code.
    const refused = await server.openStream()
    const refusal = once(refused, 'error')
    refused.end('too late')
    expect((await refusal)[0]).toMatchObject({ code: QuicErrorCode.STREAM_RESET, errorCode: 7n })
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(closedAt).toBe(0)
    // The open stream finishes with nothing lost, and only then does the connection close.
    stream.end('second half')
    const received = (await readAll(inbound)).toString()
    inbound.end('done')
    expect((await readAll(stream)).toString()).toBe('done')
    expect(received).toBe('first half, second half')
    expect(await closing).toMatchObject({ by: 'local', code: 7n })
    expect(await server.closed).toMatchObject({ by: 'peer', code: 7n })
    await listener.close()
  })

  it('should close anyway when a graceful close times out', async () => {
    const { listener, client, server } = await pair()
    const stream = await client.openStream()
    stream.on('error', () => {})
    stream.write('never finished')
    const inbound = await server.acceptStream()
    const failed = once(inbound, 'error')
    const started = Date.now()
    expect(await client.close({ code: 8, graceful: true, timeout: 200 })).toMatchObject({ by: 'local', code: 8n })
    expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    expect((await failed)[0]).toMatchObject({ code: QuicErrorCode.PEER_CLOSED, errorCode: 8n })
    await listener.close()
  })

  it('should report stream resets with the peer\'s code, on the reset direction only', async () => {
    const { listener, client, server } = await pair()
    const stream = await client.openStream()
    stream.write('partial')
    // autoDestroy: false keeps the directions apart (by default the reset would end the stream).
    const inbound = await server.acceptStream({ autoDestroy: false })
    const failed = once(inbound, 'error')
    stream.reset(77)
    // RESET_STREAM ends the server's reading side only: its reply still reaches the client.
    expect((await failed)[0]).toMatchObject({ code: QuicErrorCode.STREAM_RESET, errorCode: 77n, direction: 'read' })
    expect(inbound.readState).toBe('reset')
    expect(inbound.destroyed).toBe(false)
    const closed = once(inbound, 'close')
    inbound.end('reply')
    expect((await readAll(stream)).toString()).toBe('reply')
    await closed
    await client.close()
    await listener.close()
  })

  it('should listen on every address by default and report the port', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ alpn: 'test', cert, key })
    const { port } = listener.address()
    expect(port).toBeGreaterThan(0)
    const viaV6 = await connect({ host: '::1', port, alpn: 'test', ca: cert })
    const viaV4 = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
    expect(viaV6.remoteAddress?.family).toBe('IPv6')
    await Promise.all([viaV6.close(), viaV4.close()])
    await listener.close()
  })
})
