/**
 * The one FIFO semaphore (under the dialer's negotiation slots, the negotiation limiter, the libp2p
 * outbound queue and ProviderPool's waiting runs): arrival order, a waiter that aborts leaves the
 * queue, close() drops waiters with the owner's error, and a waiter's own limit (`admits`) lets
 * later waiters pass it without reordering the rest.
 */
import { describe, it, expect } from 'vitest'
import { LimitsError, LimitsErrorCode } from '../../src/limits/index.js'
import { Semaphore } from '../../src/limits/semaphore.js'

describe('Semaphore', () => {
  it('should hand units out in arrival order, once per release', async () => {
    const semaphore = new Semaphore(1)
    const first = semaphore.tryAcquire()
    expect(first).toBeTypeOf('function')
    expect(semaphore.tryAcquire()).toBeUndefined()
    const order: string[] = []
    const waiting = ['a', 'b', 'c'].map(name => semaphore.acquire().then(release => { order.push(name); return release }))
    expect(semaphore.waiting).toBe(3)
    first?.()
    first?.()  // a second call gives nothing back
    const a = await waiting[0]
    expect([order, semaphore.used, semaphore.waiting]).toEqual([['a'], 1, 2])
    a()
    ;(await waiting[1])()
    ;(await waiting[2])()
    expect([order, semaphore.used, semaphore.waiting]).toEqual([['a', 'b', 'c'], 0, 0])
  })

  it('should take an aborted waiter out of the queue at once, with the signal\'s reason', async () => {
    const semaphore = new Semaphore(1)
    const held = semaphore.tryAcquire() as () => void
    const controller = new AbortController()
    const aborted = semaphore.acquire(controller.signal)
    const next = semaphore.acquire()
    controller.abort(new Error('stop'))
    await expect(aborted).rejects.toThrow('stop')
    expect(semaphore.waiting).toBe(1)
    held()
    ;(await next)()
    await expect(semaphore.acquire(AbortSignal.abort(new Error('before')))).rejects.toThrow('before')
    expect([semaphore.used, semaphore.waiting]).toEqual([0, 0])
  })

  it('should drop every waiter on close() with the owner\'s error, and refuse later ones', async () => {
    const semaphore = new Semaphore(0)
    const waiting = [semaphore.acquire(), semaphore.acquire()]
    semaphore.close()
    semaphore.close()
    for (const wait of waiting) await expect(wait).rejects.toSatisfy(error => error instanceof LimitsError && error.code === LimitsErrorCode.CLOSED)
    await expect(semaphore.acquire()).rejects.toMatchObject({ code: LimitsErrorCode.CLOSED })
    const own = new Semaphore(0, { closedError: () => new Error('the layer is closed') })
    const wait = own.acquire()
    own.close()
    await expect(wait).rejects.toThrow('the layer is closed')
  })

  it('should pass over a waiter its own limit holds back, serve it once serve() finds it may go, and drop one gone at its turn', () => {
    const semaphore = new Semaphore(2)
    const log: string[] = []
    let blocked = true
    let gone = false
    const waiter = (name: string, options: { admits?: () => boolean, gone?: () => boolean } = {}): void => {
      semaphore.wait({ ...options, granted: () => log.push(`${name} granted`), dropped: reason => log.push(`${name} ${reason}`) })
    }
    const held = semaphore.tryAcquire() as () => void
    semaphore.tryAcquire()
    waiter('blocked', { admits: () => !blocked })
    waiter('gone', { gone: () => gone })
    waiter('free')
    gone = true
    held()
    expect(log).toEqual(['gone gone', 'free granted'])
    blocked = false
    semaphore.capacity = 3
    expect(log).toEqual(['gone gone', 'free granted', 'blocked granted'])
    expect([semaphore.used, semaphore.waiting]).toEqual([3, 0])
  })
})
