import { describe, it, expect } from 'vitest'
import { LimitsErrorCode, OperationLimiter, ProviderPool, type ProviderOptions } from '../../src/limits/index.js'

interface FakeConnection { provider: string, n: number, alive: boolean }

/** A provider whose connections are plain objects; counts what the pool does with them. */
function fake (id: string, maxConnections: number, behaviour: { fail?: () => boolean } = {}): ProviderOptions<FakeConnection> & { opened: number, closed: number, peakOpen: number } {
  let open = 0
  const provider = {
    id,
    maxConnections,
    opened: 0,
    closed: 0,
    peakOpen: 0,
    connect: async () => {
      await null
      if (behaviour.fail?.() === true) throw new Error(`${id} is down`)
      provider.opened++
      open++
      provider.peakOpen = Math.max(provider.peakOpen, open)
      return { provider: id, n: provider.opened, alive: true }
    },
    close: (connection: FakeConnection) => {
      connection.alive = false
      provider.closed++
      open--
    },
    alive: (connection: FakeConnection) => connection.alive
  }
  return provider
}

function seedLimiter (): OperationLimiter {
  return new OperationLimiter({
    capacity: 145,
    classes: { queue: { guaranteed: 30 }, healthCheck: { guaranteed: 60, ceiling: 60 }, streaming: { guaranteed: 55 } }
  })
}

/** A gate that holds runs open until released, counting how many of each class run at once. */
function gate (): { hold: (cls: string, provider: string) => Promise<void>, open: () => void, peak: Map<string, number>, running: Map<string, number> } {
  const running = new Map<string, number>()
  const peak = new Map<string, number>()
  let release!: () => void
  let opened = new Promise<void>(resolve => { release = resolve })
  return {
    running,
    peak,
    hold: async (cls, provider) => {
      for (const key of [cls, provider, 'total']) {
        running.set(key, (running.get(key) ?? 0) + 1)
        peak.set(key, Math.max(peak.get(key) ?? 0, running.get(key) ?? 0))
      }
      await opened
      for (const key of [cls, provider, 'total']) running.set(key, (running.get(key) ?? 0) - 1)
    },
    open: () => {
      release()
      opened = new Promise<void>(resolve => { release = resolve })
    }
  }
}

const settle = async (ms = 0): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** The seed's set-up: providers of 95 and 50 connections behind the seed's limiter, and a gate. */
function seedPool (): { limiter: OperationLimiter, a: ReturnType<typeof fake>, b: ReturnType<typeof fake>, pool: ProviderPool<FakeConnection>, g: ReturnType<typeof gate> } {
  const limiter = seedLimiter()
  const a = fake('a', 95)
  const b = fake('b', 50)
  return { limiter, a, b, pool: new ProviderPool({ limiter, providers: [a, b] }), g: gate() }
}

/** Opens the gate until every run has passed it. */
async function drain (g: ReturnType<typeof gate>, limiter: OperationLimiter, runs: Array<Promise<void>>): Promise<void> {
  while (g.running.get('total') !== 0 || limiter.waiting > 0) { g.open(); await settle(1) }
  await Promise.all(runs)
}

describe('ProviderPool', () => {
  it('should acquire the class permit before choosing a provider or connecting', async () => {
    const limiter = new OperationLimiter({ capacity: 1, classes: { a: { guaranteed: 1 } } })
    const provider = fake('p', 5)
    const pool = new ProviderPool({ limiter, providers: [provider] })
    const g = gate()
    const first = pool.run('a', async () => await g.hold('a', 'p'))
    const second = pool.run('a', async () => await g.hold('a', 'p'))
    await settle()
    expect(provider.opened).toBe(1)
    expect(limiter.stats().classes.a).toMatchObject({ inUse: 1, waiting: 1 })
    g.open()
    await first
    await settle()
    g.open()
    await second
    // The second run reused the first connection.
    expect(provider.opened).toBe(1)
    expect(pool.stats().providers[0]).toMatchObject({ open: 1, idle: 1, busy: 0 })
    await pool.close()
    expect(provider.closed).toBe(1)
  })

  it('regression: per-provider limits doubling must not happen', async () => {
    const { limiter, a, b, pool, g } = seedPool()
    const runs = Array.from({ length: 300 }, async () => await pool.run('healthCheck', async (_c, { provider }) => await g.hold('healthCheck', provider)))
    await settle(10)
    // nzbdav's per-provider limiters allowed 60 per provider, 120 in all.
    expect(g.peak.get('healthCheck')).toBe(60)
    expect(limiter.stats().classes.healthCheck).toMatchObject({ inUse: 60, waiting: 240 })
    await drain(g, limiter, runs)
    expect(g.peak.get('healthCheck')).toBe(60)
    expect(a.peakOpen).toBeLessThanOrEqual(95)
    expect(b.peakOpen).toBeLessThanOrEqual(50)
    await pool.close()
  })

  it('regression: queue-class starvation must not happen under a HealthCheck and Streaming storm', async () => {
    const { limiter, a, b, pool, g } = seedPool()
    const runs: Array<Promise<void>> = []
    const storm = (cls: string, n: number): void => {
      for (let i = 0; i < n; i++) runs.push(pool.run(cls, async (_c, { provider }) => await g.hold(cls, provider)))
    }
    // Enough demand that every class still waits after the three rounds below.
    storm('healthCheck', 400)
    storm('streaming', 400)
    await settle(10)
    expect(g.running.get('total')).toBe(145)
    // Queue arrives last, into a full pool: 30 of its guarantee are lent to Streaming.
    storm('queue', 100)
    await settle(10)
    expect(g.running.get('queue') ?? 0).toBe(0)
    // Each round of releases, Queue gets back towards its guarantee first; it never stays below it.
    for (let round = 0; round < 3; round++) {
      g.open()
      await settle(10)
      expect(g.running.get('queue')).toBeGreaterThanOrEqual(30)
      expect(g.running.get('healthCheck')).toBeLessThanOrEqual(60)
      expect(g.running.get('total')).toBe(145)
    }
    await drain(g, limiter, runs)
    expect(a.peakOpen + b.peakOpen).toBeLessThanOrEqual(145)
    await pool.close()
  })

  it('should prefer the provider that worked last and fall over when connecting fails', async () => {
    let downA = false
    const a = fake('a', 2, { fail: () => downA })
    const b = fake('b', 2)
    const limiter = new OperationLimiter({ capacity: 4, classes: { x: { guaranteed: 0 } } })
    const pool = new ProviderPool({ limiter, providers: [a, b] })
    const used: string[] = []
    const op = async (_c: FakeConnection, { provider }: { provider: string }): Promise<void> => { used.push(provider) }
    await pool.run('x', op)
    expect(used).toEqual(['a'])
    downA = true
    // Reuses a's idle connection: connecting is not needed.
    await pool.run('x', op)
    const g = gate()
    // Two at once: one reuses a's idle connection, the other must connect; a is down, so it goes to b.
    await Promise.all([pool.run('x', async (_c, { provider }) => { used.push(provider); await g.hold('x', provider) }), pool.run('x', async (_c, { provider }) => { used.push(provider); await g.hold('x', provider) }), settle(5).then(() => g.open())])
    expect(used.slice(2).sort()).toEqual(['a', 'b'])
    expect(pool.stats().providers.find(p => p.id === 'a')).toMatchObject({ failures: 1, consecutiveFailures: 1, opening: 0 })
    // b worked last: preferred now.
    expect(pool.stats().preferred).toBe('b')
    await pool.close()
  })

  it('regression: a failed connect releases its reservation (provider slot and permit)', async () => {
    const a = fake('a', 1, { fail: () => true })
    const b = fake('b', 1, { fail: () => true })
    const limiter = new OperationLimiter({ capacity: 2, classes: { x: { guaranteed: 0 } } })
    const pool = new ProviderPool({ limiter, providers: [a, b] })
    for (let i = 0; i < 5; i++) {
      const error = await pool.run('x', async () => {}).catch(e => e)
      expect(error).toMatchObject({ code: LimitsErrorCode.PROVIDERS_FAILED })
      expect(error.errors.map((e: Error) => e.message)).toEqual(['a is down', 'b is down'])
    }
    // Nothing leaked: no slot, no permit, no waiter.
    expect(limiter.stats()).toMatchObject({ inUse: 0, waiting: 0 })
    for (const p of pool.stats().providers) expect(p).toMatchObject({ open: 0, opening: 0, busy: 0, failures: 5 })
    expect(pool.stats().waiting).toBe(0)
    await pool.close()
  })

  it('should wait for room when the provider left is full, then run there', async () => {
    const a = fake('a', 1, { fail: () => true })
    const b = fake('b', 1)
    const limiter = new OperationLimiter({ capacity: 2, classes: { x: { guaranteed: 0 } } })
    const pool = new ProviderPool({ limiter, providers: [b, a] })
    const g = gate()
    const first = pool.run('x', async (_c, { provider }) => await g.hold('x', provider))
    await settle()
    const second = pool.run('x', async (_c, { provider }) => await g.hold('x', provider))
    await settle()
    expect(pool.stats().waiting).toBe(1)
    g.open()
    await first
    await settle()
    g.open()
    await second
    expect(g.peak.get('b')).toBe(1)
    await pool.close()
  })

  it('should add and remove providers at runtime without cutting running operations', async () => {
    const a = fake('a', 2)
    const limiter = new OperationLimiter({ capacity: 4, classes: { x: { guaranteed: 0 } } })
    const pool = new ProviderPool<FakeConnection>({ limiter })
    await expect(pool.run('x', async () => {})).rejects.toMatchObject({ code: LimitsErrorCode.NO_PROVIDER })
    expect(limiter.inUse).toBe(0)
    pool.addProvider(a)
    expect(() => pool.addProvider(fake('a', 1))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    const g = gate()
    const running = pool.run('x', async (_c, { provider }) => await g.hold('x', provider))
    await pool.run('x', async () => {})
    await settle()
    expect(pool.stats().providers[0]).toMatchObject({ busy: 1, idle: 1 })
    let removed = false
    const removal = pool.removeProvider('a').then(() => { removed = true })
    await settle()
    // The idle connection is closed at once; the busy one when its run ends.
    expect(a.closed).toBe(1)
    expect(removed).toBe(false)
    expect(pool.providers).toEqual([])
    g.open()
    await running
    await removal
    expect(a.closed).toBe(2)
    const b = fake('b', 1)
    pool.addProvider(b)
    expect(await pool.run('x', async (_c, { provider }) => provider)).toBe('b')
    await pool.removeProvider('nope')
    await pool.close()
  })

  it('should replace a dead idle connection and rethrow an error from fn without retrying', async () => {
    const a = fake('a', 2)
    const limiter = new OperationLimiter({ capacity: 2, classes: { x: { guaranteed: 0 } } })
    const pool = new ProviderPool({ limiter, providers: [a] })
    let calls = 0
    await expect(pool.run('x', async () => { calls++; throw new Error('not found') })).rejects.toThrow('not found')
    expect(calls).toBe(1)
    expect(pool.stats().providers[0]).toMatchObject({ idle: 1, open: 1 })
    const connection = await pool.run('x', async c => c)
    connection.alive = false
    const next = await pool.run('x', async c => c)
    expect(next).not.toBe(connection)
    expect(a.opened).toBe(2)
    // A hook that throws counts as dead: the connection is closed, nothing leaks.
    a.alive = () => { throw new Error('hook') }
    const pool2 = new ProviderPool({ limiter, providers: [a] })
    await pool2.run('x', async () => {})
    expect(pool2.stats().providers[0]).toMatchObject({ open: 0, busy: 0, idle: 0 })
    expect(limiter.inUse).toBe(0)
    await pool.close()
    await pool2.close()
  })

  it('should abort a run waiting for its permit without a trace, and refuse runs once closed', async () => {
    const a = fake('a', 1)
    const limiter = new OperationLimiter({ capacity: 1, classes: { x: { guaranteed: 1 } } })
    const pool = new ProviderPool({ limiter, providers: [a] })
    const g = gate()
    const running = pool.run('x', async (_c, { provider }) => await g.hold('x', provider))
    const controller = new AbortController()
    const aborted = pool.run('x', async () => {}, { signal: controller.signal })
    await settle()
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ code: LimitsErrorCode.ABORTED })
    expect(limiter.stats().classes.x).toMatchObject({ waiting: 0, inUse: 1 })
    const waiting = pool.run('x', async () => {})
    let closed = false
    const closing = pool.close().then(() => { closed = true })
    await expect(waiting).rejects.toMatchObject({ code: LimitsErrorCode.CLOSED })
    await expect(pool.run('x', async () => {})).rejects.toMatchObject({ code: LimitsErrorCode.CLOSED })
    expect(() => pool.addProvider(fake('b', 1))).toThrow(expect.objectContaining({ code: LimitsErrorCode.CLOSED }))
    await settle()
    expect(closed).toBe(false)
    g.open()
    await running
    await closing
    expect(a.closed).toBe(1)
    expect(limiter.inUse).toBe(0)
    // close() is idempotent and the limiter stays open for others.
    await pool.close()
    expect(limiter.closed).toBe(false)
  })

  it('should refuse bad arguments with Node error codes', async () => {
    const code = (c: string): Error => expect.objectContaining({ code: c })
    const limiter = seedLimiter()
    expect(() => new ProviderPool(null as never)).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new ProviderPool({ limiter: {} as never })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new ProviderPool({ limiter, providers: {} as never })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new ProviderPool({ limiter, providers: [{ id: '', connect: async () => 1, maxConnections: 1 }] })).toThrow(code('ERR_INVALID_ARG_VALUE'))
    expect(() => new ProviderPool({ limiter, providers: [{ id: 'a', connect: 1 as never, maxConnections: 1 }] })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new ProviderPool({ limiter, providers: [{ id: 'a', connect: async () => 1, maxConnections: 0 }] })).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(() => new ProviderPool({ limiter, providers: [{ id: 'a', connect: async () => 1, maxConnections: 1, close: 1 as never }] })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new ProviderPool({ limiter, providers: [{ id: 'a', connect: async () => 1, maxConnections: 1, alive: 1 as never }] })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    const pool = new ProviderPool({ limiter, providers: [fake('a', 1)] })
    expect(() => pool.run('queue', 1 as never)).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => pool.run('nope', async () => {})).toThrow(code('ERR_INVALID_ARG_VALUE'))
    expect(() => pool.run('queue', async () => {}, { signal: 1 as never })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => pool.run('queue', async () => {}, 1 as never)).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => pool.removeProvider(1 as never)).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(limiter.inUse).toBe(0)
    await pool.close()
  })
})
