/**
 * The ServiceRegistry's constants and option, event and statistics types (registry.ts re-exports
 * them). Types only, and numbers.
 */
import type { Connection, Metrics, PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import type { TransientConnectionManager } from '../limits/transient.js'
import type { OperationLimiter } from '../limits/operation-limiter.js'
import type { QueryOptions } from './query-layer.js'
import type { JsonValue, ServiceRecord, nameToCid } from './record.js'
import type { TransientOptions } from './transient.js'

/** The DHT protocol of registries: a private DHT, never the public Amino DHT (`/ipfs/kad/1.0.0`). */
export const DEFAULT_DHT_PROTOCOL = '/node-msquic/kad/1.0.0'
/** Where a provider answers "your record for this name" directly (one request, one response). */
export const RECORD_PROTOCOL = '/node-msquic/discovery/record/1.0.0'
/** Where a registry answers "the providers of this name you store" (one request, one response; see nearby.ts). */
export const PROVIDERS_PROTOCOL = '/node-msquic/discovery/providers/1.0.0'
/** A record's lifetime when advertise() is given none (ms). */
export const DEFAULT_TTL = 10 * 60_000
/** The shortest TTL advertise() accepts (ms). */
export const MIN_TTL = 100
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
  provide: (cid: ReturnType<typeof nameToCid>, options?: { signal?: AbortSignal }) => AsyncIterable<DhtEvent>
  findProviders: (cid: ReturnType<typeof nameToCid>, options?: { signal?: AbortSignal }) => AsyncIterable<DhtEvent>
  cancelReprovide: (cid: ReturnType<typeof nameToCid>) => Promise<void>
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
  /** Deadline of queries given no `timeout` (ms). Default 5000. */
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
   * Multiaddrs to listen on. Default `['/ip4/127.0.0.1/udp/0/quic-v1']`: this host only. To be
   * reached from other hosts, listen on `/ip4/0.0.0.0/udp/<port>/quic-v1` (every interface; one UDP port).
   */
  listen?: string[]
  /**
   * The addresses peers are told to dial (in identify, provider entries and records) instead of the
   * listening ones, as libp2p's `addresses.announce`: e.g. the address a NAT or a container
   * publishes. Default: the listening addresses, a wildcard expanded to the interfaces' addresses,
   * loopback ones left out when the node has another.
   */
  announce?: string[]
  /**
   * Addresses never told to peers: a multiaddr, or its beginning (`/ip4/172.17.0.1` leaves out every
   * address on that IP, e.g. a container bridge other hosts cannot reach). Default none.
   */
  noAnnounce?: string[]
  /** Registry (or any member) multiaddrs, each with its /p2p/ id, dialled at start. Default none. */
  bootstrap?: string[]
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
  /** Milliseconds to wait at start for the bootstrap peers to enter the routing table. Default 10000. */
  bootstrapTimeout?: number
}

/** Options of advertise(). */
export interface AdvertiseOptions {
  /** Published with the record, returned to discoverers as given (≤ 1024 bytes encoded). */
  metadata?: JsonValue | Uint8Array
  /** Milliseconds the record lives; it is refreshed at about half of it (with jitter). */
  ttl?: number
  /** Addresses to publish. Default: the node's own. */
  multiaddrs?: string[]
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
  /** Ends the watch (the iterator returns). */
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
