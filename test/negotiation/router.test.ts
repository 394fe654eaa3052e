import { Registry } from 'prom-client'
import { describe, it, expect } from 'vitest'
import {
  NegotiationMetrics, NegotiationResetCode, ProtocolRouter, QuicErrorCode, connect, dialProtocol, listen,
  type QuicConnection, type QuicListener, type ProtocolRouterOptions
} from '../../src/index.js'
import { encodeMessage, MULTISTREAM_PROTOCOL_ID } from '../../src/negotiation/index.js'
import { readAll, testCertificate, until } from '../helpers.js'

const PROTOCOL = '/echo/1.0.0'

/** A server whose handler answers each request after `delay` ms. */
async function echoServer (options: ProtocolRouterOptions, streams: number, delay = 50): Promise<{ listener: QuicListener, router: ProtocolRouter }> {
  const { cert, key } = await testCertificate()
  const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, maxBidirectionalStreams: streams })
  const router = new ProtocolRouter(options)
  router.handle(PROTOCOL, async stream => {
    const request = await readAll(stream)
    await new Promise(resolve => setTimeout(resolve, delay))
    stream.end(request)
  })
  void router.serve(listener)
  return { listener, router }
}

async function client (listener: QuicListener): Promise<QuicConnection> {
  const { cert } = await testCertificate()
  return await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'test', ca: cert })
}

interface Outcome { ok: boolean, code?: string, phase?: string, negotiated: number }

/** Dials and uses one echo stream; `negotiated` is the time to a negotiated stream (ms). */
async function echo (connection: QuicConnection, options: Parameters<typeof dialProtocol>[2] = {}): Promise<Outcome> {
  const started = performance.now()
  try {
    const { stream } = await dialProtocol(connection, [PROTOCOL], { timeout: 10_000, maxNegotiationsPerConnection: Infinity, ...options })
    const negotiated = performance.now() - started
    stream.end('ping')
    const answer = (await readAll(stream)).toString()
    return { ok: answer === 'ping', negotiated }
  } catch (error) {
    const e = error as { code?: string, phase?: string }
    return { ok: false, code: e.code, phase: e.phase, negotiated: performance.now() - started }
  }
}

function distribution (outcomes: Outcome[]): string {
  const times = outcomes.map(o => o.negotiated).sort((a, b) => a - b)
  const at = (q: number): string => times[Math.min(times.length - 1, Math.floor(times.length * q))].toFixed(1)
  return `time to negotiated p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${times[times.length - 1].toFixed(1)} ms`
}

describe('ProtocolRouter under load', () => {
  it('should negotiate 100 streams opened at once on one connection: no timeout, within the limit, clients waiting for credit', async () => {
    const { listener, router } = await echoServer({ maxNegotiationsPerConnection: 8 }, 8)
    const connection = await client(listener)
    const metrics = new NegotiationMetrics()
    let mostBlocked = 0
    connection.on('streamsBlocked', count => { mostBlocked = Math.max(mostBlocked, count) })
    const outcomes = await Promise.all(Array.from({ length: 100 }, async () => await echo(connection, { metrics })))
    const server = router.metrics.snapshot()
    console.log(`overload, limits on (8 per connection): 100 streams, 1 connection: ${distribution(outcomes)}; server peak ${server.peakInFlight} negotiations; ${mostBlocked} streams waited for credit at most`)
    expect(outcomes.filter(o => !o.ok)).toEqual([])
    expect(server.completed).toBe(100)
    expect(server.peakInFlight).toBeLessThanOrEqual(8)
    expect(server.rejectedBusy).toBe(0)
    // The clients waited inside QUIC flow control, not in the server's queue.
    expect(mostBlocked).toBeGreaterThan(0)
    expect(metrics.snapshot().phases.credit.max).toBeGreaterThan(0)
    await connection.close()
    await listener.close()
  })

  it('should negotiate 1,000 streams over 10 connections within the overall limit', async () => {
    const { listener, router } = await echoServer({ maxNegotiationsPerConnection: 8, maxNegotiations: 32 }, 8)
    const connections = await Promise.all(Array.from({ length: 10 }, async () => await client(listener)))
    const outcomes = (await Promise.all(connections.map(async connection =>
      await Promise.all(Array.from({ length: 100 }, async () => await echo(connection)))))).flat()
    const server = router.metrics.snapshot()
    console.log(`overload, limits on (8 per connection, 32 overall): 1,000 streams, 10 connections: ${distribution(outcomes)}; server peak ${server.peakInFlight}, queued at most ${server.phases.queued.count - server.phases.queued.buckets[0]} streams longer than 0.5 ms`)
    expect(outcomes.filter(o => !o.ok)).toEqual([])
    expect(server.completed).toBe(1000)
    expect(server.peakInFlight).toBeLessThanOrEqual(32)
    expect(server.rejectedBusy).toBe(0)
    await Promise.all(connections.map(async c => await c.close()))
    await listener.close()
  })

  it('should report what happens to the same load with the server\'s limits off', async () => {
    const { listener, router } = await echoServer({ maxNegotiationsPerConnection: Infinity, maxNegotiations: Infinity }, 100)
    const connections = await Promise.all(Array.from({ length: 10 }, async () => await client(listener)))
    const outcomes = (await Promise.all(connections.map(async connection =>
      await Promise.all(Array.from({ length: 100 }, async () => await echo(connection)))))).flat()
    const server = router.metrics.snapshot()
    const failed = outcomes.filter(o => !o.ok)
    console.log(`overload, limits off: 1,000 streams, 10 connections: ${distribution(outcomes)}; server peak ${server.peakInFlight} negotiations; ${failed.length} failed`)
    // Without limits nothing holds the server back: far more than 32 negotiate at once.
    expect(server.peakInFlight).toBeGreaterThan(32)
    expect(outcomes).toHaveLength(1000)
    await Promise.all(connections.map(async c => await c.close()))
    await listener.close()
  })

  it('should refuse streams past its hard limit as busy at once, never by a timeout', async () => {
    // The listener's default credit (100 streams) lets the client past the router's 2 + 2.
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    const router = new ProtocolRouter({ maxNegotiationsPerConnection: 2, maxQueuedPerConnection: 2 })
    router.handle(PROTOCOL, async stream => { await readAll(stream); stream.end() })
    const warnings: string[] = []
    const onWarning = (warning: Error): void => { warnings.push(warning.message) }
    process.on('warning', onWarning)
    void router.serve(listener)
    const connection = await client(listener)
    // Four dialers that send the header and then nothing hold both slots and the queue.
    const holders = await Promise.all(Array.from({ length: 4 }, async () => {
      const stream = await connection.openStream()
      stream.on('error', () => {})
      stream.write(encodeMessage(MULTISTREAM_PROTOCOL_ID))
      return stream
    }))
    await until(() => router.metrics.snapshot().queued === 2, 'the queue to fill')
    const started = performance.now()
    const refused = await Promise.all(Array.from({ length: 5 }, async () => await echo(connection, { timeout: 10_000 })))
    const took = performance.now() - started
    console.log(`hard limit: 5 dials refused as busy in ${took.toFixed(1)} ms`)
    expect(refused.map(o => o.code)).toEqual(Array(5).fill(QuicErrorCode.NEGOTIATION_BUSY))
    expect(router.metrics.snapshot().rejectedBusy).toBe(5)
    expect(warnings.some(w => w.includes('maxBidirectionalStreams'))).toBe(true)
    process.off('warning', onWarning)
    for (const holder of holders) holder.destroy()
    await connection.close()
    await listener.close()
  })
})

describe('dialProtocol', () => {
  it('should name the phase a timeout expired in: waiting for credit, for a slot, or for the peer', async () => {
    const { cert, key } = await testCertificate()
    // No credit at all: the dial waits for it until the timeout.
    const closed = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, maxBidirectionalStreams: 0 })
    const c1 = await client(closed)
    const credit = await echo(c1, { timeout: 300 })
    expect(credit).toMatchObject({ code: QuicErrorCode.NEGOTIATION_TIMEOUT, phase: 'credit' })
    await c1.close()
    await closed.close()

    // A server that takes streams and never answers: the first dial waits for the peer, the second for the slot.
    const silent = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key })
    void silent.accept().then(async server => {
      for await (const stream of server) stream.on('error', () => {}).resume()
    })
    const c2 = await client(silent)
    const [peer, slot] = await Promise.all([echo(c2, { timeout: 400, maxNegotiationsPerConnection: 1 }), echo(c2, { timeout: 200, maxNegotiationsPerConnection: 1 })])
    expect(peer).toMatchObject({ code: QuicErrorCode.NEGOTIATION_TIMEOUT, phase: 'peer' })
    expect(slot).toMatchObject({ code: QuicErrorCode.NEGOTIATION_TIMEOUT, phase: 'slot' })
    await c2.close()
    await silent.close()
  })

  it('should fail with ERR_NEGOTIATION_FAILED when the router speaks none of the protocols, and stop on abort', async () => {
    const { listener, router } = await echoServer({}, 8)
    const connection = await client(listener)
    await expect(dialProtocol(connection, ['/other/1.0.0'])).rejects.toMatchObject({ code: QuicErrorCode.NEGOTIATION_FAILED })
    router.unhandle(PROTOCOL)
    // Nothing registered at all: the stream is still answered, with a reset.
    await expect(dialProtocol(connection, [PROTOCOL])).rejects.toMatchObject({ code: QuicErrorCode.NEGOTIATION_FAILED })
    router.handle(PROTOCOL, async stream => { stream.end(await readAll(stream)) })
    await expect(dialProtocol(connection, [PROTOCOL], { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: QuicErrorCode.ABORTED, phase: 'slot' })
    await expect(dialProtocol(connection, [])).rejects.toThrow()
    await expect(dialProtocol(connection, [PROTOCOL], { timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    // The connection still works.
    expect((await echo(connection)).ok).toBe(true)
    await connection.close()
    await listener.close()
  })

  it('should take its slot before opening a stream: at most the limit is open at once', async () => {
    const { listener, router } = await echoServer({ maxNegotiationsPerConnection: 64 }, 64)
    const connection = await client(listener)
    const outcomes = await Promise.all(Array.from({ length: 40 }, async () => await echo(connection, { maxNegotiationsPerConnection: 3 })))
    expect(outcomes.every(o => o.ok)).toBe(true)
    expect(router.metrics.snapshot().peakInFlight).toBeLessThanOrEqual(3)
    await connection.close()
    await listener.close()
  })
})

describe('ProtocolRouter details', () => {
  it('should reset a stream as busy when its protocol\'s handler is at maxConcurrent, and report handler errors', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, maxBidirectionalStreams: 8 })
    const router = new ProtocolRouter()
    let release!: () => void
    const held = new Promise<void>(resolve => { release = resolve })
    router.handle('/slow/1.0.0', async stream => { await held; stream.end() }, { maxConcurrent: 1 })
    router.handle('/broken/1.0.0', () => { throw new Error('handler bug') })
    const errors: unknown[] = []
    router.on('handlerError', error => errors.push(error))
    void router.serve(listener)
    const connection = await client(listener)
    const first = await dialProtocol(connection, ['/slow/1.0.0'])
    // The router resets the second stream as soon as it has agreed: the reset may overtake the
    // agreement (the dial then fails as busy) or follow it (the stream then fails with the code).
    const busy = await dialProtocol(connection, ['/slow/1.0.0']).then(
      async ({ stream }) => await new Promise<{ errorCode?: bigint | number }>(resolve => stream.once('error', resolve)),
      (error: { code?: string, errorCode?: bigint | number }) => { expect(error.code).toBe(QuicErrorCode.NEGOTIATION_BUSY); return error })
    expect(BigInt(busy.errorCode ?? -1)).toBe(BigInt(NegotiationResetCode.RESOURCE_LIMIT_EXCEEDED))
    release()
    first.stream.end()
    await readAll(first.stream)
    // A handler that throws: its stream is destroyed (maybe before the agreement reaches us).
    await dialProtocol(connection, ['/broken/1.0.0']).then(({ stream }) => stream.on('error', () => {}), () => {})
    await until(() => errors.length === 1, 'the handler error')
    expect((errors[0] as Error).message).toBe('handler bug')
    expect(router.protocols).toEqual(['/slow/1.0.0', '/broken/1.0.0'])
    await connection.close()
    await listener.close()
  })

  it('should lower its limit when negotiations slow down and raise it again when they are fast (adaptive)', async () => {
    const { cert, key } = await testCertificate()
    const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'test', cert, key, maxBidirectionalStreams: 16 })
    const router = new ProtocolRouter({ maxNegotiationsPerConnection: 16, maxNegotiations: 16, adaptive: { targetLatency: 75, min: 2, window: 8 } })
    router.handle(PROTOCOL, async stream => { await readAll(stream); stream.end() })
    void router.serve(listener)
    const connection = await client(listener)
    expect(router.limit).toBe(16)
    // Slow dialers: the header, then the proposal 150 ms later.
    await Promise.all(Array.from({ length: 16 }, async () => {
      const stream = await connection.openStream()
      stream.write(encodeMessage(MULTISTREAM_PROTOCOL_ID))
      await new Promise(resolve => setTimeout(resolve, 150))
      stream.end(encodeMessage(PROTOCOL))
      await readAll(stream)
    }))
    const lowered = router.limit
    expect(lowered).toBeLessThan(16)
    // Fast dialers that keep the router at its limit earn it back, one step per window.
    for (let round = 0; round < 10 && router.limit <= lowered; round++) await Promise.all(Array.from({ length: 32 }, async () => await echo(connection)))
    expect(router.limit).toBeGreaterThan(lowered)
    console.log(`adaptive: limit 16 -> ${lowered} under 150 ms negotiations -> ${router.limit} after fast ones`)
    await connection.close()
    await listener.close()
  })

  it('should count into a prom-client registry', async () => {
    const registry = new Registry()
    const { listener } = await echoServer({ metrics: { registry } }, 8)
    const connection = await client(listener)
    await Promise.all(Array.from({ length: 5 }, async () => await echo(connection)))
    const text = await registry.metrics()
    expect(text).toContain('node_msquic_negotiation_total{outcome="completed"} 5')
    expect(text).toContain('node_msquic_negotiation_phase_seconds_count{phase="negotiating"} 5')
    expect(() => new ProtocolRouter({ metrics: { registry: {} } })).toThrow(/Registry/)
    await connection.close()
    await listener.close()
  })

  it('should refuse every stream as busy after close(), and stop serving', async () => {
    const { listener, router } = await echoServer({}, 8)
    const connection = await client(listener)
    expect((await echo(connection)).ok).toBe(true)
    router.close()
    router.close()
    const refused = await Promise.all(Array.from({ length: 3 }, async () => await echo(connection)))
    expect(refused.map(o => o.code)).toEqual(Array(3).fill(QuicErrorCode.NEGOTIATION_BUSY))
    expect(() => router.accept(connection)).toThrow(expect.objectContaining({ code: QuicErrorCode.CLOSED }))
    await connection.close()
    await listener.close()
  })

  it('should refuse bad options with clear errors', () => {
    expect(() => new ProtocolRouter({ maxNegotiations: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new ProtocolRouter({ maxNegotiationsPerConnection: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new ProtocolRouter({ adaptive: true, maxNegotiations: Infinity })).toThrow(/adaptive/)
    expect(() => new ProtocolRouter().handle('', () => {})).toThrow()
    expect(() => new ProtocolRouter().handle(PROTOCOL, 'nope' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => new ProtocolRouter().accept({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })
})
