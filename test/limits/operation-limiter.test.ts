import { describe, it, expect } from 'vitest'
import { LimitsErrorCode, OperationLimiter, type Permit } from '../../src/limits/index.js'

/** The seed's numbers: 145 connections, Queue 30, HealthCheck 60 (ceiling 60), Streaming 55. */
function seed (): OperationLimiter {
  return new OperationLimiter({
    capacity: 145,
    classes: { queue: { guaranteed: 30 }, healthCheck: { guaranteed: 60, ceiling: 60 }, streaming: { guaranteed: 55 } }
  })
}

function take (limiter: OperationLimiter, cls: string, n: number): Permit[] {
  const permits: Permit[] = []
  for (let i = 0; i < n; i++) {
    const permit = limiter.tryAcquire(cls)
    if (permit === null) break
    permits.push(permit)
  }
  return permits
}

const flush = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

describe('OperationLimiter', () => {
  it('should let a class borrow idle guarantees but never pass its ceiling or the capacity', () => {
    const limiter = seed()
    expect(take(limiter, 'healthCheck', 200).length).toBe(60)
    expect(take(limiter, 'queue', 200).length).toBe(85)
    expect(limiter.tryAcquire('streaming')).toBeNull()
    const stats = limiter.stats()
    expect(stats.inUse).toBe(145)
    expect(stats.classes.queue).toMatchObject({ inUse: 85, borrowed: 55 })
    expect(stats.classes.healthCheck).toMatchObject({ inUse: 60, borrowed: 0 })
  })

  it('regression: per-provider limits doubling must not happen — one limiter, every provider', () => {
    // nzbdav's per-provider limiters let HealthCheck reach 2 × 60 with two providers. The pool uses
    // this one limiter above routing; see provider-pool.test.ts for the routed version.
    const limiter = seed()
    expect(take(limiter, 'healthCheck', 500).length).toBe(60)
  })

  it('regression: queue-class starvation must not happen — releases refill the guarantee first', async () => {
    const limiter = seed()
    const healthCheck = take(limiter, 'healthCheck', 60)
    const streaming = take(limiter, 'streaming', 145)
    expect(streaming.length).toBe(85)
    // Queue arrives late: every permit is held, 30 of them borrowed from Queue's guarantee.
    const queued = Array.from({ length: 40 }, async () => await limiter.acquire('queue'))
    const moreStreaming = Array.from({ length: 40 }, async () => await limiter.acquire('streaming'))
    expect(limiter.stats().classes.queue.waiting).toBe(40)
    // Streaming and HealthCheck keep releasing and asking again; Queue gets every release until it has 30.
    for (let i = 0; i < 30; i++) {
      (i % 2 === 0 ? streaming.pop() : healthCheck.pop())?.release()
      expect(limiter.stats().classes.queue.inUse).toBe(i + 1)
    }
    expect(limiter.stats().classes.streaming.inUse).toBe(70)
    // Guarantee met: from here Queue and Streaming both borrow, and share releases by weight (1:1).
    healthCheck.pop()?.release()
    healthCheck.pop()?.release()
    expect(limiter.stats().classes.queue.inUse).toBe(31)
    expect(limiter.stats().classes.streaming.inUse).toBe(71)
    limiter.close()
    await Promise.allSettled([...queued, ...moreStreaming])
  })

  it('should give a release back to its own class when that class waits below its guarantee', async () => {
    const limiter = seed()
    const healthCheck = take(limiter, 'healthCheck', 60)
    const streaming = take(limiter, 'streaming', 85)
    const waiting = [
      ...Array.from({ length: 5 }, async () => await limiter.acquire('healthCheck')),
      ...Array.from({ length: 5 }, async () => await limiter.acquire('queue'))
    ]
    // HealthCheck borrowed nothing: its release stays with it, though Queue is further below.
    healthCheck.pop()?.release()
    expect(limiter.stats().classes).toMatchObject({ healthCheck: { inUse: 60 }, queue: { inUse: 0 } })
    // Streaming borrowed Queue's guarantee: its release pays Queue back.
    streaming.pop()?.release()
    expect(limiter.stats().classes).toMatchObject({ streaming: { inUse: 84 }, queue: { inUse: 1 } })
    limiter.close()
    await Promise.allSettled(waiting)
  })

  it('should keep an unlendable guarantee free for its class', () => {
    const limiter = new OperationLimiter({ capacity: 10, classes: { live: { guaranteed: 4, lendable: false }, batch: { guaranteed: 0 } } })
    expect(take(limiter, 'batch', 10).length).toBe(6)
    expect(take(limiter, 'live', 10).length).toBe(4)
    const partial = new OperationLimiter({ capacity: 10, classes: { live: { guaranteed: 4, lendable: 1 }, batch: { guaranteed: 0 } } })
    expect(take(partial, 'batch', 10).length).toBe(7)
    expect(partial.stats().reserved).toBe(3)
  })

  it('should queue waiters per class, FIFO, and serve them on release', async () => {
    const limiter = new OperationLimiter({ capacity: 1, classes: { a: { guaranteed: 1 } } })
    const first = await limiter.acquire('a')
    const order: number[] = []
    const waiting = [1, 2, 3].map(async n => { const p = await limiter.acquire('a'); order.push(n); return p })
    expect(limiter.waiting).toBe(3)
    expect(limiter.tryAcquire('a')).toBeNull()
    first.release()
    const second = await waiting[0]
    second.release()
    const third = await waiting[1]
    third.release()
    ;(await waiting[2]).release()
    expect(order).toEqual([1, 2, 3])
    expect(limiter.stats()).toMatchObject({ inUse: 0, waiting: 0 })
  })

  it('should make permit.release() idempotent', () => {
    const limiter = new OperationLimiter({ capacity: 2, classes: { a: { guaranteed: 0 } } })
    const one = limiter.tryAcquire('a')
    const two = limiter.tryAcquire('a')
    expect(one?.release()).toBe(true)
    expect(one?.release()).toBe(false)
    expect(one?.released).toBe(true)
    expect(limiter.inUse).toBe(1)
    two?.release()
    expect(limiter.inUse).toBe(0)
  })

  it('should remove an aborted waiter without a trace', async () => {
    const limiter = new OperationLimiter({ capacity: 1, classes: { a: { guaranteed: 1 } } })
    const held = await limiter.acquire('a')
    const controller = new AbortController()
    const aborted = limiter.acquire('a', { signal: controller.signal })
    const next = limiter.acquire('a')
    controller.abort(new Error('gone'))
    await expect(aborted).rejects.toMatchObject({ code: LimitsErrorCode.ABORTED, cause: new Error('gone') })
    expect(limiter.stats().classes.a).toMatchObject({ waiting: 1, aborted: 1 })
    held.release()
    ;(await next).release()
    expect(limiter.stats()).toMatchObject({ inUse: 0, waiting: 0 })
    await expect(limiter.acquire('a', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: LimitsErrorCode.ABORTED })
    expect(limiter.stats().inUse).toBe(0)
  })

  it('should never revoke a permit on resize, and serve waiters when it grows', async () => {
    const limiter = new OperationLimiter({ capacity: 4, classes: { a: { guaranteed: 0 } } })
    const held = take(limiter, 'a', 4)
    limiter.resize(2)
    expect(limiter.inUse).toBe(4)
    expect(held.every(p => !p.released)).toBe(true)
    const waiter = limiter.acquire('a')
    held.pop()?.release()
    held.pop()?.release()
    expect(limiter.stats().waiting).toBe(1)
    limiter.resize(3)
    const permit = await waiter
    expect(limiter.inUse).toBe(3)
    permit.release()
    for (const p of held) p.release()
  })

  it('should share contended releases between borrowers by weight', async () => {
    const limiter = new OperationLimiter({ capacity: 1, classes: { heavy: { guaranteed: 0, weight: 3 }, light: { guaranteed: 0, weight: 1 } } })
    let holder = limiter.tryAcquire('heavy') as Permit
    const granted: Permit[] = []
    const waiters: Array<Promise<unknown>> = []
    for (let i = 0; i < 40; i++) {
      for (const cls of ['heavy', 'light']) waiters.push(limiter.acquire(cls).then(p => granted.push(p)))
    }
    const order: string[] = []
    for (let i = 0; i < 20; i++) {
      holder.release()
      await flush()
      holder = granted.shift() as Permit
      order.push(holder.className)
    }
    // Every window of four contended releases: three to the heavy class, one to the light one.
    for (let i = 0; i < 20; i += 4) expect(order.slice(i, i + 4).filter(c => c === 'light').length).toBe(1)
    limiter.close()
    await Promise.allSettled(waiters)
  })

  it('should reject waiters and later acquires once closed; permits stay valid', async () => {
    const limiter = seed()
    const held = limiter.tryAcquire('queue')
    const filled = take(limiter, 'streaming', 144)
    const waiting = limiter.acquire('queue')
    limiter.close()
    limiter.close()
    await expect(waiting).rejects.toMatchObject({ code: LimitsErrorCode.CLOSED })
    await expect(limiter.acquire('queue')).rejects.toMatchObject({ code: LimitsErrorCode.CLOSED })
    expect(limiter.tryAcquire('queue')).toBeNull()
    expect(held?.release()).toBe(true)
    for (const p of filled) p.release()
    expect(limiter.inUse).toBe(0)
  })

  it('should refuse bad arguments with Node error codes', () => {
    const code = (c: string): Error => expect.objectContaining({ code: c })
    expect(() => new OperationLimiter(null as never)).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new OperationLimiter({ capacity: 0, classes: { a: { guaranteed: 0 } } })).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(() => new OperationLimiter({ capacity: 1, classes: {} })).toThrow(code('ERR_INVALID_ARG_VALUE'))
    expect(() => new OperationLimiter({ capacity: 1, classes: null as never })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new OperationLimiter({ capacity: 1, classes: { a: { guaranteed: 2 } } })).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(() => new OperationLimiter({ capacity: 5, classes: { a: { guaranteed: 2, ceiling: 1 } } })).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(() => new OperationLimiter({ capacity: 5, classes: { a: { guaranteed: 1, weight: 0 } } })).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(() => new OperationLimiter({ capacity: 5, classes: { a: { guaranteed: 1, lendable: 2 } } })).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(() => new OperationLimiter({ capacity: 5, classes: { a: { guaranteed: 1, lendable: 'x' as never } } })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => new OperationLimiter({ capacity: 5, classes: { a: 3 as never } })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    const limiter = seed()
    expect(() => limiter.tryAcquire('nope')).toThrow(code('ERR_INVALID_ARG_VALUE'))
    expect(() => limiter.tryAcquire(1 as never)).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => limiter.acquire('queue', { signal: {} as never })).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => limiter.acquire('queue', 5 as never)).toThrow(code('ERR_INVALID_ARG_TYPE'))
    expect(() => limiter.resize(-1)).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(() => limiter.resize(Infinity)).toThrow(code('ERR_OUT_OF_RANGE'))
    expect(limiter.stats()).toMatchObject({ capacity: 145, inUse: 0, waiting: 0 })
  })
})
