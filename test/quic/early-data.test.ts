/**
 * 0-RTT from our clients: `connect({ sessionTicket, earlyData: true })` resolves before the
 * handshake, and what is sent right after it leaves in the first flight, marked as early data on
 * the server. A server that refuses early data gets it again after the handshake, exactly once. A
 * listener that only resumes (`sessionTickets: true`) never takes early data: it can be replayed.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { connect, listen, type ConnectOptions, type QuicListener } from '../../src/index.js'
import { testCertificate } from '../helpers.js'

const listeners: QuicListener[] = []
afterEach(async () => { await Promise.all(listeners.splice(0).map(async l => { await l.close() })) })

interface Served { body: string, early: boolean }

/** A listener serving requests (echo, prefixed), recording what it saw and whether it came as 0-RTT. */
async function requestServer (sessionTickets: true | '0rtt'): Promise<{ options: ConnectOptions, served: Served[] }> {
  const { cert, key } = await testCertificate()
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'early', cert, key, sessionTickets })
  listeners.push(listener)
  const served: Served[] = []
  listener.serveRequests((body, info) => {
    served.push({ body: body.toString(), early: info.earlyData })
    return `reply to ${body.toString()}`
  })
  return { options: { host: '127.0.0.1', port: listener.address().port, alpn: 'early', ca: cert }, served }
}

async function ticketFrom (options: ConnectOptions): Promise<Buffer> {
  const connection = await connect(options)
  await connection.request('first')
  const ticket = connection.sessionTicket ?? await new Promise<Buffer>(resolve => connection.once('sessionTicket', resolve))
  await connection.close()
  return ticket
}

describe('0-RTT from our clients', () => {
  it('sends what follows connect() in the first flight, as early data the server marks, every time', async () => {
    const { options, served } = await requestServer('0rtt')
    const ticket = await ticketFrom(options)
    for (let i = 0; i < 10; i++) {
      const connection = await connect({ ...options, sessionTicket: ticket, earlyData: true })
      expect(connection.earlyData).toBe(true)
      // Sent before the handshake could complete: connect() resolved before it.
      const replies = await Promise.all([connection.request(`a${i}`), connection.request(`b${i}`)])
      expect(replies.map(String)).toEqual([`reply to a${i}`, `reply to b${i}`])
      await connection.connected
      expect(connection.sessionResumed).toBe(true)
      await connection.close()
    }
    expect(served.filter(s => s.body !== 'first')).toHaveLength(20)
    expect(served.filter(s => s.body !== 'first' && !s.early)).toEqual([])
  })

  it('sends a Duplex stream opened with its body right after connect() as early data too', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'early', cert, key, sessionTickets: '0rtt' })
    listeners.push(listener)
    const seen: Array<{ text: string, early: boolean }> = []
    void (async () => {
      for await (const conn of listener) {
        void (async () => {
          for await (const s of conn) {
            let text = ''
            s.on('data', (chunk: Buffer) => { text += chunk.toString() })
            s.on('end', () => { seen.push({ text, early: s.earlyData }); s.end(text) })
            s.on('error', () => {})
          }
        })()
      }
    })()
    const options = { host: '127.0.0.1', port: listener.address().port, alpn: 'early', ca: cert }
    const first = await connect(options)
    const ticket = first.sessionTicket ?? await new Promise<Buffer>(resolve => first.once('sessionTicket', resolve))
    await first.close()
    const connection = await connect({ ...options, sessionTicket: ticket, earlyData: true })
    const stream = await connection.openStream({ body: Buffer.from('early stream'), end: true })
    let echoed = ''
    for await (const chunk of stream) echoed += String(chunk)
    expect(echoed).toBe('early stream')
    expect(seen).toEqual([{ text: 'early stream', early: true }])
    await connection.close()
  })

  it('resends early data a server refuses (it cannot read the ticket): once, after the handshake', async () => {
    const a = await requestServer('0rtt')
    const ticket = await ticketFrom(a.options)
    // Another listener has other ticket keys: a full handshake, and the 0-RTT data is refused.
    const b = await requestServer('0rtt')
    for (let i = 0; i < 5; i++) {
      const connection = await connect({ ...b.options, sessionTicket: ticket, earlyData: true })
      expect(String(await connection.request(`refused ${i}`))).toBe(`reply to refused ${i}`)
      expect(connection.sessionResumed).toBe(false)
      await connection.close()
    }
    // Each request reached the handler exactly once, and not as early data.
    expect(b.served).toEqual(Array.from({ length: 5 }, (_, i) => ({ body: `refused ${i}`, early: false })))
  })

  it('never hands early data to a listener that only resumes sessions (sessionTickets: true)', async () => {
    const { options, served } = await requestServer(true)
    const ticket = await ticketFrom(options)
    for (let i = 0; i < 10; i++) {
      const connection = await connect({ ...options, sessionTicket: ticket, earlyData: true })
      expect(String(await connection.request(`late ${i}`))).toBe(`reply to late ${i}`)
      expect(connection.sessionResumed).toBe(true)
      await connection.close()
    }
    expect(served.filter(s => s.early)).toEqual([])
    expect(served).toHaveLength(11)
  })

  it('ends cleanly when closed or destroyed before it started, and when the server is gone', async () => {
    const { options } = await requestServer('0rtt')
    const ticket = await ticketFrom(options)
    for (const end of ['close', 'destroy'] as const) {
      const connection = await connect({ ...options, sessionTicket: ticket, earlyData: true })
      const request = connection.request('never answered').then(() => undefined, (error: unknown) => error)
      if (end === 'close') await connection.close()
      else connection.destroy()
      expect(await request).toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_/) })
      expect((await connection.closed).by).toBe('local')
    }
    await Promise.all(listeners.splice(0).map(async l => { await l.close() }))
    const orphan = await connect({ ...options, sessionTicket: ticket, earlyData: true, handshakeTimeout: 2_000 })
    await expect(orphan.request('nobody')).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_/) })
    await expect(orphan.connected).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_/) })
  })

  it('checks its options: earlyData needs a sessionTicket, and is a boolean', async () => {
    const { options } = await requestServer('0rtt')
    await expect(connect({ ...options, earlyData: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    await expect(connect({ ...options, sessionTicket: Buffer.from('x'), earlyData: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    const plain = await connect({ ...options, earlyData: false })
    expect(plain.earlyData).toBe(false)
    await plain.close()
  })
})

describe('0-RTT and the connection before its handshake', () => {
  it('reports a refused connection through the request and `connected`, not as an uncaught error', async () => {
    const { options } = await requestServer('0rtt')
    const ticket = await ticketFrom(options)
    // A protocol the server does not speak (MsQuic refuses the ticket's session for it).
    const connection = await connect({ ...options, alpn: 'another', sessionTicket: ticket, earlyData: true })
    await expect(connection.request('wrong protocol')).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_/) })
    await expect(connection.connected).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_QUIC_/) })
    expect((await connection.closed).by).toBe('transport')
  })
})
