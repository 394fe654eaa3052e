/** Errors and wire codes of the libp2p transport. */
import { ConnectionCode, StreamCode } from '../codes.js'
import { CodedError, brand } from '../errors.js'

export const Libp2pQuicErrorCode = {
  /** The peer's certificate is not a valid libp2p certificate (libp2p/specs tls/tls.md). */
  CERTIFICATE: 'ERR_LIBP2P_CERTIFICATE',
  /** The dialed `/p2p/<id>` is not the peer that answered. */
  PEER_MISMATCH: 'ERR_LIBP2P_PEER_MISMATCH',
  /** The peer refused to negotiate a protocol now (a RESOURCE_LIMIT_EXCEEDED reset): retry later. */
  BUSY: 'ERR_LIBP2P_BUSY',
  /** A dial's connection was refused a reservation by the transient-connection manager (`admission.transient`). */
  TRANSIENT_LIMIT: 'ERR_LIBP2P_TRANSIENT_LIMIT',
  /** The multiaddr is not `/ip4|ip6/<addr>/udp/<port>/quic-v1[/p2p/<id>]`. */
  INVALID_MULTIADDR: 'ERR_LIBP2P_INVALID_MULTIADDR'
} as const

export type Libp2pQuicErrorCode = typeof Libp2pQuicErrorCode[keyof typeof Libp2pQuicErrorCode]

/** A failure of the libp2p transport, with a stable `code` (the package's one error base). */
export class Libp2pQuicError extends CodedError<Libp2pQuicErrorCode> {
  override readonly name: string = 'Libp2pQuicError'
}
brand(Libp2pQuicError, 'Libp2pQuicError')

/**
 * Application error codes on the wire, as libp2p/specs error-codes (and go-libp2p's
 * `network.StreamErrorCode` / `ConnErrorCode`) number them: the libp2p part of src/codes.ts, as
 * numbers. A reset carries the aborting error's own `errorCode` when it has one.
 */
export const StreamResetCode = {
  NO_ERROR: Number(StreamCode.NO_ERROR),
  PROTOCOL_NEGOTIATION_FAILED: Number(StreamCode.PROTOCOL_NEGOTIATION_FAILED),
  RESOURCE_LIMIT_EXCEEDED: Number(StreamCode.RESOURCE_LIMIT_EXCEEDED),
  RATE_LIMITED: Number(StreamCode.RATE_LIMITED),
  PROTOCOL_VIOLATION: Number(StreamCode.PROTOCOL_VIOLATION),
  SUPPLANTED: Number(StreamCode.SUPPLANTED),
  GARBAGE_COLLECTED: Number(StreamCode.GARBAGE_COLLECTED),
  SHUTDOWN: Number(StreamCode.SHUTDOWN),
  GATED: Number(StreamCode.GATED)
} as const

export const ConnectionCloseCode = {
  NO_ERROR: Number(ConnectionCode.NO_ERROR),
  PROTOCOL_NEGOTIATION_FAILED: Number(ConnectionCode.PROTOCOL_NEGOTIATION_FAILED),
  RESOURCE_LIMIT_EXCEEDED: Number(ConnectionCode.RESOURCE_LIMIT_EXCEEDED),
  RATE_LIMITED: Number(ConnectionCode.RATE_LIMITED),
  PROTOCOL_VIOLATION: Number(ConnectionCode.PROTOCOL_VIOLATION),
  SUPPLANTED: Number(ConnectionCode.SUPPLANTED),
  GARBAGE_COLLECTED: Number(ConnectionCode.GARBAGE_COLLECTED),
  SHUTDOWN: Number(ConnectionCode.SHUTDOWN),
  GATED: Number(ConnectionCode.GATED)
} as const
