import { describe, it, expect } from 'vitest'
import { TransientConnectionManager, systemClock, type RejectReason } from '../../src/limits/index.js'
import { FakeClock } from './fake-clock.js'
import { runNode } from '../child.js'

function manager (options: { budget?: number, ttl?: number, perAddressLimit?: number } = {}): { clock: FakeClock, transient: TransientConnectionManager<string> } {
  const clock = new FakeClock()
  const transient = new TransientConnectionManager<string>({ budget: 4, ttl: 1000, clock, ...options })
  return { clock, transient }
}

describe('TransientConnectionManager', () => {
  it('should reserve up to the budget and refuse beyond it, counting why', () => {
    const { transient } = manager({ budget: 2 })
    const rejected: RejectReason[] = []
    transient.on('rejected', info => rejected.push(info.reason))
    const a = transient.tryReserve('a')
    const b = transient.tryReserve('b')
    expect(a).not.toBeNull()
    expect(b).not.toBeNull()
    expect(transient.tryReserve('c')).toBeNull()
    expect(transient.tryReserve('a')).toBeNull()
    expect(transient.count).toBe(2)
    expect(transient.isTransient('a')).toBe(true)
    expect(transient.isTransient('c')).toBe(false)
    expect(rejected).toEqual(['budget', 'duplicate'])
    a?.release()
    expect(transient.tryReserve('c')).not.toBeNull()
    expect(transient.stats().rejected).toEqual({ budget: 1, perAddress: 0, duplicate: 1, closed: 0 })
  })

  it('should refuse a duplicate key even with budget left', () => {
    const { transient } = manager({ budget: 10 })
    transient.tryReserve(7)
    expect(transient.tryReserve(7)).toBeNull()
    expect(transient.count).toBe(1)
  })

  it('should hold each address to perAddressLimit', () => {
    const { transient } = manager({ budget: 10, perAddressLimit: 2 })
    const first = transient.tryReserve('1.2.3.4:1', { address: '1.2.3.4' })
    transient.tryReserve('1.2.3.4:2', { address: '1.2.3.4' })
    expect(transient.tryReserve('1.2.3.4:3', { address: '1.2.3.4' })).toBeNull()
    expect(transient.tryReserve('5.6.7.8:1', { address: '5.6.7.8' })).not.toBeNull()
    expect(transient.stats()).toMatchObject({ count: 3, addresses: 2, rejected: { perAddress: 1 } })
    first?.promote('peer')
    expect(transient.tryReserve('1.2.3.4:3', { address: '1.2.3.4' })).not.toBeNull()
  })

  it('should make promote() and release() idempotent: a second call returns the first outcome', () => {
    const { clock, transient } = manager()
    const events: string[] = []
    for (const name of ['promoted', 'released', 'expired'] as const) transient.on(name, () => events.push(name))
    const reservation = transient.tryReserve('a')
    if (reservation === null) throw new Error('refused')
    clock.advance(25)
    const promoted = reservation.promote('peer-a')
    expect(promoted).toEqual({ state: 'promoted', peer: 'peer-a', heldMs: 25 })
    expect(reservation.promote('peer-b')).toBe(promoted)
    expect(reservation.release('late')).toBe(promoted)
    expect(reservation.state).toBe('promoted')
    expect(events).toEqual(['promoted'])
    const released = transient.tryReserve('b')?.release('handshake failed')
    expect(released).toEqual({ state: 'released', reason: 'handshake failed', heldMs: 0 })
    const stats = transient.stats()
    expect(stats).toMatchObject({ count: 0, reserved: 2, promoted: 1, released: 1, expired: 0 })
    expect(stats.timeToPromote).toMatchObject({ count: 1, sum: 25, max: 25 })
  })

  it('should expire with one sweep timer, not a timer per reservation', () => {
    const { clock, transient } = manager({ budget: 100 })
    for (let i = 0; i < 50; i++) {
      transient.tryReserve(i)
      clock.advance(10)
    }
    expect(clock.pending).toBe(1)
    const expired: number[] = []
    transient.on('expired', r => expired.push(r.key as number))
    clock.advance(505)
    // Reserved at 0, 10, …: deadlines 1000, 1010, …; the clock is at 1005.
    expect(expired).toEqual([0])
    clock.advance(1000)
    expect(expired.length).toBe(50)
    expect(transient.count).toBe(0)
    // Nothing left: no timer either.
    expect(clock.pending).toBe(0)
  })

  it('should never keep a process alive with its sweep timer', async () => {
    const handle = systemClock.setTimeout(() => {}, 60_000) as NodeJS.Timeout
    expect(handle.hasRef()).toBe(false)
    systemClock.clearTimeout(handle)
    // A pending sweep (due in a minute) with the system clock: the child exits at once all the same.
    const script = `
      const { TransientConnectionManager } = await import('node-msquic/limits')
      const transient = new TransientConnectionManager({ budget: 1, ttl: 60_000 })
      transient.tryReserve('a')
      console.log(transient.count)`
    const output = await runNode(['--input-type=module', '-e', script], { timeout: 20_000 })
    expect(output.trim()).toBe('1')
  })

  it('should give the slot back when a reserved listener throws', () => {
    const { transient } = manager({ budget: 1 })
    transient.once('reserved', () => { throw new Error('listener') })
    expect(() => transient.tryReserve('a')).toThrow('listener')
    expect(transient.count).toBe(0)
    expect(transient.tryReserve('a')).not.toBeNull()
  })

  it('regression: expiry during a handshake never cuts it', () => {
    const { clock, transient } = manager()
    const reservation = transient.tryReserve('slow', { handshaking: true })
    const other = transient.tryReserve('idle')
    if (reservation === null || other === null) throw new Error('refused')
    clock.advance(5000)
    expect(other.state).toBe('expired')
    expect(reservation.state).toBe('reserved')
    expect(transient.stats().handshaking).toBe(1)
    expect(transient.sweep()).toBe(0)
    // Handshake done, long overdue: promoted right away, it is a peer.
    expect(reservation.promote('peer').state).toBe('promoted')
    // The same overdue case without a promotion: the next sweep takes it.
    const second = transient.tryReserve('second', { handshaking: true })
    clock.advance(2000)
    second?.setHandshaking(false)
    expect(second?.state).toBe('reserved')
    clock.advance(0)
    expect(second?.state).toBe('expired')
    expect(transient.stats().handshaking).toBe(0)
  })

  it('should move the sweep earlier when a handshake ends on a reservation due before the next timer', () => {
    const { clock, transient } = manager()
    const early = transient.tryReserve('early', { handshaking: true })
    clock.advance(500)
    const late = transient.tryReserve('late')
    // The one timer is set for 'late' (1500); 'early' is due at 1000 once its handshake is done.
    early?.setHandshaking(false)
    clock.advance(600)
    expect(early?.state).toBe('expired')
    expect(late?.state).toBe('reserved')
    expect(clock.pending).toBe(1)
  })

  it('regression: a promotion after expiry is a reported outcome, not a silent skip', () => {
    const { clock, transient } = manager()
    const late: string[] = []
    transient.on('latePromotion', (reservation, peer) => late.push(`${String(reservation.key)}:${peer}`))
    const reservation = transient.tryReserve('a')
    if (reservation === null) throw new Error('refused')
    clock.advance(1000)
    expect(reservation.state).toBe('expired')
    const outcome = reservation.promote('peer-a')
    expect(outcome).toEqual({ state: 'expired', reason: 'ttl', heldMs: 1000 })
    expect(late).toEqual(['a:peer-a'])
    // Reported once per reservation; the outcome stays the same.
    expect(reservation.promote('peer-a')).toBe(outcome)
    expect(late.length).toBe(1)
    expect(transient.stats()).toMatchObject({ latePromotions: 1, promoted: 0, expired: 1, count: 0 })
    // The caller can re-admit through the normal limit.
    expect(transient.tryReserve('a')?.promote('peer-a').state).toBe('promoted')
  })

  it('regression: a late timer never touches a newer reservation of the same key', () => {
    const { clock, transient } = manager({ budget: 2 })
    const old = transient.tryReserve('k')
    if (old === null) throw new Error('refused')
    clock.advance(900)
    old.release('handshake failed')
    const newer = transient.tryReserve('k')
    if (newer === null) throw new Error('refused')
    expect(newer.generation).toBeGreaterThan(old.generation)
    // The old reservation's deadline (1000) passes: the sweep armed for it finds the newer one not due.
    clock.advance(200)
    expect(newer.state).toBe('reserved')
    // The old handle does nothing to the newer one.
    expect(old.release('again').state).toBe('released')
    expect(old.promote('x').state).toBe('released')
    expect(transient.get('k')).toBe(newer)
    expect(transient.count).toBe(1)
    clock.advance(800)
    expect(newer.state).toBe('expired')
    expect(transient.count).toBe(0)
  })

  it('regression: a failed connect releases its reservation', async () => {
    const { transient } = manager({ budget: 1 })
    async function admit (key: string, handshake: () => Promise<string>): Promise<string> {
      const reservation = transient.tryReserve(key, { handshaking: true })
      if (reservation === null) return 'refused'
      try {
        const peer = await handshake()
        return reservation.promote(peer).state
      } finally {
        // Unconditional: a no-op after promote(), the release on every error path.
        reservation.release('connect failed')
      }
    }
    await expect(admit('a', async () => { throw new Error('handshake failed') })).rejects.toThrow('handshake failed')
    expect(transient.count).toBe(0)
    expect(transient.stats().handshaking).toBe(0)
    expect(await admit('b', async () => 'peer-b')).toBe('promoted')
    expect(transient.stats()).toMatchObject({ released: 1, promoted: 1, count: 0 })
  })

  it('should release everything and refuse new reservations once closed', () => {
    const { clock, transient } = manager()
    const held = transient.tryReserve('a')
    transient.close()
    transient.close()
    expect(held?.state).toBe('released')
    expect(held?.outcome?.reason).toBe('closed')
    expect(held?.promote('p').state).toBe('released')
    expect(transient.tryReserve('b')).toBeNull()
    expect(transient.stats().rejected.closed).toBe(1)
    expect(clock.pending).toBe(0)
  })

  it('should emit every transition with its reservation', () => {
    const { clock, transient } = manager()
    const log: string[] = []
    transient.on('reserved', r => log.push(`reserved ${String(r.key)} #${r.generation}`))
    transient.on('promoted', (r, o) => log.push(`promoted ${String(r.key)} ${o.heldMs}ms`))
    transient.on('released', (r, o) => log.push(`released ${String(r.key)} ${o.reason ?? ''}`))
    transient.on('expired', r => log.push(`expired ${String(r.key)}`))
    transient.tryReserve('a')?.promote('p')
    transient.tryReserve('b')?.release('bye')
    transient.tryReserve('c')
    clock.advance(1000)
    expect(log).toEqual(['reserved a #1', 'promoted a 0ms', 'reserved b #2', 'released b bye', 'reserved c #3', 'expired c'])
  })

  it('should refuse bad arguments with Node error codes', () => {
    expect(() => new TransientConnectionManager(undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => new TransientConnectionManager({ budget: 0, ttl: 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new TransientConnectionManager({ budget: 1.5, ttl: 1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new TransientConnectionManager({ budget: 1, ttl: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new TransientConnectionManager({ budget: 1, ttl: '1' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => new TransientConnectionManager({ budget: 1, ttl: 1, perAddressLimit: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => new TransientConnectionManager({ budget: 1, ttl: 1, clock: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    const { transient } = manager()
    expect(() => transient.tryReserve({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => transient.isTransient(null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => transient.get(undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => transient.tryReserve('a', 'x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => transient.tryReserve('a', { address: '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => transient.tryReserve('a', { handshaking: 1 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    const reservation = transient.tryReserve('a')
    expect(() => reservation?.release(5 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => reservation?.setHandshaking('yes' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    // Nothing was changed by the refused calls.
    expect(transient.count).toBe(1)
    expect(reservation?.state).toBe('reserved')
  })
})
