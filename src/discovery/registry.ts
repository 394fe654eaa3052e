/**
 * ServiceRegistry: service discovery on a private Kademlia DHT (@libp2p/kad-dht) over node-msquic.
 * Providers advertise signed records (a PUT_VALUE record and a provider record per name); clients
 * discover, resolve and watch them through the async query layer (query-layer.ts). JS thread only.
 *
 * The registry is a facade, as kad-dht's KadDHT is over its parts: it checks arguments, refuses
 * calls once stopped, and hands the work to components built as `new X(components, init)` from
 * what each uses (components.ts), none of which is given the registry: node.ts assembles the node,
 * publisher.ts publishes, finder.ts finds (hedged-resolve.ts, fetcher.ts), caller.ts calls,
 * rpc/ answers the side protocols; reputation.ts and unreachable.ts keep the peers' standing.
 */
import type { Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { OperationLimiter } from '../limits/operation-limiter.js'
import { libp2pSink } from '../metrics.js'
import { checkOptions, invalidArgType, invalidArgValue } from '../args.js'
import type { TransientConnectionManager } from '../limits/transient.js'
import { ServiceClient, type ServiceClientOptions } from './client.js'
import { DiscoveryError, DiscoveryErrorCode, stoppedError } from './errors.js'
import { DEFAULT_QUERY_TIMEOUT, QueryLayer } from './query-layer.js'
import type { ServiceRecord } from './record.js'
import { Reputation, autoHedge } from './reputation.js'
import { Telemetry } from './telemetry.js'
import { ownTransientConnections, transientManager } from './transient.js'
import type { Advertisement } from './advertisement.js'
import { checkRecords, createNode, dhtOptions } from './node.js'
import { Reachability } from './unreachable.js'
import type { DiscoveryComponents } from './components.js'
import { Publisher } from './publisher.js'
import { Finder } from './finder.js'
import { Caller } from './caller.js'
import { RecordHandler } from './rpc/record.js'
import { ProvidersHandler } from './rpc/providers.js'
import {
  DEFAULT_DHT_PROTOCOL, DEFAULT_TTL, DEFAULT_BOOTSTRAP_TIMEOUT, PUBLICATIONS_AT_ONCE, PUBLISH_CLASS, DEFAULT_ANNOUNCE_PEERS, NEARBY_PEERS,
  type DhtService, type ServiceRegistryOptions, type ServiceRegistryInit, type AdvertiseOptions, type DiscoverOptions,
  type ResolveOptions, type WatchOptions, type WatchEvent, type RegistryStats, type RequestHandler,
  advertiseArguments, badAddress, callArguments, discoverArguments, handleArguments, milliseconds, multiaddrList, protocolId,
  registryInit, registryOptions, requestBody, resolveArguments, serviceName, watchArguments
} from './options.js'

export * from './options.js'
export { Advertisement, type AdvertisementStatus } from './advertisement.js'


/**
 * The full publications of every registry on this thread (see ServiceRegistryOptions.publications):
 * made at the first registry that needs it.
 */
let threadPublications: OperationLimiter | undefined
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms).unref()) }

/**
 * A service registry on a libp2p node with kad-dht: advertise, discover, resolve, watch, dial.
 * Every query goes through one pending map (see {@link QueryLayer}); stop() fails them all with
 * `ERR_DISCOVERY_SHUTDOWN` at once.
 */
export class ServiceRegistry {
  /** The libp2p node the registry runs on. */
  readonly libp2p: Libp2p
  /** The query layer; `queries.pending` is the pending map. */
  readonly queries = new QueryLayer()
  /** Peers' reputation, which orders fan-out. */
  readonly reputation = new Reputation()
  /** The manager of the node's transient connections, if any. */
  readonly transient?: TransientConnectionManager<string>
  readonly #dht: DhtService
  readonly #telemetry: Telemetry
  readonly #stopNode: boolean
  readonly #needsPeer: boolean
  readonly #stopping = new AbortController()
  readonly #clients = new Set<ServiceClient>()
  readonly #detachTransient?: () => void
  /** Providers a connection to failed lately: resolve(), discover(), dial() and clients skip them (see unreachable.ts). */
  readonly #reachability: Reachability
  readonly #publisher: Publisher
  readonly #finder: Finder
  readonly #caller: Caller
  readonly #handlers: Array<{ stop: () => Promise<void> }>
  #stopped: Promise<void> | undefined

  /**
   * Wraps a started libp2p node that runs kad-dht (server mode, a private protocol, and an
   * address mapper that keeps the addresses your peers use). The registry adds its record
   * validator and selector to the DHT if they are missing; every DHT server of the network must
   * run them (use {@link ServiceRegistry.dhtOptions} when you build the node).
   */
  constructor (libp2p: Libp2p, options: ServiceRegistryOptions = {}) {
    if (typeof libp2p !== 'object' || libp2p === null || typeof libp2p.services !== 'object') throw invalidArgType('libp2p', 'a libp2p node', libp2p, 'argument')
    options = registryOptions(options)
    this.libp2p = libp2p
    const services = libp2p.services as Record<string, unknown>
    const dht = (options.dhtService !== undefined ? services[options.dhtService] : Object.values(services).find(s => typeof (s as DhtService)?.findProviders === 'function' && typeof (s as DhtService)?.put === 'function')) as DhtService | undefined
    if (dht === undefined) throw new DiscoveryError(DiscoveryErrorCode.NOT_CONFIGURED, 'the libp2p node has no kad-dht service')
    this.#dht = dht
    const privateKey = options.privateKey ?? (libp2p as unknown as { components?: { privateKey?: PrivateKey } }).components?.privateKey
    if (privateKey === undefined) throw new DiscoveryError(DiscoveryErrorCode.NOT_CONFIGURED, 'no private key to sign records with: pass options.privateKey')
    const timeout = options.queryTimeout ?? DEFAULT_QUERY_TIMEOUT
    const now = options.now ?? Date.now
    this.#stopNode = options.stopNode ?? false
    this.#needsPeer = options.needsPeer ?? false
    if (options.publications !== undefined && !(options.publications instanceof OperationLimiter && options.publications.classNames.includes(PUBLISH_CLASS))) {
      throw invalidArgValue('publications', `must be an OperationLimiter with a class '${PUBLISH_CLASS}'`, options.publications)
    }
    const publications = options.publications ?? (threadPublications ??= new OperationLimiter({ capacity: PUBLICATIONS_AT_ONCE, classes: { [PUBLISH_CLASS]: { guaranteed: 0 } } }))
    checkRecords(dht, now, reason => { this.#telemetry.record(reason) })
    this.#telemetry = new Telemetry(libp2p.metrics === undefined ? undefined : libp2pSink(libp2p.metrics), {
      records: () => this.#publisher.size,
      peers: () => this.reputation.size,
      pending: () => this.queries.pending.size,
      advertised: () => this.#publisher.size
    })
    if (options.transient !== false) {
      const { manager, detach } = ownTransientConnections(libp2p, dht, options.transient, options.ownsTransient)
      this.transient = manager
      this.#detachTransient = detach
    }
    const reachability = this.#reachability = new Reachability({ libp2p, dht, stopping: this.#stopping.signal })
    const components: DiscoveryComponents = { libp2p, dht, queries: this.queries, reputation: this.reputation, reachability, telemetry: this.#telemetry, now, stopping: this.#stopping.signal }
    const publisher = this.#publisher = new Publisher({ ...components, privateKey }, {
      timeout,
      announcePeers: options.announcePeers ?? DEFAULT_ANNOUNCE_PEERS,
      defaultTtl: options.defaultTtl ?? DEFAULT_TTL,
      publications
    })
    this.#finder = new Finder({ ...components, ownRecords: publisher }, { timeout, nearbyPeers: options.nearbyPeers ?? NEARBY_PEERS })
    this.#caller = new Caller(components)
    // One handler per side protocol, answering from the moment the registry exists.
    this.#handlers = [new RecordHandler(components, { record: name => publisher.value(name) }), new ProvidersHandler(components)]
  }

  /**
   * The kad-dht options a registry needs on every DHT node: server mode, the protocol, the record
   * validator and selector, and an address mapper. Pass them to `kadDHT()` when building your own node.
   */
  static async dhtOptions (protocol = DEFAULT_DHT_PROTOCOL, addresses: 'all' | 'private' | 'public' = 'all'): Promise<Record<string, unknown>> {
    return await dhtOptions(protocol, addresses)
  }

  /**
   * Starts a libp2p node on node-msquic with kad-dht (server mode, a private protocol), identify
   * and ping, dials the bootstrap peers, and returns its registry. Needs libp2p, @libp2p/kad-dht,
   * @libp2p/identify and @libp2p/ping installed (optional peer dependencies of node-msquic):
   * without them it rejects with `ERR_DISCOVERY_NOT_CONFIGURED` naming the npm install line. Every
   * option is checked before anything starts.
   */
  static async create (options: ServiceRegistryInit = {}): Promise<ServiceRegistry> {
    const init = registryInit(options)
    // Made here so that the transport and the registry share it: one reservation per connection.
    const transient = init.transient === false ? undefined : transientManager(init.transient)
    const node = await createNode(init, options, transient).catch(async (error: unknown) => {
      if (transient !== init.transient) await transient?.close()
      throw error
    })
    const registry = new ServiceRegistry(node, {
      ...init,
      ...(transient === undefined ? {} : { transient, ownsTransient: transient !== init.transient }),
      stopNode: init.stopNode ?? true,
      needsPeer: init.bootstrap.length === 0 && init.firstNode !== true
    })
    try {
      await registry.bootstrap(init.bootstrap, { timeout: init.bootstrapTimeout })
    } catch (error) {
      await registry.stop()
      throw error
    }
    return registry
  }

  /** The node's peer id. */
  get peerId (): PeerId {
    return this.libp2p.peerId
  }

  /**
   * The node's addresses, each ending in /p2p/<peer id>: what others bootstrap from. Throws
   * `ERR_DISCOVERY_SHUTDOWN` once stopped (the node listens nowhere then).
   */
  get multiaddrs (): Multiaddr[] {
    this.#refuseIfStopped('multiaddrs')
    return this.libp2p.getMultiaddrs()
  }

  /** Whether stop() was called. */
  get stopped (): boolean {
    return this.#stopped !== undefined
  }

  /**
   * Dials `addrs` (one multiaddr or an array) and waits until at least one peer is in the DHT
   * routing table (ms `timeout`, default {@link DEFAULT_BOOTSTRAP_TIMEOUT}). Resolves at once for
   * an empty list.
   */
  async bootstrap (addrs: string | Multiaddr | ReadonlyArray<string | Multiaddr>, options: { timeout?: number } = {}): Promise<void> {
    const addresses = multiaddrList('addrs', addrs, { dial: true, quic: false }).map((address, i) => {
      try {
        return multiaddr(address)
      } catch {
        throw badAddress(Array.isArray(addrs) ? `addrs[${i}]` : 'addrs', address, { dial: true, quic: false })
      }
    })
    const timeout = milliseconds('timeout', checkOptions(options).timeout ?? DEFAULT_BOOTSTRAP_TIMEOUT)
    this.#refuseIfStopped('bootstrap()')
    if (addresses.length === 0) return
    const signal = AbortSignal.timeout(timeout)
    const results = await Promise.allSettled(addresses.map(async addr => await this.libp2p.dial(addr, { signal })))
    if (results.every(r => r.status === 'rejected')) {
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `no bootstrap peer answered: ${(results[0] as PromiseRejectedResult).reason?.message}`, { cause: (results[0] as PromiseRejectedResult).reason })
    }
    const started = performance.now()
    while ((this.#dht.routingTable?.size ?? 1) === 0) {
      if (performance.now() - started > timeout) throw new DiscoveryError(DiscoveryErrorCode.TIMEOUT, `no bootstrap peer entered the routing table within ${timeout} ms`)
      await sleep(5)
    }
  }

  /** Figures of the query layer, records and peers. */
  stats (): RegistryStats {
    return {
      pending: this.queries.pending.size,
      timers: this.queries.timers,
      queries: this.queries.begun,
      outcomes: { ...this.#telemetry.outcomes },
      rejected: { ...this.#telemetry.rejected },
      retries: this.#telemetry.retries,
      dhtEvents: this.#telemetry.dhtEvents,
      advertised: this.#publisher.advertised,
      peers: this.reputation.size,
      routingTable: this.#dht.routingTable?.size ?? 0,
      hedgeDelay: autoHedge(this.reputation),
      lookups: { ...this.#telemetry.lookups }
    }
  }

  // --- advertising ---------------------------------------------------------------------------

  /**
   * Publishes `name` as a signed record and a provider record, refreshed at about half its TTL
   * (with jitter) until withdrawn. A second advertise() of the same name replaces the first
   * (its handle is withdrawn without publishing). Resolves once discoverable, or once both are
   * published with `wait: 'published'` (see AdvertiseOptions.wait and `advertisement.published`).
   */
  async advertise (name: string, options: AdvertiseOptions = {}): Promise<Advertisement> {
    options = advertiseArguments(name, options)
    this.#refuseQuery('advertise()')
    return await this.#publisher.advertise(name, options)
  }

  // --- finding -------------------------------------------------------------------------------

  /**
   * @internal Notes that a connection to `peer` failed: it is skipped for UNREACHABLE_HOLD, and
   * leaves the DHT routing table (see healRoutingTable()).
   */
  unreachable (peer: PeerId | string): void {
    this.#reachability.unreachable(peer)
  }

  /** Whether a connection to `peer` failed less than UNREACHABLE_HOLD ago (and none opened since): it is skipped meanwhile. */
  isUnreachable (peer: PeerId | string): boolean {
    return this.#reachability.isUnreachable(peer)
  }

  /**
   * Live records of `name` as they are found: deduplicated by provider, verified, expired and
   * withdrawn ones left out. Ends when the DHT query ends, at `limit`, or at the deadline (which
   * throws `ERR_DISCOVERY_TIMEOUT` only if nothing was found). Breaking out cancels the query.
   * Bad arguments throw at the call, as do a stopped registry and one that knows no peer.
   */
  discover (name: string, options: DiscoverOptions = {}): AsyncGenerator<ServiceRecord, void, undefined> {
    options = discoverArguments(name, options)
    this.#refuseQuery('discover()')
    return this.#finder.discover(name, options)
  }

  /**
   * The first live record of `name`: providers are fetched up to `fanOut` at a time, best
   * reputation first, as the DHT finds them (hedged: one more each `hedge` period without an
   * answer, see ResolveOptions.hedge); the first valid answer wins and the others are cancelled.
   * Network errors are retried with backoff within the deadline. Rejects with
   * `ERR_DISCOVERY_NOT_FOUND`, `ERR_DISCOVERY_TIMEOUT`, `ERR_DISCOVERY_ABORTED` or `ERR_DISCOVERY_SHUTDOWN`.
   */
  async resolve (name: string, options: ResolveOptions = {}): Promise<ServiceRecord> {
    options = resolveArguments(name, options)
    this.#refuseQuery('resolve()')
    return await this.#finder.resolve(name, options)
  }

  /**
   * Changes of `name`'s providers, polled every `interval` (with jitter): `added` for a new
   * provider, `updated` for a newer record, `gone` when its record expires, is withdrawn or can no
   * longer be found. When `signal` aborts the iterator returns (no error: a `for await` loop just
   * ends); when the registry stops it throws `ERR_DISCOVERY_SHUTDOWN`, as every query in flight does.
   * Bad arguments throw at the call, as do a stopped registry and one that knows no peer.
   */
  watch (name: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent, void, undefined> {
    options = watchArguments(name, options)
    this.#refuseQuery('watch()')
    return this.#finder.watch(name, options)
  }

  // --- calling providers ---------------------------------------------------------------------

  /** Opens a stream for `protocol` to the provider of `record` (its addresses, then its id). */
  async dial (record: ServiceRecord, protocol: string, options: { signal?: AbortSignal } = {}): Promise<Stream> {
    callArguments(record, protocol, options)
    this.#refuseIfStopped('dial()')
    return await this.#caller.dial(record, protocol, options)
  }

  /**
   * A small RPC: sends `request` to the provider of `record` on `protocol` (a new stream, its
   * write side closed after the request) and resolves with the whole response.
   */
  async request (record: ServiceRecord, protocol: string, request: Uint8Array | string, options: { signal?: AbortSignal, maxResponseBytes?: number } = {}): Promise<Uint8Array> {
    callArguments(record, protocol, options)
    requestBody(request)
    this.#refuseIfStopped('dial()')
    return await this.#caller.request(record, protocol, request, options)
  }

  /**
   * Answers request() calls on `protocol`: each stream's bytes in, the handler's answer out
   * (`handler(request, { peerId, connection })`; what it returns or resolves with is sent back, and
   * a throw resets the stream).
   */
  async handle (protocol: string, handler: RequestHandler, options: { maxRequestBytes?: number, maxInboundStreams?: number } = {}): Promise<void> {
    handleArguments(protocol, handler, options)
    this.#refuseIfStopped('handle()')
    await this.#caller.handle(protocol, handler, options)
  }

  /**
   * A client for the providers of `name`: they join and leave a {@link ProviderPool} as watch()
   * sees them, and every call takes its class permit from one {@link OperationLimiter} first.
   */
  client (name: string, options: ServiceClientOptions & { limiter?: OperationLimiter }): ServiceClient {
    serviceName(name)
    protocolId(checkOptions(options).protocol, 'protocol', 'option')
    this.#refuseIfStopped('client()')
    const client = new ServiceClient({
      libp2p: this.libp2p,
      isUnreachable: peer => this.isUnreachable(peer),
      unreachable: peer => this.unreachable(peer),
      watch: (name, options) => this.watch(name, options),
      requestOn: async (connection, protocol, request, options) => await this.#caller.requestOn(connection, protocol, request, options)
    }, name, options, () => this.#clients.delete(client))
    this.#clients.add(client)
    return client
  }

  // --- shutdown ------------------------------------------------------------------------------

  /**
   * Fails every pending query with `ERR_DISCOVERY_SHUTDOWN` at once, stops refreshing (without
   * publishing), ends watches and clients, and stops the node if the registry started it.
   * Idempotent; later calls return the first call's promise.
   */
  async stop (): Promise<void> {
    this.#stopped ??= (async () => {
      this.queries.close()
      this.#stopping.abort()
      this.#publisher.stop()
      await Promise.allSettled([...this.#clients].map(async client => { await client.close() }))
      this.#detachTransient?.()
      this.#reachability.stop()
      for (const handler of this.#handlers) await handler.stop()
      if (this.#stopNode) {
        await this.libp2p.stop()
        // js-libp2p's address manager debounces a peer-store update by 1 s when the transport's
        // listeners close (in stop()); that timer alone held the process a second after stop().
        const addressManager = (this.libp2p as unknown as { components?: { addressManager?: { _updatePeerStoreAddresses?: { stop?: () => void } } } }).components?.addressManager
        addressManager?._updatePeerStoreAddresses?.stop?.()
      }
    })()
    return await this.#stopped
  }

  #refuseIfStopped (what: string): void {
    if (this.#stopped !== undefined) throw stoppedError(what)
  }

  /**
   * A query is refused on a stopped registry, and on one made without a bootstrap (and not as a
   * `firstNode`) that knows no peer: it could only wait for its deadline (30 s for a publication).
   */
  #refuseQuery (what: string): void {
    this.#refuseIfStopped(what)
    if (!this.#needsPeer || (this.#dht.routingTable?.size ?? 0) > 0 || this.libp2p.getConnections().length > 0) return
    throw new DiscoveryError(DiscoveryErrorCode.NOT_CONFIGURED,
      `${what} needs a peer and this registry knows none: pass \`bootstrap\` (a registry's address, as \`node-msquic registry\` prints it) ` +
      'to ServiceRegistry.create(), or `firstNode: true` for the first node of a network')
  }
}
