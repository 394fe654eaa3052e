/**
 * ProviderPool: connections to several interchangeable providers behind one OperationLimiter. The
 * class permit is acquired before a provider is chosen, so class limits hold over all providers
 * together (per-provider limits multiply by the number of providers). JS thread only.
 */
import { setMaxListeners } from 'node:events'
import { checkOptions, checkSignal, integer, invalidArgType, invalidArgValue, nonEmptyString } from '../args.js'
import { LimitsError, LimitsErrorCode, limitsAbortedError, limitsClosedError } from './errors.js'
import { OperationLimiter, type Permit } from './operation-limiter.js'
import { Semaphore } from './semaphore.js'

/** One provider: how to reach it and how many connections it allows. */
export interface ProviderOptions<C> {
  /** Unique within the pool. */
  id: string
  /** Opens one connection; rejects on failure (the pool then tries the next provider). */
  connect: (options: { signal?: AbortSignal }) => Promise<C>
  /** Connections open (idle, busy or opening) at once to this provider, at most. */
  maxConnections: number
  /** Closes a connection the pool no longer keeps. Errors are ignored. */
  close?: (connection: C) => void | Promise<void>
  /** Whether an idle connection can still be used; checked before reuse and when handed back. */
  alive?: (connection: C) => boolean
}

export interface ProviderPoolOptions<C> {
  /** The providers to start with (see addProvider()). Default none. */
  providers?: Array<ProviderOptions<C>>
  /** The limiter every run() acquires its class permit from; shared, never closed by the pool. */
  limiter: OperationLimiter
}

/** What run()'s function is given besides the connection. */
export interface RunContext {
  /** The provider the connection belongs to. */
  provider: string
  /** run()'s signal (aborted too when the pool closes). */
  signal: AbortSignal
}

/** One provider's figures in stats(). */
export interface ProviderStats {
  id: string
  maxConnections: number
  /** Connections open now: idle plus busy. */
  open: number
  idle: number
  busy: number
  opening: number
  /** Successful and failed connects, in total. */
  connects: number
  failures: number
  /** Failures since the last successful connect. */
  consecutiveFailures: number
}

/** What stats() returns. */
export interface ProviderPoolStats {
  providers: ProviderStats[]
  /** Runs holding a permit but waiting for a provider with room (after failures or removals). */
  waiting: number
  /** The provider tried first: the last one that worked. */
  preferred?: string
}

/** A provider's live state. */
class Provider<C> {
  readonly id: string
  readonly connect: ProviderOptions<C>['connect']
  readonly max: number
  readonly closeConnection?: ProviderOptions<C>['close']
  readonly alive?: ProviderOptions<C>['alive']
  readonly idle: C[] = []
  busy = 0
  opening = 0
  /** Slots handed to waiting runs that have not taken them yet. */
  claimed = 0
  connects = 0
  failures = 0
  consecutiveFailures = 0
  removed = false
  readonly closing = new Set<Promise<void>>()
  drained?: () => void

  constructor (options: unknown) {
    const { id, connect, maxConnections, close, alive } = checkOptions(options, 'provider')
    this.id = nonEmptyString('provider.id', id)
    if (typeof connect !== 'function') throw invalidArgType('provider.connect', 'a function', connect)
    if (close !== undefined && typeof close !== 'function') throw invalidArgType('provider.close', 'a function', close)
    if (alive !== undefined && typeof alive !== 'function') throw invalidArgType('provider.alive', 'a function', alive)
    this.connect = connect as Provider<C>['connect']
    this.max = integer('provider.maxConnections', maxConnections, { min: 1 })
    this.closeConnection = close as Provider<C>['closeConnection']
    this.alive = alive as Provider<C>['alive']
  }

  /** The `alive` hook's answer; a hook that throws says no (the connection is closed, not leaked). */
  isAlive (connection: C): boolean {
    if (this.alive === undefined) return true
    try {
      return this.alive(connection)
    } catch {
      return false
    }
  }

  /** Runs it can take now: idle connections plus room to open more. */
  get available (): number {
    return this.removed ? 0 : this.max - this.busy - this.opening - this.claimed
  }

  /** Whether anything of it is still in use: busy, opening or claimed. */
  get inUse (): boolean {
    return this.busy + this.opening + this.claimed > 0
  }
}

interface Lease<C> {
  provider: Provider<C>
  connection: C
}

/**
 * Runs operations on pooled provider connections: permit first, then the provider with room
 * (the last one that worked first), a reused or new connection within that provider's limit,
 * the next provider when connecting fails, and the connection back to the pool afterwards.
 */
export class ProviderPool<C> {
  readonly #limiter: OperationLimiter
  readonly #providers = new Map<string, Provider<C>>()
  // Runs holding a permit and waiting for a provider with room. The providers' room is each
  // waiter's own limit (`admits`), so the count is unbounded.
  readonly #waiting = new Semaphore(Infinity, {
    closedError: () => limitsClosedError('The pool'),
    abortedError: signal => this.#closed ? limitsClosedError('The pool') : limitsAbortedError(signal, 'run()')
  })
  readonly #removals = new Set<Promise<void>>()
  readonly #closing = new AbortController()
  #preferred: Provider<C> | undefined
  #closed = false
  #closedPromise: Promise<void> | undefined

  constructor (options: ProviderPoolOptions<C>) {
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'an object', options)
    if (!(options.limiter instanceof OperationLimiter)) throw invalidArgType('limiter', 'an OperationLimiter', options.limiter)
    this.#limiter = options.limiter
    // Every waiting run listens to the pool's close; there may be thousands.
    setMaxListeners(0, this.#closing.signal)
    const providers = options.providers ?? []
    if (!Array.isArray(providers)) throw invalidArgType('providers', 'an array', providers)
    for (const provider of providers) this.addProvider(provider)
  }

  /** The limiter run() takes permits from. */
  get limiter (): OperationLimiter {
    return this.#limiter
  }

  /** Whether close() was called. */
  get closed (): boolean {
    return this.#closed
  }

  /** Provider ids, in the order they were added. */
  get providers (): string[] {
    return [...this.#providers.keys()]
  }

  /** Adds a provider; waiting runs may use it at once. */
  addProvider (options: ProviderOptions<C>): void {
    if (this.#closed) throw limitsClosedError('The pool')
    const provider = new Provider<C>(options)
    if (this.#providers.has(provider.id)) throw invalidArgValue('provider.id', 'is already in the pool', provider.id)
    this.#providers.set(provider.id, provider)
    this.#waiting.serve()
  }

  /**
   * Removes a provider: no new run goes to it, its idle connections close, and busy ones close when
   * their runs finish (nothing is cut). Resolves once all of them are closed. Unknown ids resolve.
   */
  removeProvider (id: string): Promise<void> {
    nonEmptyString('id', id)
    const provider = this.#providers.get(id)
    if (provider === undefined) return Promise.resolve()
    this.#providers.delete(id)
    provider.removed = true
    if (this.#preferred === provider) this.#preferred = undefined
    for (const connection of provider.idle.splice(0)) this.#discard(provider, connection)
    const removal = new Promise<void>(resolve => { provider.drained = resolve })
    this.#removals.add(removal)
    void removal.then(() => this.#removals.delete(removal))
    this.#checkDrained(provider)
    this.#waiting.serve()
    return removal
  }

  /**
   * Runs `fn` with a connection for an operation of class `cls`: waits for the class permit, then
   * for a provider connection; hands both back when `fn` settles and returns what `fn` returns.
   * An error from `fn` is rethrown as is, never retried (it may have had effects); the connection
   * is reused if `alive` says so. Rejects with ERR_LIMITS_ABORTED, ERR_LIMITS_CLOSED,
   * ERR_LIMITS_NO_PROVIDER, or ERR_LIMITS_PROVIDERS_FAILED when every provider failed to connect.
   */
  run<R> (cls: string, fn: (connection: C, context: RunContext) => R | Promise<R>, options?: { signal?: AbortSignal }): Promise<R> {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'a function', fn)
    const own = checkSignal(checkOptions(options, 'options').signal)
    if (this.#closed) return Promise.reject(limitsClosedError('The pool'))
    const signal = own === undefined ? this.#closing.signal : AbortSignal.any([own, this.#closing.signal])
    // Synchronous: an unknown class throws here, before anything waits.
    const permit = this.#limiter.acquire(cls, { signal })
    return this.#run(permit, fn, signal)
  }

  async #run<R> (pending: Promise<Permit>, fn: (connection: C, context: RunContext) => R | Promise<R>, signal: AbortSignal): Promise<R> {
    let permit
    try {
      permit = await pending
    } catch (error) {
      throw this.#closed ? limitsClosedError('The pool') : error
    }
    try {
      const lease = await this.#lease(signal)
      try {
        const result = await fn(lease.connection, { provider: lease.provider.id, signal })
        if (!lease.provider.removed) this.#preferred = lease.provider
        return result
      } finally {
        this.#giveBack(lease)
      }
    } finally {
      permit.release()
    }
  }

  /** Per-provider figures now (a copy). */
  stats (): ProviderPoolStats {
    const providers = [...this.#providers.values()].map(p => ({
      id: p.id,
      maxConnections: p.max,
      open: p.idle.length + p.busy,
      idle: p.idle.length,
      busy: p.busy,
      opening: p.opening,
      connects: p.connects,
      failures: p.failures,
      consecutiveFailures: p.consecutiveFailures
    }))
    return { providers, waiting: this.#waiting.waiting, ...(this.#preferred !== undefined && { preferred: this.#preferred.id }) }
  }

  /**
   * Refuses new runs, aborts waiting ones (ERR_LIMITS_CLOSED), closes idle connections, and resolves
   * once running ones have finished and every connection is closed. Idempotent.
   */
  close (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#closing.abort(limitsClosedError('The pool'))
      this.#waiting.close()
      const removals = [...this.#providers.keys()].map(id => this.removeProvider(id))
      this.#closedPromise = Promise.all([...removals, ...this.#removals]).then(() => {})
    }
    return this.#closedPromise as Promise<void>
  }

  /** A connection from the best provider with room, trying the next on a failed connect. */
  async #lease (signal: AbortSignal): Promise<Lease<C>> {
    const tried = new Set<Provider<C>>()
    const errors: unknown[] = []
    for (;;) {
      if (this.#closed) throw limitsClosedError('The pool')
      let provider = this.#claim(tried)
      if (provider === undefined) {
        if (!this.#hasUntried(tried)) {
          throw errors.length === 0
            ? new LimitsError(LimitsErrorCode.NO_PROVIDER, 'The pool has no provider')
            : new LimitsError(LimitsErrorCode.PROVIDERS_FAILED, `Every provider failed to connect (${errors.length})`, { errors, cause: errors.at(-1) })
        }
        provider = await this.#waitForSlot(tried, signal)
        if (provider === undefined) continue
      }
      provider.claimed--
      // Removed between the claim and now: its slot is gone.
      if (provider.removed) {
        this.#checkDrained(provider)
        continue
      }
      const reused = this.#reuse(provider)
      if (reused !== undefined) return reused
      provider.opening++
      let connection: C
      try {
        connection = await provider.connect({ signal })
      } catch (error) {
        provider.opening--
        provider.failures++
        provider.consecutiveFailures++
        if (this.#preferred === provider) this.#preferred = undefined
        this.#checkDrained(provider)
        this.#waiting.serve()
        if (signal.aborted) throw this.#closed ? limitsClosedError('The pool') : limitsAbortedError(signal, 'run()')
        errors.push(error)
        tried.add(provider)
        continue
      }
      provider.opening--
      provider.connects++
      provider.consecutiveFailures = 0
      if (provider.removed || this.#closed) {
        this.#discard(provider, connection)
        this.#checkDrained(provider)
        continue
      }
      provider.busy++
      return { provider, connection }
    }
  }

  /** An idle connection of `provider` that is still alive; dead ones are closed on the way. */
  #reuse (provider: Provider<C>): Lease<C> | undefined {
    for (let connection = provider.idle.pop(); connection !== undefined; connection = provider.idle.pop()) {
      if (provider.isAlive(connection)) {
        provider.busy++
        return { provider, connection }
      }
      this.#discard(provider, connection)
    }
    return undefined
  }

  #giveBack ({ provider, connection }: Lease<C>): void {
    provider.busy--
    if (!provider.removed && !this.#closed && provider.isAlive(connection)) {
      provider.idle.push(connection)
    } else {
      this.#discard(provider, connection)
      this.#checkDrained(provider)
    }
    this.#waiting.serve()
  }

  /**
   * Claims a slot at the best provider not yet tried: the preferred one, then the fewest failures
   * in a row, then the most idle connections, then the most room.
   */
  #claim (tried: ReadonlySet<Provider<C>>): Provider<C> | undefined {
    let best: Provider<C> | undefined
    for (const provider of this.#providers.values()) {
      if (tried.has(provider) || provider.available <= 0) continue
      if (provider === this.#preferred) {
        best = provider
        break
      }
      if (best === undefined || better(provider, best)) best = provider
    }
    if (best !== undefined) best.claimed++
    return best
  }

  #hasUntried (tried: ReadonlySet<Provider<C>>): boolean {
    for (const provider of this.#providers.values()) if (!tried.has(provider)) return true
    return false
  }

  /** Waits until an untried provider has room (all are busy, after failures or removals). */
  #waitForSlot (tried: ReadonlySet<Provider<C>>, signal: AbortSignal): Promise<Provider<C> | undefined> {
    return new Promise((resolve, reject) => {
      let provider: Provider<C> | undefined
      this.#waiting.wait({
        signal,
        // Its turn comes with a slot claimed for it, or with nothing left to try (it looks again).
        admits: () => (provider = this.#claim(tried)) !== undefined || !this.#hasUntried(tried),
        granted: release => {
          release()
          resolve(provider)
        },
        dropped: (_reason, error) => { reject(error) }
      })
    })
  }

  #discard (provider: Provider<C>, connection: C): void {
    if (provider.closeConnection === undefined) return
    const close = provider.closeConnection
    const closing = (async () => { await close(connection) })().catch(() => {})
    provider.closing.add(closing)
    void closing.then(() => provider.closing.delete(closing))
  }

  /** Resolves a removed provider's removal once nothing of it is in use or closing. */
  #checkDrained (provider: Provider<C>): void {
    if (!provider.removed || provider.inUse || provider.drained === undefined) return
    const drained = provider.drained
    provider.drained = undefined
    void Promise.all(provider.closing).then(() => drained())
  }
}

/** Provider preference, `a` before `b`? */
function better<C> (a: Provider<C>, b: Provider<C>): boolean {
  if (a.consecutiveFailures !== b.consecutiveFailures) return a.consecutiveFailures < b.consecutiveFailures
  if (a.idle.length !== b.idle.length) return a.idle.length > b.idle.length
  return a.available > b.available
}
