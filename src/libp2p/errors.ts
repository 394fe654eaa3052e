/** Errors and wire codes of the libp2p transport. */

export const Libp2pQuicErrorCode = {
  /** The peer's certificate is not a valid libp2p certificate (libp2p/specs tls/tls.md). */
  CERTIFICATE: 'ERR_LIBP2P_CERTIFICATE',
  /** The dialed `/p2p/<id>` is not the peer that answered. */
  PEER_MISMATCH: 'ERR_LIBP2P_PEER_MISMATCH',
  /** The peer refused to negotiate a protocol now (a RESOURCE_LIMIT_EXCEEDED reset): retry later. */
  BUSY: 'ERR_LIBP2P_BUSY',
  /** The multiaddr is not `/ip4|ip6/<addr>/udp/<port>/quic-v1[/p2p/<id>]`. */
  INVALID_MULTIADDR: 'ERR_LIBP2P_INVALID_MULTIADDR'
} as const

export type Libp2pQuicErrorCode = typeof Libp2pQuicErrorCode[keyof typeof Libp2pQuicErrorCode]

export class Libp2pQuicError extends Error {
  readonly code: Libp2pQuicErrorCode
  constructor (code: Libp2pQuicErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.name = 'Libp2pQuicError'
  }
}

/**
 * Application error codes on the wire, as libp2p/specs error-codes (and go-libp2p's
 * `network.StreamErrorCode` / `ConnErrorCode`) number them. A reset carries the aborting error's
 * own `errorCode` when it has one.
 */
export const StreamResetCode = {
  NO_ERROR: 0,
  PROTOCOL_NEGOTIATION_FAILED: 0x1001,
  RESOURCE_LIMIT_EXCEEDED: 0x1002,
  RATE_LIMITED: 0x1003,
  PROTOCOL_VIOLATION: 0x1004,
  SUPPLANTED: 0x1005,
  GARBAGE_COLLECTED: 0x1006,
  SHUTDOWN: 0x1007,
  GATED: 0x1008
} as const

export const ConnectionCloseCode = {
  NO_ERROR: 0,
  PROTOCOL_NEGOTIATION_FAILED: 0x1000,
  RESOURCE_LIMIT_EXCEEDED: 0x1001,
  RATE_LIMITED: 0x1002,
  PROTOCOL_VIOLATION: 0x1003,
  SUPPLANTED: 0x1004,
  GARBAGE_COLLECTED: 0x1005,
  SHUTDOWN: 0x1006,
  GATED: 0x1007
} as const
