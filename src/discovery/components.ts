/**
 * What the registry's components are given, as kad-dht gives its own (`new X(components, init)`):
 * the node, its DHT, the query layer, peers' reputation and reachability, the telemetry, the clock
 * and the registry's stop signal. Each component takes the slice it uses; none is given the
 * registry. Types only.
 */
import type { Libp2p } from '@libp2p/interface'
import type { DhtService } from './options.js'
import type { ServiceRecord } from './record.js'
import type { QueryLayer } from './query-layer.js'
import type { Reputation } from './reputation.js'
import type { Telemetry } from './telemetry.js'
import type { Reachability } from './unreachable.js'

export interface DiscoveryComponents {
  /** The libp2p node the registry runs on. */
  libp2p: Libp2p
  /** Its kad-dht service. */
  dht: DhtService
  /** The pending map every query goes through. */
  queries: QueryLayer
  /** Peers' reputation, which orders fan-out and sets the automatic hedge. */
  reputation: Reputation
  /** The peers a connection to failed lately. */
  reachability: Reachability
  /** Metrics, spans and the counts stats() reports. */
  telemetry: Telemetry
  /** The clock records expire by. */
  now: () => number
  /** Aborted when the registry stops. */
  stopping: AbortSignal
}

/** What the finder asks of this node's own advertisements (the publisher holds them). */
export interface OwnRecords {
  /** Whether this node advertises `name` now (not withdrawn). */
  provides: (name: string) => boolean
  /** This node's live record of `name`, if any. */
  own: (name: string) => ServiceRecord | undefined
}
