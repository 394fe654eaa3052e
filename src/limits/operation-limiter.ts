/**
 * OperationLimiter: one capacity shared by classes of operations, each with a guarantee, a ceiling
 * and a weight (HTB's rate/ceil with APF's lendable share). Placed above provider routing, so a
 * class limit holds however many providers there are. JS thread only.
 */
import { checkOptions, checkSignal, integer, invalidArgType, invalidArgValue, positiveNumber } from '../args.js'
import { limitsAbortedError, limitsClosedError } from './errors.js'

/** One class of operations. */
export interface OperationClassOptions {
  /** Permits this class can always reach (Σ over classes ≤ capacity). */
  guaranteed: number
  /** Permits this class never exceeds, borrowing included. Default: the capacity. */
  ceiling?: number
  /** Share of contended releases among borrowing classes. Default 1. */
  weight?: number
  /**
   * How much of the guarantee other classes may borrow while this class leaves it unused: `true`
   * (the default) all of it, `false` none, or a number of permits. A lent permit comes back at the
   * next releases (this class is served first), never by revoking one; an unlendable one is always
   * free for this class at once.
   */
  lendable?: boolean | number
}

export interface OperationLimiterOptions {
  /** Permits in use at once, over every class, at most. */
  capacity: number
  /** The classes, by name. */
  classes: Record<string, OperationClassOptions>
}

/** One class's figures in stats(). */
export interface OperationClassStats {
  inUse: number
  waiting: number
  /** Permits held beyond the guarantee: `max(0, inUse − guaranteed)`. */
  borrowed: number
  guaranteed: number
  ceiling: number
  weight: number
  /** Permits granted, in total. */
  granted: number
  /** Waits given up through their AbortSignal, in total. */
  aborted: number
  /** The most permits this class ever held at once. */
  peak: number
}

/** What stats() returns. */
export interface OperationLimiterStats {
  capacity: number
  inUse: number
  waiting: number
  /** Free permits kept for unused, unlendable guarantees. */
  reserved: number
  classes: Record<string, OperationClassStats>
}

interface Waiter {
  resolve: (permit: Permit) => void
  reject: (error: unknown) => void
  signal: AbortSignal | undefined
  onAbort: () => void
}

/** A class's live state. */
class ClassState {
  readonly name: string
  readonly guaranteed: number
  readonly ceiling: number
  readonly weight: number
  /** The unlendable part of the guarantee. */
  readonly keep: number
  inUse = 0
  /** FIFO; a Set so an aborted waiter leaves in O(1). */
  readonly waiters = new Set<Waiter>()
  /** Smooth weighted round-robin credit; reset when the class stops waiting. */
  credit = 0
  granted = 0
  aborted = 0
  peak = 0

  constructor (name: string, options: unknown, capacity: number) {
    const { guaranteed, ceiling, weight, lendable } = checkOptions(options, `classes.${name}`)
    this.name = name
    this.guaranteed = integer(`classes.${name}.guaranteed`, guaranteed, { min: 0 })
    this.ceiling = integer(`classes.${name}.ceiling`, ceiling ?? Infinity, { min: Math.max(1, this.guaranteed), infinite: true })
    this.weight = positiveNumber(`classes.${name}.weight`, weight ?? 1)
    if (lendable !== undefined && typeof lendable !== 'boolean') integer(`classes.${name}.lendable`, lendable, { min: 0 })
    if (typeof lendable === 'number' && lendable > this.guaranteed) {
      throw invalidArgValue(`classes.${name}.lendable`, `must be at most the guarantee (${this.guaranteed})`, lendable, true)
    }
    const lent = lendable === false ? 0 : typeof lendable === 'number' ? lendable : this.guaranteed
    this.keep = this.guaranteed - lent
    if (this.ceiling === Infinity) this.ceiling = Math.max(capacity, this.guaranteed)
  }

  /** Free capacity this class's unlendable guarantee still claims. */
  get reserve (): number {
    return this.inUse < this.keep ? this.keep - this.inUse : 0
  }
}

/**
 * One permit to run one operation of a class. release() hands it back; later calls do nothing
 * (a double release must never free someone else's permit).
 */
export class Permit {
  /** The class it was granted to. */
  readonly className: string
  #state: ClassState | undefined
  readonly #onRelease: (state: ClassState) => void

  /** @internal Made by the limiter. */
  constructor (state: ClassState, onRelease: (state: ClassState) => void) {
    this.className = state.name
    this.#state = state
    this.#onRelease = onRelease
  }

  /** Whether release() was called. */
  get released (): boolean {
    return this.#state === undefined
  }

  /** Hands the permit back; true the first time, false after. */
  release (): boolean {
    const state = this.#state
    if (state === undefined) return false
    this.#state = undefined
    this.#onRelease(state)
    return true
  }
}

/**
 * Grants permits by class. A class is admitted while it is under its ceiling and the free capacity
 * exceeds what other classes' unused, unlendable guarantees claim; so the total never exceeds the
 * capacity and no class is ever pushed below its unlendable guarantee. Waiters queue per class; a
 * release serves classes below their guarantee first (the releasing class itself, then the one
 * furthest below), then borrowers by weighted round-robin.
 */
export class OperationLimiter {
  #capacity: number
  readonly #classes: ClassState[]
  readonly #byName = new Map<string, ClassState>()
  #total = 0
  /** Σ reserve over classes, kept in step with every grant and release. */
  #reserved = 0
  #waiting = 0
  #closed = false
  readonly #release = (state: ClassState): void => this.#released(state)

  constructor (options: OperationLimiterOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
    this.#capacity = integer('capacity', options.capacity, { min: 1 })
    if (typeof options.classes !== 'object' || options.classes === null) throw invalidArgType('classes', 'an object', options.classes)
    this.#classes = Object.entries(options.classes).map(([name, init]) => new ClassState(name, init, this.#capacity))
    if (this.#classes.length === 0) throw invalidArgValue('classes', 'must name at least one class', options.classes)
    let guaranteed = 0
    for (const state of this.#classes) {
      this.#byName.set(state.name, state)
      guaranteed += state.guaranteed
      this.#reserved += state.keep
    }
    if (guaranteed > this.#capacity) throw invalidArgValue('classes', `guarantee ${guaranteed} permits in all, more than the capacity (${this.#capacity})`, options.classes, true)
  }

  /** Permits in use at once, at most (see resize()). */
  get capacity (): number {
    return this.#capacity
  }

  /** Permits held now, over every class. */
  get inUse (): number {
    return this.#total
  }

  /** Waiters now, over every class. */
  get waiting (): number {
    return this.#waiting
  }

  /** Whether close() was called. */
  get closed (): boolean {
    return this.#closed
  }

  /** The class names, in declaration order. */
  get classNames (): string[] {
    return this.#classes.map(state => state.name)
  }

  /**
   * A permit of class `cls` now, or null: the class is at its limit, has waiters already (no
   * overtaking them), or the limiter is closed.
   */
  tryAcquire (cls: string): Permit | null {
    const state = this.#class(cls)
    if (this.#closed || state.waiters.size > 0 || !this.#admits(state)) return null
    return this.#grant(state)
  }

  /**
   * A permit of class `cls`, at once or when a release makes room for it. Rejects with
   * ERR_LIMITS_ABORTED if `signal` aborts first (the waiter is gone without a trace), and with
   * ERR_LIMITS_CLOSED if the limiter is or gets closed.
   */
  acquire (cls: string, options?: { signal?: AbortSignal }): Promise<Permit> {
    const state = this.#class(cls)
    const signal = checkSignal(checkOptions(options, 'options').signal)
    if (this.#closed) return Promise.reject(limitsClosedError('The limiter'))
    if (signal?.aborted === true) return Promise.reject(limitsAbortedError(signal, 'acquire()'))
    if (state.waiters.size === 0 && this.#admits(state)) return Promise.resolve(this.#grant(state))
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          if (!state.waiters.delete(waiter)) return
          this.#left(state)
          state.aborted++
          reject(limitsAbortedError(signal as AbortSignal, 'acquire()'))
        }
      }
      state.waiters.add(waiter)
      this.#waiting++
      signal?.addEventListener('abort', waiter.onAbort, { once: true })
    })
  }

  /**
   * A new capacity. Lowering it never revokes a permit: the excess drains as permits are released.
   * Raising it serves waiters at once. Guarantees beyond a lowered capacity are served first come.
   */
  resize (capacity: number): void {
    this.#capacity = integer('capacity', capacity, { min: 0 })
    this.#dispatch()
  }

  /** Per-class and overall figures now (a copy). */
  stats (): OperationLimiterStats {
    const classes: Record<string, OperationClassStats> = {}
    for (const state of this.#classes) {
      classes[state.name] = {
        inUse: state.inUse,
        waiting: state.waiters.size,
        borrowed: Math.max(0, state.inUse - state.guaranteed),
        guaranteed: state.guaranteed,
        ceiling: state.ceiling,
        weight: state.weight,
        granted: state.granted,
        aborted: state.aborted,
        peak: state.peak
      }
    }
    return { capacity: this.#capacity, inUse: this.#total, waiting: this.#waiting, reserved: this.#reserved, classes }
  }

  /**
   * Rejects every waiter and every later acquire() with ERR_LIMITS_CLOSED; tryAcquire() returns
   * null. Permits held stay valid until released. Idempotent; done at once (the promise is for
   * uniformity with every other close()).
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const state of this.#classes) {
      for (const waiter of state.waiters) {
        waiter.signal?.removeEventListener('abort', waiter.onAbort)
        waiter.reject(limitsClosedError('The limiter'))
      }
      state.waiters.clear()
      state.credit = 0
    }
    this.#waiting = 0
  }

  #class (cls: string): ClassState {
    if (typeof cls !== 'string') throw invalidArgType('cls', 'a string', cls)
    const state = this.#byName.get(cls)
    if (state === undefined) throw invalidArgValue('cls', `must be one of ${this.#classes.map(s => s.name).join(', ')}`, cls)
    return state
  }

  /** Room for one more permit of `state`: under its ceiling and not eating other classes' reserve. */
  #admits (state: ClassState): boolean {
    return state.inUse < state.ceiling && this.#capacity - this.#total > this.#reserved - state.reserve
  }

  #grant (state: ClassState): Permit {
    if (state.inUse < state.keep) this.#reserved--
    state.inUse++
    this.#total++
    state.granted++
    if (state.inUse > state.peak) state.peak = state.inUse
    return new Permit(state, this.#release)
  }

  #released (state: ClassState): void {
    state.inUse--
    this.#total--
    if (state.inUse < state.keep) this.#reserved++
    if (this.#waiting > 0) this.#dispatch(state)
  }

  /** A waiter left `state`'s queue (served or aborted). */
  #left (state: ClassState): void {
    this.#waiting--
    // Round-robin credit is for a continuous wait; a class coming back starts level (as DRR does).
    if (state.waiters.size === 0) state.credit = 0
  }

  /**
   * Serves waiters while any class can be admitted. `released` is the class whose release freed
   * the first permit: if it is waiting below its guarantee, that permit stays with it (it was using
   * its own guarantee, not borrowing; lenders are paid back from borrowers' releases).
   */
  #dispatch (released?: ClassState): void {
    while (this.#waiting > 0) {
      const own = released !== undefined && released.waiters.size > 0 && released.inUse < released.guaranteed && this.#admits(released)
      const state = own ? released : this.#next()
      released = undefined
      if (state === undefined) return
      const waiter = state.waiters.values().next().value as Waiter
      state.waiters.delete(waiter)
      this.#left(state)
      waiter.signal?.removeEventListener('abort', waiter.onAbort)
      waiter.resolve(this.#grant(state))
    }
  }

  /**
   * The class the next free permit goes to: the waiting class furthest below its guarantee, else
   * a borrower by smooth weighted round-robin (each eligible class gains its weight in credit, the
   * richest is served and pays the sum), which keeps each borrower within one grant of its share.
   */
  #next (): ClassState | undefined {
    let best: ClassState | undefined
    for (const state of this.#classes) {
      if (state.waiters.size === 0 || state.inUse >= state.guaranteed || !this.#admits(state)) continue
      if (best === undefined || state.guaranteed - state.inUse > best.guaranteed - best.inUse) best = state
    }
    if (best !== undefined) return best
    let weights = 0
    for (const state of this.#classes) {
      if (state.waiters.size === 0 || !this.#admits(state)) continue
      state.credit += state.weight
      weights += state.weight
      if (best === undefined || state.credit > best.credit) best = state
    }
    if (best !== undefined) best.credit -= weights
    return best
  }
}
