// Session resumption (issue 11): a client keeps the ticket the server sends and resumes with it.
// Against foreign stacks (quic-go, quinn, aioquic, 0-RTT from their clients included): test/interop.
import { afterEach, describe, expect, test } from 'vitest'
import { connect, createSelfSignedCertificate, listen, type QuicConnection, type QuicListener, type VerifyPeer } from '../../src/index.js'
import { readAll, testCertificate } from '../helpers.js'

const open: Array<QuicListener | QuicConnection> = []
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await item.close()
})

async function server (options: { sessionTickets?: boolean | '0rtt', verifyPeer?: VerifyPeer }): Promise<{ listener: QuicListener, accepted: QuicConnection[] }> {
  const { cert, key } = await testCertificate()
  const listener = await listen({ host: '127.0.0.1', alpn: 'r', cert, key, ...options })
  open.push(listener)
  const accepted: QuicConnection[] = []
  void (async () => {
    for await (const connection of listener) {
      accepted.push(connection)
      void (async () => { for await (const stream of connection) stream.pipe(stream) })().catch(() => {})
    }
  })()
  return { listener, accepted }
}

async function client (port: number, sessionTicket?: Uint8Array, credentials: { cert?: string, key?: string } = {}): Promise<QuicConnection> {
  const { cert } = await testCertificate()
  const connection = await connect({ host: '127.0.0.1', port, alpn: 'r', ca: cert, servername: 'localhost', sessionTicket, ...credentials })
  open.push(connection)
  return connection
}

function ticketOf (connection: QuicConnection, timeout = 5000): Promise<Buffer | undefined> {
  if (connection.sessionTicket !== undefined) return Promise.resolve(connection.sessionTicket)
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve(undefined), timeout)
    connection.once('sessionTicket', ticket => { clearTimeout(timer); resolve(ticket) })
  })
}

async function echo (connection: QuicConnection, text: string): Promise<string> {
  const stream = await connection.openStream()
  stream.end(text)
  return (await readAll(stream)).toString()
}

describe('session resumption', () => {
  test('a client resumes with the ticket of an earlier connection; both sides see it', async () => {
    const { listener, accepted } = await server({ sessionTickets: true })
    const first = await client(listener.address().port)
    expect(first.sessionResumed).toBe(false)
    const ticket = await ticketOf(first)
    expect(ticket).toBeInstanceOf(Buffer)
    expect(ticket!.length).toBeGreaterThan(0)
    await first.close()

    const second = await client(listener.address().port, ticket)
    expect(second.sessionResumed).toBe(true)
    expect(await echo(second, 'resumed')).toBe('resumed')
    expect(accepted.at(-1)!.sessionResumed).toBe(true)
    // A resumed connection gets a fresh ticket too.
    expect(await ticketOf(second)).toBeInstanceOf(Buffer)
  })

  test('a resumed handshake sends no certificate: verifyPeer runs for the first connection only', async () => {
    const { listener } = await server({ sessionTickets: true })
    let calls = 0
    const verifyPeer = (): boolean => { calls++; return true }
    const dial = async (sessionTicket?: Uint8Array): Promise<QuicConnection> => {
      const connection = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'r', verifyPeer, sessionTicket })
      open.push(connection)
      return connection
    }
    const first = await dial()
    const ticket = await ticketOf(first)
    await first.close()
    const second = await dial(ticket)
    expect(second.sessionResumed).toBe(true)
    expect(calls).toBe(1)
  })

  test("with '0rtt' the server also resumes (and would take 0-RTT data)", async () => {
    const { listener } = await server({ sessionTickets: '0rtt' })
    const first = await client(listener.address().port)
    const ticket = await ticketOf(first)
    await first.close()
    const second = await client(listener.address().port, ticket)
    expect(second.sessionResumed).toBe(true)
    expect(await echo(second, 'x')).toBe('x')
  })

  test('a server that does not opt in sends no ticket', async () => {
    const { listener } = await server({})
    const first = await client(listener.address().port)
    expect(await echo(first, 'x')).toBe('x')
    expect(await ticketOf(first, 300)).toBeUndefined()
  })

  test("another server's ticket falls back to a full handshake", async () => {
    const a = await server({ sessionTickets: true })
    const b = await server({ sessionTickets: true })
    const first = await client(a.listener.address().port)
    const ticket = await ticketOf(first)
    await first.close()
    const other = await client(b.listener.address().port, ticket)
    expect(other.sessionResumed).toBe(false)
    expect(await echo(other, 'full')).toBe('full')
  })

  test('sessionTicket must be a non-empty Buffer or Uint8Array', async () => {
    const { listener } = await server({ sessionTickets: true })
    const { cert } = await testCertificate()
    for (const sessionTicket of ['abc', Buffer.alloc(0), 42]) {
      await expect(connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'r', ca: cert, sessionTicket: sessionTicket as Uint8Array }))
        .rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
    }
    await expect(listen({ alpn: 'r', ...(await testCertificate()), sessionTickets: 'yes' as unknown as boolean })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
  })

  // MsQuic 2.5 refuses a blob that is not a ticket at all, and then we do a full handshake. A real
  // ticket cut short or altered past its header is taken, and the handshake then times out (seen
  // here; documented in the README): pass tickets back unmodified.
  test('a blob that is not a ticket means a full handshake', async () => {
    const { listener } = await server({ sessionTickets: true })
    const connection = await client(listener.address().port, Buffer.from('not a ticket'))
    expect(connection.sessionResumed).toBe(false)
    expect(await echo(connection, 'full')).toBe('full')
  })

  test('resumes with client authentication: the server knows its client from the ticket, and verifyPeer runs once', async () => {
    const clientCredentials = await createSelfSignedCertificate({ hosts: ['client.test'] })
    const verified: Array<Buffer | undefined> = []
    const { listener, accepted } = await server({ sessionTickets: true, verifyPeer: ({ der }) => { verified.push(der); return der !== undefined } })
    const dial = async (ticket?: Buffer): Promise<QuicConnection> => await client(listener.address().port, ticket, clientCredentials)
    const first = await dial()
    const ticket = await ticketOf(first)
    await first.close()
    const second = await dial(ticket)
    // Before MsQuic patch 0003 the server's TLS library refused this resumption with an alert.
    expect(second.sessionResumed).toBe(true)
    expect(await echo(second, 'mutual')).toBe('mutual')
    await expect.poll(() => accepted.length).toBe(2)
    expect(accepted[1].sessionResumed).toBe(true)
    expect(verified).toHaveLength(1)
    expect(accepted[1].peerCertificate?.equals(verified[0]!)).toBe(true)
    // The resumed connection's own tickets carry the certificate on.
    const third = await dial(await ticketOf(second))
    expect(third.sessionResumed).toBe(true)
    await expect.poll(() => accepted.length).toBe(3)
    expect(accepted[2].peerCertificate?.equals(verified[0]!)).toBe(true)
  })
})
