/*
 * src/discovery: the discovery layer, the top of node-msquic's stack: ServiceRegistry, a facade over
 * kad-dht-style components (node.ts assembles the node; publisher.ts, finder.ts and caller.ts
 * publish, find and call; rpc/ answers the side protocols; query-layer.ts, reputation.ts,
 * unreachable.ts, telemetry.ts and kad-internals.ts are what they share), the ServiceClient, the
 * record format and the `node-msquic registry|provide|discover` commands (cli.ts).
 *
 * What it may import: src/args.ts, src/errors.ts and src/limits/ (the layers below it); src/libp2p/
 * (the transport) only from node.ts, on demand, and its option types; libp2p's packages, optional
 * peer dependencies, which entry.ts checks before anything loads them. Only src/cli.ts imports it.
 * Inside it, imports run one way (no cycle): registry.ts → node, publisher, finder, caller, rpc/ →
 * the shared parts → options.ts, record.ts → bounds.ts, errors.ts.
 */
/**
 * node-msquic/discovery: service discovery on a private Kademlia DHT (@libp2p/kad-dht) over
 * node-msquic's libp2p transport. Providers advertise signed records; clients discover, resolve
 * and watch them, and call them, through an async query layer that never hangs.
 *
 * Needs `npm install libp2p@3 @libp2p/kad-dht@16 @libp2p/identify@4 @libp2p/ping@3` beside
 * node-msquic. These are the package's types; at run time the package loads entry.js, which
 * checks those packages before it loads this module (see entry.ts).
 *
 * @example
 * ```ts
 * import { ServiceRegistry } from 'node-msquic/discovery'
 * const registry = await ServiceRegistry.create()                       // a bootstrap node
 * const bootstrap = [registry.multiaddrs[0].toString()]
 * const provider = await ServiceRegistry.create({ bootstrap })
 * await provider.handle('/echo/1', request => request)
 * await provider.advertise('echo', { metadata: { region: 'eu' }, ttl: 60_000 })
 * const client = await ServiceRegistry.create({ bootstrap })
 * const record = await client.resolve('echo', { fanOut: 3, timeout: 2_000 })
 * console.log(new TextDecoder().decode(await client.request(record, '/echo/1', 'hi')))
 * await Promise.all([client.stop(), provider.stop(), registry.stop()])
 * ```
 * @packageDocumentation
 */
export {
  ServiceRegistry, Advertisement, type AdvertisementStatus,
  DEFAULT_DHT_PROTOCOL, RECORD_PROTOCOL, PROVIDERS_PROTOCOL, DEFAULT_TTL, MIN_TTL, MAX_TTL, DEFAULT_FAN_OUT, DEFAULT_WATCH_INTERVAL, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_ANNOUNCE_PEERS, NEARBY_PEERS, NEARBY_TIMEOUT,
  DEFAULT_LISTEN, DEFAULT_BOOTSTRAP_TIMEOUT, PUBLISH_TIMEOUT, MAX_METADATA_BYTES, MAX_NAME_BYTES, MAX_MULTIADDRS,
  UNREACHABLE_HOLD, UNREACHABLE_CONFIRM_TIMEOUT, DHT_READ_DELAY_MAX, PUBLICATIONS_AT_ONCE, PUBLISH_CLASS,
  HEDGE_DELAY, AUTO_HEDGE_QUANTILE, AUTO_HEDGE_MIN, AUTO_HEDGE_SAMPLES,
  type ServiceRegistryOptions, type ServiceRegistryInit, type AdvertiseOptions, type DiscoverOptions, type ResolveOptions,
  type WatchOptions, type WatchEvent, type RegistryStats, type RequestHandler, type DhtService, type DhtEvent
} from './registry.js'
export { ServiceClient, type ServiceClientOptions } from './client.js'
export {
  RECORD_NAMESPACE, KEY_PREFIX, SIGNING_DOMAIN, MAX_RECORD_BYTES,
  RecordRejection, nameDigest, nameToCid, recordKey, parseRecordKey, signRecord, verifyRecord, verifyRecordForKey, selectRecord, newer,
  type ServiceRecord, type JsonValue, type RejectionReason
} from './record.js'
export { QueryLayer, Query, DEFAULT_QUERY_TIMEOUT, BASE_BACKOFF, MAX_BACKOFF, type QueryOptions, type QueryOutcome } from './query-layer.js'
export { Reputation } from './reputation.js'
export { DiscoveryError, DiscoveryErrorCode, isDiscoveryError } from './errors.js'
export { METRICS_PREFIX, RESOLVE_PHASES, type SpanLike, type ResolveTimes } from './telemetry.js'
export { ownTransientConnections, type TransientOptions } from './transient.js'
export { compactMemoryDatastore } from './datastore.js'
export { MAX_PROVIDERS_ANSWER, MAX_PROVIDERS_ANSWER_BYTES } from './nearby.js'
