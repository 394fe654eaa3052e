/**
 * TransientConnectionManager: admission for connections that are not yet peers (handshaking,
 * upgrading). A bounded set of reservation handles, each with its own state machine, expired by one
 * sweep timer. JS thread only: every check-and-update runs without an await in between.
 */
import { EventEmitter } from 'node:events'
import { checkOptions, integer, invalidArgType, nonEmptyString, positiveNumber } from '../args.js'
import { clockOption, type Clock } from './clock.js'
import { HISTOGRAM_BUCKETS, MillisecondHistogram, type Histogram, type MetricsSink, type SinkCounter, type SinkGauge, type SinkHistogram } from '../metrics.js'

/** A reservation's state: `reserved` until exactly one terminal transition. */
export type ReservationState = 'reserved' | 'promoted' | 'released' | 'expired'

/** Why tryReserve() refused. */
export type RejectReason =
  /** `count` is at `budget`. */
  | 'budget'
  /** The address already holds `perAddressLimit` reservations. */
  | 'perAddress'
  /** The key already holds a reservation (released, promoted or expired ones do not count). */
  | 'duplicate'
  /** The manager is closed. */
  | 'closed'

/** A reservation key: a connection id, or a remote address and port. */
export type ReservationKey = string | number

/** What tryReserve() is told about a connection besides its key. */
export interface ReservationMeta {
  /** The remote address (an IP, without port) counted against `perAddressLimit`. */
  address?: string
  /** Start with the handshake marked in progress (see `setHandshaking()`). Default false. */
  handshaking?: boolean
}

/** How a reservation ended. The same object is returned by every later promote() or release(). */
export interface ReservationOutcome<P = unknown> {
  readonly state: 'promoted' | 'released' | 'expired'
  /** The peer given to promote(). */
  readonly peer?: P
  /** The reason given to release() (`'closed'` when the manager closed), or `'ttl'` for expiry. */
  readonly reason?: string
  /** Milliseconds from the reservation to this outcome: the time to promotion, for a promotion. */
  readonly heldMs: number
}

export interface TransientConnectionManagerOptions {
  /** Reservations held at once, at most. */
  budget: number
  /** Milliseconds a reservation may stay `reserved` (handshakes in progress excepted). */
  ttl: number
  /** Reservations held at once per `meta.address`, at most. Default Infinity. */
  perAddressLimit?: number
  /** Time source; tests pass a fake one. Default: `performance.now()` and unref'd timers. */
  clock?: Clock
  /**
   * Where the figures go too (`promClientSink(registry)`, `libp2pSink(metrics)`): the reservations
   * held (`node_msquic_transient_reservations`), their outcomes and refusals
   * (`node_msquic_transient_total{outcome}`) and the time to promotion in seconds.
   */
  metrics?: MetricsSink
}

/** What stats() returns: gauges, then totals since construction. */
export interface TransientStats {
  /** Reservations held now (`reserved` state). */
  count: number
  budget: number
  /** Of `count`, those with a handshake marked in progress. */
  handshaking: number
  /** Distinct addresses holding reservations now. */
  addresses: number
  /** The most reservations ever held at once. */
  peak: number
  reserved: number
  promoted: number
  released: number
  expired: number
  /** promote() calls on reservations that had already expired (one per reservation). */
  latePromotions: number
  rejected: Record<RejectReason, number>
  /** Milliseconds from tryReserve() to promote(). */
  timeToPromote: Histogram
}

/** Events of {@link TransientConnectionManager}. */
export interface TransientEvents<P = unknown> {
  reserved: [reservation: Reservation<P>]
  rejected: [info: { key: ReservationKey, address?: string, reason: RejectReason }]
  promoted: [reservation: Reservation<P>, outcome: ReservationOutcome<P>]
  released: [reservation: Reservation<P>, outcome: ReservationOutcome<P>]
  expired: [reservation: Reservation<P>, outcome: ReservationOutcome<P>]
  /** promote() came after expiry: the outcome stays `expired`; the caller decides what follows. */
  latePromotion: [reservation: Reservation<P>, peer: P]
}

/** What a reservation tells its manager; closures over the manager's private state. */
interface Owner<P> {
  now: () => number
  ended: (reservation: Reservation<P>, outcome: ReservationOutcome<P>) => void
  latePromotion: (reservation: Reservation<P>, peer: P) => void
  handshakeChanged: (reservation: Reservation<P>, inProgress: boolean) => void
}

// The manager's way into a reservation's state machine; not part of the public surface.
/**
 * The address to count a connection from remote IP `ip` under (`ReservationMeta.address`):
 * undefined for loopback, which has no per-address limit (it is this host: the registries of one
 * machine, tests; not one remote host taking the budget).
 */
export function perAddressKey (ip: string | undefined): string | undefined {
  return ip === undefined || ip === '127.0.0.1' || ip === '::1' || ip.startsWith('::ffff:127.') ? undefined : ip
}

const kExpire = Symbol('expire')

/**
 * One transient connection's hold on the budget. Ends exactly once: promote(), release() or expiry.
 * Later promote()/release() calls return the first outcome and change nothing, so error paths can
 * release unconditionally.
 */
export class Reservation<P = unknown> {
  /** The key given to tryReserve(). */
  readonly key: ReservationKey
  /** `meta.address`, counted against `perAddressLimit`. */
  readonly address?: string
  /**
   * Increases with every reservation of the manager: a handle, an event or a sweep naming an older
   * generation never touches a newer reservation of the same key.
   */
  readonly generation: number
  /** Clock time of the reservation, in ms. */
  readonly reservedAt: number
  /** Clock time after which the sweep expires it (unless handshaking), in ms. */
  readonly deadline: number
  readonly #owner: Owner<P>
  #handshaking: boolean
  #outcome: ReservationOutcome<P> | undefined
  #lateReported = false

  /** @internal Made by tryReserve(). */
  constructor (owner: Owner<P>, key: ReservationKey, address: string | undefined, handshaking: boolean, generation: number, now: number, ttl: number) {
    this.#owner = owner
    this.key = key
    if (address !== undefined) this.address = address
    this.#handshaking = handshaking
    this.generation = generation
    this.reservedAt = now
    this.deadline = now + ttl
  }

  /** `reserved`, then `promoted`, `released` or `expired` for good. */
  get state (): ReservationState {
    return this.#outcome?.state ?? 'reserved'
  }

  /** How it ended; undefined while `reserved`. */
  get outcome (): ReservationOutcome<P> | undefined {
    return this.#outcome
  }

  /** Whether the handshake is marked in progress: the sweep never expires it then. */
  get handshaking (): boolean {
    return this.#handshaking
  }

  /**
   * Marks the handshake in progress (or done). While in progress the sweep leaves the reservation
   * alone even past its deadline: expiry must not cut a handshake that is still running (bound it
   * with the handshake's own timeout). Once done, an overdue reservation expires at the next sweep.
   * No effect once the reservation has ended.
   */
  setHandshaking (inProgress: boolean): void {
    if (typeof inProgress !== 'boolean') throw invalidArgType('inProgress', 'a boolean', inProgress)
    if (this.#outcome !== undefined || this.#handshaking === inProgress) return
    this.#handshaking = inProgress
    this.#owner.handshakeChanged(this, inProgress)
  }

  /**
   * Ends the reservation as a peer: the budget is freed and the time to promotion recorded.
   * After expiry this returns the `expired` outcome and reports it (the `latePromotion` event and
   * counter) instead of skipping silently: re-admit through tryReserve(), or refuse the peer.
   */
  promote (peer: P): ReservationOutcome<P> {
    if (this.#outcome === undefined) return this.#end('promoted', peer, undefined)
    if (this.#outcome.state === 'expired' && !this.#lateReported) {
      this.#lateReported = true
      this.#owner.latePromotion(this, peer)
    }
    return this.#outcome
  }

  /** Ends the reservation without a peer (a failed handshake, a refused upgrade, a close). */
  release (reason = 'released'): ReservationOutcome<P> {
    if (typeof reason !== 'string') throw invalidArgType('reason', 'a string', reason)
    return this.#outcome ?? this.#end('released', undefined, reason)
  }

  /** @internal The sweep's transition; refused while handshaking or once ended. */
  [kExpire] (generation: number): boolean {
    if (generation !== this.generation || this.#outcome !== undefined || this.#handshaking) return false
    this.#end('expired', undefined, 'ttl')
    return true
  }

  #end (state: ReservationOutcome['state'], peer: P | undefined, reason: string | undefined): ReservationOutcome<P> {
    // One object per reservation, shared by every later call: typed readonly, built without spreads
    // (this is the hot path of every admission).
    const outcome: { state: ReservationOutcome['state'], peer?: P, reason?: string, heldMs: number } = { state, heldMs: this.#owner.now() - this.reservedAt }
    if (peer !== undefined) outcome.peer = peer
    if (reason !== undefined) outcome.reason = reason
    this.#outcome = outcome
    if (this.#handshaking) {
      this.#handshaking = false
      this.#owner.handshakeChanged(this, false)
    }
    this.#owner.ended(this, outcome)
    return outcome
  }
}

/**
 * Holds at most `budget` connections in the transient state, and at most `perAddressLimit` per
 * address. tryReserve() hands out {@link Reservation} handles; the manager only counts what the
 * handles tell it, so its counters always equal its live entries.
 */
export class TransientConnectionManager<P = unknown> extends EventEmitter<TransientEvents<P>> {
  readonly #budget: number
  readonly #ttl: number
  readonly #perAddressLimit: number
  readonly #clock: Clock
  // Insertion order is deadline order (one TTL, a monotonic clock): the sweep stops at the first
  // entry not yet due.
  readonly #entries = new Map<ReservationKey, Reservation<P>>()
  readonly #perAddress = new Map<string, number>()
  readonly #owner: Owner<P>
  readonly #timeToPromote = new MillisecondHistogram()
  readonly #sink?: TransientSink
  readonly #rejected: Record<RejectReason, number> = { budget: 0, perAddress: 0, duplicate: 0, closed: 0 }
  readonly #totals = { reserved: 0, promoted: 0, released: 0, expired: 0, latePromotions: 0 }
  #generation = 0
  #handshaking = 0
  #peak = 0
  #timer: unknown
  #timerAt = 0
  #closed = false

  constructor (options: TransientConnectionManagerOptions) {
    super()
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
    this.#budget = integer('budget', options.budget, { min: 1 })
    this.#ttl = positiveNumber('ttl', options.ttl)
    this.#perAddressLimit = integer('perAddressLimit', options.perAddressLimit ?? Infinity, { min: 1, infinite: true })
    this.#clock = clockOption(options.clock)
    if (options.metrics !== undefined) this.#sink = sinkMetrics(options.metrics)
    this.#owner = {
      now: () => this.#clock.now(),
      ended: (reservation, outcome) => this.#ended(reservation, outcome),
      latePromotion: (reservation, peer) => {
        this.#totals.latePromotions++
        this.emit('latePromotion', reservation, peer)
      },
      handshakeChanged: (reservation, inProgress) => {
        this.#handshaking += inProgress ? 1 : -1
        // A finished handshake may leave the reservation overdue: the timer must cover it.
        if (!inProgress && reservation.state === 'reserved') this.#armAt(reservation.deadline)
      }
    }
  }

  /** Reservations held now. */
  get count (): number {
    return this.#entries.size
  }

  /** Reservations held at once, at most. */
  get budget (): number {
    return this.#budget
  }

  /** Milliseconds a reservation may stay `reserved` without a handshake in progress. */
  get ttl (): number {
    return this.#ttl
  }

  /** Whether close() was called. */
  get closed (): boolean {
    return this.#closed
  }

  /**
   * A reservation for `key`, or null when refused: over budget, over the per-address limit, the key
   * already reserved, or the manager closed. A refusal is counted in stats() and emitted
   * (`rejected`), and costs nothing to undo.
   */
  tryReserve (key: ReservationKey, meta?: ReservationMeta): Reservation<P> | null {
    checkKey(key)
    const { address, handshaking } = checkOptions(meta, 'meta')
    if (address !== undefined) nonEmptyString('meta.address', address)
    if (handshaking !== undefined && typeof handshaking !== 'boolean') throw invalidArgType('meta.handshaking', 'a boolean', handshaking)
    const reason = this.#refusal(key, address as string | undefined)
    if (reason !== undefined) {
      this.#rejected[reason]++
      this.#sink?.outcomes.add(1, `rejected_${reason}`)
      this.emit('rejected', address === undefined ? { key, reason } : { key, address: address as string, reason })
      return null
    }
    const reservation = new Reservation<P>(this.#owner, key, address as string | undefined, handshaking === true, ++this.#generation, this.#clock.now(), this.#ttl)
    this.#entries.set(key, reservation)
    if (address !== undefined) this.#perAddress.set(address as string, (this.#perAddress.get(address as string) ?? 0) + 1)
    if (handshaking === true) this.#handshaking++
    else this.#armAt(reservation.deadline)
    this.#totals.reserved++
    if (this.#entries.size > this.#peak) this.#peak = this.#entries.size
    this.#sink?.outcomes.add(1, 'reserved')
    this.#sink?.held.set(this.#entries.size)
    try {
      this.emit('reserved', reservation)
    } catch (error) {
      // The caller never gets the handle: give the slot back rather than hold it until the TTL.
      reservation.release('error')
      throw error
    }
    return reservation
  }

  /** Whether `key` holds a reservation now. */
  isTransient (key: ReservationKey): boolean {
    checkKey(key)
    return this.#entries.has(key)
  }

  /** The reservation `key` holds now, if any. */
  get (key: ReservationKey): Reservation<P> | undefined {
    checkKey(key)
    return this.#entries.get(key)
  }

  /**
   * Expires every reservation past its deadline whose handshake is not in progress; returns how
   * many. The manager's one timer calls it; tests with a fake clock may call it directly.
   */
  sweep (): number {
    const now = this.#clock.now()
    let expired = 0
    for (const reservation of this.#entries.values()) {
      if (reservation.handshaking) continue
      if (reservation.deadline > now) break
      if (reservation[kExpire](reservation.generation)) expired++
    }
    this.#arm()
    return expired
  }

  /** Counters and gauges now (a copy). */
  stats (): TransientStats {
    return {
      count: this.#entries.size,
      budget: this.#budget,
      handshaking: this.#handshaking,
      addresses: this.#perAddress.size,
      peak: this.#peak,
      ...this.#totals,
      rejected: { ...this.#rejected },
      timeToPromote: this.#timeToPromote.snapshot()
    }
  }

  /**
   * Refuses every later tryReserve() (reason `closed`) and releases every reservation held, with
   * reason `'closed'`. Idempotent; done at once (the promise is for uniformity with every other
   * close()).
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const reservation of this.#entries.values()) reservation.release('closed')
    this.#disarm()
  }

  #refusal (key: ReservationKey, address: string | undefined): RejectReason | undefined {
    if (this.#closed) return 'closed'
    if (this.#entries.has(key)) return 'duplicate'
    if (this.#entries.size >= this.#budget) return 'budget'
    if (address !== undefined && (this.#perAddress.get(address) ?? 0) >= this.#perAddressLimit) return 'perAddress'
    return undefined
  }

  #ended (reservation: Reservation<P>, outcome: ReservationOutcome<P>): void {
    // Only the live handle of its key is in the map: an older generation can never remove a newer one.
    if (this.#entries.get(reservation.key) === reservation) this.#entries.delete(reservation.key)
    if (reservation.address !== undefined) {
      const left = (this.#perAddress.get(reservation.address) ?? 1) - 1
      if (left === 0) this.#perAddress.delete(reservation.address)
      else this.#perAddress.set(reservation.address, left)
    }
    this.#totals[outcome.state]++
    if (outcome.state === 'promoted') {
      this.#timeToPromote.observe(outcome.heldMs)
      this.#sink?.timeToPromote.observe(outcome.heldMs / 1000)
    }
    this.#sink?.outcomes.add(1, outcome.state)
    this.#sink?.held.set(this.#entries.size)
    // The timer stays set when the map empties: it finds nothing and stops. Clearing it here would
    // cost a new timer for the next reservation, on every admission of an idle node.
    this.emit(outcome.state, reservation, outcome)
  }

  /** Sets the one timer for the earliest deadline that can expire, unless one is set already. */
  #arm (): void {
    if (this.#timer !== undefined) return
    for (const reservation of this.#entries.values()) {
      if (reservation.handshaking) continue
      this.#armAt(reservation.deadline)
      return
    }
  }

  /** Makes the one timer fire by `deadline`: kept if it already does, moved earlier if not. */
  #armAt (deadline: number): void {
    if (this.#closed || (this.#timer !== undefined && this.#timerAt <= deadline)) return
    this.#disarm()
    this.#timerAt = deadline
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined
      this.sweep()
    }, Math.max(0, deadline - this.#clock.now()))
  }

  #disarm (): void {
    if (this.#timer === undefined) return
    this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

interface TransientSink {
  held: SinkGauge
  outcomes: SinkCounter
  timeToPromote: SinkHistogram
}

function sinkMetrics (sink: MetricsSink): TransientSink {
  if (typeof sink?.counter !== 'function') throw invalidArgType('metrics', 'a MetricsSink', sink)
  const prefix = 'node_msquic_transient_'
  return {
    held: sink.gauge(`${prefix}reservations`, { help: 'Transient connections holding a reservation now' }),
    outcomes: sink.counter(`${prefix}total`, { help: 'Reservations made, ended (promoted, released, expired) and refused (rejected_<reason>)', label: 'outcome' }),
    timeToPromote: sink.histogram(`${prefix}promote_seconds`, { help: 'Time from reservation to promotion', buckets: HISTOGRAM_BUCKETS.map(ms => ms / 1000) })
  }
}

function checkKey (key: unknown): void {
  if (typeof key !== 'string' && typeof key !== 'number') throw invalidArgType('key', 'a string or a number', key)
}
