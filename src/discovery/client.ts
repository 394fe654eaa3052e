/**
 * ServiceClient: calls to the providers of one service name. Providers join and leave a
 * ProviderPool as the registry's watch() sees them; every call takes its class permit from one
 * OperationLimiter before a provider is chosen, so class limits hold over all providers together.
 * It is given what it uses ({@link ServiceClientComponents}), never the registry. JS thread only.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { OperationLimiter, type OperationLimiterOptions } from '../limits/operation-limiter.js'
import { ProviderPool, type ProviderPoolStats } from '../limits/provider-pool.js'
import { dialTarget } from './addresses.js'
import type { ServiceRecord } from './record.js'
import type { WatchEvent, WatchOptions } from './options.js'

/** What a client uses: the node, the registry's unreachable peers, its watch() and its request path. */
export interface ServiceClientComponents {
  libp2p: Pick<Libp2p, 'getConnections' | 'dial'>
  /** Whether a connection to `peer` failed lately (see UNREACHABLE_HOLD). */
  isUnreachable: (peer: PeerId | string) => boolean
  /** Notes that a connection to `peer` failed. */
  unreachable: (peer: PeerId | string) => void
  /** The changes of a name's providers (ServiceRegistry.watch()). */
  watch: (name: string, options: WatchOptions) => AsyncIterable<WatchEvent>
  /**
   * A request on a connection already open; `closed` is called when the stream could not be opened
   * because the connection is gone (nothing was sent).
   */
  requestOn: (connection: Connection, protocol: string, request: Uint8Array | string, options: { signal?: AbortSignal, maxResponseBytes?: number, closed?: () => void }) => Promise<Uint8Array>
}

/** Options of ServiceRegistry.client(). */
export interface ServiceClientOptions {
  /** The protocol calls are made on (the providers' handle()). */
  protocol: string
  /**
   * The limiter every call takes its class permit from (shared, never closed by the client), or
   * the options of one to make. Default: one class `default` with capacity 64.
   */
  limiter?: OperationLimiter | OperationLimiterOptions
  /** Calls in flight at once to one provider, at most. Default 16. */
  maxPerProvider?: number
  /** Options of the watch that follows the providers (its interval, its rounds' timeout). */
  watch?: Omit<WatchOptions, 'signal'>
  /** A response, at most (bytes). Default 1 MiB. */
  maxResponseBytes?: number
}

/** A provider connection as the pool holds it. */
interface Lease {
  record: ServiceRecord
  connection: Connection
}

/** Calls to the providers of one name, through one limiter and a pool of discovered providers. */
export class ServiceClient {
  /** The service name whose providers are called. */
  readonly name: string
  /** The limiter every call takes its class permit from. */
  readonly limiter: OperationLimiter
  /** The providers and their call slots; they join and leave as watch() sees them. */
  readonly pool: ProviderPool<Lease>
  readonly #components: ServiceClientComponents
  readonly #protocol: string
  readonly #maxResponseBytes?: number
  readonly #records = new Map<string, ServiceRecord>()
  readonly #stop = new AbortController()
  readonly #watching: Promise<void>
  readonly #onClose: () => void
  #waiters: Array<() => void> = []
  #closed: Promise<void> | undefined

  /** @internal Made by ServiceRegistry.client(). */
  constructor (components: ServiceClientComponents, name: string, options: ServiceClientOptions, onClose: () => void) {
    this.#components = components
    this.name = name
    this.#protocol = options.protocol
    this.#maxResponseBytes = options.maxResponseBytes
    this.#onClose = onClose
    this.limiter = options.limiter instanceof OperationLimiter
      ? options.limiter
      : new OperationLimiter(options.limiter ?? { capacity: 64, classes: { default: { guaranteed: 0 } } })
    const pool = this.pool = new ProviderPool<Lease>({ limiter: this.limiter })
    const maxPerProvider = options.maxPerProvider ?? 16
    this.#watching = (async () => {
      for await (const event of components.watch(name, { ...options.watch, signal: this.#stop.signal })) {
        const id = event.record.peerId
        if (event.type === 'gone') {
          this.#records.delete(id)
          void pool.removeProvider(id).catch(() => {})
          continue
        }
        this.#records.set(id, event.record)
        if (event.type === 'added') {
          pool.addProvider({
            id,
            maxConnections: maxPerProvider,
            connect: async ({ signal }) => await this.#connect(id, signal),
            // A connection whose peer was found gone is not reused (libp2p reports it open a while longer).
            alive: lease => lease.connection.status === 'open' && !components.isUnreachable(id)
          })
          for (const wake of this.#waiters.splice(0)) wake()
        }
      }
    })().catch(() => {})
  }

  /** Peer ids of the providers in the pool now. */
  get providers (): string[] {
    return this.pool.providers
  }

  /** Resolves once at least one provider is in the pool (or rejects when `signal` aborts). */
  async ready (options: { signal?: AbortSignal } = {}): Promise<void> {
    while (this.pool.providers.length === 0) {
      options.signal?.throwIfAborted()
      if (this.#closed !== undefined) throw new Error('the client is closed')
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, 50)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  /** Opens (or reuses) the libp2p connection to a provider. */
  async #connect (id: string, signal?: AbortSignal): Promise<Lease> {
    const record = this.#records.get(id)
    if (record === undefined) throw new Error(`provider ${id} is gone`)
    const peer = peerIdFromString(id)
    const { libp2p, isUnreachable, unreachable } = this.#components
    const existing = libp2p.getConnections(peer).find(c => c.status === 'open')
    // Failing at once, the pool goes on to the next provider (see UNREACHABLE_HOLD).
    if (existing === undefined && isUnreachable(peer)) throw new Error(`provider ${id} is unreachable (a connection to it failed lately)`)
    const connection = existing ?? await libp2p.dial(dialTarget(peer, record.multiaddrs), { signal }).catch(error => {
      if (signal?.aborted !== true) unreachable(peer)
      throw error
    })
    // (A connection that fails later, under a call, is found out by the pool's alive() check and the next connect.)
    return { record, connection }
  }

  /**
   * One request/response call: a class permit from the limiter first, then a provider with room
   * (the last one that worked first), the next provider if connecting fails. A call whose stream
   * could not be opened because the connection was gone is made again (nothing was sent): on a new
   * connection, or on the next provider when that one is gone (it is then skipped, see UNREACHABLE_HOLD).
   */
  async request (cls: string, request: Uint8Array | string, options: { signal?: AbortSignal } = {}): Promise<{ response: Uint8Array, provider: string }> {
    for (let tried = 0; ; tried++) {
      let unsent = false
      try {
        return await this.pool.run(cls, async (lease, context) => {
          // libp2p still reports it open: closed here, the pool connects anew (or goes on to the next provider).
          const closed = (): void => { unsent = true; lease.connection.abort(new Error('the connection closed under a call')) }
          const response = await this.#components.requestOn(lease.connection, this.#protocol, request, { signal: context.signal, maxResponseBytes: this.#maxResponseBytes, closed })
          return { response, provider: context.provider }
        }, options)
      } catch (error) {
        if (!unsent || tried > this.pool.providers.length) throw error
      }
    }
  }

  /** The pool's figures (providers, idle and busy slots). */
  stats (): ProviderPoolStats {
    return this.pool.stats()
  }

  /** Stops following the providers and closes the pool (the limiter is left as it is). Idempotent. */
  async close (): Promise<void> {
    this.#closed ??= (async () => {
      this.#stop.abort()
      for (const wake of this.#waiters.splice(0)) wake()
      await this.#watching
      await this.pool.close()
      this.#onClose()
    })()
    return await this.#closed
  }
}
