/**
 * The random-abort soak over raw QUIC: long-lived connections with little stream credit, many
 * operations in flight, each a client written the way Node code is written (handlers for 'data',
 * 'end' and 'error', pipeline, for await) against a server picked the same way, and either side
 * cancelling at a random point (reset, STOP_SENDING, destroy, aborted opens, accepts and connects,
 * abrupt connection closes), plus the request path. A stream that only the happy path closes holds
 * one unit of credit for good, so leaks show up as operations that never finish.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { connect, createSelfSignedCertificate, listen, type QuicConnection, type QuicStream } from '../../src/index.js'
import { Random, driveOperations, settleOpen, sleep, type SoakTotals } from './random.js'

export interface SoakOptions {
  seed: number
  /** Operations to run in all. */
  operations: number
  /** Operations in flight at once. */
  inFlight: number
  /** Long-lived connections for the stream plans. */
  connections: number
  /** Bidirectional (and unidirectional) stream credit each connection grants. */
  credit: number
  /** An operation not finished after this many ms counts as hung. */
  watchdog: number
}

export interface SoakReport extends SoakTotals {
  /** Streams that never emitted 'close', by side. */
  leaked: { client: string[], server: string[] }
  /** After the soak, on each long-lived connection: a checked echo, and native open streams on both sides. */
  connections: Array<{ echo: boolean, clientOpenStreams: number, serverOpenStreams: number }>
  request: boolean
}

type Side = 'client' | 'server'

/** Every stream of the soak, until it emits 'close'. */
class Streams {
  readonly open = new Map<QuicStream, string>()
  readonly counts = { client: 0, server: 0 }

  track (stream: QuicStream, side: Side, plan: string): QuicStream {
    this.counts[side]++
    this.open.set(stream, `${side} ${plan}`)
    stream.once('close', () => { this.open.delete(stream) })
    return stream
  }

  /** Resolves once `stream` has emitted 'close'. */
  async closed (stream: QuicStream): Promise<void> {
    if (!this.open.has(stream)) return
    await new Promise<void>(resolve => stream.once('close', () => { resolve() }))
  }

  describe (side: Side): string[] {
    const out: string[] = []
    for (const [stream, what] of this.open) {
      if (!what.startsWith(side)) continue
      const readable = `read ${stream.readState}${stream.readableEnded ? ' (end emitted)' : ''} flowing ${String(stream.readableFlowing)} buffered ${stream.readableLength}`
      const writable = `write ${stream.writeState}${stream.writableFinished ? ' (finished)' : stream.writableEnded ? ' (ended)' : ''} buffered ${stream.writableLength}`
      out.push(`${what}: ${readable}, ${writable}, destroyed ${String(stream.destroyed)}`)
    }
    return out
  }
}

class Errors {
  readonly byCode: Record<string, number> = {}
  readonly log = (error: unknown): void => {
    const code = (error as { code?: string } | null)?.code ?? (error as Error | null)?.name ?? String(error)
    this.byCode[code] = (this.byCode[code] ?? 0) + 1
  }
}

const CODES = [1, 7, 0x10, 0x1002, 12345]

interface Context {
  r: Random
  streams: Streams
  errors: Errors
  conn: QuicConnection
  /** For the request path. */
  requests: QuicConnection
  /** Where short-lived connections go. */
  chaos: { port: number, cert: string }
}

// Every client stream gets an 'error' logger, as Node code has: an error can come after a for-await
// reader is done (the write side stopped once the whole answer was read).
async function open (ctx: Context, plan: string, options: Parameters<QuicConnection['openStream']>[0] = {}): Promise<QuicStream> {
  const s = ctx.streams.track(await ctx.conn.openStream(options), 'client', plan)
  s.on('error', ctx.errors.log)
  return s
}

// Writes `body` the Node way: honour write()'s false with 'drain'; stops once the stream is done.
async function writeAll (stream: QuicStream, body: Buffer, chunk = 16 * 1024): Promise<void> {
  for (let i = 0; i < body.length && !stream.destroyed && stream.writable; i += chunk) {
    if (!stream.write(body.subarray(i, i + chunk))) {
      await new Promise<void>(resolve => {
        const done = (): void => { stream.off('drain', done); stream.off('close', done); resolve() }
        stream.on('drain', done)
        stream.on('close', done)
      })
    }
  }
}

async function readAll (stream: QuicStream, errors: Errors): Promise<number> {
  let n = 0
  try {
    for await (const chunk of stream) n += (chunk as Buffer).length
  } catch (error) {
    errors.log(error)
  }
  return n
}

/** The client plans on a long-lived connection. Each ends when its stream has closed. */
const clientPlans: Record<string, (ctx: Context) => Promise<void>> = {
  'request-response': async ctx => {
    const s = await open(ctx, 'request-response')
    const reading = readAll(s, ctx.errors)
    await writeAll(s, ctx.r.bytes(1 + ctx.r.int(20_000), ctx.r.int(256)))
    if (!s.destroyed) s.end()
    await reading
    await ctx.streams.closed(s)
  },
  'reset-body': async ctx => {
    const s = await open(ctx, 'reset-body')
    s.on('data', () => {})
    s.write(ctx.r.bytes(1 + ctx.r.int(8_000), 1))
    await sleep(ctx.r.int(3))
    s.reset(ctx.r.pick(CODES))
    await ctx.streams.closed(s)
  },
  'stop-reading': async ctx => {
    const s = await open(ctx, 'stop-reading')
    s.on('data', () => {})
    s.end(ctx.r.bytes(1 + ctx.r.int(8_000), 2))
    await sleep(ctx.r.int(3))
    s.stopSending(ctx.r.pick(CODES))
    await ctx.streams.closed(s)
  },
  destroy: async ctx => {
    const s = await open(ctx, 'destroy')
    s.on('data', () => {})
    s.write(ctx.r.bytes(1 + ctx.r.int(8_000), 3))
    await sleep(ctx.r.int(3))
    s.destroy()
    await ctx.streams.closed(s)
  },
  'reset-after-end': async ctx => {
    const s = await open(ctx, 'reset-after-end')
    s.on('data', () => {})
    s.end(ctx.r.bytes(1 + ctx.r.int(8_000), 4))
    await sleep(ctx.r.int(3))
    s.reset(ctx.r.pick(CODES))
    await ctx.streams.closed(s)
  },
  'destroy-with-error': async ctx => {
    const s = await open(ctx, 'destroy-with-error')
    s.on('data', () => {})
    s.write(ctx.r.bytes(1 + ctx.r.int(4_000), 5))
    await sleep(ctx.r.int(3))
    s.destroy(new Error('the client gave up'))
    await ctx.streams.closed(s)
  },
  pipeline: async ctx => {
    const s = await open(ctx, 'pipeline')
    const chunks = Array.from({ length: 1 + ctx.r.int(8) }, (_, i) => ctx.r.bytes(1 + ctx.r.int(4_000), i))
    await Promise.all([pipeline(Readable.from(chunks), s).catch(ctx.errors.log), readAll(s, ctx.errors)])
    await ctx.streams.closed(s)
  },
  'aborted-open': async ctx => {
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, ctx.r.int(2))
    let s: QuicStream
    try {
      s = await open(ctx, 'aborted-open', { signal: controller.signal })
    } catch (error) {
      ctx.errors.log(error)
      return
    }
    const reading = readAll(s, ctx.errors)
    s.end(ctx.r.bytes(1 + ctx.r.int(1_000), 6))
    await reading
    await ctx.streams.closed(s)
  },
  'read-some-then-break': async ctx => {
    const s = await open(ctx, 'read-some-then-break')
    s.end(ctx.r.bytes(1 + ctx.r.int(30_000), 7))
    try {
      for await (const chunk of s) { void chunk; break }  // the iterator's return destroys the stream
    } catch (error) {
      ctx.errors.log(error)
    }
    await ctx.streams.closed(s)
  },
  'large-with-backpressure': async ctx => {
    const s = await open(ctx, 'large-with-backpressure')
    const reading = readAll(s, ctx.errors)
    const cancel = ctx.r.chance(0.3)
    if (cancel) setTimeout(() => { if (ctx.r.chance(0.5)) s.reset(ctx.r.pick(CODES)); else s.destroy() }, ctx.r.int(10))
    await writeAll(s, ctx.r.bytes(128 * 1024 + ctx.r.int(256 * 1024), 8))
    if (!s.destroyed && s.writable) s.end()
    await reading
    await ctx.streams.closed(s)
  },
  unidirectional: async ctx => {
    const s = await open(ctx, 'unidirectional', { unidirectional: true })
    s.write(ctx.r.bytes(1 + ctx.r.int(8_000), 9))
    if (ctx.r.chance(0.5)) s.end()
    else s.reset(ctx.r.pick(CODES))
    await ctx.streams.closed(s)
  },
  empty: async ctx => {
    const s = await open(ctx, 'empty')
    const reading = readAll(s, ctx.errors)
    s.end()
    await reading
    await ctx.streams.closed(s)
  },
  'keep-directions': async ctx => {
    // An app that opts out of Node's contract ends the stream itself, here in its handlers.
    const s = await open(ctx, 'keep-directions', { autoDestroy: false })
    s.on('error', () => { if (s.readableEnded || s.readState !== 'open') s.destroy() })
    s.on('data', () => {})
    s.on('end', () => { s.destroy() })
    s.write(ctx.r.bytes(1 + ctx.r.int(4_000), 10))
    await sleep(ctx.r.int(2))
    s.reset(ctx.r.pick(CODES))
    await ctx.streams.closed(s)
  },
  request: async ctx => {
    const kind = ctx.r.int(4)
    const controller = new AbortController()
    if (kind === 1) setTimeout(() => { controller.abort() }, ctx.r.int(3))
    try {
      await ctx.requests.request(ctx.r.bytes(1 + ctx.r.int(4_000), 11), {
        signal: kind === 1 ? controller.signal : undefined,
        timeout: kind === 2 ? 1 + ctx.r.int(3) : undefined,
        maxResponseBytes: kind === 3 ? 1 + ctx.r.int(64) : undefined
      })
    } catch (error) {
      ctx.errors.log(error)
    }
  },
  'aborted-connect': async ctx => {
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, ctx.r.int(3))
    let conn: QuicConnection
    try {
      conn = await connect({ host: '127.0.0.1', port: ctx.chaos.port, alpn: 'soak', ca: ctx.chaos.cert, signal: controller.signal })
    } catch (error) {
      ctx.errors.log(error)
      return
    }
    await conn.close()
  },
  'abrupt-close': async ctx => {
    const conn = await connect({ host: '127.0.0.1', port: ctx.chaos.port, alpn: 'soak', ca: ctx.chaos.cert })
    const streams = await Promise.all(Array.from({ length: 1 + ctx.r.int(3) }, async () => {
      try {
        const s = ctx.streams.track(await conn.openStream(), 'client', 'abrupt-close')
        s.on('error', ctx.errors.log)
        s.on('data', () => {})
        s.write(ctx.r.bytes(1 + ctx.r.int(4_000), 12))
        if (ctx.r.chance(0.5)) s.end()
        return s
      } catch (error) {
        ctx.errors.log(error)
        return undefined
      }
    }))
    await sleep(ctx.r.int(5))
    const how = ctx.r.int(3)
    if (how === 0) await conn.close({ code: ctx.r.pick(CODES) })
    else if (how === 1) conn.destroy()
    else await Promise.race([conn.closed, sleep(10)]).then(async () => { await conn.close() })  // the chaos server may close it first
    for (const s of streams) if (s !== undefined) await ctx.streams.closed(s)
  }
}

// How often each client plan runs, in parts of the whole.
const WEIGHTS: Record<string, number> = {
  'request-response': 10,
  'reset-body': 8,
  'stop-reading': 6,
  destroy: 6,
  'reset-after-end': 6,
  'destroy-with-error': 3,
  pipeline: 6,
  'aborted-open': 4,
  'read-some-then-break': 4,
  'large-with-backpressure': 2,
  unidirectional: 4,
  empty: 3,
  'keep-directions': 3,
  request: 10,
  'aborted-connect': 1,
  'abrupt-close': 1
}

/** The server plans, each a handler written the way Node code is written. */
const serverPlans: Record<string, (s: QuicStream, r: Random, errors: Errors) => void> = {
  'echo-data-end': (s, _r, errors) => {
    s.on('error', errors.log)
    s.on('data', chunk => s.write(chunk))
    s.on('end', () => s.end())
  },
  pipeline: (s, _r, errors) => { pipeline(s, s).catch(errors.log) },
  'for-await-then-reply': (s, _r, errors) => {
    void (async () => {
      let n = 0
      try {
        for await (const chunk of s) n += (chunk as Buffer).length
        s.end(`got ${n}`)
      } catch (error) {
        errors.log(error)
      }
    })()
  },
  'reply-first': (s, r, errors) => {
    s.on('error', errors.log)
    s.end(r.bytes(1 + r.int(2_000), 20))
    s.on('data', () => {})
  },
  'ignore-errors': s => {
    s.on('error', () => {})
    s.on('data', () => {})
    s.on('end', () => s.end('ok'))
  },
  'reset-reply': (s, r, errors) => {
    s.on('error', errors.log)
    s.on('data', () => {})
    s.write(r.bytes(1 + r.int(4_000), 21))
    const code = r.pick(CODES)
    setTimeout(() => { s.reset(code) }, r.int(3))
  },
  'early-response': (s, r, errors) => {
    s.on('error', errors.log)
    const code = r.pick(CODES)
    s.once('data', () => { s.stopSending(code); s.end('early') })
    s.on('end', () => { if (!s.writableEnded) s.end('early') })
  },
  'destroy-soon': (s, r, errors) => {
    s.on('error', errors.log)
    s.resume()
    setTimeout(() => { s.destroy() }, r.int(3))
  },
  'destroy-with-error': (s, r, errors) => {
    s.on('error', errors.log)
    s.resume()
    setTimeout(() => { s.destroy(new Error('the server gave up')) }, r.int(3))
  },
  'slow-reader': (s, r, errors) => {
    s.on('error', errors.log)
    s.pause()
    setTimeout(() => {
      s.on('data', chunk => s.write(chunk))
      s.on('end', () => s.end())
      s.resume()
    }, r.int(5))
  },
  'for-await-break': (s, r, errors) => {
    const after = r.int(3)
    void (async () => {
      let seen = 0
      try {
        for await (const chunk of s) { void chunk; if (seen++ >= after) break }
        if (!s.destroyed) s.end('done')
      } catch (error) {
        errors.log(error)
      }
    })()
  },
  'large-reply-at-end': (s, r, errors) => {
    s.on('error', errors.log)
    s.on('data', () => {})
    s.on('end', () => { void writeAll(s, r.bytes(64 * 1024 + r.int(192 * 1024), 22)).then(() => { if (!s.destroyed && s.writable) s.end() }) })
  }
}

const uniServer = (s: QuicStream, _r: Random, errors: Errors): void => {
  s.on('error', errors.log)
  s.resume()
}

/** Runs the soak and reports what happened; throws only on a setup failure. */
export async function soak (options: SoakOptions): Promise<SoakReport> {
  const { cert, key } = await createSelfSignedCertificate()
  const streams = new Streams()
  const errors = new Errors()
  const serverErrors = new Errors()
  const settings = { maxBidirectionalStreams: options.credit, maxUnidirectionalStreams: options.credit }
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'soak', cert, key, ...settings })
  const requestListener = await listen({ host: '127.0.0.1', port: 0, alpn: 'soak', cert, key, ...settings })
  // Clients destroy() some short-lived connections silently: their server side ends at its idle timeout.
  const chaosListener = await listen({ host: '127.0.0.1', port: 0, alpn: 'soak', cert, key, ...settings, idleTimeout: 1_000 })
  const serverRandom = new Random(options.seed ^ 0x5eed)
  const serverConnections: QuicConnection[] = []
  // After the soak every new stream is echoed, to check each connection still works.
  let checking = false

  // The long-lived server: every stream gets a plan.
  const serving = (async () => {
    for await (const conn of listener) {
      serverConnections.push(conn)
      void (async () => {
        for await (const s of conn) {
          const name = s.unidirectional ? 'unidirectional' : checking ? 'echo-data-end' : serverRandom.pick(Object.keys(serverPlans))
          streams.track(s, 'server', name)
          ;(s.unidirectional ? uniServer : serverPlans[name])(s, serverRandom, serverErrors)
        }
      })()
    }
  })()
  // The request path: handlers that answer, fail, take a while, or answer too much.
  requestListener.serveRequests(async body => {
    if (checking) return body
    const kind = serverRandom.int(5)
    if (kind === 1) await sleep(serverRandom.int(4))
    if (kind === 2) throw Object.assign(new Error('handler failed'), { errorCode: 0x77 })
    if (kind === 3) return Buffer.alloc(2_000)
    return body
  }, { concurrency: options.credit })
  const requestServing = (async () => { for await (const conn of requestListener) void conn })()
  // Short-lived connections: accepts with signals aborted at random, and abrupt closes.
  const chaosServing = (async () => {
    for await (const conn of chaosListener) {
      if (serverRandom.chance(0.3)) {
        const code = serverRandom.pick(CODES)
        setTimeout(() => { void conn.close({ code }).catch(() => {}) }, serverRandom.int(6))
      }
      void (async () => {
        while (true) {
          const controller = new AbortController()
          setTimeout(() => { controller.abort() }, 1 + serverRandom.int(4))
          let s: QuicStream
          try {
            s = await conn.acceptStream({ signal: controller.signal })
          } catch (error) {
            if ((error as { code?: string }).code === 'ERR_QUIC_ABORTED') continue
            return
          }
          streams.track(s, 'server', 'chaos-echo')
          serverPlans['echo-data-end'](s, serverRandom, serverErrors)
        }
      })()
    }
  })()

  const connections: QuicConnection[] = []
  for (let i = 0; i < options.connections; i++) {
    connections.push(await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'soak', ca: cert }))
  }
  const requests = await connect({ host: '127.0.0.1', port: requestListener.address().port, alpn: 'soak', ca: cert })

  const clientRandom = new Random(options.seed)
  const bag: string[] = []
  for (const [name, weight] of Object.entries(WEIGHTS)) for (let i = 0; i < weight; i++) bag.push(name)
  const { plans, hung, seconds } = await driveOperations(options, () => clientRandom.pick(bag), async (name, index) => {
    const ctx: Context = { r: clientRandom, streams, errors, conn: connections[index % connections.length], requests, chaos: { port: chaosListener.address().port, cert } }
    await clientPlans[name](ctx)
  }, error => { errors.log(error) })

  // Streams still open: give MsQuic a moment for what is in flight, then list them.
  await settleOpen(streams.open)
  const leaked = { client: streams.describe('client'), server: streams.describe('server') }

  // Every long-lived connection is still usable, and no native stream is left on either side.
  const after: SoakReport['connections'] = []
  checking = true
  for (const [i, conn] of connections.entries()) {
    let echo = false
    try {
      const s = await conn.openStream()
      const body = Buffer.from(`still alive ${i}`)
      const reply: Buffer[] = []
      const done = (async () => { for await (const chunk of s) reply.push(chunk as Buffer) })()
      s.end(body)
      await done
      echo = Buffer.concat(reply).equals(body)
    } catch (error) {
      errors.log(error)
    }
    const server = serverConnections[i]
    const settled = Date.now() + 5_000
    while ((conn.stats().openStreams > 0 || (server?.stats().openStreams ?? 0) > 0) && Date.now() < settled) await sleep(10)
    after.push({ echo, clientOpenStreams: conn.stats().openStreams, serverOpenStreams: server?.stats().openStreams ?? -1 })
  }
  let request = false
  try {
    request = String(await requests.request('final', { timeout: 5_000 })) === 'final'
  } catch (error) {
    errors.log(error)
  }

  for (const [code, n] of Object.entries(serverErrors.byCode)) errors.byCode[`server ${code}`] = n
  await Promise.all([...connections, requests].map(async c => { await c.close().catch(errors.log) }))
  await Promise.all([listener.close(), requestListener.close(), chaosListener.close()])
  await Promise.all([serving, requestServing, chaosServing])
  return { operations: options.operations, seconds, hung, leaked, streams: { ...streams.counts }, errors: errors.byCode, plans, connections: after, request }
}
