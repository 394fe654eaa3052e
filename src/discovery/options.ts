/**
 * The ServiceRegistry's constants, its option, event and statistics types (registry.ts re-exports
 * them), and the argument checks of every public method of the discovery layer (the one place they
 * live; imports none of libp2p's packages, so the CLI checks its arguments before loading them).
 */
import type { Connection, Metrics, PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isIP } from 'node:net'
import { checkOptions, checkSignal, integer, invalidArgType, invalidArgValue } from '../args.js'
import type { TransientConnectionManager } from '../limits/transient.js'
import type { OperationLimiter } from '../limits/operation-limiter.js'
import type { CID } from 'multiformats/cid'
import type { JsonValue, ServiceRecord } from './record.js'
import { MAX_METADATA_BYTES, MAX_MULTIADDRS, MAX_NAME_BYTES, metadataBytes } from './bounds.js'
import type { TransientOptions } from './transient.js'

/** The DHT protocol of registries: a private DHT, never the public Amino DHT (`/ipfs/kad/1.0.0`). */
export const DEFAULT_DHT_PROTOCOL = '/node-msquic/kad/1.0.0'
/** Where a provider answers "your record for this name" directly (one request, one response). */
export const RECORD_PROTOCOL = '/node-msquic/discovery/record/1.0.0'
/** Where a registry answers "the providers of this name you store" (one request, one response; see nearby.ts). */
export const PROVIDERS_PROTOCOL = '/node-msquic/discovery/providers/1.0.0'
/** A query's deadline when the caller gives none (ms). kad-dht's own default would be 180 s. */
export const DEFAULT_QUERY_TIMEOUT = 5_000
/** A record's lifetime when advertise() is given none (ms). */
export const DEFAULT_TTL = 10 * 60_000
/** The shortest TTL advertise() accepts (ms). */
export const MIN_TTL = 100
/**
 * The longest TTL advertise() accepts, and the longest timeout anything takes (ms, about 24.8
 * days): Node arms no timer longer than 2^31 - 1 ms (a longer one fires after 1 ms).
 */
export const MAX_TTL = 2 ** 31 - 1
export { MAX_METADATA_BYTES, MAX_NAME_BYTES, MAX_MULTIADDRS, metadataBytes }
/** Where ServiceRegistry.create() listens when given no `listen`: loopback, a free port. */
export const DEFAULT_LISTEN: readonly string[] = ['/ip4/127.0.0.1/udp/0/quic-v1']
/** How long ServiceRegistry.create() waits for a bootstrap peer to enter the routing table (ms). */
export const DEFAULT_BOOTSTRAP_TIMEOUT = 10_000
/** Providers fetched from in parallel by resolve() when it is given no `fanOut`. */
export const DEFAULT_FAN_OUT = 3
/** Milliseconds between watch() rounds when it is given no `interval`. */
export const DEFAULT_WATCH_INTERVAL = 1_000
/**
 * Milliseconds a provider has to answer for its record before the DHT is read as well; also
 * resolve()'s automatic hedge while too few answers are known (AUTO_HEDGE_SAMPLES).
 */
export const HEDGE_DELAY = 50
/**
 * The longest a provider's own answer is waited for before its record is read from the DHT as well
 * (ms). Before that, the wait is the automatic hedge (below), at least HEDGE_DELAY: the DHT read is
 * kad-dht's iterative query (about k requests, each answered with k peers), far dearer than the
 * provider's answer, and a node under load answers more slowly; a fixed 50 ms started it for most
 * resolves of a busy node, which added to the load. At most this long, so that a provider that took
 * the request and never answers still has its record read in time.
 */
export const DHT_READ_DELAY_MAX = 1_000
/**
 * resolve()'s automatic hedge (`hedge: 'auto'`): one more provider is asked once the request has
 * waited longer than this quantile of the node's recent answer latencies ("The Tail at Scale":
 * about one request in twenty gets a second).
 */
export const AUTO_HEDGE_QUANTILE = 0.95
/** The automatic hedge never waits less (ms): a hedge on every request is fan-out all at once. */
export const AUTO_HEDGE_MIN = 1
/** Answers known before the automatic hedge follows their latency (until then: HEDGE_DELAY). */
export const AUTO_HEDGE_SAMPLES = 16
/** The deadline of a publication (advertise, refresh, withdraw) at least, unless given one (ms). */
export const PUBLISH_TIMEOUT = 30_000
/**
 * Full publications (a put and a provide: two kad-dht lookups, each about k requests that carry k
 * peers) running at once on one thread, over every registry on it (ServiceRegistryOptions.publications).
 * A publication costs 100 to 300 ms of the JavaScript thread on a 31-node network: 31 registries
 * publishing at once in one process kept the thread busy for 7 to 14 s, and resolves queued behind
 * that work timed out. Two at a time leave the thread to the resolves in between; the announce
 * (below) has made the service discoverable already.
 */
export const PUBLICATIONS_AT_ONCE = 2
/** The class full publications take their permits from. */
export const PUBLISH_CLASS = 'publish'
/** Peers of the routing table an advertisement is announced to at once (see announce.ts). */
export const DEFAULT_ANNOUNCE_PEERS = 20
/** Peers a provider search asks in one round before kad-dht's iterative query (see nearby.ts): kad-dht's α here. */
export const NEARBY_PEERS = 3
/**
 * How long a provider search waits for a nearby peer's answer (ms) before it gives up on it: a peer
 * of the routing table that has gone away is dialled until the dial times out (seconds), and the
 * iterative query waits for the round to end.
 */
export const NEARBY_TIMEOUT = 1_000
/**
 * How long a provider whose connection failed is skipped (ms) by resolve(), discover(), dial() and
 * clients, unless a connection to it opens again: a killed provider's record stays valid until its
 * TTL, and each later call would otherwise pay a failed connection (a timeout, on a host gone).
 */
export const UNREACHABLE_HOLD = 30_000
/**
 * How long a provider whose connection closed under a request has to take a new one (ms) before it
 * is held unreachable (see UNREACHABLE_HOLD).
 */
export const UNREACHABLE_CONFIRM_TIMEOUT = 2_000
/** A request() or handle() message, at most (bytes), unless given another bound. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 20

/** The kad-dht service a registry runs on: the slice of @libp2p/kad-dht's KadDHT it uses. */
export interface DhtService {
  readonly validators: Record<string, (key: Uint8Array, value: Uint8Array) => void | Promise<void>>
  readonly selectors: Record<string, (key: Uint8Array, values: Uint8Array[]) => number | Promise<number>>
  get: (key: Uint8Array, options?: { signal?: AbortSignal }) => AsyncIterable<DhtEvent>
  put: (key: Uint8Array, value: Uint8Array, options?: { signal?: AbortSignal }) => AsyncIterable<DhtEvent>
  provide: (cid: CID, options?: { signal?: AbortSignal }) => AsyncIterable<DhtEvent>
  findProviders: (cid: CID, options?: { signal?: AbortSignal }) => AsyncIterable<DhtEvent>
  cancelReprovide: (cid: CID) => Promise<void>
  routingTable?: { size: number }
}

/** The fields of kad-dht query events the registry reads. */
export interface DhtEvent {
  /** The event's name: `PROVIDER`, `PEER_RESPONSE`, `VALUE`, `QUERY_ERROR`, … */
  name: string
  providers?: PeerInfo[]
  record?: { key: Uint8Array, value: Uint8Array }
  value?: Uint8Array
  from?: PeerId
  error?: Error
}

/** Options of a registry over an existing node (`new ServiceRegistry(libp2p, options)`). */
export interface ServiceRegistryOptions {
  /** The key records are signed with; must be the node's. Default: the node's own (from its components). */
  privateKey?: PrivateKey
  /** The name of the kad-dht service in `libp2p.services`. Default: the first service that looks like kad-dht. */
  dhtService?: string
  /** Deadline of queries given no `timeout` (ms). Default 5000 (DEFAULT_QUERY_TIMEOUT). */
  queryTimeout?: number
  /** TTL of advertisements given none (ms). Default {@link DEFAULT_TTL}. */
  defaultTtl?: number
  /**
   * Peers of the routing table closest to a name that advertise() sends its provider record to at
   * once, before the full publication (see AdvertiseOptions.wait). 0: none, advertise() always waits
   * for the full publication. Default {@link DEFAULT_ANNOUNCE_PEERS}.
   */
  announcePeers?: number
  /**
   * Peers of the routing table closest to a name that a provider search asks first (one
   * PROVIDERS_PROTOCOL request each, in parallel) when this node's own provider store has none; kad-dht's
   * iterative query runs only if they know of no provider (see nearby.ts). 0: the iterative query
   * always. Default {@link NEARBY_PEERS}.
   */
  nearbyPeers?: number
  /**
   * The TransientConnectionManager that owns the node's connections to peers outside the DHT
   * routing table (see transient.ts); false: none. Default: budget 256, TTL 60 s.
   */
  transient?: TransientOptions | TransientConnectionManager<string> | false
  /** Time source of record expiry (ms since the epoch); tests pass a fake one. Default Date.now. */
  now?: () => number
  /** Stop the libp2p node in stop(). Default false (true for ServiceRegistry.create()). */
  stopNode?: boolean
  /**
   * @internal Set by ServiceRegistry.create() when it was given no bootstrap and no `firstNode`:
   * advertise(), resolve(), discover() and watch() fail at once while the node knows no peer.
   */
  needsPeer?: boolean
  /**
   * @internal Set by ServiceRegistry.create() when it made the `transient` manager it passes (it
   * shares it with the transport): stop() closes it.
   */
  ownsTransient?: boolean
  /**
   * The limiter every full publication (advertise, refresh, withdraw) takes a permit of class
   * {@link PUBLISH_CLASS} from before its DHT queries start; the deadline of a publication runs from
   * then. Default: one per thread, shared by every registry on it, with {@link PUBLICATIONS_AT_ONCE}
   * permits (the work is the thread's, however many registries it runs).
   */
  publications?: OperationLimiter
}

/** Options of {@link ServiceRegistry.create}. */
export interface ServiceRegistryInit extends ServiceRegistryOptions {
  /**
   * Multiaddrs to listen on: one or an array, each `/ip4|ip6/<address>/udp/<port>/quic-v1` (port 0:
   * a free one). Default {@link DEFAULT_LISTEN}, loopback only: other hosts need e.g.
   * `/ip4/0.0.0.0/udp/4001/quic-v1`.
   */
  listen?: string | readonly string[]
  /**
   * Registry (or any member) multiaddrs dialled at start: one or an array, each
   * `/ip4|ip6/<address>/udp/<port>/quic-v1`, best with its `/p2p/<peer id>` (the dial is then
   * authenticated). Checked before anything starts (`ERR_INVALID_ARG_VALUE` names a bad entry).
   * Default none: then the node is alone until others dial it, and advertise(), resolve(),
   * discover() and watch() fail at once with `ERR_DISCOVERY_NOT_CONFIGURED` while it knows no
   * peer, unless `firstNode` says it is meant to be the first node of its network.
   */
  bootstrap?: string | ReadonlyArray<string | Multiaddr>
  /**
   * This node is the first of its network (others bootstrap from it): with no bootstrap and no
   * peer yet, its queries wait for peers within their deadline instead of failing at once.
   * Default false.
   */
  firstNode?: boolean
  /**
   * The addresses peers are told to dial (in identify, provider entries and records) instead of the
   * listening ones, as libp2p's `addresses.announce`: e.g. the address a NAT or a container
   * publishes. Default: the listening addresses, a wildcard expanded to the interfaces' addresses,
   * loopback ones left out when the node has another.
   */
  announce?: string | readonly string[]
  /**
   * Addresses never told to peers: a multiaddr, or its beginning (`/ip4/172.17.0.1` leaves out every
   * address on that IP, e.g. a container bridge other hosts cannot reach). Default none.
   */
  noAnnounce?: string | readonly string[]
  /** The node's identity. Default: a new Ed25519 key. */
  privateKey?: PrivateKey
  /** The DHT protocol. Default {@link DEFAULT_DHT_PROTOCOL}. */
  protocol?: string
  /**
   * Which addresses of other peers the DHT keeps: 'all' (default, for loopback and private
   * networks), 'private' (drop public ones) or 'public' (kad-dht's default, drops private ones).
   */
  addresses?: 'all' | 'private' | 'public'
  /** Options of the node-msquic transport. */
  transport?: import('../libp2p/transport.js').MsQuicTransportOptions
  /** A libp2p metrics factory, e.g. `prometheusMetrics()`; the registry's metrics go through it. */
  metrics?: (components: any) => Metrics
  /** Options of kad-dht, merged over the registry's (k, alpha, timeouts...). */
  dht?: Record<string, unknown>
  /**
   * Options of createLibp2p, merged over the registry's: e.g. other `transports` with
   * `connectionEncrypters` and `streamMuxers` (the benchmark runs the same network over TCP).
   */
  libp2p?: Record<string, unknown>
  /** Milliseconds to wait at start for the bootstrap peers to enter the routing table. Default {@link DEFAULT_BOOTSTRAP_TIMEOUT}. */
  bootstrapTimeout?: number
}

/** Options of advertise(). */
export interface AdvertiseOptions {
  /** Published with the record, returned to discoverers as given: JSON or bytes, ≤ {@link MAX_METADATA_BYTES} bytes encoded. */
  metadata?: JsonValue | Uint8Array
  /**
   * Milliseconds the record lives ({@link MIN_TTL} to {@link MAX_TTL}); it is refreshed at about
   * half of it (with jitter). Default: the registry's `defaultTtl` ({@link DEFAULT_TTL}).
   */
  ttl?: number
  /** Addresses to publish, at most {@link MAX_MULTIADDRS}. Default: the node's own. */
  multiaddrs?: readonly string[]
  /** Deadline of each publication (ms). Default: the registry's query timeout, at least {@link PUBLISH_TIMEOUT}. */
  timeout?: number
  signal?: AbortSignal
  /**
   * When advertise() resolves: `'discoverable'` (default) once the provider record has reached
   * the peers of this node's routing table closest to the name (the full publication goes on in
   * the background: `advertisement.published`); `'published'` once the whole publication is done
   * (the signed record stored on the k closest peers a lookup finds, and the name provided there).
   */
  wait?: 'discoverable' | 'published'
}

/** Options every query takes. */
export interface QueryOptions {
  /** Milliseconds until the query fails with `ERR_DISCOVERY_TIMEOUT`. Default {@link DEFAULT_QUERY_TIMEOUT}. */
  timeout?: number
  /** Aborts the query: it fails with `ERR_DISCOVERY_ABORTED` (the signal's reason as `cause`). */
  signal?: AbortSignal
}

/** Options of discover(). */
export interface DiscoverOptions extends QueryOptions {
  /** Stop after this many records. Default unlimited. */
  limit?: number
}

/** Options of resolve(). */
export interface ResolveOptions extends QueryOptions {
  /** Providers asked at once; the first valid answer wins and the others are cancelled. Default 3. */
  fanOut?: number
  /**
   * Hedged fan-out: ask the best provider first and one more (up to `fanOut`) each time this many
   * milliseconds pass without an answer, or at once when one fails ("The Tail at Scale": most
   * answers cost one request, slow ones still race). `'auto'` (default): the 95th percentile of
   * this node's recent answer latencies (see {@link AUTO_HEDGE_QUANTILE}; `stats().hedgeDelay`).
   * 0: all `fanOut` at once.
   */
  hedge?: number | 'auto'
}

/** Options of watch(). */
export interface WatchOptions {
  /** Milliseconds between rounds (±20 % jitter). Default {@link DEFAULT_WATCH_INTERVAL}. */
  interval?: number
  /** Deadline of each round's discovery (ms). Default: the registry's query timeout. */
  timeout?: number
  /**
   * Ends the watch: the iterator returns, with no error (a `for await` loop over it just ends, as
   * after a `break`). The registry's stop() instead fails it with `ERR_DISCOVERY_SHUTDOWN`.
   */
  signal?: AbortSignal
}

/** What watch() yields. */
export interface WatchEvent {
  /** `added`: a new provider; `updated`: a newer record of a known one; `gone`: expired, withdrawn or no longer found. */
  type: 'added' | 'updated' | 'gone'
  /** The provider's record (the last one seen, for `gone`). */
  record: ServiceRecord
}

/** What stats() returns. */
export interface RegistryStats {
  /** Queries in the pending map now. */
  pending: number
  /** Deadline and backoff timers armed now. */
  timers: number
  /** Queries begun since start. */
  queries: number
  /** Finished queries by `kind:outcome`. */
  outcomes: Record<string, number>
  /** Records refused by reason (malformed, oversized, signature, expired, wrong-key). */
  rejected: Record<string, number>
  /** Query attempts retried after a network error. */
  retries: number
  /** kad-dht query events handled. */
  dhtEvents: number
  /** Services this node advertises now. */
  advertised: number
  /** Peers with a reputation. */
  peers: number
  /** Peers in the DHT routing table. */
  routingTable: number
  /** The wait (ms) before resolve() asks one more provider, with `hedge: 'auto'` (the default), now. */
  hedgeDelay: number
  /**
   * Provider searches by where they found their first provider: this node's own provider store
   * (`local`), one round to the nearest peers (`nearby`, see ServiceRegistryOptions.nearbyPeers),
   * kad-dht's iterative query (`iterative`), or nowhere (`none`).
   */
  lookups: { local: number, nearby: number, iterative: number, none: number }
}

/** A request handler of {@link ServiceRegistry.handle}: the request bytes in, the response out. */
export type RequestHandler = (request: Uint8Array, context: { peerId: PeerId, connection: Connection }) => Uint8Array | string | Promise<Uint8Array | string>

// --- argument checks -------------------------------------------------------------------------
// Misuse throws Node's ERR_INVALID_ARG_TYPE (a TypeError), ERR_INVALID_ARG_VALUE (a TypeError) or
// ERR_OUT_OF_RANGE (a RangeError), through the helpers of ../errors.ts, before anything starts.

/** `value` as a service name: a non-empty string of at most {@link MAX_NAME_BYTES} UTF-8 bytes. */
export function serviceName (value: unknown, name = 'name'): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'a string', value, 'argument')
  if (value.length === 0 || Buffer.byteLength(value) > MAX_NAME_BYTES) {
    throw invalidArgValue(name, `must be a non-empty string of at most ${MAX_NAME_BYTES} UTF-8 bytes`, value, false, 'argument')
  }
  return value
}

/** A protocol id as libp2p takes it: a string starting with "/" (an argument, or an option `what` says). */
export function protocolId (value: unknown, name = 'protocol', what: 'option' | 'argument' = 'argument'): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'a string', value, what)
  if (!value.startsWith('/') || value.length < 2) throw invalidArgValue(name, 'must be a protocol id such as "/echo/1.0.0"', value, false, what)
  return value
}

/** Milliseconds: a number > 0 (or ≥ `min`), at most {@link MAX_TTL} (the longest timer Node arms). */
export function milliseconds (name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'a number of milliseconds', value)
  if (!(value > 0 && value >= min && value <= MAX_TTL)) {
    throw invalidArgValue(name, `must be a number of milliseconds ${min > 0 ? `from ${min} to` : '> 0 and at most'} ${MAX_TTL}`, value, true)
  }
  return value
}

/** `options.timeout` and `options.signal` of a query; the options as an object. */
export function queryOptions<T extends QueryOptions> (options: T | undefined, name = 'options'): T {
  const checked = checkOptions(options, name)
  if (checked.timeout !== undefined) milliseconds('timeout', checked.timeout)
  checkSignal(checked.signal)
  return checked
}

/** advertise()'s arguments: the name, and the options as an object. */
export function advertiseArguments (name: unknown, options: AdvertiseOptions | undefined): AdvertiseOptions {
  serviceName(name)
  const checked = queryOptions(options)
  if (checked.metadata !== undefined) {
    const size = metadataBytes(checked.metadata)
    if (size > MAX_METADATA_BYTES) throw invalidArgValue('metadata', `must be at most ${MAX_METADATA_BYTES} bytes encoded (it is ${size})`, checked.metadata, true)
  }
  if (checked.ttl !== undefined) milliseconds('ttl', checked.ttl, MIN_TTL)
  if (checked.multiaddrs !== undefined) {
    if (!Array.isArray(checked.multiaddrs) || !checked.multiaddrs.every(a => typeof a === 'string')) throw invalidArgType('multiaddrs', 'an array of strings', checked.multiaddrs)
    if (checked.multiaddrs.length > MAX_MULTIADDRS) throw invalidArgValue('multiaddrs', `must hold at most ${MAX_MULTIADDRS} addresses`, checked.multiaddrs, true)
  }
  if (checked.wait !== undefined && checked.wait !== 'discoverable' && checked.wait !== 'published') {
    throw invalidArgValue('wait', "must be 'discoverable' or 'published'", checked.wait)
  }
  return checked
}

/** discover()'s arguments. */
export function discoverArguments (name: unknown, options: DiscoverOptions | undefined): DiscoverOptions {
  serviceName(name)
  const checked = queryOptions(options)
  if (checked.limit !== undefined) integer('limit', checked.limit, { min: 1, infinite: true })
  return checked
}

/** resolve()'s arguments. */
export function resolveArguments (name: unknown, options: ResolveOptions | undefined): ResolveOptions {
  serviceName(name)
  const checked = queryOptions(options)
  if (checked.fanOut !== undefined) integer('fanOut', checked.fanOut, { min: 1 })
  const hedge: unknown = checked.hedge
  if (hedge !== undefined && hedge !== 'auto') {
    if (typeof hedge === 'string') throw invalidArgValue('hedge', "must be 'auto' or a number of milliseconds", hedge)
    if (typeof hedge !== 'number') throw invalidArgType('hedge', "'auto' or a number", hedge)
    if (!(hedge >= 0 && hedge <= MAX_TTL)) throw invalidArgValue('hedge', `must be 'auto' or a number of milliseconds from 0 to ${MAX_TTL}`, hedge, true)
  }
  return checked
}

/** watch()'s arguments. */
export function watchArguments (name: unknown, options: WatchOptions | undefined): WatchOptions {
  serviceName(name)
  const checked = queryOptions(options)
  if (checked.interval !== undefined) milliseconds('interval', checked.interval)
  return checked
}

/** The record dial() and request() call: an object with the provider's `peerId` and `multiaddrs`. */
export function callArguments (record: unknown, protocol: unknown, options: { signal?: AbortSignal, maxResponseBytes?: number } | undefined): void {
  if (typeof record !== 'object' || record === null) throw invalidArgType('record', 'a ServiceRecord', record, 'argument')
  const { peerId, multiaddrs } = record as Partial<ServiceRecord>
  if (typeof peerId !== 'string' || !Array.isArray(multiaddrs)) throw invalidArgValue('record', 'must be a ServiceRecord (with `peerId` and `multiaddrs`)', record, false, 'argument')
  protocolId(protocol)
  const checked = checkOptions(options)
  checkSignal(checked.signal)
  if (checked.maxResponseBytes !== undefined) integer('maxResponseBytes', checked.maxResponseBytes, { min: 1 })
}

/** handle()'s arguments. */
export function handleArguments (protocol: unknown, handler: unknown, options: { maxRequestBytes?: number, maxInboundStreams?: number } | undefined): void {
  protocolId(protocol)
  if (typeof handler !== 'function') throw invalidArgType('handler', 'a function', handler, 'argument')
  const checked = checkOptions(options)
  if (checked.maxRequestBytes !== undefined) integer('maxRequestBytes', checked.maxRequestBytes, { min: 1 })
  if (checked.maxInboundStreams !== undefined) integer('maxInboundStreams', checked.maxInboundStreams, { min: 1 })
}

/** A request() body. */
export function requestBody (value: unknown): Uint8Array | string {
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) throw invalidArgType('request', 'a string or a Uint8Array', value, 'argument')
  return value
}

const QUIC_ADDRESS = /^\/(ip4|ip6)\/([^/]+)\/udp\/(\d{1,5})\/quic-v1(\/p2p\/[1-9A-HJ-NP-Za-km-z]+)?$/

/**
 * Multiaddr strings from `value` (undefined, one, or an array of strings or Multiaddr objects).
 * With `quic` (the registry's own transport), each must be `/ip4|ip6/<address>/udp/<port>/quic-v1`,
 * optionally with `/p2p/<peer id>`; a port of 0 only for listening. Other transports' addresses
 * are only checked to be multiaddrs here (libp2p parses them at start).
 */
export function multiaddrList (name: string, value: unknown, options: { dial: boolean, quic: boolean }): string[] {
  if (value === undefined) return []
  const entries = typeof value === 'string' || isMultiaddrLike(value) ? [value] : value
  if (!Array.isArray(entries)) throw invalidArgType(name, 'a multiaddr string or an array of them', value)
  return entries.map((entry: unknown, i) => {
    const label = typeof value === 'string' || !Array.isArray(value) ? name : `${name}[${i}]`
    const address = isMultiaddrLike(entry) ? entry.toString() : entry
    if (typeof address !== 'string') throw invalidArgType(label, 'a multiaddr string', entry)
    if (!options.quic ? !address.startsWith('/') : !isQuicAddress(address, options.dial)) throw badAddress(label, address, options)
    return address
  })
}

/** The ERR_INVALID_ARG_VALUE of a bad address in `name`: it says the form expected. */
export function badAddress (name: string, address: unknown, options: { dial: boolean, quic: boolean }): Error {
  const form = options.quic
    ? `a QUIC multiaddr such as /ip4/<address>/udp/<port>/quic-v1${options.dial ? '/p2p/<peer id> (what a registry prints as its bootstrap address)' : ' (port 0: a free one)'}`
    : 'a multiaddr (starting with "/")'
  return invalidArgValue(name, `must be ${form}`, address)
}

function isQuicAddress (address: string, dial: boolean): boolean {
  const match = QUIC_ADDRESS.exec(address)
  if (match === null) return false
  const [, family, host, portText] = match
  const port = Number(portText)
  return isIP(host) === (family === 'ip4' ? 4 : 6) && port <= 65535 && (port > 0 || !dial)
}

function isMultiaddrLike (value: unknown): value is Multiaddr {
  return typeof value === 'object' && value !== null && (value as { bytes?: unknown }).bytes instanceof Uint8Array && typeof (value as object).toString === 'function'
}

/** A registry's own options (`new ServiceRegistry(libp2p, options)`), checked; the object. */
export function registryOptions<T extends ServiceRegistryOptions> (options: T | undefined, name = 'options'): T {
  const checked = checkOptions(options, name)
  if (checked.queryTimeout !== undefined) milliseconds('queryTimeout', checked.queryTimeout)
  if (checked.defaultTtl !== undefined) milliseconds('defaultTtl', checked.defaultTtl, MIN_TTL)
  if (checked.announcePeers !== undefined) integer('announcePeers', checked.announcePeers, { min: 0 })
  if (checked.nearbyPeers !== undefined) integer('nearbyPeers', checked.nearbyPeers, { min: 0 })
  if (checked.dhtService !== undefined && typeof checked.dhtService !== 'string') throw invalidArgType('dhtService', 'a string', checked.dhtService)
  if (checked.privateKey !== undefined && (typeof checked.privateKey !== 'object' || checked.privateKey === null)) throw invalidArgType('privateKey', 'a libp2p PrivateKey', checked.privateKey)
  if (checked.transient !== undefined && checked.transient !== false && (typeof checked.transient !== 'object' || checked.transient === null)) throw invalidArgType('transient', 'an object or false', checked.transient)
  if (checked.now !== undefined && typeof checked.now !== 'function') throw invalidArgType('now', 'a function', checked.now)
  if (checked.stopNode !== undefined && typeof checked.stopNode !== 'boolean') throw invalidArgType('stopNode', 'a boolean', checked.stopNode)
  return checked
}

/** ServiceRegistry.create()'s options, checked, with the address lists as arrays of strings. */
export function registryInit (init: ServiceRegistryInit | undefined): ServiceRegistryInit & { listen: string[], bootstrap: string[], announce?: string[], noAnnounce: string[] } {
  const checked = registryOptions(init, 'init')
  for (const key of ['transport', 'dht', 'libp2p'] as const) {
    const value: unknown = checked[key]
    if (value !== undefined && (typeof value !== 'object' || value === null)) throw invalidArgType(key, 'an object', value)
  }
  // Addresses of other transports (`libp2p.transports`) are libp2p's to parse.
  const quic = checked.libp2p?.transports === undefined
  const listen = checked.listen === undefined ? [...DEFAULT_LISTEN] : multiaddrList('listen', checked.listen, { dial: false, quic })
  if (listen.length === 0) throw invalidArgValue('listen', 'must hold at least one address', checked.listen)
  const bootstrap = multiaddrList('bootstrap', checked.bootstrap, { dial: true, quic })
  if (checked.protocol !== undefined) protocolId(checked.protocol, 'protocol', 'option')
  if (checked.addresses !== undefined && !['all', 'private', 'public'].includes(checked.addresses)) {
    throw invalidArgValue('addresses', "must be 'all', 'private' or 'public'", checked.addresses)
  }
  if (checked.metrics !== undefined && typeof checked.metrics !== 'function') throw invalidArgType('metrics', 'a function (a libp2p metrics factory)', checked.metrics)
  if (checked.bootstrapTimeout !== undefined) milliseconds('bootstrapTimeout', checked.bootstrapTimeout)
  if (checked.firstNode !== undefined && typeof checked.firstNode !== 'boolean') throw invalidArgType('firstNode', 'a boolean', checked.firstNode)
  // Announced addresses are any transport's (a NAT's, a relay's); noAnnounce entries may be prefixes.
  const announce = checked.announce === undefined ? undefined : multiaddrList('announce', checked.announce, { dial: false, quic: false })
  const noAnnounce = multiaddrList('noAnnounce', checked.noAnnounce, { dial: false, quic: false })
  return { ...checked, listen, bootstrap, announce, noAnnounce }
}
