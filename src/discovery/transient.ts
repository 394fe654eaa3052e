/**
 * The discovery layer's transient connections: every connection of the libp2p node to a peer that
 * is not in the DHT routing table holds a reservation in one TransientConnectionManager, promoted
 * when the peer enters the routing table; the connection is closed when its reservation expires.
 * A connection of node-msquic's transport given the same manager (ServiceRegistry.create() does
 * so) already holds one, from its admission to its close (libp2p/reservations.ts): that one is
 * used, so that a connection is counted once. Any other connection is reserved here when it opens
 * (refused ones are closed at once) and released when it closes.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { TransientConnectionManager, perAddressKey, type Reservation } from '../limits/transient.js'
import { quicConnectionOf } from '../libp2p/connections.js'

/** Options of the transient connection manager a registry makes. */
export interface TransientOptions {
  /** Transient connections at once, at most. Default 256. */
  budget?: number
  /** Milliseconds a connection may stay outside the routing table. Default 60000. */
  ttl?: number
  /** Transient connections per remote IP, at most. Default 32 (loopback: unlimited). */
  perAddressLimit?: number
}

interface RoutingTableEvents {
  addEventListener: (type: 'peer:add' | 'peer:remove', listener: (event: CustomEvent<PeerId>) => void) => void
  removeEventListener: (type: 'peer:add' | 'peer:remove', listener: (event: CustomEvent<PeerId>) => void) => void
}

/** The IP of a connection's remote address (undefined for loopback, which has no per-address limit). */
function remoteIp (connection: Connection): string | undefined {
  return perAddressKey(connection.remoteAddr.toString().split('/')[2])
}

/** The manager a registry makes from its `transient` options (a manager given is used as it is). */
export function transientManager (options?: TransientOptions | TransientConnectionManager<string>): TransientConnectionManager<string> {
  return options instanceof TransientConnectionManager
    ? options
    : new TransientConnectionManager<string>({ budget: options?.budget ?? 256, ttl: options?.ttl ?? 60_000, perAddressLimit: options?.perAddressLimit ?? 32 })
}

/**
 * Puts the node's non-routing-table connections under `manager` (made from `options` when it is
 * not a manager). Returns the manager and a function that detaches it (and closes it if `owned`:
 * by default when made here).
 */
export function ownTransientConnections (libp2p: Libp2p, dht: unknown, options?: TransientOptions | TransientConnectionManager<string>, owned = !(options instanceof TransientConnectionManager)): { manager: TransientConnectionManager<string>, detach: () => void } {
  const manager = transientManager(options)
  const table = (dht as { routingTable?: RoutingTableEvents }).routingTable
  const inTable = new Set<string>()
  const open = new Map<string, { connection: Connection, reservation: Reservation<string> }>()

  const onOpen = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    const peer = connection.remotePeer.toString()
    // The transport's reservation for this connection, when it shares the manager: promoted once
    // the DHT knows the peer, released by the transport when the connection closes.
    const quic = quicConnectionOf(connection)
    const held = quic === undefined ? undefined : manager.get(quic.id)
    if (held !== undefined) {
      if (inTable.has(peer)) held.promote(peer)
      else open.set(connection.id, { connection, reservation: held })
      return
    }
    if (inTable.has(peer)) return
    const reservation = manager.tryReserve(connection.id, { address: remoteIp(connection) })
    if (reservation === null) {
      // Over budget: refused fast, not left to time out.
      void connection.close().catch(() => connection.abort(new Error('transient budget exhausted')))
      return
    }
    open.set(connection.id, { connection, reservation })
  }
  const onClose = (event: CustomEvent<Connection>): void => {
    const entry = open.get(event.detail.id)
    if (entry === undefined) return
    open.delete(event.detail.id)
    entry.reservation.release('closed')
  }
  const onPeerAdd = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail.toString()
    inTable.add(peer)
    for (const [id, entry] of open) {
      if (entry.connection.remotePeer.toString() !== peer) continue
      entry.reservation.promote(peer)
      // Promoted (or promoted late, after expiry): either way no longer transient.
      open.delete(id)
    }
  }
  const onPeerRemove = (event: CustomEvent<PeerId>): void => { inTable.delete(event.detail.toString()) }
  const onExpired = (reservation: Reservation<string>): void => {
    // Keyed by the libp2p connection's id here, by the QUIC connection's in the transport.
    for (const [id, entry] of open) {
      if (entry.reservation !== reservation) continue
      open.delete(id)
      void entry.connection.close().catch(() => entry.connection.abort(new Error('transient connection expired')))
      return
    }
  }

  libp2p.addEventListener('connection:open', onOpen)
  libp2p.addEventListener('connection:close', onClose)
  table?.addEventListener('peer:add', onPeerAdd)
  table?.addEventListener('peer:remove', onPeerRemove)
  manager.on('expired', onExpired)
  return {
    manager,
    detach: () => {
      libp2p.removeEventListener('connection:open', onOpen)
      libp2p.removeEventListener('connection:close', onClose)
      table?.removeEventListener('peer:add', onPeerAdd)
      table?.removeEventListener('peer:remove', onPeerRemove)
      manager.off('expired', onExpired)
      for (const entry of open.values()) entry.reservation.release('detached')
      open.clear()
      if (owned) void manager.close()
    }
  }
}
