/**
 * ServiceRegistry: service discovery on a private Kademlia DHT (@libp2p/kad-dht) over node-msquic.
 * Providers advertise signed records (a PUT_VALUE record and a provider record per name); clients
 * discover, resolve and watch them through the async query layer (query-layer.ts). JS thread only.
 */
import type { Connection, Libp2p, PeerId, PeerInfo, PrivateKey, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { OperationLimiter, type Permit } from '../limits/operation-limiter.js'
import { checkOptions, invalidArgType, invalidArgValue } from '../args.js'
import type { TransientConnectionManager } from '../limits/transient.js'
import { ServiceClient, type ServiceClientOptions } from './client.js'
import { DiscoveryError, DiscoveryErrorCode, isDiscoveryError, stoppedError } from './errors.js'
import { DEFAULT_QUERY_TIMEOUT, ENDED, Query, QueryLayer, Reputation, outcomeOf, type QueryOptions, type QueryOutcome } from './query-layer.js'
import {
  RECORD_NAMESPACE, RecordRejection, nameToCid, newer, recordKey, selectRecord, signRecord,
  verifyRecordForKey, MAX_RECORD_BYTES, type ServiceRecord
} from './record.js'
import { loadPeers } from './peers.js'
import { Telemetry, loadTracing, type ResolveTimes } from './telemetry.js'
import { ownTransientConnections } from './transient.js'
import { Advertisement, type Publishing } from './advertisement.js'
import { announceNearby, joined } from './announce.js'
import { compactMemoryDatastore } from './datastore.js'
import { dialTarget, publishable } from './addresses.js'
import { UnreachablePeers, connectionFailed, dropFromRoutingTable, healRoutingTable } from './unreachable.js'
import { answerProviders, nearbyProviders, localProviders, type NearbyContext } from './nearby.js'
import { exchange, readAll } from './wire.js'
import {
  DEFAULT_DHT_PROTOCOL, RECORD_PROTOCOL, PROVIDERS_PROTOCOL, DEFAULT_TTL, DEFAULT_FAN_OUT, DEFAULT_WATCH_INTERVAL, HEDGE_DELAY,
  AUTO_HEDGE_QUANTILE, AUTO_HEDGE_MIN, AUTO_HEDGE_SAMPLES, DEFAULT_BOOTSTRAP_TIMEOUT,
  PUBLISH_TIMEOUT, PUBLICATIONS_AT_ONCE, UNREACHABLE_HOLD, UNREACHABLE_CONFIRM_TIMEOUT, DHT_READ_DELAY_MAX, PUBLISH_CLASS, DEFAULT_ANNOUNCE_PEERS, NEARBY_PEERS, DEFAULT_MAX_MESSAGE_BYTES, type DhtService, type DhtEvent, type ServiceRegistryOptions,
  type ServiceRegistryInit, type AdvertiseOptions, type DiscoverOptions, type ResolveOptions, type WatchOptions,
  type WatchEvent, type RegistryStats, type RequestHandler,
  advertiseArguments, badAddress, callArguments, discoverArguments, handleArguments, milliseconds, multiaddrList, protocolId,
  registryInit, registryOptions, requestBody, resolveArguments, serviceName, watchArguments
} from './options.js'

export * from './options.js'
export { Advertisement } from './advertisement.js'


const utf8 = new TextEncoder()

/**
 * The full publications of every registry on this thread (see ServiceRegistryOptions.publications):
 * made at the first registry that needs it.
 */
let threadPublications: OperationLimiter | undefined
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms).unref()) }

/** Where a provider search found its first provider (RegistryStats.lookups). */
type LookupSource = keyof RegistryStats['lookups']

/** The validator of dhtOptions(); a registry on the node swaps it for its own counting one. */
const defaultValidator = Object.assign(async (key: Uint8Array, value: Uint8Array): Promise<void> => { await verifyRecordForKey(key, value) }, { [Symbol.for('node-msquic.discovery.validator')]: true })
const isDefaultValidator = (fn: unknown): boolean => (fn as Record<symbol, unknown>)[Symbol.for('node-msquic.discovery.validator')] === true

/** Whether an error is worth another attempt (network trouble, not a verdict). */
function retryable (error: unknown): boolean {
  if (isDiscoveryError(error)) return error.code === DiscoveryErrorCode.DIAL_FAILED
  return true
}

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
  readonly #privateKey: PrivateKey
  readonly #telemetry: Telemetry
  readonly #timeout: number
  readonly #announcePeers: number
  readonly #nearbyPeers: number
  readonly #nearby: NearbyContext
  readonly #defaultTtl: number
  readonly #now: () => number
  readonly #stopNode: boolean
  readonly #needsPeer: boolean
  readonly #stopping = new AbortController()
  readonly #advertisements = new Map<string, Advertisement>()
  readonly #clients = new Set<ServiceClient>()
  readonly #detachTransient?: () => void
  readonly #publications: OperationLimiter
  /** Providers a connection to failed lately: resolve(), discover(), dial() and clients skip them (see unreachable.ts). */
  readonly #unreachable: UnreachablePeers
  readonly #onConnectionOpen = (event: CustomEvent<Connection>): void => { this.#unreachable.clear(event.detail.remotePeer) }
  readonly #detachHealing: () => void
  /** What the advertisements use: the node's key, clock and addresses, and #publish(). */
  readonly #publishing: Publishing
  #dhtEvents = 0
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
    this.#privateKey = privateKey
    this.#timeout = options.queryTimeout ?? DEFAULT_QUERY_TIMEOUT
    this.#announcePeers = options.announcePeers ?? DEFAULT_ANNOUNCE_PEERS
    this.#nearbyPeers = options.nearbyPeers ?? NEARBY_PEERS
    this.#defaultTtl = options.defaultTtl ?? DEFAULT_TTL
    this.#now = options.now ?? Date.now
    this.#stopNode = options.stopNode ?? false
    this.#needsPeer = options.needsPeer ?? false
    this.#unreachable = new UnreachablePeers(libp2p.peerId)
    if (options.publications !== undefined && !(options.publications instanceof OperationLimiter && options.publications.classNames.includes(PUBLISH_CLASS))) {
      throw invalidArgValue('publications', `must be an OperationLimiter with a class '${PUBLISH_CLASS}'`, options.publications)
    }
    this.#publications = options.publications ?? (threadPublications ??= new OperationLimiter({ capacity: PUBLICATIONS_AT_ONCE, classes: { [PUBLISH_CLASS]: { guaranteed: 0 } } }))
    // Records of this namespace are checked (and counted when refused) wherever this node stores or reads them.
    // The registry's validator replaces the default one (it counts refusals and reads the
    // registry's clock); a validator of the application's own is kept, and its refusals counted.
    const previous = dht.validators[RECORD_NAMESPACE]
    const validate = previous === undefined || isDefaultValidator(previous) ? async (key: Uint8Array, value: Uint8Array) => { await verifyRecordForKey(key, value, this.#now()) } : previous
    dht.validators[RECORD_NAMESPACE] = async (key, value) => {
      try {
        await validate(key, value)
      } catch (error) {
        if (error instanceof RecordRejection) this.#telemetry.record(error.reason)
        throw error
      }
    }
    dht.selectors[RECORD_NAMESPACE] ??= selectRecord
    this.#telemetry = new Telemetry(libp2p.metrics, {
      records: () => this.#advertisements.size,
      peers: () => this.reputation.size,
      pending: () => this.queries.pending.size,
      advertised: () => this.#advertisements.size
    })
    if (options.transient !== false) {
      const { manager, detach } = ownTransientConnections(libp2p, dht, options.transient)
      this.transient = manager
      this.#detachTransient = detach
    }
    libp2p.addEventListener('connection:open', this.#onConnectionOpen)
    this.#detachHealing = healRoutingTable(libp2p, dht, async peer => { await this.#confirmGone(peer) })
    void libp2p.handle(RECORD_PROTOCOL, async (stream) => { await this.#answerRecord(stream) }, { maxInboundStreams: 256 }).catch(() => {})
    this.#nearby = { libp2p, dht, rejected: (error, from) => this.#rejected(error, from), hedge: () => this.#autoHedge() }
    void libp2p.handle(PROVIDERS_PROTOCOL, async (stream) => { await answerProviders(stream, dht, libp2p) }, { maxInboundStreams: 256 }).catch(() => {})
    this.#publishing = {
      peerId: this.libp2p.peerId.toString(),
      stopping: this.#stopping.signal,
      now: () => this.#now(),
      // Loopback addresses left out when the node has another.
      ownAddresses: () => publishable(this.libp2p.getMultiaddrs()).map(ma => ma.toString()),
      sign: async record => await signRecord(record, this.#privateKey),
      publish: async (name, value, options, withdrawn, provide) => { await this.#publish(name, value, options, withdrawn, provide) }
    }
  }

  /**
   * The kad-dht options a registry needs on every DHT node: server mode, the protocol, the record
   * validator and selector, and an address mapper. Pass them to `kadDHT()` when building your own node.
   */
  static async dhtOptions (protocol = DEFAULT_DHT_PROTOCOL, addresses: 'all' | 'private' | 'public' = 'all'): Promise<Record<string, unknown>> {
    const kad = await import('@libp2p/kad-dht')
    const mappers = { all: kad.passthroughMapper, private: kad.removePublicAddressesMapper, public: kad.removePrivateAddressesMapper }
    return {
      protocol,
      clientMode: false,
      peerInfoMapper: mappers[addresses],
      validators: { [RECORD_NAMESPACE]: defaultValidator },
      selectors: { [RECORD_NAMESPACE]: selectRecord },
      // A private network is small and near: the first self-query need not wait a second, and
      // k = 20 closest peers hold each record, so three requests in flight on one path find it
      // (kad-dht's defaults, α = 10 on 10 disjoint paths, are for the open Amino DHT).
      initialQuerySelfInterval: 50,
      alpha: 3,
      disjointPaths: 1
    }
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
    const [{ createLibp2p }, { kadDHT }, { identify }, { ping }, { msquic }] = await loadPeers('ServiceRegistry.create()', async () => await Promise.all([
      import('libp2p'), import('@libp2p/kad-dht'), import('@libp2p/identify'), import('@libp2p/ping'), import('../libp2p/index.js')
    ]))
    // What registryInit()'s syntax check leaves to libp2p's parsers (a peer id that does not parse).
    for (const name of ['listen', 'bootstrap'] as const) {
      init[name].forEach((address, i) => {
        try {
          const peer = multiaddr(address).getComponents().find(c => c.name === 'p2p')?.value
          if (peer !== undefined) peerIdFromString(peer)
        } catch {
          throw badAddress(Array.isArray(options[name]) ? `${name}[${i}]` : name, address, { dial: name === 'bootstrap', quic: init.libp2p?.transports === undefined })
        }
      })
    }
    await loadTracing()
    const { services: extraServices, ...libp2pOptions } = init.libp2p ?? {}
    const { announce, noAnnounce } = init
    const datastore = await compactMemoryDatastore()
    const node = await createLibp2p({
      privateKey: init.privateKey,
      // Records kept in buffers of their own size (see datastore.ts); a `libp2p.datastore` wins.
      ...(datastore !== undefined ? { datastore } : {}),
      // What peers are told (identify, provider entries, records): `announce` instead of the listening
      // addresses if given; never `noAnnounce` ones, nor loopback ones when the node has another.
      addresses: {
        listen: init.listen,
        ...(announce !== undefined ? { announce } : {}),
        announceFilter: (addrs: Multiaddr[]) => publishable(addrs, noAnnounce)
      },
      transports: [msquic(init.transport)],
      connectionMonitor: { enabled: false },
      // A registry is dialled by every member as it joins: js-libp2p's defaults (5 new
      // connections per second per host, 10 pending) refuse a fleet started behind one address.
      connectionManager: { inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 256 },
      ...(init.metrics !== undefined ? { metrics: init.metrics } : {}),
      ...libp2pOptions,
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({ ...await ServiceRegistry.dhtOptions(init.protocol, init.addresses), ...init.dht } as any),
        ...(extraServices as Record<string, any> ?? {})
      }
    } as any)
    const registry = new ServiceRegistry(node as unknown as Libp2p, { ...init, stopNode: init.stopNode ?? true, needsPeer: init.bootstrap.length === 0 && init.firstNode !== true })
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
      dhtEvents: this.#dhtEvents,
      advertised: [...this.#advertisements.values()].filter(a => !a.withdrawn).length,
      peers: this.reputation.size,
      routingTable: this.#dht.routingTable?.size ?? 0,
      hedgeDelay: this.#autoHedge(),
      lookups: { ...this.#telemetry.lookups }
    }
  }

  /** resolve()'s automatic hedge now (ms): see AUTO_HEDGE_QUANTILE. */
  #autoHedge (): number {
    const recent = this.reputation.quantile(AUTO_HEDGE_QUANTILE, AUTO_HEDGE_SAMPLES)
    return recent === undefined ? HEDGE_DELAY : Math.max(AUTO_HEDGE_MIN, recent)
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
    const ttl = options.ttl ?? this.#defaultTtl
    const previous = this.#advertisements.get(name)
    const advertisement = new Advertisement(this.#publishing, name, options.metadata, ttl, options.multiaddrs?.slice(), previous?.record?.sequence ?? 0)
    // Checks the metadata before anything is published.
    await advertisement.sign()
    previous?.cancel()
    this.#advertisements.set(name, advertisement)
    const publishOptions = { timeout: options.timeout, signal: options.signal }
    // Discoverable first (the provider record sent to the nearest known peers), then the full
    // publication in the background; without a routing table to announce to, the full one is awaited.
    const announced = options.wait === 'published' ? undefined : await this.#announce(name, publishOptions)
    const published = advertisement.publish(publishOptions)
    advertisement.published = published
    if (announced === undefined || announced === 0) {
      await published
    } else {
      // Failures are retried by the advertisement and kept in lastError; `published` reports them.
      published.catch(() => {})
    }
    return advertisement
  }

  /**
   * Sends the provider record of `name` to the nearest peers of the routing table (announce.ts):
   * resolves with how many took it, or undefined when that is not possible here. Never throws.
   */
  async #announce (name: string, options: QueryOptions): Promise<number | undefined> {
    if (this.#announcePeers === 0) return undefined
    const query = this.queries.begin('announce', { timeout: options.timeout ?? this.#timeout, signal: options.signal })
    const span = this.#telemetry.span('discovery.announce', { 'discovery.name': name })
    try {
      await query.race(joined(this.#dht))
      const sent = await query.race(announceNearby(this.#dht, nameToCid(name), this.peerId, publishable(this.libp2p.getMultiaddrs()), this.#announcePeers, query.signal))
      this.#finish(query, span, sent === undefined || sent === 0 ? 'not-found' : 'success', undefined, sent ?? 0)
      return sent
    } catch (error) {
      const failure = this.#failure(query, error)
      this.#finish(query, span, outcomeOf(failure), failure, 0)
      return undefined
    }
  }

  /**
   * Puts `value` under its key and provides the name, as one query, once the thread's
   * publications have room for it (ServiceRegistryOptions.publications; the deadline runs from then).
   */
  async #publish (name: string, value: Uint8Array, options: QueryOptions, withdrawn: boolean, provide = true): Promise<void> {
    const span = this.#telemetry.span('discovery.advertise', { 'discovery.name': name, 'discovery.withdraw': withdrawn })
    const waited = performance.now()
    // (With a permit free, the query begins in this tick: advertise() returns with it pending.)
    const permit = this.#publications.tryAcquire(PUBLISH_CLASS) ?? await this.#publishPermit(name, options.signal).catch(error => {
      Telemetry.end(span, outcomeOf(error), error)
      throw error
    })
    span.setAttribute('discovery.queued_ms', Math.round((performance.now() - waited) * 1000) / 1000)
    let query: Query
    try {
      query = this.queries.begin('advertise', { timeout: options.timeout ?? Math.max(this.#timeout, PUBLISH_TIMEOUT), signal: options.signal })
    } catch (error) {
      permit.release()
      Telemetry.end(span, outcomeOf(error), error)
      throw error
    }
    let peers = 0
    try {
      const cid = nameToCid(name)
      await query.race(query.retry(async signal => {
        const drain = async (events: AsyncIterable<DhtEvent>): Promise<void> => {
          for await (const event of events) {
            this.#dhtEvents++
            if (event.name === 'PEER_RESPONSE') peers++
          }
        }
        await Promise.all([
          drain(this.#dht.put(recordKey(name, this.peerId), value, { signal })),
          withdrawn ? this.#dht.cancelReprovide(cid).catch(() => {}) : provide ? drain(this.#dht.provide(cid, { signal })) : undefined
        ])
      }, retryable, () => this.#telemetry.retry()))
      this.#finish(query, span, 'success', undefined, peers)
    } catch (error) {
      const failure = this.#failure(query, error)
      this.#finish(query, span, outcomeOf(failure), failure, peers)
      throw failure
    } finally {
      permit.release()
    }
  }

  /** A permit of the thread's publications; fails with ERR_DISCOVERY_ABORTED or ERR_DISCOVERY_SHUTDOWN while waiting. */
  async #publishPermit (name: string, signal?: AbortSignal): Promise<Permit> {
    if (this.queries.closed) throw stoppedError(`the publication of "${name}"`)
    try {
      return await this.#publications.acquire(PUBLISH_CLASS, { signal: signal === undefined ? this.#stopping.signal : AbortSignal.any([signal, this.#stopping.signal]) })
    } catch (error) {
      if (this.#stopping.signal.aborted) throw new DiscoveryError(DiscoveryErrorCode.SHUTDOWN, `the registry stopped; the publication of "${name}" cancelled`, { cause: error })
      throw new DiscoveryError(DiscoveryErrorCode.ABORTED, `the publication of "${name}" was aborted`, { cause: signal?.reason ?? error })
    }
  }

  /** Answers a RECORD_PROTOCOL request: this node's current record for the name asked, or nothing. */
  async #answerRecord (stream: Stream): Promise<void> {
    try {
      const name = Buffer.from(await readAll(stream, 1024)).toString('utf8')
      const value = this.#advertisements.get(name)?.value
      if (value !== undefined && !stream.send(value)) await stream.onDrain()
      await stream.close()
    } catch (error) {
      stream.abort(error as Error)
    }
  }

  // --- finding -------------------------------------------------------------------------------

  /** Counts a refused record and marks its source down; returns undefined. */
  #rejected (error: unknown, from?: string): undefined {
    if (error instanceof RecordRejection) this.#telemetry.record(error.reason)
    if (from !== undefined) this.reputation.failed(from)
    return undefined
  }

  /**
   * Asks the provider itself for its record of `name` (one stream); `times` gets its phases. A
   * connection that failed, or that closed under the request (its peer is gone, and its answer, if
   * any, was cut short), marks the provider unreachable.
   */
  async #fetchDirect (name: string, provider: PeerInfo, signal: AbortSignal, times: ResolveTimes): Promise<ServiceRecord> {
    const connected = this.libp2p.getConnections(provider.id).find(c => c.status === 'open')
    const target = connected === undefined ? dialTarget(provider.id, provider.multiaddrs) : provider.id
    let connection: Connection | undefined
    let stream: Stream
    let at = performance.now()
    try {
      // libp2p.dialProtocol() in its two steps, each timed: the connection, then the stream's negotiation.
      connection = connected ?? await this.libp2p.dial(target, { signal })
      times.connect = performance.now() - at
      at = performance.now()
      stream = await connection.newStream(RECORD_PROTOCOL, { signal })
      times.negotiate = performance.now() - at
    } catch (error) {
      if (signal.aborted) throw signal.reason
      if (connection === undefined) this.unreachable(provider.id)
      else if (connectionFailed(connection, error)) await this.#confirmGone(provider.id)
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `dialling ${provider.id.toString()} failed: ${(error as Error).message}`, { cause: error })
    }
    const onAbort = (): void => stream.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      at = performance.now()
      const value = await exchange(stream, utf8.encode(name), MAX_RECORD_BYTES)
      times.exchange = performance.now() - at
      if (value.byteLength === 0) throw new DiscoveryError(DiscoveryErrorCode.NOT_FOUND, `${provider.id.toString()} does not provide "${name}"`)
      at = performance.now()
      const record = await verifyRecordForKey(recordKey(name, provider.id), value, this.#now())
      times.verify = performance.now() - at
      return record
    } catch (error) {
      if (!signal.aborted && connectionFailed(connection, error)) await this.#confirmGone(provider.id)
      this.#rejected(error)
      throw error
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** Reads the provider's record of `name` from the DHT: the first valid copy any peer returns. */
  async #fetchFromDht (name: string, provider: PeerInfo, signal: AbortSignal, times: ResolveTimes): Promise<ServiceRecord> {
    const key = recordKey(name, provider.id)
    let best: ServiceRecord | undefined
    const at = performance.now()
    for await (const event of this.#dht.get(key, { signal })) {
      this.#dhtEvents++
      const value = event.name === 'VALUE' ? event.value : event.name === 'PEER_RESPONSE' ? event.record?.value : undefined
      if (value === undefined) continue
      const record = await verifyRecordForKey(key, value, this.#now()).catch(error => this.#rejected(error, event.from?.toString()))
      if (record !== undefined && (best === undefined || newer(record, best))) {
        best = record
        // A copy from another node is as good as the provider's own, unless a newer one follows:
        // the first valid one wins (the losers are cancelled with the query's signal).
        break
      }
    }
    if (best === undefined) throw new DiscoveryError(DiscoveryErrorCode.NOT_FOUND, `no record of "${name}" by ${provider.id.toString()}`)
    // (The read and the verification of its answer together.)
    times.exchange = performance.now() - at
    return best
  }

  /**
   * One provider's live record of `name`: the provider is asked directly and the DHT is read at
   * the same time; the first valid answer wins and the other is cancelled. Records are verified;
   * a withdrawn one means the provider is gone (undefined). Never throws for bad records.
   * `times` gets the phases of the answer that won.
   */
  async #fetch (name: string, provider: PeerInfo, signal: AbortSignal, times: ResolveTimes = {}): Promise<ServiceRecord | undefined> {
    const from = provider.id.toString()
    const started = performance.now()
    const controller = new AbortController()
    const onAbort = (): void => controller.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      // A hedged read: the provider is asked first; the DHT is read too if it has not answered
      // within this node's usual answer time (see DHT_READ_DELAY_MAX) or has failed. The first valid answer wins.
      const directTimes: ResolveTimes = { via: 'direct' }
      const dhtTimes: ResolveTimes = { via: 'dht' }
      const direct = this.#fetchDirect(name, provider, controller.signal, directTimes)
      const fromDht = new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.min(DHT_READ_DELAY_MAX, Math.max(HEDGE_DELAY, this.#autoHedge())))
        direct.catch(() => {}).finally(() => { clearTimeout(timer); resolve() })
      }).then(async () => {
        if (controller.signal.aborted) throw controller.signal.reason
        // A copy of the record of a provider nobody can connect to is of no use to the caller.
        if (this.isUnreachable(provider.id)) throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `${from} is unreachable`)
        return await this.#fetchFromDht(name, provider, controller.signal, dhtTimes)
      })
      const record = await Promise.any([direct.then(r => [r, directTimes] as const), fromDht.then(r => [r, dhtTimes] as const)]).then(([r, won]) => { Object.assign(times, won); return r })
      this.reputation.answered(from, performance.now() - started)
      return record.withdrawn === true || record.expiresAt <= this.#now() ? undefined : record
    } catch (error) {
      if (signal.aborted) throw signal.reason
      this.reputation.failed(from)
      return undefined
    } finally {
      signal.removeEventListener('abort', onAbort)
      controller.abort(ENDED)
    }
  }

  /**
   * Providers of `name`, each once: this node first if it provides it, then those of its own
   * provider store, then those the nearest peers name in one round (nearby.ts), then those kad-dht's
   * iterative query finds; the next source is read only when the caller asks for more, and one
   * that sends requests only once `needed()` resolves. Those of one answer come best reputation first.
   */
  async * #providers (name: string, signal: AbortSignal, seen = new Set<string>(), onFound?: (source: LookupSource) => void, needed?: (next: 'nearby' | 'iterative') => Promise<void>): AsyncGenerator<PeerInfo> {
    // Counted as the first provider is found (stats().lookups), not when the caller lets go.
    const telemetry = this.#telemetry
    let found = false
    const counted = (source: LookupSource): void => {
      if (found) return
      found = true
      telemetry.lookup(source)
      onFound?.(source)
    }
    if (this.#advertisements.get(name)?.withdrawn === false && !seen.has(this.peerId.toString())) {
      seen.add(this.peerId.toString())
      counted('local')
      yield { id: this.peerId, multiaddrs: [] }
    }
    const cid = nameToCid(name)
    const reputation = this.reputation
    const isUnreachable = (peer: PeerId): boolean => this.isUnreachable(peer)
    // One answer's providers not yet seen, best reputation first (an answer may name one twice).
    const unseen = function * (providers: PeerInfo[], source: LookupSource): Generator<PeerInfo> {
      for (const provider of reputation.order(providers, p => p.id.toString())) {
        // A provider whose connection failed lately costs nothing until the hold ends.
        if (seen.has(provider.id.toString()) || isUnreachable(provider.id)) continue
        seen.add(provider.id.toString())
        counted(source)
        yield provider
      }
    }
    try {
      // A provider this node is connected to is dialled by its id, on that connection.
      const local = await localProviders(this.#dht, this.libp2p.peerStore, cid, signal, peer => this.libp2p.getConnections(peer).length > 0 ? [] : undefined)
      yield * unseen(local ?? [], 'local')
      // (Without kad-dht's internals both are undefined: its own query is the only source.)
      await needed?.('nearby')
      const nearby = this.#nearbyPeers === 0 ? undefined : nearbyProviders(this.#nearby, name, this.#nearbyPeers, signal)
      // (The next nearest peer is asked only once its answer may be needed, like the round itself.)
      for await (const answer of nearby ?? []) {
        yield * unseen(answer, 'nearby')
        await needed?.('nearby')
      }
      await needed?.('iterative')
      for await (const event of this.#dht.findProviders(cid, { signal })) {
        this.#dhtEvents++
        if (event.name === 'PROVIDER' && event.providers !== undefined) yield * unseen(event.providers, 'iterative')
      }
    } finally {
      if (!found) telemetry.lookup('none')
    }
  }

  /**
   * After a connection to `peer` closed under a request: a new one is dialled (libp2p
   * reports a closed connection open for a while, and closes duplicates of live ones); `peer` is
   * unreachable if that fails too.
   */
  async #confirmGone (peer: PeerId): Promise<void> {
    if (this.stopped) return
    try {
      await this.libp2p.dial(peer, { force: true, signal: AbortSignal.timeout(UNREACHABLE_CONFIRM_TIMEOUT) })
    } catch {
      this.unreachable(peer)
    }
  }

  /**
   * @internal Notes that a connection to `peer` failed: it is skipped for UNREACHABLE_HOLD, and
   * leaves the DHT routing table (see healRoutingTable()).
   */
  unreachable (peer: PeerId | string): void {
    if (this.stopped || peer.toString() === this.peerId.toString()) return
    this.#unreachable.mark(peer)
    void dropFromRoutingTable(this.#dht, typeof peer === 'string' ? peerIdFromString(peer) : peer)
  }

  /** Whether a connection to `peer` failed less than UNREACHABLE_HOLD ago (and none opened since): it is skipped meanwhile. */
  isUnreachable (peer: PeerId | string): boolean {
    return this.#unreachable.has(peer)
  }

  /** The record this node itself advertises under `name`, if live. */
  #own (name: string): ServiceRecord | undefined {
    const advertisement = this.#advertisements.get(name)
    const record = advertisement?.withdrawn === false ? advertisement.record : undefined
    return record !== undefined && record.expiresAt > this.#now() ? record : undefined
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
    return this.#discover(name, options)
  }

  async * #discover (name: string, options: DiscoverOptions): AsyncGenerator<ServiceRecord, void, undefined> {
    const limit = options.limit ?? Infinity
    const query = this.queries.begin('discover', { timeout: options.timeout ?? this.#timeout, signal: options.signal })
    const span = this.#telemetry.span('discovery.discover', { 'discovery.name': name })
    let found = 0
    let contacted = 0
    // Records arrive from concurrent fetches; this queue hands them to the consumer in order.
    const ready: ServiceRecord[] = []
    let wake: (() => void) | undefined
    let producing = true
    const fetches = new Set<Promise<void>>()
    const notify = (): void => { const w = wake; wake = undefined; w?.() }
    const produce = (async () => {
      try {
        await query.retry(async signal => {
          for await (const provider of this.#providers(name, signal)) {
            contacted++
            const own = provider.id.equals(this.peerId) ? this.#own(name) : undefined
            const fetch = (own !== undefined ? Promise.resolve(own) : this.#fetch(name, provider, signal)).then(record => {
              if (record !== undefined) { ready.push(record); notify() }
            }, () => {}).finally(() => { fetches.delete(fetch) })
            fetches.add(fetch)
          }
        }, error => retryable(error) && contacted === 0, () => this.#telemetry.retry())
        await Promise.all(fetches)
      } finally {
        producing = false
        notify()
      }
    })()
    produce.catch(() => {})
    let failure: unknown
    try {
      while (found < limit) {
        if (ready.length > 0) {
          found++
          yield ready.shift()!
          continue
        }
        if (!producing) {
          await produce
          break
        }
        await query.race(new Promise<void>(resolve => { wake = resolve }))
      }
    } catch (error) {
      // A deadline after something was found just ends the stream.
      if (!(found > 0 && isDiscoveryError(error, DiscoveryErrorCode.TIMEOUT))) failure = this.#failure(query, error)
    } finally {
      const outcome: QueryOutcome = failure !== undefined ? outcomeOf(failure) : found > 0 ? 'success' : 'not-found'
      span.setAttribute('discovery.records', found)
      this.#finish(query, span, outcome, failure, contacted)
    }
    if (failure !== undefined) throw failure
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
    const fanOut = options.fanOut ?? DEFAULT_FAN_OUT
    const hedgeOption = options.hedge ?? 'auto'
    const hedge = fanOut === 1 ? 0 : hedgeOption === 'auto' ? this.#autoHedge() : hedgeOption
    const own = this.#own(name)
    const query = this.queries.begin('resolve', { timeout: options.timeout ?? this.#timeout, signal: options.signal })
    const span = this.#telemetry.span('discovery.resolve', { 'discovery.name': name, 'discovery.fan_out': fanOut, 'discovery.hedge_ms': hedge })
    let contacted = 0
    // Where the provider search found its first provider ('own': this node's own record answered).
    let lookup: LookupSource | 'own' = own !== undefined ? 'own' : 'none'
    const found = (source: LookupSource): void => { if (lookup === 'none') lookup = source }
    // Where the time went, from the attempt that answered (see ResolveTimes).
    const times: ResolveTimes = {}
    try {
      const record = own ?? await query.race(query.retry(async signal => await this.#resolveOnce(name, fanOut, hedge, signal, () => contacted++, found, times), retryable, () => this.#telemetry.retry()))
      span.setAttribute('discovery.lookup', lookup)
      this.#telemetry.phases(span, times)
      this.#finish(query, span, 'success', undefined, contacted)
      return record
    } catch (error) {
      const failure = this.#failure(query, error)
      span.setAttribute('discovery.lookup', lookup)
      this.#finish(query, span, outcomeOf(failure), failure, contacted)
      throw failure
    }
  }

  /**
   * One resolution attempt: providers are pulled from the DHT only while fewer than `fanOut` are
   * being asked or waiting (so a provider this node already knows of costs no network query),
   * best reputation first; the first valid record wins and everything else is cancelled.
   */
  async #resolveOnce (name: string, fanOut: number, hedge: number, signal: AbortSignal, contacted: () => void, found: (source: LookupSource) => void, times: ResolveTimes): Promise<ServiceRecord> {
    const started = performance.now()
    let firstProvider: number | undefined
    const attempt = new AbortController()
    const onAbort = (): void => attempt.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    const seen = new Set<string>()
    let providers: AsyncGenerator<PeerInfo> | undefined
    const candidates: PeerInfo[] = []
    let running = 0
    let searching = true
    let pulling = false
    // Providers that may be asked at once: all of fanOut, or with a hedge one more per hedge period.
    let allowed = hedge > 0 ? 1 : fanOut
    let hedgeTimer: NodeJS.Timeout | undefined
    // The search goes to the network (the nearest peers, then kad-dht's query) only for a provider
    // that may be asked now, not for the one kept at hand for the next hedge period: on a name with
    // one provider that one does not exist, and looking for it cost a nearby round per resolve (and
    // an iterative query when the round found no other), 3 to 5 times the work of the resolve itself.
    let wanted: (() => void) | undefined
    // The source the search reads now: only kad-dht's query goes on by itself while nobody reads it.
    let stage: 'nearby' | 'iterative' | undefined
    const needed = async (next: 'nearby' | 'iterative'): Promise<void> => {
      stage = next
      if (running + candidates.length < allowed) return
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(attempt.signal.reason)
        attempt.signal.addEventListener('abort', onAbort, { once: true })
        wanted = () => { attempt.signal.removeEventListener('abort', onAbort); resolve() }
      })
    }
    return await new Promise<ServiceRecord>((resolve, reject) => {
      let settled = false
      const finish = (error: unknown, record?: ServiceRecord): void => {
        if (settled) return
        settled = true
        clearTimeout(hedgeTimer)
        signal.removeEventListener('abort', onAbort)
        attempt.abort(ENDED)
        void providers?.return(undefined).catch(() => {})
        if (record !== undefined) resolve(record)
        else reject(error)
      }
      const pull = async (): Promise<void> => {
        pulling = true
        providers ??= this.#providers(name, attempt.signal, seen, found, needed)
        try {
          const next = await providers.next()
          if (next.done === true) searching = false
          else {
            firstProvider ??= performance.now()
            candidates.push(next.value)
          }
        } catch (error) {
          searching = false
          if (attempt.signal.aborted) finish(signal.aborted ? signal.reason : error)
          else finish(new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `the provider search for "${name}" failed: ${(error as Error).message}`, { cause: error }))
        } finally {
          pulling = false
        }
        pump()
      }
      const pump = (): void => {
        if (settled) return
        if (candidates.length > 1) candidates.splice(0, candidates.length, ...this.reputation.order(candidates, p => p.id.toString()))
        while (running < allowed && candidates.length > 0) {
          const provider = candidates.shift()!
          running++
          contacted()
          if (allowed < fanOut) {
            // No answer within the hedge period: one more provider may be asked.
            clearTimeout(hedgeTimer)
            hedgeTimer = setTimeout(() => { allowed++; pump() }, hedge)
          }
          const fetchTimes: ResolveTimes = { search: firstProvider! - started, queued: performance.now() - firstProvider! }
          this.#fetch(name, provider, attempt.signal, fetchTimes).then(record => {
            running--
            if (record !== undefined) {
              if (!settled) Object.assign(times, fetchTimes)
              finish(undefined, record)
            } else pump()
          }, error => { running--; if (attempt.signal.aborted) finish(error); else pump() })
        }
        // A search waiting for a provider to be needed goes on.
        if (wanted !== undefined && running + candidates.length < allowed) {
          const wake = wanted
          wanted = undefined
          wake()
        }
        // Candidates are gathered for those that may be asked, plus one at hand for the next hedge
        // period (more would keep the DHT query going for providers that may never be asked).
        if (searching && !pulling && running + candidates.length < Math.min(fanOut, allowed + 1)) void pull()
        else if (searching && !pulling && providers !== undefined && stage === 'iterative') {
          // Enough providers are being asked: stop the DHT query until more are needed. (An answer
          // of the nearest peers already in hand is kept: the next provider may be in it.)
          void providers.return(undefined).catch(() => {})
          providers = undefined
          stage = undefined
        } else if (!searching && running === 0 && candidates.length === 0) {
          finish(new DiscoveryError(DiscoveryErrorCode.NOT_FOUND, `no live record of "${name}" was found`))
        }
      }
      pump()
    })
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
    return this.#watch(name, options)
  }

  async * #watch (name: string, options: WatchOptions): AsyncGenerator<WatchEvent, void, undefined> {
    const interval = options.interval ?? DEFAULT_WATCH_INTERVAL
    const stop = options.signal === undefined ? this.#stopping.signal : AbortSignal.any([options.signal, this.#stopping.signal])
    // The caller's abort ends the watch quietly; the registry's stop fails it, as it fails queries.
    const ended = (): boolean => {
      if (this.#stopping.signal.aborted) throw stoppedError('watch()')
      return stop.aborted
    }
    const known = new Map<string, ServiceRecord>()
    while (!ended()) {
      const current = new Map<string, ServiceRecord>()
      try {
        for await (const record of this.#discover(name, { timeout: options.timeout ?? this.#timeout, signal: stop })) current.set(record.peerId, record)
      } catch (error) {
        if (ended()) return
        // A round that failed says nothing about who is gone; try again next round.
        if (!isDiscoveryError(error, DiscoveryErrorCode.TIMEOUT) && !isDiscoveryError(error, DiscoveryErrorCode.NOT_FOUND)) throw error
        if (isDiscoveryError(error, DiscoveryErrorCode.TIMEOUT)) for (const [peer, record] of known) current.set(peer, record)
      }
      const now = this.#now()
      for (const [peer, record] of current) {
        if (record.expiresAt <= now) continue
        const before = known.get(peer)
        if (before === undefined) yield { type: 'added', record }
        else if (newer(record, before)) yield { type: 'updated', record }
        known.set(peer, record)
      }
      for (const [peer, record] of known) {
        const still = current.get(peer)
        if (still === undefined || still.expiresAt <= now) {
          known.delete(peer)
          yield { type: 'gone', record }
        }
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(done, interval * (0.8 + Math.random() * 0.4))
        function done (): void { clearTimeout(timer); stop.removeEventListener('abort', done); resolve() }
        stop.addEventListener('abort', done, { once: true })
      })
    }
  }

  // --- calling providers ---------------------------------------------------------------------

  /** Opens a stream for `protocol` to the provider of `record` (its addresses, then its id). */
  async dial (record: ServiceRecord, protocol: string, options: { signal?: AbortSignal } = {}): Promise<Stream> {
    callArguments(record, protocol, options)
    this.#refuseIfStopped('dial()')
    const peer = peerIdFromString(record.peerId)
    const connected = this.libp2p.getConnections(peer).length > 0
    if (!connected && this.isUnreachable(peer)) {
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `dialling ${record.peerId} for ${protocol} skipped: a connection to it failed less than ${UNREACHABLE_HOLD / 1000} s ago`)
    }
    const target = connected ? peer : dialTarget(peer, record.multiaddrs)
    let connection: Connection | undefined
    try {
      connection = await this.libp2p.dial(target, { signal: options.signal })
      return await connection.newStream(protocol, { signal: options.signal })
    } catch (error) {
      if (options.signal?.aborted !== true) {
        if (connection === undefined) this.unreachable(peer)
        else if (connectionFailed(connection, error)) await this.#confirmGone(peer)
      }
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `dialling ${record.peerId} for ${protocol} failed: ${(error as Error).message}`, { cause: error })
    }
  }

  /**
   * A small RPC: sends `request` to the provider of `record` on `protocol` (a new stream, its
   * write side closed after the request) and resolves with the whole response.
   */
  async request (record: ServiceRecord, protocol: string, request: Uint8Array | string, options: { signal?: AbortSignal, maxResponseBytes?: number } = {}): Promise<Uint8Array> {
    callArguments(record, protocol, options)
    requestBody(request)
    const stream = await this.dial(record, protocol, options)
    return await this.#exchange(stream, request, options)
  }

  /**
   * request() on a connection already open (the service client's path). When the stream cannot be
   * opened because the connection is gone, `closed` is called (nothing was sent; the peer is held
   * unreachable unless a new connection to it opens, see #confirmGone()).
   */
  async #requestOn (connection: Connection, protocol: string, request: Uint8Array | string, options: { signal?: AbortSignal, maxResponseBytes?: number, closed?: () => void } = {}): Promise<Uint8Array> {
    let stream: Stream
    try {
      stream = await connection.newStream(protocol, { signal: options.signal })
    } catch (error) {
      if (options.signal?.aborted !== true && connectionFailed(connection, error)) {
        await this.#confirmGone(connection.remotePeer)
        options.closed?.()
      }
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `opening a ${protocol} stream failed: ${(error as Error).message}`, { cause: error })
    }
    return await this.#exchange(stream, request, options)
  }

  async #exchange (stream: Stream, request: Uint8Array | string, options: { signal?: AbortSignal, maxResponseBytes?: number }): Promise<Uint8Array> {
    const signal = options.signal
    const onAbort = (): void => stream.abort(signal?.reason ?? new Error('aborted'))
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await exchange(stream, typeof request === 'string' ? utf8.encode(request) : request, options.maxResponseBytes ?? DEFAULT_MAX_MESSAGE_BYTES)
    } catch (error) {
      if (isDiscoveryError(error)) throw error
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `the request failed: ${(error as Error).message}`, { cause: error })
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Answers request() calls on `protocol`: each stream's bytes in, the handler's answer out
   * (`handler(request, { peerId, connection })`; what it returns or resolves with is sent back, and
   * a throw resets the stream).
   */
  async handle (protocol: string, handler: RequestHandler, options: { maxRequestBytes?: number, maxInboundStreams?: number } = {}): Promise<void> {
    handleArguments(protocol, handler, options)
    this.#refuseIfStopped('handle()')
    await this.libp2p.handle(protocol, async (stream, connection) => {
      try {
        const request = await readAll(stream, options.maxRequestBytes ?? DEFAULT_MAX_MESSAGE_BYTES)
        const response = await handler(request, { peerId: connection.remotePeer, connection })
        const bytes = typeof response === 'string' ? utf8.encode(response) : response
        if (bytes.byteLength > 0 && !stream.send(bytes)) await stream.onDrain()
        await stream.close()
      } catch (error) {
        stream.abort(error as Error)
      }
    }, { maxInboundStreams: options.maxInboundStreams ?? 256 })
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
      requestOn: async (connection, protocol, request, options) => await this.#requestOn(connection, protocol, request, options)
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
      for (const advertisement of this.#advertisements.values()) advertisement.cancel()
      this.#advertisements.clear()
      await Promise.allSettled([...this.#clients].map(async client => { await client.close() }))
      this.#detachTransient?.()
      this.libp2p.removeEventListener('connection:open', this.#onConnectionOpen)
      this.#detachHealing()
      await this.libp2p.unhandle(RECORD_PROTOCOL).catch(() => {})
      await this.libp2p.unhandle(PROVIDERS_PROTOCOL).catch(() => {})
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

  /** The DiscoveryError a query failed with (its own reason when its signal fired first). */
  #failure (query: Query, error: unknown): unknown {
    if (query.signal.aborted && isDiscoveryError(query.signal.reason)) return query.signal.reason
    if (isDiscoveryError(error)) return error
    return new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, (error as Error)?.message ?? String(error), { cause: error })
  }

  #finish (query: Query, span: ReturnType<Telemetry['span']>, outcome: QueryOutcome, error: unknown, peers: number): void {
    query.end()
    span.setAttribute('discovery.peers_contacted', peers)
    Telemetry.end(span, outcome, error)
    this.#telemetry.query(query.kind, outcome, performance.now() - query.started)
    this.#telemetry.events(this.#dhtEvents - (this.#reported))
    this.#reported = this.#dhtEvents
  }

  #reported = 0
}
