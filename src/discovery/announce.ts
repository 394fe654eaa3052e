/**
 * Optimistic provide (as go-libp2p-kad-dht's "optimistic provide" does for the IPFS DHT): the
 * provider record of a name goes at once to the peers closest to the name's key that one round finds
 * (this node's routing table, and what its closest peers there know), without waiting for a lookup
 * to converge. kad-dht's provide() sends nothing before
 * its lookup has queried every one of the k closest peers it finds (about 20 requests on a 30-node
 * network, 200 to 500 ms here); a discoverer's own lookup starts from the closest peers it knows,
 * which on a small private DHT are the same ones, so the service is discoverable after one round of
 * messages. The full provide still runs (Advertisement.published). JS thread only.
 *
 * This reaches into kad-dht's routing table, network and provider store (not its public API): when
 * they are missing (another kad-dht version), announceNearby() returns undefined and advertise()
 * waits for the full publication as before.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { kadId, kadInternals, type Bucket, type KadInternals } from './kad-internals.js'

/** Peers of the routing table asked for the peers they know closest to a name before it is announced: kad-dht's α here. */
const REFINE_PEERS = 3

/** `peers` ordered by their distance to `key` in kad-dht's key space (sha256 of the peer id's multihash), closest first. */
function byDistance (peers: PeerId[], key: Uint8Array): PeerId[] {
  const distance = (peer: PeerId): Buffer => {
    const id = createHash('sha256').update(peer.toMultihash().bytes).digest()
    for (let i = 0; i < id.length; i++) id[i] ^= key[i]
    return id
  }
  return peers.map(peer => ({ peer, d: distance(peer) })).sort((a, b) => Buffer.compare(a.d, b.d)).map(e => e.peer)
}

/**
 * Whether some bucket of the routing table is full: then it has turned peers away (kad-dht keeps k
 * per bucket), and its closest to a name need not be the network's. Unknown internals: assumed full.
 */
function tableTurnedPeersAway (kad: KadInternals): boolean {
  const k = kad.routingTable.kb?.kBucketSize
  const full = (bucket: Bucket | undefined): boolean => bucket === undefined || (Array.isArray(bucket.peers) ? bucket.peers.length >= (k ?? 0) : full(bucket.left) || full(bucket.right))
  return k === undefined || full(kad.routingTable.kb?.root)
}

/**
 * The `count` peers closest to `cid` this node can find in one round: those of its routing table,
 * and, when the table has turned peers away, those the REFINE_PEERS closest of them know (one
 * FIND_NODE each, in parallel). On a network larger than a routing table holds, the table's closest to
 * a name far from this node are not the name's k closest, which a discoverer's lookup ends at:
 * announced to them only, one service of 51 was not found by resolves right after advertise() in two
 * runs of three (test/discovery/churn.test.ts, none in two runs since). One round finds the
 * neighbourhood's peers. A table that never turned a peer away holds every peer this node knows of
 * (after its first self-query, the whole of a small network): no round is needed.
 */
async function closestInOneRound (kad: KadInternals, cid: CID, count: number, signal: AbortSignal): Promise<PeerId[]> {
  const key = kadId(cid)
  const table = kad.routingTable.closestPeers(key, { count })
  if (!tableTurnedPeersAway(kad)) return table
  const found = new Map(table.map(p => [p.toString(), p]))
  await Promise.all(table.slice(0, REFINE_PEERS).map(async peer => {
    try {
      for await (const event of kad.network.sendRequest(peer, { type: 'FIND_NODE', key: cid.multihash.bytes }, { signal })) {
        if (event.name === 'PEER_RESPONSE') for (const { id } of event.closer ?? []) found.set(id.toString(), id)
      }
    } catch {}
  }))
  return byDistance([...found.values()], key).slice(0, count)
}

/**
 * Stores this node as a provider of `cid` locally and sends ADD_PROVIDER to the `count` peers closest
 * to it that one round finds (closestInOneRound()), in parallel. Resolves with how many took the
 * message, or undefined when kad-dht's internals are not reachable or the routing table is empty
 * (nothing was sent).
 */
export async function announceNearby (dht: unknown, cid: CID, self: PeerId, multiaddrs: Multiaddr[], count: number, signal: AbortSignal): Promise<number | undefined> {
  const kad = kadInternals(dht, 'routingTable.closestPeers', 'network.sendMessage', 'network.sendRequest', 'providers.addProvider')
  if (kad === undefined || count < 1) return undefined
  const target = cid.multihash.bytes
  if (kad.routingTable.closestPeers(kadId(cid), { count: 1 }).length === 0) return undefined
  const peers = (await closestInOneRound(kad, cid, count, signal)).filter(peer => !peer.equals(self))
  if (peers.length === 0) return undefined
  await kad.providers.addProvider(cid, self, { signal })
  // The message kad-dht's provide() sends (its protobuf field names; the type by name).
  const message = { type: 'ADD_PROVIDER', key: target, providers: [{ id: self.toMultihash().bytes, multiaddrs: multiaddrs.map(ma => ma.bytes) }] }
  const sent = await Promise.all(peers.map(async peer => {
    for await (const event of kad.network.sendMessage(peer, message, { signal })) {
      if (event.name === 'PEER_RESPONSE') return 1
      if (event.name === 'QUERY_ERROR') return 0
    }
    return 0
  }))
  return sent.reduce<number>((sum, n) => sum + n, 0)
}
