import { describe, expect, it } from 'vitest'
import { AdmissionRefusedCode, QuicErrorCode, connect, listen, type IncomingConnection } from '../../src/index.js'
import { captureInitial, replayInitial, stalledClients } from '../flood.js'
import { testCertificate, until } from '../helpers.js'

describe('admission before the handshake', () => {
  it('should let admit() refuse a client before the server sends anything of its handshake', async () => {
    const { cert, key } = await testCertificate()
    const seen: IncomingConnection[] = []
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, admit: peer => { seen.push(peer); return false } })
    const port = listener.address().port
    let certificateSeen = false
    const refused = connect({ host: '127.0.0.1', port, alpn: 'test', verifyPeer: () => { certificateSeen = true; return true } })
    await expect(refused).rejects.toMatchObject({ code: QuicErrorCode.CONNECTION_REFUSED })
    // The server never got as far as its certificate.
    expect(certificateSeen).toBe(false)
    expect(seen).toHaveLength(1)
    expect(seen[0].remoteAddress.address).toBe('127.0.0.1')
    expect(seen[0].localAddress.port).toBe(port)
    expect(listener.stats()).toMatchObject({ refused: 1, refusedBy: { admission: 1, handshakes: 0, backlog: 0 }, handshaking: 0 })
    expect(AdmissionRefusedCode).toBe(0x1001n)
    await listener.close()
  })

  it('should admit on an asynchronous answer, and refuse when admit() throws or rejects', async () => {
    const { cert, key } = await testCertificate()
    const answers = [
      async () => await new Promise<boolean>(resolve => setTimeout(() => resolve(true), 20)),
      () => { throw new Error('broken policy') },
      async () => await Promise.reject(new Error('broken policy')),
      () => 'yes' as unknown as boolean // only `true` admits
    ]
    let next = 0
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, admit: async () => await answers[next++]() })
    const port = listener.address().port
    const client = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
    const server = await listener.accept()
    expect(server.remoteAddress?.port).toBe(client.localAddress?.port)
    for (let i = 0; i < 3; i++) {
      await expect(connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })).rejects.toMatchObject({ code: QuicErrorCode.CONNECTION_REFUSED })
    }
    expect(listener.stats().refusedBy.admission).toBe(3)
    await client.close()
    await listener.close()
  })

  it('should bound handshakes apart from the backlog: stalled handshakes never fill the backlog', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, backlog: 1, maxHandshakes: 4, retryAbove: false, handshakeTimeout: 1500 })
    const port = listener.address().port
    const stalled = stalledClients(port, 'test', 4)
    await until(() => listener.stats().handshaking === 4, 'four stalled handshakes')
    // A fifth handshake is refused at once.
    await expect(connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })).rejects.toMatchObject({ code: QuicErrorCode.CONNECTION_REFUSED })
    expect(listener.stats().refusedBy).toEqual({ handshakes: 1, backlog: 0, admission: 0 })
    stalled.abort()
    await Promise.all(stalled.attempts)
    await until(() => listener.stats().handshaking === 0, 'the stalled handshakes to end')
    // The backlog (1) holds one established connection; the next is refused until it is accepted.
    const first = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
    await until(() => listener.stats().waiting === 1, 'one connection waiting')
    await expect(connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })).rejects.toMatchObject({ code: QuicErrorCode.CONNECTION_REFUSED })
    expect(listener.stats().refusedBy.backlog).toBe(1)
    await listener.accept()
    const second = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
    await Promise.all([first.close(), second.close()])
    await listener.close()
  })

  it('should answer replayed Initials with a stateless Retry once handshakes pile up, and stop when they are gone', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, retryAbove: 8, handshakeTimeout: 1000 })
    const port = listener.address().port
    const initial = await captureInitial('test', cert)
    const replay = await replayInitial(port, initial, 200, 4, 5)
    await until(() => replay.replies.retry + replay.replies.handshake >= 190, 'replies to the replays')
    // The first few created connections (handshake replies); from 8 on, each got a Retry.
    expect(replay.replies.handshake).toBeGreaterThanOrEqual(8)
    expect(replay.replies.handshake).toBeLessThan(20)
    expect(replay.replies.retry).toBeGreaterThan(170)
    expect(listener.stats().retrying).toBe(true)
    expect(listener.stats().handshaking).toBeLessThan(20)
    // A real client passes the Retry and connects.
    const client = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
    await listener.accept()
    // The replayed handshakes time out; Retry stops.
    await until(() => listener.stats().handshaking === 0 && !listener.stats().retrying, 'the replays to time out and Retry to stop')
    replay.close()
    await client.close()
    await listener.close()
  })

  it('should send Retry to every new client with retryAbove: 0, and never with false', async () => {
    const { cert, key } = await testCertificate()
    const initial = await captureInitial('test', cert)
    for (const [retryAbove, retry] of [[0, true], [false, false]] as const) {
      const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, retryAbove, handshakeTimeout: 1000 })
      const port = listener.address().port
      expect(listener.stats().retrying).toBe(retry)
      const replay = await replayInitial(port, initial, 20, 4, 5)
      await until(() => replay.replies.retry + replay.replies.handshake === 20, 'a reply to each replay')
      expect(replay.replies.retry).toBe(retry ? 20 : 0)
      const client = await connect({ host: '127.0.0.1', port, alpn: 'test', ca: cert })
      await listener.accept()
      await client.close()
      replay.close()
      await listener.close()
    }
  })

  it('should check the new options', async () => {
    const { cert, key } = await testCertificate()
    for (const [name, value, code] of [
      ['maxHandshakes', 0, 'ERR_OUT_OF_RANGE'],
      ['maxHandshakes', 1.5, 'ERR_OUT_OF_RANGE'],
      ['retryAbove', -1, 'ERR_OUT_OF_RANGE'],
      ['retryAbove', true, 'ERR_INVALID_ARG_VALUE'],
      ['admit', 'yes', 'ERR_INVALID_ARG_TYPE']
    ] as const) {
      await expect(listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, [name]: value })).rejects.toMatchObject({ code })
    }
  })
})
