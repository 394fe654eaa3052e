/**
 * Every application error code node-msquic puts on the wire, in one table. QUIC has two spaces of
 * them: stream codes (RESET_STREAM, STOP_SENDING) and connection codes (CONNECTION_CLOSE). Within
 * each space a value has one meaning, whichever layer sends it:
 *
 * - libp2p's codes (libp2p/specs error-codes, go-libp2p's StreamErrorCode and ConnErrorCode) as the
 *   spec numbers them, from 0x1000: the libp2p transport and protocol negotiation send these;
 * - node-msquic's own, from 0x2000: the request path. (Before, 0x1003 to 0x1005 meant "message too
 *   large", "handler failed" and "cancelled" here and "rate limited", "protocol violation" and
 *   "supplanted" to libp2p.)
 *
 * Apps choose their own codes for their own resets and closes; 0 is "no error" in both spaces.
 * Lowest layer: imports nothing.
 */

/** Stream codes: RESET_STREAM and STOP_SENDING. */
export const StreamCode = {
  NO_ERROR: 0n,
  /** libp2p: protocol negotiation failed (no common protocol, a malformed message, a timeout). */
  PROTOCOL_NEGOTIATION_FAILED: 0x1001n,
  /** libp2p: refused for a resource limit (a busy negotiation limiter, a full handler); retry later. */
  RESOURCE_LIMIT_EXCEEDED: 0x1002n,
  /** libp2p: rate limited. */
  RATE_LIMITED: 0x1003n,
  /** libp2p: the peer broke the protocol spoken on the stream. */
  PROTOCOL_VIOLATION: 0x1004n,
  /** libp2p: another stream took this one's place. */
  SUPPLANTED: 0x1005n,
  /** libp2p: closed as idle. */
  GARBAGE_COLLECTED: 0x1006n,
  /** libp2p: the node is shutting down. */
  SHUTDOWN: 0x1007n,
  /** libp2p: refused by policy (a gater, a limited connection). */
  GATED: 0x1008n,
  /** Request path: a request or reply outgrew its cap; both directions are aborted (the addon sends it natively). */
  MESSAGE_TOO_LARGE: 0x2001n,
  /** Request path: the server's handler threw (or rejected) an error without an `errorCode` of its own. */
  HANDLER_FAILED: 0x2002n,
  /** Request path: the client gave up (its signal or timeout) before the reply came. */
  CANCELLED: 0x2003n
} as const

/** Connection codes: CONNECTION_CLOSE. */
export const ConnectionCode = {
  NO_ERROR: 0n,
  /** libp2p: protocol negotiation failed. */
  PROTOCOL_NEGOTIATION_FAILED: 0x1000n,
  /** libp2p: refused for a resource limit; a listener's admission refuses with this (AdmissionRefusedCode). */
  RESOURCE_LIMIT_EXCEEDED: 0x1001n,
  /** libp2p: rate limited. */
  RATE_LIMITED: 0x1002n,
  /** libp2p: the peer broke the protocol. */
  PROTOCOL_VIOLATION: 0x1003n,
  /** libp2p: another connection took this one's place. */
  SUPPLANTED: 0x1004n,
  /** libp2p: closed as idle. */
  GARBAGE_COLLECTED: 0x1005n,
  /** libp2p: the node is shutting down. */
  SHUTDOWN: 0x1006n,
  /** libp2p: refused by policy (a gater, a deny list). */
  GATED: 0x1007n
} as const

export type StreamCode = typeof StreamCode[keyof typeof StreamCode]
export type ConnectionCode = typeof ConnectionCode[keyof typeof ConnectionCode]
