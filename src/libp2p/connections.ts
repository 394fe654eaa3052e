/**
 * Which QUIC connection is under which libp2p connection. A module of its own, with no native code
 * behind it: the discovery layer looks connections up without loading the transport (and the
 * addon) before a registry starts. JS thread.
 */
import type { Connection } from '@libp2p/interface'
import type { QuicConnection } from '../quic/connection.js'

/** The QUIC connection of each libp2p connection (and multiaddr connection, and its remoteAddr object) the transport made. */
export const connections = new WeakMap<object, QuicConnection>()

/** The QUIC connection under a libp2p connection made by this transport, if it is one. */
export function quicConnectionOf (connection: Connection | { remoteAddr: object }): QuicConnection | undefined {
  // js-libp2p's Connection keeps its MultiaddrConnection's remoteAddr object (inbound connections
  // are made inside the upgrader, out of reach otherwise).
  return connections.get(connection as object) ?? connections.get(connection.remoteAddr)
}
