import { describe, expect, it } from 'vitest'
import { DiscoveryError, DiscoveryErrorCode, QueryLayer, Reputation } from '../../src/discovery/index.js'

describe('QueryLayer', () => {
  it('every exit path removes the query and clears its timers', async () => {
    const layer = new QueryLayer()
    await expect(layer.run('ok', {}, async () => 42)).resolves.toBe(42)
    await expect(layer.run('error', {}, async () => { throw new Error('boom') })).rejects.toThrow('boom')
    await expect(layer.run('timeout', { timeout: 20 }, async () => await new Promise(() => {}))).rejects.toMatchObject({ code: DiscoveryErrorCode.TIMEOUT })
    const controller = new AbortController()
    const aborted = layer.run('abort', { signal: controller.signal }, async () => await new Promise(() => {}))
    controller.abort(new Error('stop'))
    await expect(aborted).rejects.toMatchObject({ code: DiscoveryErrorCode.ABORTED, cause: { message: 'stop' } })
    await expect(layer.run('pre-aborted', { signal: AbortSignal.abort() }, async () => await new Promise(() => {}))).rejects.toMatchObject({ code: DiscoveryErrorCode.ABORTED })
    expect(layer.pending.size).toBe(0)
    expect(layer.timers).toBe(0)
  })

  it('the query signal fires when the query fails, so the work under it stops', async () => {
    const layer = new QueryLayer()
    let seen: unknown
    await expect(layer.run('t', { timeout: 20 }, async query => await new Promise((resolve, reject) => {
      query.signal.addEventListener('abort', () => { seen = query.signal.reason; reject(query.signal.reason) })
    }))).rejects.toMatchObject({ code: DiscoveryErrorCode.TIMEOUT })
    expect(seen).toBeInstanceOf(DiscoveryError)
  })

  it('retries with backoff within the deadline, then gives up', async () => {
    const layer = new QueryLayer()
    let attempts = 0
    let retries = 0
    const value = await layer.run('retry', { timeout: 2000 }, async query => await query.retry(async () => {
      if (++attempts < 3) throw new Error('network')
      return 'ok'
    }, () => true, () => retries++))
    expect([value, attempts, retries]).toEqual(['ok', 3, 2])
    // A failure that is not retryable is thrown at once.
    attempts = 0
    await expect(layer.run('fatal', {}, async query => await query.retry(async () => { attempts++; throw new Error('fatal') }, () => false))).rejects.toThrow('fatal')
    expect(attempts).toBe(1)
    // Retrying never outlives the deadline.
    const started = performance.now()
    await expect(layer.run('deadline', { timeout: 150 }, async query => await query.retry(async () => { throw new Error('down') }, () => true))).rejects.toBeDefined()
    expect(performance.now() - started).toBeLessThan(1000)
    expect(layer.pending.size).toBe(0)
    expect(layer.timers).toBe(0)
  })

  it('close() rejects every pending query at once and refuses new ones', async () => {
    const layer = new QueryLayer()
    const pending = Array.from({ length: 100 }, async (_, i) => await layer.run(`q${i}`, { timeout: 60_000 }, async query => await query.retry(async () => await new Promise(() => {}), () => true)))
    expect(layer.pending.size).toBe(100)
    layer.close()
    const results = await Promise.allSettled(pending)
    expect(results.every(r => r.status === 'rejected' && (r.reason as DiscoveryError).code === DiscoveryErrorCode.SHUTDOWN)).toBe(true)
    expect(layer.pending.size).toBe(0)
    expect(layer.timers).toBe(0)
    expect(() => layer.begin('late')).toThrow(expect.objectContaining({ code: DiscoveryErrorCode.SHUTDOWN }))
  })
})

describe('Reputation', () => {
  it('orders peers by answers, failures and latency; unknown peers sit between', () => {
    const reputation = new Reputation()
    for (let i = 0; i < 5; i++) reputation.answered('fast', 2)
    for (let i = 0; i < 5; i++) reputation.answered('slow', 300)
    for (let i = 0; i < 5; i++) reputation.failed('flaky')
    expect(reputation.order(['flaky', 'slow', 'new', 'fast'])).toEqual(['fast', 'new', 'slow', 'flaky'])
    expect(reputation.get('fast')).toMatchObject({ answers: 5, failures: 0 })
  })

  it('forgets the oldest peers past its cap', () => {
    const reputation = new Reputation(3)
    for (const p of ['a', 'b', 'c', 'd']) reputation.answered(p, 1)
    expect(reputation.size).toBe(3)
    expect(reputation.get('a')).toBeUndefined()
  })

  it('gives quantiles of the 256 most recent answer latencies, of every peer', () => {
    const reputation = new Reputation()
    expect(reputation.quantile(0.5)).toBeUndefined()
    for (let ms = 1; ms <= 100; ms++) reputation.answered(`peer-${ms % 7}`, ms)
    expect(reputation.quantile(0.5)).toBe(50)
    expect(reputation.quantile(0.95)).toBe(95)
    expect(reputation.quantile(1)).toBe(100)
    expect(reputation.quantile(0.5, 101)).toBeUndefined()
    // 256 newer answers push the old ones out.
    for (let n = 0; n < 256; n++) reputation.answered('late', 1000 + n)
    expect(reputation.quantile(0)).toBe(1000)
    expect(reputation.quantile(0.95)).toBe(1000 + Math.ceil(0.95 * 256) - 1)
  })
})
