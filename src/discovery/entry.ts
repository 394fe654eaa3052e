/**
 * The run-time entry of node-msquic/discovery (package.json "exports"; its types are index.d.ts).
 * The discovery modules import libp2p's packages (@libp2p/peer-id, @multiformats/multiaddr,
 * multiformats) when they load, and those are optional peer dependencies of node-msquic: imported
 * statically, a missing one fails the import with Node's bare ERR_MODULE_NOT_FOUND before any of
 * our code runs. So this module loads index.js dynamically and turns that into
 * ERR_DISCOVERY_NOT_CONFIGURED naming the npm install line (peers.ts).
 *
 * An ES module with a top-level await: `import` it (CommonJS code: `await import()`; `require()`
 * refuses it with ERR_REQUIRE_ASYNC_MODULE). Every value index.ts exports is exported here too
 * (test/discovery/entry.test.ts compares them).
 */
import { loadPeers } from './peers.js'

const api = await loadPeers('node-msquic/discovery', async () => await import('./index.js'))

export const {
  ServiceRegistry, Advertisement, DEFAULT_DHT_PROTOCOL, RECORD_PROTOCOL, PROVIDERS_PROTOCOL, DEFAULT_TTL,
  MIN_TTL, MAX_TTL, DEFAULT_FAN_OUT, DEFAULT_WATCH_INTERVAL, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_ANNOUNCE_PEERS,
  NEARBY_PEERS, NEARBY_TIMEOUT, DEFAULT_LISTEN, DEFAULT_BOOTSTRAP_TIMEOUT, PUBLISH_TIMEOUT, MAX_METADATA_BYTES,
  MAX_NAME_BYTES, MAX_MULTIADDRS, HEDGE_DELAY, AUTO_HEDGE_QUANTILE, AUTO_HEDGE_MIN, AUTO_HEDGE_SAMPLES,
  UNREACHABLE_HOLD, UNREACHABLE_CONFIRM_TIMEOUT, DHT_READ_DELAY_MAX, PUBLICATIONS_AT_ONCE, PUBLISH_CLASS, RESOLVE_PHASES,
  ServiceClient, RECORD_NAMESPACE, KEY_PREFIX, SIGNING_DOMAIN, MAX_RECORD_BYTES, RecordRejection, nameDigest,
  nameToCid, recordKey, parseRecordKey, signRecord, verifyRecord, verifyRecordForKey, selectRecord, newer,
  QueryLayer, Query, Reputation, DEFAULT_QUERY_TIMEOUT, BASE_BACKOFF, MAX_BACKOFF, DiscoveryError,
  DiscoveryErrorCode, isDiscoveryError, METRICS_PREFIX, ownTransientConnections, compactMemoryDatastore,
  MAX_PROVIDERS_ANSWER, MAX_PROVIDERS_ANSWER_BYTES
} = api
