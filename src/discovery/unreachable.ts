/**
 * Providers a connection to failed lately (see UNREACHABLE_HOLD): resolve(), discover(), dial() and
 * clients skip them until the hold ends or a connection to them opens again. A killed provider's
 * record stays valid until its TTL; without this, each later resolve or call would pay a failed
 * connection again (a timeout, when its host is gone). JS thread only.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { UNREACHABLE_CONFIRM_TIMEOUT, UNREACHABLE_HOLD } from './options.js'
import { dropFromRoutingTable, kadInternals } from './kad-internals.js'

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

/**
 * Keeps the routing table free of peers that are gone. kad-dht 16 drops a peer only when a full
 * bucket needs room for another, so a killed peer stayed in every table on a network smaller than
 * the table can hold, and so in every lookup, announce and nearby round that picked it. When the
 * last connection to a peer of the table closes, `confirm(peer)` dials it again and holds it
 * unreachable (dropping it from the table) if that fails. Returns a function that detaches it.
 */
export function healRoutingTable (libp2p: { addEventListener: (type: 'connection:close', listener: (event: CustomEvent<Connection>) => void) => void, removeEventListener: (type: 'connection:close', listener: (event: CustomEvent<Connection>) => void) => void, getConnections: (peer?: PeerId) => Connection[] }, dht: unknown, confirm: (peer: PeerId) => Promise<void>): () => void {
  const table = kadInternals(dht, 'routingTable.find', 'routingTable.remove')?.routingTable
  if (table === undefined) return () => {}
  const onClose = (event: CustomEvent<Connection>): void => {
    const peer = event.detail.remotePeer
    if (libp2p.getConnections(peer).some(c => c.status === 'open')) return
    void table.find(peer).then(async found => { if (found !== undefined) await confirm(peer) }).catch(() => {})
  }
  libp2p.addEventListener('connection:close', onClose)
  return () => { libp2p.removeEventListener('connection:close', onClose) }
}

/**
 * The registry's view of which peers are reachable: the peers a connection to failed lately
 * ({@link UnreachablePeers}, cleared when a connection to one opens), a second dial to confirm a
 * peer is gone, and the routing table kept free of gone peers (healRoutingTable()). Stops with the
 * registry (`stopping`): nothing is marked from then on.
 */
export class Reachability {
  readonly #libp2p: Libp2p
  readonly #dht: unknown
  readonly #stopping: AbortSignal
  readonly #peers: UnreachablePeers
  readonly #onConnectionOpen = (event: CustomEvent<Connection>): void => { this.#peers.clear(event.detail.remotePeer) }
  readonly #detachHealing: () => void

  constructor (components: { libp2p: Libp2p, dht: unknown, stopping: AbortSignal }) {
    this.#libp2p = components.libp2p
    this.#dht = components.dht
    this.#stopping = components.stopping
    this.#peers = new UnreachablePeers(this.#libp2p.peerId)
    this.#libp2p.addEventListener('connection:open', this.#onConnectionOpen)
    this.#detachHealing = healRoutingTable(this.#libp2p, this.#dht, async peer => { await this.confirmGone(peer) })
  }

  /** Whether a connection to `peer` failed less than UNREACHABLE_HOLD ago (and none opened since). */
  isUnreachable (peer: PeerId | string): boolean {
    return this.#peers.has(peer)
  }

  /**
   * Notes that a connection to `peer` failed: it is skipped for UNREACHABLE_HOLD, and leaves the
   * DHT routing table (see healRoutingTable()).
   */
  unreachable (peer: PeerId | string): void {
    if (this.#stopping.aborted || peer.toString() === this.#libp2p.peerId.toString()) return
    this.#peers.mark(peer)
    void dropFromRoutingTable(this.#dht, typeof peer === 'string' ? peerIdFromString(peer) : peer)
  }

  /**
   * After a connection to `peer` closed under a request: a new one is dialled (libp2p reports a
   * closed connection open for a while, and closes duplicates of live ones); `peer` is unreachable
   * if that fails too.
   */
  async confirmGone (peer: PeerId): Promise<void> {
    if (this.#stopping.aborted) return
    try {
      await this.#libp2p.dial(peer, { force: true, signal: AbortSignal.timeout(UNREACHABLE_CONFIRM_TIMEOUT) })
    } catch {
      this.unreachable(peer)
    }
  }

  /**
   * A dial, a stream or a request to `peer` failed with `error`: with no connection up (`connection`
   * undefined), `peer` is unreachable; on a connection that failed, confirmGone() decides. Returns
   * whether the connection was found failed (a live peer's refusal is neither).
   */
  async failed (peer: PeerId, connection: Connection | undefined, error: unknown): Promise<boolean> {
    if (connection === undefined) {
      this.unreachable(peer)
      return true
    }
    if (!connectionFailed(connection, error)) return false
    await this.confirmGone(peer)
    return true
  }

  /** Stops listening to the node's connections. */
  stop (): void {
    this.#libp2p.removeEventListener('connection:open', this.#onConnectionOpen)
    this.#detachHealing()
  }
}
