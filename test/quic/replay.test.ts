/**
 * 0-RTT replay, as an attacker on the path does it: a UDP proxy records a resumed client's first
 * flight (its Initial with the 0-RTT data), and after the real exchange sends it again to the
 * server from another port. A replay cannot finish the handshake (it has no keys), so a listener
 * that hands connections and streams to the app only once their handshake completed never shows
 * it to the app; the request path serves early requests as they arrive, so it serves a replay
 * too, marked as early data (README: "Session resumption and 0-RTT").
 */
import dgram from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { connect, listen, type QuicConnection, type QuicListener } from '../../src/index.js'
import { readAll, testCertificate } from '../helpers.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function socket (): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>(resolve => s.bind(0, '127.0.0.1', resolve))
  closers.push(() => { s.close() })
  return s
}

/** A proxy in front of `serverPort` that keeps what the client sent before the server's first answer. */
async function recordingProxy (serverPort: number): Promise<{ port: number, firstFlight: Buffer[] }> {
  const front = await socket()
  const back = await socket()
  const firstFlight: Buffer[] = []
  let client: dgram.RemoteInfo | undefined
  let answered = false
  front.on('message', (message, from) => {
    client = from
    if (!answered) firstFlight.push(Buffer.from(message))
    back.send(message, serverPort, '127.0.0.1')
  })
  back.on('message', message => {
    answered = true
    if (client !== undefined) front.send(message, client.port, client.address)
  })
  return { port: front.address().port, firstFlight }
}

async function setup (serveRequests: boolean): Promise<{ listener: QuicListener, seen: { connections: number, streams: number, requests: boolean[] }, dial: (port: number, ticket?: Buffer) => Promise<QuicConnection> }> {
  const { cert, key } = await testCertificate()
  const listener = await listen({ host: '127.0.0.1', alpn: 'replay', cert, key, sessionTickets: '0rtt' })
  closers.push(async () => { await listener.close() })
  const seen = { connections: 0, streams: 0, requests: [] as boolean[] }
  if (serveRequests) listener.serveRequests((body, info) => { seen.requests.push(info.earlyData); return body })
  void (async () => {
    for await (const connection of listener) {
      seen.connections++
      void (async () => { for await (const stream of connection) { seen.streams++; stream.on('error', () => {}); stream.end('ok') } })().catch(() => {})
    }
  })()
  const dial = async (port: number, sessionTicket?: Buffer): Promise<QuicConnection> => {
    const connection = await connect({ host: '127.0.0.1', port, alpn: 'replay', ca: cert, servername: 'localhost', sessionTicket, earlyData: sessionTicket !== undefined })
    closers.push(async () => { await connection.close() })
    return connection
  }
  return { listener, seen, dial }
}

async function ticketFrom (connection: QuicConnection): Promise<Buffer> {
  return connection.sessionTicket ?? await new Promise<Buffer>(resolve => connection.once('sessionTicket', resolve))
}

async function replay (datagrams: Buffer[], port: number): Promise<number> {
  const attacker = await socket()
  let answers = 0
  attacker.on('message', () => { answers++ })
  for (const datagram of datagrams) attacker.send(datagram, port, '127.0.0.1')
  await new Promise(resolve => setTimeout(resolve, 1000))
  return answers
}

describe('a replayed 0-RTT first flight', () => {
  it('never reaches the app as a connection or a stream', async () => {
    const { listener, seen, dial } = await setup(false)
    const port = listener.address().port
    const ticket = await ticketFrom(await dial(port))
    const proxy = await recordingProxy(port)
    const connection = await dial(proxy.port, ticket)
    expect(connection.earlyData).toBe(true)
    const stream = await connection.openStream()
    stream.end('once')
    expect((await readAll(stream)).toString()).toBe('ok')
    expect(proxy.firstFlight.length).toBeGreaterThan(0)
    await expect.poll(() => seen).toEqual({ connections: 2, streams: 1, requests: [] })

    // The server answers the replay (its handshake flight), and nothing more comes of it.
    expect(await replay(proxy.firstFlight, port)).toBeGreaterThan(0)
    expect(seen).toEqual({ connections: 2, streams: 1, requests: [] })
  })

  it('is served again by the request path, marked as early data', async () => {
    const { listener, seen, dial } = await setup(true)
    const port = listener.address().port
    const ticket = await ticketFrom(await dial(port))
    const proxy = await recordingProxy(port)
    const connection = await dial(proxy.port, ticket)
    expect((await connection.request(Buffer.from('once'))).toString()).toBe('once')
    expect(seen.requests).toEqual([true])
    await replay(proxy.firstFlight, port)
    // Whatever the request path does with a replay, it never hides that the request came early.
    expect(seen.requests.every(early => early)).toBe(true)
    expect(seen.requests.length).toBeLessThanOrEqual(2)
  })
})
