// The limits layer over real QUIC connections (this package's own listen() and connect()).
import { describe, it, expect } from 'vitest'
import { QuicErrorCode, connect, listen, type QuicConnection, type QuicError, type QuicListener } from '../../src/index.js'
import { OperationLimiter, ProviderPool, TransientConnectionManager, type Reservation } from '../../src/limits/index.js'
import { readAll, testCertificate, until } from '../helpers.js'

/** The application error code a refused connection is closed with. */
const REFUSED = 0x10n
/** How long the server's upgrade (identifying the peer) holds a transient slot, ms. */
const UPGRADE_MS = 50

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

describe('limits over QUIC', () => {
  it('should hold 500 simultaneous clients to a transient budget of 32, refuse the rest at once and serve every promoted peer', async () => {
    const { cert, key } = await testCertificate()
    const transient = new TransientConnectionManager<string>({ budget: 32, ttl: 10_000 })
    let overBudget = 0
    transient.on('reserved', () => { if (transient.count > 32) overBudget++ })
    // Admission before the handshake: a reservation per connection, taken when MsQuic reports it
    // (a refused client costs no handshake) and released when the connection closes.
    const reservations = new Map<string, Reservation<string>>()
    const listener = await listen({
      host: '127.0.0.1',
      port: 0,
      alpn: 'admission',
      cert,
      key,
      backlog: 1024,
      maxHandshakes: 1024,
      admit: ({ remoteAddress, closed }) => {
        const key = `${remoteAddress.address}:${remoteAddress.port}`
        const reservation = transient.tryReserve(key, { address: remoteAddress.address, handshaking: true })
        if (reservation === null) return false
        reservations.set(key, reservation)
        void closed.then(() => { reservation.release('closed'); reservations.delete(key) })
        return true
      }
    })
    const served = new Set<string>()
    // The node: every connection is transient from its first packet until its peer has identified itself.
    const admit = async (connection: QuicConnection): Promise<void> => {
      const remote = connection.remoteAddress
      const reservation = remote === undefined ? undefined : reservations.get(`${remote.address}:${remote.port}`)
      if (reservation === undefined) {
        await connection.close({ code: REFUSED, reason: 'no reservation' })
        return
      }
      reservation.setHandshaking(false)
      try {
        const stream = await connection.acceptStream()
        const peer = (await readAll(stream)).toString()
        await sleep(UPGRADE_MS)
        if (reservation.promote(peer).state !== 'promoted') throw new Error('not promoted')
        served.add(peer)
        stream.end(`welcome ${peer}`)
      } catch {
        await connection.close({ code: REFUSED, reason: 'upgrade failed' })
      } finally {
        reservation.release('upgrade failed')
      }
    }
    const serving = (async () => { for await (const connection of listener) void admit(connection) })()

    const clients: QuicConnection[] = []
    const refusedAfter: number[] = []
    const outcome = async (i: number): Promise<{ peer: string, result: 'served' | 'refused' | 'other', detail?: unknown }> => {
      const peer = `peer-${i}`
      const started = performance.now()
      let client: QuicConnection | undefined
      try {
        // Generous timeouts: a refusal must come from the node, never from a timer here.
        client = await connect({ host: '127.0.0.1', port: listener.address().port, alpn: 'admission', ca: cert, idleTimeout: 60_000, handshakeTimeout: 30_000 })
        clients.push(client)
        const stream = await client.openStream()
        stream.end(peer)
        const answer = (await readAll(stream)).toString()
        return { peer, result: answer === `welcome ${peer}` ? 'served' : 'other', detail: answer }
      } catch (error) {
        // Refused by the node itself before the handshake, not by a timeout.
        refusedAfter.push(performance.now() - started)
        const refusedEarly = client === undefined && (error as QuicError).code === QuicErrorCode.CONNECTION_REFUSED
        return { peer, result: refusedEarly ? 'refused' : 'other', detail: client === undefined ? error : await client.closed }
      }
    }
    const results = await Promise.all(Array.from({ length: 500 }, async (_, i) => await outcome(i)))

    const stats = transient.stats()
    const other = results.filter(r => r.result === 'other')
    expect(other).toEqual([])
    const servedPeers = results.filter(r => r.result === 'served').map(r => r.peer)
    const refused = results.filter(r => r.result === 'refused').length
    // Never more than 32 at once, and the budget was really under pressure.
    expect(overBudget).toBe(0)
    expect(stats.peak).toBe(32)
    expect(stats.rejected.budget).toBe(refused)
    expect(refused).toBeGreaterThan(0)
    // Every promoted peer was served, and only those.
    expect(stats.promoted).toBe(servedPeers.length)
    expect(new Set(servedPeers)).toEqual(served)
    expect(servedPeers.length + refused).toBe(500)
    expect(stats).toMatchObject({ count: 0, handshaking: 0, expired: 0, latePromotions: 0 })
    // Figures only (no timed assertion): how fast the refusals came, connect included.
    refusedAfter.sort((a, b) => a - b)
    console.log(`admission: ${servedPeers.length} served, ${refused} refused (median ${refusedAfter[refusedAfter.length >> 1].toFixed(0)} ms, ` +
      `max ${refusedAfter[refusedAfter.length - 1].toFixed(0)} ms after connect() started), peak transient ${stats.peak}, ` +
      `time to promotion max ${stats.timeToPromote.max.toFixed(0)} ms`)

    await Promise.all(clients.map(async c => await c.close()))
    await listener.close()
    await serving
    transient.close()
  }, 120_000)

  it('should keep every class within its limits and meet every guarantee over two real providers', async () => {
    const { cert, key } = await testCertificate()
    const limits = { queue: { guaranteed: 30 }, healthCheck: { guaranteed: 60, ceiling: 60 }, streaming: { guaranteed: 55 } }
    const limiter = new OperationLimiter({ capacity: 145, classes: limits })
    // What the providers see: operations per class at once, over both, and connections per provider.
    const atServers = { queue: 0, healthCheck: 0, streaming: 0, total: 0 }
    const peakAtServers = { ...atServers }
    const connectionsAt = new Map<string, number>()
    const peakConnectionsAt = new Map<string, number>()

    const provider = async (id: string): Promise<QuicListener> => {
      const listener = await listen({ host: '127.0.0.1', port: 0, alpn: 'pool', cert, key })
      void (async () => {
        for await (const connection of listener) {
          connectionsAt.set(id, (connectionsAt.get(id) ?? 0) + 1)
          peakConnectionsAt.set(id, Math.max(peakConnectionsAt.get(id) ?? 0, connectionsAt.get(id) ?? 0))
          void connection.closed.then(() => connectionsAt.set(id, (connectionsAt.get(id) ?? 0) - 1))
          void (async () => {
            for await (const stream of connection) {
              void (async () => {
                const cls = (await readAll(stream)).toString() as keyof typeof limits
                atServers[cls]++
                atServers.total++
                for (const k of [cls, 'total'] as const) peakAtServers[k] = Math.max(peakAtServers[k], atServers[k])
                await sleep(2 + Math.random() * 6)
                atServers[cls]--
                atServers.total--
                stream.end(cls)
              })()
            }
          })().catch(() => {})
        }
      })()
      return listener
    }
    const listeners = [await provider('a'), await provider('b')]
    const closedConnections = new WeakSet<QuicConnection>()
    const pool = new ProviderPool<QuicConnection>({
      limiter,
      providers: [['a', 95], ['b', 50]].map(([id, maxConnections], i) => ({
        id: id as string,
        maxConnections: maxConnections as number,
        connect: async () => {
          const connection = await connect({ host: '127.0.0.1', port: listeners[i].address().port, alpn: 'pool', ca: cert, handshakeTimeout: 30_000 })
          void connection.closed.then(() => closedConnections.add(connection))
          return connection
        },
        close: async connection => { await connection.close() },
        alive: connection => !closedConnections.has(connection)
      }))
    })

    // Whenever an operation starts: a class waiting below its guarantee only ever waits for a full
    // limiter, and the next releases bring it back to its guarantee.
    const violations: string[] = []
    const peakInUse = { queue: 0, healthCheck: 0, streaming: 0 }
    const operation = async (cls: keyof typeof limits): Promise<void> => {
      await pool.run(cls, async connection => {
        const stats = limiter.stats()
        for (const [name, c] of Object.entries(stats.classes)) {
          peakInUse[name as keyof typeof limits] = Math.max(peakInUse[name as keyof typeof limits], c.inUse)
          if (c.waiting > 0 && c.inUse < c.guaranteed && stats.inUse < stats.capacity) violations.push(`${name} waited below its guarantee with room free`)
          // Once a class has its guarantee, it keeps it for as long as it has demand waiting.
          if (c.waiting > 0 && c.peak >= c.guaranteed && c.inUse < c.guaranteed) violations.push(`${name} fell to ${c.inUse}, below its guarantee, with demand waiting`)
        }
        const stream = await connection.openStream()
        stream.end(cls)
        expect((await readAll(stream)).toString()).toBe(cls)
      })
    }
    // HealthCheck and Streaming keep the pool full (closed loops) until Queue's operations are done.
    let completed = 0
    let stop = false
    const loop = async (cls: keyof typeof limits): Promise<void> => {
      while (!stop) {
        await operation(cls)
        completed++
      }
    }
    const others = [...Array.from({ length: 200 }, async () => await loop('healthCheck')), ...Array.from({ length: 150 }, async () => await loop('streaming'))]
    // Queue arrives once the others have filled the pool (30 of its guarantee lent to Streaming).
    await until(() => limiter.inUse === 145 && limiter.waiting > 0, 'a full pool')
    await Promise.all(Array.from({ length: 300 }, async () => { await operation('queue'); completed++ }))
    stop = true
    await Promise.all(others)

    expect(violations).toEqual([])
    expect(peakAtServers.healthCheck).toBeLessThanOrEqual(60)
    expect(peakAtServers.total).toBeLessThanOrEqual(145)
    expect(peakConnectionsAt.get('a')).toBeLessThanOrEqual(95)
    expect(peakConnectionsAt.get('b')).toBeLessThanOrEqual(50)
    // Every guarantee reached under the storm (demand exceeded each).
    expect(peakInUse.queue).toBeGreaterThanOrEqual(30)
    expect(peakInUse.healthCheck).toBe(60)
    expect(peakInUse.streaming).toBeGreaterThanOrEqual(55)
    const stats = limiter.stats()
    expect(stats).toMatchObject({ inUse: 0, waiting: 0 })
    expect(stats.classes.queue.granted + stats.classes.healthCheck.granted + stats.classes.streaming.granted).toBe(completed)
    console.log(`storm: peak at the providers ${JSON.stringify(peakAtServers)}, connections ${JSON.stringify(Object.fromEntries(peakConnectionsAt))}`)

    await pool.close()
    await Promise.all(listeners.map(async l => await l.close()))
  }, 120_000)
})
