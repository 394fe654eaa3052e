/**
 * The negotiation limiter alone (ProtocolRouter and the libp2p transport drive it on real streams
 * in their own tests): slots per connection and overall, the queue in arrival order, busy refusal,
 * streams gone while waiting, close(), and the adaptive limit.
 */
import { describe, it, expect } from 'vitest'
import { ConnectionShare, NegotiationLimiter, type SlotRequest } from '../../src/negotiation/index.js'

/** A request that records what happened to it under `name`. */
function request (log: string[], name: string, gone = (): boolean => false): SlotRequest {
  return { gone, start: () => log.push(`${name} started`), drop: reason => log.push(`${name} dropped (${reason})`) }
}

describe('NegotiationLimiter', () => {
  it('should run up to the limits, queue in arrival order, refuse past the queue, and pass each freed slot on', () => {
    const log: string[] = []
    const queued: number[] = []
    const limiter = new NegotiationLimiter({ maxNegotiationsPerConnection: 2, maxNegotiations: 3, maxQueuedPerConnection: 2, maxQueued: 3, onQueued: n => queued.push(n) })
    const a = new ConnectionShare()
    const b = new ConnectionShare()
    expect(['a1', 'a2', 'a3', 'a4'].map(name => limiter.admit(a, request(log, name)))).toEqual(['started', 'started', 'queued', 'queued'])
    expect(limiter.admit(a, request(log, 'a5'))).toBe('refused')  // a's queue is full
    expect(limiter.admit(b, request(log, 'b1'))).toBe('started')  // b has a slot: the queue does not hold it back
    expect(limiter.admit(b, request(log, 'b2'))).toBe('queued')
    expect(limiter.admit(b, request(log, 'b3'))).toBe('refused')  // the overall queue is full
    expect([limiter.running, limiter.queued, a.running, a.queued, b.running, b.queued]).toEqual([3, 3, 2, 2, 1, 1])
    // b's slot frees: a3 waited longest, but a is at its own limit; b2 goes.
    limiter.release(b, 1)
    expect(log.slice(-1)).toEqual(['b2 started'])
    limiter.release(a, 1)
    expect(log.slice(-1)).toEqual(['a3 started'])
    expect(queued.at(-1)).toBe(1)
    expect(log).toEqual(['a1 started', 'a2 started', 'b1 started', 'b2 started', 'a3 started'])
  })

  it('should drop a stream gone while it waited, and every waiting one on close()', () => {
    const log: string[] = []
    const limiter = new NegotiationLimiter({ maxNegotiationsPerConnection: 1, maxNegotiations: 1, maxQueuedPerConnection: 4 })
    const share = new ConnectionShare()
    let gone = false
    limiter.admit(share, request(log, 'first'))
    limiter.admit(share, request(log, 'gone', () => gone))
    limiter.admit(share, request(log, 'next'))
    gone = true
    limiter.release(share)
    expect(log).toEqual(['first started', 'gone dropped (gone)', 'next started'])
    limiter.admit(share, request(log, 'waiting'))
    limiter.close()
    limiter.close()
    expect(limiter.admit(share, request(log, 'late'))).toBe('refused')
    expect(log.slice(-1)).toEqual(['waiting dropped (closed)'])
    expect([limiter.queued, share.queued]).toEqual([0, 0])
  })

  it('should lower an adaptive limit when negotiations slow down, and refuse bad options', () => {
    const limits: number[] = []
    const limiter = new NegotiationLimiter({ maxNegotiations: 10, adaptive: { targetLatency: 10, window: 4 }, onLimit: limit => limits.push(limit) })
    const share = new ConnectionShare()
    for (let i = 0; i < 4; i++) limiter.admit(share, request([], `s${i}`))
    for (let i = 0; i < 4; i++) limiter.release(share, 50)
    expect(limits).toEqual([7])
    expect(limiter.limit).toBe(7)
    expect(() => new NegotiationLimiter({ maxNegotiations: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new NegotiationLimiter({ maxQueued: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new NegotiationLimiter({ adaptive: true, maxNegotiations: Infinity })).toThrow(/adaptive/)
  })
})
