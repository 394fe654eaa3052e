/**
 * One-hop provider lookup (as go-libp2p-kad-dht's accelerated client looks a key up at the closest
 * peers it already knows, in one round): before kad-dht's iterative findProviders(), the registry
 * looks in this node's own provider store, then asks the few peers of its routing table closest to
 * the name's key which providers of the name they store (PROVIDERS_PROTOCOL: one small request and
 * answer each, in parallel). On a private DHT whose routing tables hold most of the network, those
 * peers are among the k that store the provider record, so one round finds it.
 *
 * Why not kad-dht's own query: each GET_PROVIDERS answer carries the responder's 20 closest peers
 * (20 peer-store reads to build), which the asker decodes, merges into its peer store and queues
 * for its routing table, and the query goes on towards them until it is aborted at the first
 * provider: 15 to 40 ms of the JavaScript thread per lookup on a 31-node network in one process (a
 * CPU profile of bench/discovery.mjs), where a whole resolve this way, record fetch included, takes
 * about 6 ms. When the nearby peers store no provider (a
 * larger network, or peers that are not registries), the iterative query runs as before: one round
 * trip lost at most. Provider entries are hints either way: the record fetched from a provider is
 * verified against the provider's key.
 *
 * This reaches into kad-dht's provider store and routing table (not its public API): when they are
 * missing (another kad-dht version), localProviders() and nearbyProviders() return undefined, the
 * answer is empty, and the registry uses findProviders() alone. JS thread only.
 */
import type { Libp2p, PeerId, PeerInfo, PeerStore } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { RecordRejection, nameToCid } from './record.js'
import { NEARBY_TIMEOUT, PROVIDERS_PROTOCOL } from './options.js'
import { exchange } from './wire.js'
import { kadId, kadInternals, type KadInternals } from './kad-internals.js'
import { ENDED } from './query-layer.js'
import { DiscoveryError, DiscoveryErrorCode } from './errors.js'

/** Providers in one answer, at most (kad-dht's k). */
export const MAX_PROVIDERS_ANSWER = 20
/** An answer of PROVIDERS_PROTOCOL, at most (bytes). */
export const MAX_PROVIDERS_ANSWER_BYTES = 64 * 1024

/**
 * The providers of `cid` in this node's own provider store, with the addresses its peer store
 * holds (those it has none for are left out, as kad-dht does); undefined without kad-dht's internals.
 * `known` gives a provider's addresses without a peer-store read (which costs more than the rest of
 * a local lookup) when it can: [] for a peer this node is connected to (dialled by its id), this
 * node's own addresses for itself (it has no peer-store entry).
 */
export async function localProviders (dht: unknown, peerStore: PeerStore, cid: CID, signal?: AbortSignal, known?: (peer: PeerId) => Multiaddr[] | undefined): Promise<PeerInfo[] | undefined> {
  const kad = kadInternals(dht, 'routingTable.closestPeers', 'providers.getProviders')
  if (kad === undefined) return undefined
  const found: PeerInfo[] = []
  for (const id of (await kad.providers.getProviders(cid, { signal })).slice(0, MAX_PROVIDERS_ANSWER)) {
    const given = known?.(id)
    if (given !== undefined) {
      found.push({ id, multiaddrs: given })
      continue
    }
    const peer = await peerStore.get(id, { signal }).catch(() => undefined)
    if (peer !== undefined && peer.addresses.length > 0) found.push({ id, multiaddrs: peer.addresses.map(a => a.multiaddr) })
  }
  return found
}

/** An answer of PROVIDERS_PROTOCOL: `[{ "id": peer id, "addrs": [multiaddr, …] }, …]` in UTF-8 JSON. */
export function encodeProviders (providers: PeerInfo[]): Uint8Array {
  return Buffer.from(JSON.stringify(providers.slice(0, MAX_PROVIDERS_ANSWER).map(p => ({ id: p.id.toString(), addrs: p.multiaddrs.map(String) }))))
}

/** Parses an answer of PROVIDERS_PROTOCOL; throws a RecordRejection ('malformed') for anything else. */
export function decodeProviders (bytes: Uint8Array): PeerInfo[] {
  try {
    const list: unknown = bytes.byteLength === 0 ? [] : JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
    if (!Array.isArray(list) || list.length > MAX_PROVIDERS_ANSWER) throw new Error(`not a list of at most ${MAX_PROVIDERS_ANSWER} providers`)
    return list.map((entry: { id?: unknown, addrs?: unknown }) => {
      if (typeof entry?.id !== 'string' || !Array.isArray(entry.addrs)) throw new Error('a provider is { id, addrs }')
      return { id: peerIdFromString(entry.id), multiaddrs: entry.addrs.map(a => multiaddr(String(a))) }
    })
  } catch (error) {
    throw new RecordRejection('malformed', `a providers answer that does not parse: ${(error as Error).message}`)
  }
}

/** What nearbyProviders() needs of the registry. */
export interface NearbyContext {
  libp2p: Libp2p
  dht: unknown
  /** Called with a peer whose answer did not parse (counted, and its reputation marked down). */
  rejected: (error: unknown, from: string) => void
  /** Milliseconds without an answer before the next nearest peer is asked as well (the registry's automatic hedge). */
  hedge: () => number
}

/**
 * Asks the `count` peers of the routing table closest to `name`'s key for the providers of `name`
 * they store, hedged: the closest first, the next one after each `hedge()` period without an answer,
 * at once after a failure or an empty answer, and after an answer once the caller wants more. Yields
 * each answer's providers as it arrives (failures and empty answers yield nothing). Ends when every
 * peer answered, failed or was given up on (NEARBY_TIMEOUT from the start); returning early cancels
 * the rest. The closest peer stores the provider record in most lookups: asking all three at once
 * sent three requests for one answer read, in a third of the resolves on a 31-node network.
 * Undefined without kad-dht's internals.
 */
export function nearbyProviders (context: NearbyContext, name: string, count: number, signal: AbortSignal): AsyncGenerator<PeerInfo[]> | undefined {
  const kad = kadInternals(context.dht, 'routingTable.closestPeers', 'providers.getProviders')
  if (kad === undefined) return undefined
  return ask(context, kad, name, count, signal)
}

async function * ask ({ libp2p, rejected, hedge }: NearbyContext, kad: KadInternals, name: string, count: number, outer: AbortSignal): AsyncGenerator<PeerInfo[]> {
  const peers = kad.routingTable.closestPeers(kadId(nameToCid(name)), { count })
  // The caller's signal, returning early, or a peer that has not answered within NEARBY_TIMEOUT (it
  // may have gone away) ends a request. (A timer cleared at the end, not AbortSignal.timeout(), which
  // fires, and builds its DOMException, after every round.)
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new DiscoveryError(DiscoveryErrorCode.TIMEOUT, `no answer within ${NEARBY_TIMEOUT} ms`)), NEARBY_TIMEOUT)
  const signal = AbortSignal.any([outer, controller.signal])
  const request = async (peer: PeerId): Promise<PeerInfo[]> => {
    const stream = await libp2p.dialProtocol(peer, PROVIDERS_PROTOCOL, { signal })
    const stop = (): void => stream.abort(signal.reason)
    signal.addEventListener('abort', stop, { once: true })
    try {
      return decodeProviders(await exchange(stream, Buffer.from(name, 'utf8'), MAX_PROVIDERS_ANSWER_BYTES))
    } catch (error) {
      if (error instanceof RecordRejection) rejected(error, peer.toString())
      throw error
    } finally {
      signal.removeEventListener('abort', stop)
    }
  }
  const pending = new Map<number, Promise<[number, PeerInfo[]]>>()
  let next = 0
  const launch = (): void => {
    if (next >= peers.length || signal.aborted) return
    const i = next++
    pending.set(i, request(peers[i]).then(found => [i, found], () => [i, []]))
  }
  let hedgeTimer: NodeJS.Timeout | undefined
  launch()
  try {
    while (pending.size > 0) {
      // The next peer's turn comes with the hedge period (undefined), unless an answer comes first.
      const waits: Array<Promise<[number, PeerInfo[]] | undefined>> = [...pending.values()]
      if (next < peers.length) waits.push(new Promise<undefined>(resolve => { hedgeTimer = setTimeout(() => resolve(undefined), hedge()) }))
      const answer = await Promise.race(waits)
      clearTimeout(hedgeTimer)
      if (answer === undefined) {
        launch()
        continue
      }
      const [i, found] = answer
      pending.delete(i)
      if (found.length > 0) yield found
      launch()
    }
  } finally {
    clearTimeout(timer)
    clearTimeout(hedgeTimer)
    controller.abort(ENDED)
  }
}
