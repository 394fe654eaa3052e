/**
 * node-msquic/libp2p: a js-libp2p v3 transport on MsQuic. Listener, connection, muxer and stream
 * (thin adapters over the QUIC layer's stream core), the libp2p TLS certificate and peer id, inbound
 * admission, session tickets. This folder may import src/quic, src/negotiation and the shared base
 * (errors, args), never src/discovery.
 *
 * @example
 * ```ts
 * import { createLibp2p } from 'libp2p'
 * import { msquic } from 'node-msquic/libp2p'
 * const node = await createLibp2p({ transports: [msquic()], addresses: { listen: ['/ip4/0.0.0.0/udp/0/quic-v1'] } })
 * ```
 * @packageDocumentation
 */
import type { Transport } from '@libp2p/interface'
import { MsQuicTransport, type MsQuicTransportComponents, type MsQuicTransportOptions } from './transport.js'

/** The transport factory for `createLibp2p({ transports: [msquic(options)] })`. */
export function msquic (options: MsQuicTransportOptions = {}): (components: MsQuicTransportComponents) => Transport {
  return components => new MsQuicTransport(components, options)
}

export { MsQuicTransport, MsQuicLibp2pListener, quicConnectionOf, LIBP2P_ALPN, LIBP2P_DEFAULTS, type MsQuicTransportOptions, type MsQuicTransportComponents } from './transport.js'
export { MsQuicStream, resetCodeOf } from './stream.js'
export { MsQuicMuxer, MsQuicMuxerFactory, MsQuicMultiaddrConnection, MUXER_PROTOCOL } from './muxer.js'
export { createLibp2pCertificate, verifyLibp2pCertificate, peerIdOf, LIBP2P_EXTENSION_OID, type Libp2pCertificate } from './certificate.js'
export { Libp2pQuicError, Libp2pQuicErrorCode, StreamResetCode, ConnectionCloseCode } from './errors.js'
export { quicV1Filter, parseQuicAddress } from './multiaddr.js'
export { SessionTickets, SESSION_TICKETS_KEPT, SESSION_TICKET_LIFETIME } from './tickets.js'
export { LAZY_NEGOTIATION_MARKER, NegotiationGate, PeerNegotiations, type NegotiationOptions, type NegotiationOutcome } from './negotiation.js'
