/**
 * Advertisement: one service this node advertises, its signed record and the refresh timer that
 * keeps it alive until withdraw(). Made by the publisher (publisher.ts) for ServiceRegistry.advertise(),
 * it reaches back only through the narrow {@link Publishing} it is given. JS thread only.
 */
import { DiscoveryError, DiscoveryErrorCode, stoppedError } from './errors.js'
import type { AdvertiseOptions, QueryOptions } from './options.js'
import type { ServiceRecord } from './record.js'

/** What an advertisement needs of whoever publishes it. */
export interface Publishing {
  /** The node's peer id, as records carry it. */
  readonly peerId: string
  /** Aborted when the registry stops: nothing is refreshed from then on. */
  readonly stopping: AbortSignal
  /** The clock records expire by. */
  now: () => number
  /** The addresses a record publishes when given none. */
  ownAddresses: () => string[]
  /** Signs a record with the node's key. */
  sign: (record: ServiceRecord) => Promise<Uint8Array>
  /** Puts the signed record under its key and (unless `provide` is false) provides the name, as one query. */
  publish: (name: string, value: Uint8Array, options: QueryOptions, withdrawn: boolean, provide?: boolean) => Promise<void>
}

/**
 * An advertisement's life (docs/lifecycle.md): `live` from advertise() on, its record refreshed on
 * its timer; then `withdrawn` (withdraw(): a record saying the service is gone was published) or
 * `cancelled` (replaced by a new advertise() of the name, or its registry stopped), both final.
 */
export type AdvertisementStatus = 'live' | 'withdrawn' | 'cancelled'

type AdvertisementState =
  | { status: 'live', refresh?: NodeJS.Timeout }
  | { status: 'withdrawn' }
  | { status: 'cancelled' }

/**
 * A service this node advertises: its current record, refreshed at about half its TTL (with
 * jitter) until withdraw(). Returned by ServiceRegistry.advertise().
 */
export class Advertisement {
  /** The advertised service name. */
  readonly name: string
  /** Milliseconds each published record lives. */
  readonly ttl: number
  readonly #publishing: Publishing
  readonly #metadata: AdvertiseOptions['metadata']
  readonly #multiaddrs?: string[]
  #sequence: number
  #record: ServiceRecord | undefined
  #value: Uint8Array | undefined
  #state: AdvertisementState = { status: 'live' }
  #provided = false
  #signedAt = 0
  /** Refreshes published (successful or not) since advertise(). */
  refreshes = 0
  /** The last refresh's failure, if it failed (the next is tried sooner). */
  lastError: unknown
  /**
   * Settles when the first full publication does (the signed record stored on the k closest peers,
   * the name provided there): advertise() may resolve before it (AdvertiseOptions.wait). Rejects with
   * that publication's error (it is retried meanwhile; see lastError).
   */
  published: Promise<void> = Promise.resolve()

  /** @internal */
  constructor (publishing: Publishing, name: string, metadata: AdvertiseOptions['metadata'], ttl: number, multiaddrs: string[] | undefined, sequence: number) {
    this.#publishing = publishing
    this.name = name
    this.#metadata = metadata
    this.ttl = ttl
    this.#multiaddrs = multiaddrs
    this.#sequence = sequence
  }

  /** The record published last (undefined once withdrawn or cancelled). */
  get record (): ServiceRecord | undefined {
    return this.#record
  }

  /** @internal The signed bytes of `record` (or of the withdrawal), for the record protocol. */
  get value (): Uint8Array | undefined {
    return this.#value
  }

  /** Whether withdraw() was called (or the advertisement was replaced, or the registry stopped). */
  get withdrawn (): boolean {
    return this.#state.status !== 'live'
  }

  /** Where it is in its life (see {@link AdvertisementStatus}). */
  get status (): AdvertisementStatus {
    return this.#state.status
  }

  /** @internal Builds and signs the next record (sequence + 1, a new expiry). */
  async sign (withdrawn = false): Promise<void> {
    const now = this.#publishing.now()
    // A restarted provider still wins over its old records: sequences start from the clock.
    this.#sequence = Math.max(this.#sequence + 1, now)
    const record: ServiceRecord = {
      name: this.name,
      peerId: this.#publishing.peerId,
      multiaddrs: this.#multiaddrs ?? this.#publishing.ownAddresses(),
      metadata: this.#metadata,
      sequence: this.#sequence,
      expiresAt: now + (withdrawn ? Math.min(this.ttl, 60_000) : this.ttl),
      ...(withdrawn ? { withdrawn: true } : {})
    }
    this.#signedAt = performance.now()
    this.#value = await this.#publishing.sign(record)
    this.#record = withdrawn ? undefined : record
  }

  /** @internal Publishes the signed record and arms the next refresh. */
  async publish (options: QueryOptions = {}, provide = true): Promise<void> {
    try {
      await this.#publishing.publish(this.name, this.#value!, options, this.withdrawn, provide)
      this.#provided ||= provide
      this.lastError = undefined
      // The next refresh is due at about half the TTL from when this record was signed (not from
      // when its slow publication ended), with jitter so that a fleet does not refresh in step.
      this.#arm(this.#signedAt + this.ttl / 2 * (0.8 + Math.random() * 0.4) - performance.now())
    } catch (error) {
      this.lastError = error
      // Try again well before the record expires.
      this.#arm(Math.min(this.ttl / 4, 1_000))
      throw error
    }
  }

  #arm (delay: number): void {
    const state = this.#state
    if (state.status !== 'live') return
    clearTimeout(state.refresh)
    state.refresh = undefined
    if (this.#publishing.stopping.aborted) return
    state.refresh = setTimeout(() => { void this.refresh().catch(() => {}) }, Math.max(0, delay))
    state.refresh.unref()
  }

  // Live to `status`, final: the refresh timer goes.
  #end (status: 'withdrawn' | 'cancelled'): void {
    const state = this.#state
    if (state.status === 'live') clearTimeout(state.refresh)
    this.#state = { status }
  }

  /**
   * Publishes a new record now (sequence + 1, a fresh expiry); the next refresh is re-armed.
   * Refuses with `ERR_DISCOVERY_SHUTDOWN` once the registry stopped.
   */
  async refresh (options: QueryOptions = {}): Promise<void> {
    if (this.#publishing.stopping.aborted) throw stoppedError(`refresh() of "${this.name}"`)
    if (this.withdrawn) throw new DiscoveryError(DiscoveryErrorCode.INVALID_RECORD, `"${this.name}" was withdrawn`)
    this.refreshes++
    await this.sign()
    // The provider record lives 48 h and kad-dht reprovides it; a refresh only renews the record
    // (unless the first provide failed).
    await this.publish(options, !this.#provided)
  }

  /**
   * Stops refreshing and publishes a newer record that says the service is gone (and stops
   * reproviding the name): discoverers skip this provider from then on. Idempotent.
   */
  async withdraw (options: QueryOptions = {}): Promise<void> {
    if (this.withdrawn) return
    this.#end('withdrawn')
    // The withdrawal stays this node's answer for the name (until it advertises it again).
    await this.sign(true)
    await this.#publishing.publish(this.name, this.#value!, options, true)
  }

  /** @internal Stops refreshing without publishing (replaced, or the registry stopped). */
  cancel (): void {
    if (this.#state.status === 'live') this.#end('cancelled')
  }
}
