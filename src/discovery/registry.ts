/**
 * ServiceRegistry: service discovery on a private Kademlia DHT (@libp2p/kad-dht) over node-msquic.
 * Providers advertise signed records (a PUT_VALUE record and a provider record per name); clients
 * discover, resolve and watch them through the async query layer (query-layer.ts). JS thread only.
 */
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { OperationLimiter, type Permit } from '../limits/operation-limiter.js'
import { checkOptions, invalidArgType, invalidArgValue } from '../args.js'
import type { TransientConnectionManager } from '../limits/transient.js'
import { ServiceClient, type ServiceClientOptions } from './client.js'
import { DiscoveryError, DiscoveryErrorCode, isDiscoveryError, stoppedError } from './errors.js'
import { DEFAULT_QUERY_TIMEOUT, QueryLayer, outcomeOf, retryable, type QueryOptions } from './query-layer.js'
import { RECORD_NAMESPACE, RecordRejection, nameToCid, recordKey, selectRecord, signRecord, verifyRecordForKey, type ServiceRecord } from './record.js'
import { Reputation, autoHedge } from './reputation.js'
import { loadPeers } from './peers.js'
import { Telemetry, loadTracing } from './telemetry.js'
import { ownTransientConnections } from './transient.js'
import { Advertisement, type Publishing } from './advertisement.js'
import { announceNearby } from './announce.js'
import { joined } from './kad-internals.js'
import { compactMemoryDatastore } from './datastore.js'
import { dialTarget, publishable } from './addresses.js'
import { Reachability, connectionFailed } from './unreachable.js'
import { answerProviders } from './nearby.js'
import { Finder, type OwnRecords } from './finder.js'
import { exchange, readAll } from './wire.js'
import {
  DEFAULT_DHT_PROTOCOL, RECORD_PROTOCOL, PROVIDERS_PROTOCOL, DEFAULT_TTL, DEFAULT_BOOTSTRAP_TIMEOUT,
  PUBLISH_TIMEOUT, PUBLICATIONS_AT_ONCE, UNREACHABLE_HOLD, PUBLISH_CLASS, DEFAULT_ANNOUNCE_PEERS, NEARBY_PEERS, DEFAULT_MAX_MESSAGE_BYTES, type DhtService, type DhtEvent, type ServiceRegistryOptions,
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

/** The validator of dhtOptions(); a registry on the node swaps it for its own counting one. */
const defaultValidator = Object.assign(async (key: Uint8Array, value: Uint8Array): Promise<void> => { await verifyRecordForKey(key, value) }, { [Symbol.for('node-msquic.discovery.validator')]: true })
const isDefaultValidator = (fn: unknown): boolean => (fn as Record<symbol, unknown>)[Symbol.for('node-msquic.discovery.validator')] === true

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
  readonly #reachability: Reachability
  readonly #finder: Finder
  /** What the advertisements use: the node's key, clock and addresses, and #publish(). */
  readonly #publishing: Publishing
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
    this.#defaultTtl = options.defaultTtl ?? DEFAULT_TTL
    this.#now = options.now ?? Date.now
    this.#stopNode = options.stopNode ?? false
    this.#needsPeer = options.needsPeer ?? false
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
    const reachability = this.#reachability = new Reachability({ libp2p, dht, stopping: this.#stopping.signal })
    void libp2p.handle(RECORD_PROTOCOL, async (stream) => { await this.#answerRecord(stream) }, { maxInboundStreams: 256 }).catch(() => {})
    const ownRecords: OwnRecords = {
      provides: name => this.#advertisements.get(name)?.withdrawn === false,
      own: name => {
        const advertisement = this.#advertisements.get(name)
        const record = advertisement?.withdrawn === false ? advertisement.record : undefined
        return record !== undefined && record.expiresAt > this.#now() ? record : undefined
      }
    }
    this.#finder = new Finder({ libp2p, dht, queries: this.queries, reputation: this.reputation, reachability, telemetry: this.#telemetry, now: () => this.#now(), stopping: this.#stopping.signal, ownRecords }, { timeout: this.#timeout, nearbyPeers: options.nearbyPeers ?? NEARBY_PEERS })
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
      dhtEvents: this.#telemetry.dhtEvents,
      advertised: [...this.#advertisements.values()].filter(a => !a.withdrawn).length,
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
    let sent: number | undefined
    const report = this.#telemetry.traced<number | undefined>(() => this.#telemetry.span('discovery.announce', { 'discovery.name': name }), {
      peers: () => sent ?? 0,
      outcome: sent => sent === undefined || sent === 0 ? 'not-found' : 'success'
    })
    let begun = false
    return await this.queries.run('announce', { timeout: options.timeout ?? this.#timeout, signal: options.signal }, async query => {
      begun = true
      await query.race(joined(this.#dht))
      sent = await query.race(announceNearby(this.#dht, nameToCid(name), this.peerId, publishable(this.libp2p.getMultiaddrs()), this.#announcePeers, query.signal))
      return sent
    }, report).catch(error => {
      // A stopped registry refuses it (advertise() then fails); its failures are only not-announced.
      if (!begun) throw error
      return undefined
    })
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
    let peers = 0
    const report = this.#telemetry.traced<void>(span, { peers: () => peers })
    try {
      const cid = nameToCid(name)
      await this.queries.run('advertise', { timeout: options.timeout ?? Math.max(this.#timeout, PUBLISH_TIMEOUT), signal: options.signal }, async query => await query.retry(async signal => {
        const drain = async (events: AsyncIterable<DhtEvent>): Promise<void> => {
          for await (const event of events) {
            this.#telemetry.dhtEvents++
            if (event.name === 'PEER_RESPONSE') peers++
          }
        }
        await Promise.all([
          drain(this.#dht.put(recordKey(name, this.peerId), value, { signal })),
          withdrawn ? this.#dht.cancelReprovide(cid).catch(() => {}) : provide ? drain(this.#dht.provide(cid, { signal })) : undefined
        ])
      }, retryable, () => this.#telemetry.retry()), report)
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
        else if (connectionFailed(connection, error)) await this.#reachability.confirmGone(peer)
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
        await this.#reachability.confirmGone(connection.remotePeer)
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
      this.#reachability.stop()
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
}
