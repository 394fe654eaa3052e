/**
 * The parts of @libp2p/kad-dht 16 the registry reaches into beyond its public API: the routing
 * table, the network and the provider store (announce.ts, nearby.ts, unreachable.ts), and the first
 * self-query. Each use asks kadInternals() for the parts it calls and does without them when they
 * are missing (another kad-dht version), as its file says. JS thread only.
 */
import type { PeerId } from '@libp2p/interface'
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import type { DhtEvent } from './options.js'

/** A bucket of kad-dht's routing-table trie: a leaf holds peers, an inner node two halves. */
export interface Bucket { peers?: unknown[], left?: Bucket, right?: Bucket }

/** kad-dht's internals, as far as the registry uses them. */
export interface KadInternals {
  routingTable: {
    closestPeers: (kadId: Uint8Array, options?: { count?: number }) => PeerId[]
    find: (peer: PeerId) => Promise<PeerId | undefined>
    remove: (peer: PeerId) => Promise<void>
    kb?: { root?: Bucket, kBucketSize?: number }
  }
  network: {
    sendMessage: (to: PeerId, message: object, options: { signal: AbortSignal }) => AsyncIterable<DhtEvent>
    sendRequest: (to: PeerId, message: object, options: { signal: AbortSignal }) => AsyncIterable<DhtEvent & { closer?: Array<{ id: PeerId }> }>
  }
  providers: {
    addProvider: (cid: CID, provider: PeerId, options?: { signal?: AbortSignal }) => Promise<void>
    getProviders: (cid: CID, options?: { signal?: AbortSignal }) => Promise<PeerId[]>
  }
}

/** A function of {@link KadInternals}, as `part.function`. */
export type KadPart = {
  [P in keyof KadInternals]: `${P}.${string & { [F in keyof KadInternals[P]]: KadInternals[P][F] extends (...args: any[]) => any ? F : never }[keyof KadInternals[P]]}`
}[keyof KadInternals]

/** `dht`'s internals when each of `parts` is a function there, else undefined. */
export function kadInternals (dht: unknown, ...parts: KadPart[]): KadInternals | undefined {
  for (const part of parts) {
    const [object, fn] = part.split('.')
    if (typeof (dht as Record<string, Record<string, unknown> | undefined> | undefined)?.[object]?.[fn] !== 'function') return undefined
  }
  return dht as KadInternals
}

/** Where kad-dht places `cid` in its key space: the sha256 of its multihash (its convertBuffer()). */
export function kadId (cid: CID): Uint8Array {
  return createHash('sha256').update(cid.multihash.bytes).digest()
}

/**
 * Resolves once kad-dht's first self-query has run (kad-dht bounds it: 5 s). Before it, a node that
 * has just joined knows little more than its bootstrap peers, and an announce to the closest of those
 * misses the name's neighbourhood: in a 20-registry network started in batches, the last batch
 * announced to one peer each, and some resolves of their names ran kad-dht's iterative query into
 * the deadline. kad-dht's own queries wait for it too. At once without kad-dht's internals.
 */
export async function joined (dht: unknown): Promise<void> {
  await (dht as { querySelf?: { initialQuerySelfHasRun?: { promise?: Promise<void> } } } | undefined)?.querySelf?.initialQuerySelfHasRun?.promise
}

/** Takes `peer` out of kad-dht's routing table, if it is there (kad-dht puts it back when it connects again). */
export async function dropFromRoutingTable (dht: unknown, peer: PeerId): Promise<void> {
  await kadInternals(dht, 'routingTable.find', 'routingTable.remove')?.routingTable.remove(peer).catch(() => {})
}
