/**
 * Node assembly: the libp2p node ServiceRegistry.create() starts (node-msquic's transport, kad-dht
 * in server mode on a private protocol, identify and ping, a compact datastore, the addresses peers
 * are told), the kad-dht options every DHT node of a registry network needs, and the record
 * validator a registry puts on the DHT it runs on. libp2p's packages are loaded here, on demand
 * (peers.ts names the npm install line when they are missing). JS thread only.
 */
import type { Libp2p } from '@libp2p/interface'
import type { TransientConnectionManager } from '../limits/transient.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { publishable } from './addresses.js'
import { compactMemoryDatastore } from './datastore.js'
import { DEFAULT_DHT_PROTOCOL, badAddress, type DhtService, type ServiceRegistryInit, type registryInit } from './options.js'
import { loadPeers } from './peers.js'
import { RECORD_NAMESPACE, RecordRejection, selectRecord, verifyRecordForKey, type RejectionReason } from './record.js'
import { loadTracing } from './telemetry.js'

/** The validator of dhtOptions(); a registry on the node swaps it for its own counting one. */
const defaultValidator = Object.assign(async (key: Uint8Array, value: Uint8Array): Promise<void> => { await verifyRecordForKey(key, value) }, { [Symbol.for('node-msquic.discovery.validator')]: true })
const isDefaultValidator = (fn: unknown): boolean => (fn as Record<symbol, unknown>)[Symbol.for('node-msquic.discovery.validator')] === true

/** ServiceRegistry.dhtOptions(). */
export async function dhtOptions (protocol = DEFAULT_DHT_PROTOCOL, addresses: 'all' | 'private' | 'public' = 'all'): Promise<Record<string, unknown>> {
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
 * Records of the registry's namespace are checked (and counted by `rejected` when refused) wherever
 * this node stores or reads them. The registry's validator replaces the default one (it counts
 * refusals and reads the registry's clock); a validator of the application's own is kept, and its
 * refusals counted. The selector is added if missing.
 */
export function checkRecords (dht: DhtService, now: () => number, rejected: (reason: RejectionReason) => void): void {
  const previous = dht.validators[RECORD_NAMESPACE]
  const validate = previous === undefined || isDefaultValidator(previous) ? async (key: Uint8Array, value: Uint8Array) => { await verifyRecordForKey(key, value, now()) } : previous
  dht.validators[RECORD_NAMESPACE] = async (key, value) => {
    try {
      await validate(key, value)
    } catch (error) {
      if (error instanceof RecordRejection) rejected(error.reason)
      throw error
    }
  }
  dht.selectors[RECORD_NAMESPACE] ??= selectRecord
}

/**
 * Starts the libp2p node of ServiceRegistry.create(): `init` is registryInit() of `options` (whose
 * shape names a bad address the way the caller wrote it).
 */
export async function createNode (init: ReturnType<typeof registryInit>, options: ServiceRegistryInit, transient?: TransientConnectionManager<string>): Promise<Libp2p> {
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
    // Reconnects resume the session (the transport's default). Not 0-RTT by default: a dial with
    // early data "succeeds" at once, so a provider that is gone shows only at the handshake
    // timeout, where a full or resumed dial fails within a round trip and the provider is held
    // unreachable at once (unreachable.ts); and a node-msquic listener serves early streams only
    // after the handshake anyway. `transport: { sessionTickets: '0rtt', earlyData: true }` turns it on.
    // One reservation per connection: the transport holds it from admission to close, the
    // registry promotes it when the peer enters the routing table (transient.ts).
    transports: [msquic(transient === undefined || init.transport?.admission === false
      ? init.transport
      // (The transport promotes with peer id strings too, as the registry's manager holds them.)
      : { ...init.transport, admission: { ...init.transport?.admission, transient: transient as TransientConnectionManager<unknown>, promoteOnUpgrade: false } })],
    connectionMonitor: { enabled: false },
    // A registry is dialled by every member as it joins: js-libp2p's defaults (5 new
    // connections per second per host, 10 pending) refuse a fleet started behind one address.
    connectionManager: { inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 256 },
    ...(init.metrics !== undefined ? { metrics: init.metrics } : {}),
    ...libp2pOptions,
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ ...await dhtOptions(init.protocol, init.addresses), ...init.dht } as any),
      ...(extraServices as Record<string, any> ?? {})
    }
  } as any)
  return node as unknown as Libp2p
}
