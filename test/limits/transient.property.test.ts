import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { TransientConnectionManager, type Reservation, type ReservationOutcome } from '../../src/limits/index.js'
import { FakeClock } from './fake-clock.js'

type Step =
  | { op: 'reserve', key: number, address: number, handshaking: boolean }
  | { op: 'promote' | 'release', handle: number }
  | { op: 'handshake', handle: number, inProgress: boolean }
  | { op: 'advance', ms: number }
  | { op: 'sweep' }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('reserve' as const), key: fc.nat(7), address: fc.nat(3), handshaking: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('promote' as const, 'release' as const), handle: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('handshake' as const), handle: fc.nat(40), inProgress: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 600 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('sweep' as const) }) }
)

const BUDGET = 5
const PER_ADDRESS = 2
const TTL = 1000

describe('TransientConnectionManager properties', () => {
  it('should keep its counters equal to the live reservations through any interleaving, and back to zero', () => {
    fc.assert(fc.property(fc.array(step, { maxLength: 120 }), steps => {
      const clock = new FakeClock()
      const manager = new TransientConnectionManager<string>({ budget: BUDGET, ttl: TTL, perAddressLimit: PER_ADDRESS, clock })
      const handles: Array<Reservation<string>> = []
      const firstOutcome = new Map<Reservation<string>, ReservationOutcome<string>>()
      let lastGeneration = 0

      const check = (): void => {
        const live = handles.filter(h => h.state === 'reserved')
        expect(manager.count).toBe(live.length)
        expect(manager.count).toBeLessThanOrEqual(BUDGET)
        // The generation rule: the manager holds exactly the live handles, the newest of each key.
        for (const h of live) expect(manager.get(h.key)).toBe(h)
        for (let key = 0; key < 8; key++) expect(manager.isTransient(key)).toBe(live.some(h => h.key === key))
        const perAddress = new Map<string, number>()
        for (const h of live) perAddress.set(h.address as string, (perAddress.get(h.address as string) ?? 0) + 1)
        for (const n of perAddress.values()) expect(n).toBeLessThanOrEqual(PER_ADDRESS)
        const stats = manager.stats()
        expect(stats.addresses).toBe(perAddress.size)
        expect(stats.handshaking).toBe(live.filter(h => h.handshaking).length)
        expect(stats.reserved - stats.promoted - stats.released - stats.expired).toBe(stats.count)
        expect(stats.timeToPromote.count).toBe(stats.promoted)
        // Ended stays ended, with the very same outcome.
        for (const h of handles) {
          if (h.outcome === undefined) continue
          const first = firstOutcome.get(h)
          if (first === undefined) firstOutcome.set(h, h.outcome)
          else expect(h.outcome).toBe(first)
        }
      }

      for (const s of steps) {
        const before = handles.map(h => h.state)
        switch (s.op) {
          case 'reserve': {
            const live = handles.filter(h => h.state === 'reserved')
            const expectRefusal = live.length >= BUDGET || live.some(h => h.key === s.key) ||
              live.filter(h => h.address === `10.0.0.${s.address}`).length >= PER_ADDRESS
            const r = manager.tryReserve(s.key, { address: `10.0.0.${s.address}`, handshaking: s.handshaking })
            expect(r === null).toBe(expectRefusal)
            if (r !== null) {
              expect(r.generation).toBeGreaterThan(lastGeneration)
              lastGeneration = r.generation
              handles.push(r)
            }
            break
          }
          case 'promote':
          case 'release': {
            const h = handles[s.handle % Math.max(1, handles.length)]
            if (h === undefined) break
            const wasReserved = h.state === 'reserved'
            const outcome = s.op === 'promote' ? h.promote(`peer-${s.handle}`) : h.release('test')
            if (wasReserved) expect(outcome.state).toBe(s.op === 'promote' ? 'promoted' : 'released')
            // Only this handle may change: never a newer reservation of the same key.
            handles.forEach((other, i) => { if (other !== h) expect(other.state).toBe(before[i]) })
            break
          }
          case 'handshake': {
            handles[s.handle % Math.max(1, handles.length)]?.setHandshaking(s.inProgress)
            break
          }
          case 'advance':
          case 'sweep': {
            if (s.op === 'advance') clock.advance(s.ms)
            else manager.sweep()
            handles.forEach((h, i) => {
              if (h.state !== before[i]) expect(h.state).toBe('expired')
              // Expired only when due and not handshaking; everything due and free is expired.
              if (h.state === 'expired' && before[i] === 'reserved') expect(h.deadline).toBeLessThanOrEqual(clock.now())
              if (h.state === 'reserved' && !h.handshaking) expect(h.deadline).toBeGreaterThan(clock.now())
            })
            break
          }
        }
        check()
      }

      for (const h of handles) h.release('end')
      check()
      expect(manager.count).toBe(0)
      expect(manager.stats()).toMatchObject({ count: 0, handshaking: 0, addresses: 0 })
      // A timer left over finds nothing and is not set again.
      clock.advance(TTL)
      expect(clock.pending).toBe(0)
    }), { numRuns: 300 })
  })
})
