/**
 * Providers a connection to failed lately (see UNREACHABLE_HOLD): resolve(), discover(), dial() and
 * clients skip them until the hold ends or a connection to them opens again. A killed provider's
 * record stays valid until its TTL; without this, each later resolve or call would pay a failed
 * connection again (a timeout, when its host is gone). JS thread only.
 */
import type { Connection, PeerId } from '@libp2p/interface'
import { UNREACHABLE_HOLD } from './options.js'

/** Error codes and names that say a connection failed or is gone, not that a live peer refused something. */
const GONE = new Set([
  'ERR_QUIC_CLOSED', 'ERR_QUIC_IDLE_TIMEOUT', 'ERR_QUIC_TIMEOUT', 'ERR_QUIC_PEER_CLOSED', 'ERR_QUIC_UNREACHABLE',
  'ConnectionClosedError', 'ConnectionClosingError', 'ConnectionFailedError'
])

/**
 * Whether `error`, met on `connection` (undefined: while connecting), says the connection failed:
 * no connection came up, it is no longer open, or the error (or one of its causes) names a gone one.
 * (libp2p reports a connection as open for a while after the transport saw it close.)
 */
export function connectionFailed (connection: Connection | undefined, error: unknown): boolean {
  if (connection === undefined || connection.status !== 'open') return true
  for (let e = error as { code?: unknown, name?: unknown, cause?: unknown } | undefined, depth = 0; e != null && depth < 5; e = e.cause as typeof e, depth++) {
    if (GONE.has(String(e.code)) || GONE.has(String(e.name))) return true
  }
  return false
}

/** The peers a connection to failed lately, each until its hold ends. */
export class UnreachablePeers {
  readonly #until = new Map<string, number>()
  readonly #self: string
  readonly #hold: number

  constructor (self: PeerId, hold = UNREACHABLE_HOLD) {
    this.#self = self.toString()
    this.#hold = hold
  }

  /** Notes that a connection to `peer` failed (never this node itself). */
  mark (peer: PeerId | string): void {
    const id = peer.toString()
    if (id !== this.#self) this.#until.set(id, performance.now() + this.#hold)
  }

  /** Whether `peer` is held: a connection to it failed less than the hold ago, and none opened since. */
  has (peer: PeerId | string): boolean {
    const id = peer.toString()
    const until = this.#until.get(id)
    if (until === undefined) return false
    if (until > performance.now()) return true
    this.#until.delete(id)
    return false
  }

  /** A connection to `peer` opened: it is reachable again. */
  clear (peer: PeerId | string): void {
    this.#until.delete(peer.toString())
  }
}

/** The kad-dht routing table calls the healing uses (@libp2p/kad-dht 16). */
interface RoutingTable {
  find: (peer: PeerId) => Promise<PeerId | undefined>
  remove: (peer: PeerId) => Promise<void>
}

function routingTableOf (dht: unknown): RoutingTable | undefined {
  const table = (dht as { routingTable?: Partial<RoutingTable> } | undefined)?.routingTable
  return typeof table?.find === 'function' && typeof table?.remove === 'function' ? table as RoutingTable : undefined
}

/** Takes `peer` out of kad-dht's routing table, if it is there (kad-dht puts it back when it connects again). */
export async function dropFromRoutingTable (dht: unknown, peer: PeerId): Promise<void> {
  await routingTableOf(dht)?.remove(peer).catch(() => {})
}

/**
 * Keeps the routing table free of peers that are gone. kad-dht 16 drops a peer only when a full
 * bucket needs room for another, so a killed peer stayed in every table on a network smaller than
 * the table can hold, and so in every lookup, announce and nearby round that picked it. When the
 * last connection to a peer of the table closes, `confirm(peer)` dials it again and holds it
 * unreachable (dropping it from the table) if that fails. Returns a function that detaches it.
 */
export function healRoutingTable (libp2p: { addEventListener: (type: 'connection:close', listener: (event: CustomEvent<Connection>) => void) => void, removeEventListener: (type: 'connection:close', listener: (event: CustomEvent<Connection>) => void) => void, getConnections: (peer?: PeerId) => Connection[] }, dht: unknown, confirm: (peer: PeerId) => Promise<void>): () => void {
  const table = routingTableOf(dht)
  if (table === undefined) return () => {}
  const onClose = (event: CustomEvent<Connection>): void => {
    const peer = event.detail.remotePeer
    if (libp2p.getConnections(peer).some(c => c.status === 'open')) return
    void table.find(peer).then(async found => { if (found !== undefined) await confirm(peer) }).catch(() => {})
  }
  libp2p.addEventListener('connection:close', onClose)
  return () => { libp2p.removeEventListener('connection:close', onClose) }
}
