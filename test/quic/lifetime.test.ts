/**
 * Streams that cannot leak: code written the way Node code is written ('data'/'end' with an error
 * logger, pipeline, for await, a reply first, errors ignored) meets a client that gives up in each
 * of the usual ways, on a connection with 4 streams of credit. Every stream on both sides must emit
 * 'close', the credit must come back (6 exchanges run one after another on 4 streams of credit, and
 * a last one must still open), and no native stream may be left on either side. The same for the
 * request path and for a native stream whose both directions end while JS holds it.
 */
import { pipeline } from 'node:stream/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { QuicErrorCode, connect, listen, type QuicConnection, type QuicListener, type QuicStream } from '../../src/index.js'
import { testCertificate, until } from '../helpers.js'

const CREDIT = 4
const ROUNDS = CREDIT + 2

/** The server shapes: handlers as Node code writes them. */
const servers: Record<string, (s: QuicStream, errors: unknown[]) => void> = {
  'data/end echo with an error logger': (s, errors) => {
    s.on('error', error => errors.push(error))
    s.on('data', chunk => s.write(chunk))
    s.on('end', () => s.end())
  },
  'pipeline(s, s)': (s, errors) => { pipeline(s, s).catch(error => errors.push(error)) },
  'for await, then reply': (s, errors) => {
    void (async () => {
      const chunks: Buffer[] = []
      try {
        for await (const chunk of s) chunks.push(chunk as Buffer)
        s.end(Buffer.concat(chunks))
      } catch (error) {
        errors.push(error)
      }
    })()
  },
  'reply first, then read': (s, errors) => {
    s.on('error', error => errors.push(error))
    s.end('the reply, before the request was read')
    s.on('data', () => {})
  },
  'read and ignore errors': s => {
    s.on('error', () => {})
    s.on('data', () => {})
    s.on('end', () => s.end('ok'))
  }
}

/** The ways a client gives up on its request, with 'data' and 'error' handlers as Node code has. */
const cancellations: Record<string, (s: QuicStream) => void> = {
  'resets its body': s => { s.write('part of a body'); s.reset(7) },
  // stopSending() ends only the read side: a client that keeps its own write side open keeps the
  // stream (QUIC tells the peer nothing once its answer was acknowledged); here it sent its request.
  'stops reading': s => { s.end('a whole body'); s.stopSending(8) },
  'destroys the stream': s => { s.write('part of a body'); s.destroy() },
  'resets after end()': s => { s.end('a whole body'); s.reset(9) }
}

let listener: QuicListener
const accepted: QuicStream[] = []
const serverConnections: QuicConnection[] = []
let shape = ''
const serverErrors: unknown[] = []

beforeAll(async () => {
  const { cert, key } = await testCertificate()
  listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'lifetime', cert, key, maxBidirectionalStreams: CREDIT })
  void (async () => {
    for await (const conn of listener) {
      serverConnections.push(conn)
      void (async () => {
        for await (const s of conn) {
          accepted.push(s)
          servers[shape](s, serverErrors)
        }
      })()
    }
  })()
})

afterAll(async () => { await listener.close() })

const closed = async (s: QuicStream): Promise<void> => { if (!s.destroyed || !s.closed) await new Promise(resolve => s.once('close', resolve)) }

// Fails with `what` instead of hanging the test when a stream or its credit leaks.
async function within<T> (promise: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: nothing after ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

describe('streams that cannot leak: Node-style servers against cancelling clients', () => {
  for (const server of Object.keys(servers)) {
    for (const [cancel, giveUp] of Object.entries(cancellations)) {
      it(`${server} / a client that ${cancel}`, async () => {
        shape = server
        const { cert } = await testCertificate()
        const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'lifetime', ca: cert })
        const serverConnection = await until(() => serverConnections.length > 0, 'the server connection').then(() => serverConnections.pop() as QuicConnection)
        accepted.length = 0
        const streams: QuicStream[] = []
        for (let round = 0; round < ROUNDS; round++) {
          // A stream that leaks keeps its credit: the fifth open would wait forever.
          const s = await within(client.openStream(), `open ${round + 1} of ${ROUNDS} (credit ${CREDIT})`)
          streams.push(s)
          s.on('error', () => {})
          s.on('data', () => {})
          giveUp(s)
          await within(closed(s), `the client's stream ${round + 1} to close`)
        }
        await until(() => accepted.length === ROUNDS, `the server to accept ${ROUNDS} streams`).catch(() => {})
        for (const [i, s] of accepted.entries()) await within(closed(s), `the server's stream ${i + 1} to close (read ${s.readState}, write ${s.writeState})`)
        await until(() => client.stats().openStreams === 0 && serverConnection.stats().openStreams === 0, 'no native stream left')
        // The connection is still whole: a plain exchange works.
        shape = 'data/end echo with an error logger'
        const s = await within(client.openStream(), 'a last stream')
        const reply: Buffer[] = []
        const done = (async () => { for await (const chunk of s) reply.push(chunk as Buffer) })()
        s.end('still fine')
        await within(done, 'the last echo')
        expect(Buffer.concat(reply).toString()).toBe('still fine')
        expect(streams.every(stream => stream.destroyed)).toBe(true)
        await client.close()
      })
    }
  }
})

describe('the request path gives up cleanly', () => {
  it('cancelled and timed-out requests free their credit, and the handler hears of it (info.signal)', async () => {
    const { cert, key } = await testCertificate()
    const server = await listen({ host: '127.0.0.1', port: 0, alpn: 'requests', cert, key })
    let aborted = 0
    let release = (): void => {}
    server.serveRequests(async (body, info) => {
      if (body.toString() === 'quick') return 'answer'
      // A slow handler that stops when the client gives up.
      await new Promise<void>(resolve => {
        info.signal.addEventListener('abort', () => { aborted++; resolve() }, { once: true })
        release = resolve
      })
      return 'too late'
    }, { concurrency: CREDIT })
    const client = await connect({ host: '127.0.0.1', port: server.address().port, alpn: 'requests', ca: cert })
    for (let round = 0; round < ROUNDS; round++) {
      const controller = new AbortController()
      const request = client.request('slow', round % 2 === 0 ? { signal: controller.signal } : { timeout: 20 })
      setTimeout(() => { controller.abort() }, 10)
      await expect(within(request, `request ${round + 1}`)).rejects.toMatchObject({ code: round % 2 === 0 ? QuicErrorCode.ABORTED : QuicErrorCode.TIMEOUT })
    }
    await until(() => aborted === ROUNDS, `every handler to hear of its cancel (${aborted})`)
    expect(Buffer.from(await within(client.request('quick'), 'a request after the cancels')).toString()).toBe('answer')
    await until(() => client.stats().openStreams === 0, 'no native stream left')
    release()
    await client.close()
    await server.close()
  })
})

describe('a stream whose directions are both done', () => {
  it('closes natively at once, whatever JS still holds (nobody reads the end)', async () => {
    const { cert } = await testCertificate()
    shape = 'reply first, then read'
    const client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'lifetime', ca: cert })
    const held: QuicStream[] = []
    for (let round = 0; round < ROUNDS; round++) {
      // The server answers and reads our FIN; we send our FIN but never read its answer.
      const s = await within(client.openStream(), `open ${round + 1} of ${ROUNDS} (credit ${CREDIT})`)
      s.end('request')
      held.push(s)
    }
    await until(() => client.stats().openStreams === 0, 'the native streams to close')
    // JS still holds them, unread: the answer is there for whoever reads it.
    expect(held.every(s => !s.destroyed && s.readState === 'open')).toBe(true)
    const answer: Buffer[] = []
    for await (const chunk of held[0]) answer.push(chunk as Buffer)
    expect(Buffer.concat(answer).toString()).toBe('the reply, before the request was read')
    await client.close()
  })
})
