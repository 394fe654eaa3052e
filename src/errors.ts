import { StreamCode } from './codes.js'
// The argument checks live in args.ts; re-exported here for the modules that take them from the error table.
export { invalidArgType, invalidArgValue, invalidState, checkOptions, checkSignal } from './args.js'

/**
 * The one error table. Transport and peer failures are {@link QuicError}s with a stable `code`;
 * misuse (a bad argument, a closed object) throws a TypeError or RangeError synchronously.
 */

/**
 * An application error code (RESET_STREAM, STOP_SENDING, CONNECTION_CLOSE): a QUIC varint from 0
 * to 2^62-1. Every code this package reports is a `bigint` (codes past 2^53 exist, so a number
 * cannot hold them all); every method that takes one accepts a `number` or a `bigint`.
 */
export type ErrorCode = bigint

/** Stable error codes carried by {@link QuicError}. */
export const QuicErrorCode = {
  /** The peer refused the connection (no listener, or its accept backlog was full). */
  CONNECTION_REFUSED: 'ERR_QUIC_CONNECTION_REFUSED',
  /** The TLS/QUIC handshake failed for a reason other than the certificate. */
  HANDSHAKE_FAILED: 'ERR_QUIC_HANDSHAKE_FAILED',
  /** The client and server share no ALPN protocol. */
  ALPN: 'ERR_QUIC_ALPN',
  /** A certificate was rejected: untrusted chain, wrong name, or refused by `verifyPeer`. */
  CERTIFICATE: 'ERR_QUIC_CERTIFICATE',
  /** The connection was idle longer than its idle timeout. */
  IDLE_TIMEOUT: 'ERR_QUIC_IDLE_TIMEOUT',
  /** The peer did not answer in time (handshake or loss). */
  TIMEOUT: 'ERR_QUIC_TIMEOUT',
  /** The peer closed the connection with an application error code. */
  PEER_CLOSED: 'ERR_QUIC_PEER_CLOSED',
  /**
   * The peer reset the stream (RESET_STREAM: `direction` 'read') or asked us to stop sending
   * (STOP_SENDING: `direction` 'write'); `errorCode` is the peer's application code.
   */
  STREAM_RESET: 'ERR_QUIC_STREAM_RESET',
  /** A request or reply grew past its limit (`maxRequestBytes`, `maxResponseBytes`). */
  MESSAGE_TOO_LARGE: 'ERR_QUIC_MESSAGE_TOO_LARGE',
  /** An operation was aborted through its AbortSignal. */
  ABORTED: 'ERR_QUIC_ABORTED',
  /** The connection moved to another thread (transfer()); use the adopted object there. */
  TRANSFERRED: 'ERR_QUIC_TRANSFERRED',
  /** The object (listener, connection, stream) is closed. */
  CLOSED: 'ERR_QUIC_CLOSED',
  /** The local address is in use. */
  ADDRESS_IN_USE: 'ERR_QUIC_ADDRESS_IN_USE',
  /** The peer's address cannot be reached. */
  UNREACHABLE: 'ERR_QUIC_UNREACHABLE',
  /** A datagram is larger than the peer and the path allow (see `maxDatagramSize`). */
  DATAGRAM_TOO_LARGE: 'ERR_QUIC_DATAGRAM_TOO_LARGE',
  /** Datagrams are not enabled on this connection, or the peer does not take them. */
  DATAGRAMS_DISABLED: 'ERR_QUIC_DATAGRAMS_DISABLED',
  /** The certificate or key could not be loaded. */
  INVALID_CREDENTIALS: 'ERR_QUIC_INVALID_CREDENTIALS',
  /** Anything else MsQuic reported; `statusName` says what. */
  INTERNAL: 'ERR_QUIC_INTERNAL',
  /** @deprecated Use `NegotiationErrorCode.FAILED` (this alias goes in the next release). */
  NEGOTIATION_FAILED: 'ERR_NEGOTIATION_FAILED',
  /** @deprecated Use `NegotiationErrorCode.TIMEOUT` (this alias goes in the next release). */
  NEGOTIATION_TIMEOUT: 'ERR_NEGOTIATION_TIMEOUT',
  /** @deprecated Use `NegotiationErrorCode.BUSY` (this alias goes in the next release). */
  NEGOTIATION_BUSY: 'ERR_NEGOTIATION_BUSY',
  /** @deprecated Use `NegotiationErrorCode.PROTOCOL` (this alias goes in the next release). */
  NEGOTIATION_PROTOCOL: 'ERR_NEGOTIATION_PROTOCOL'
} as const

export type QuicErrorCode = typeof QuicErrorCode[keyof typeof QuicErrorCode]

export interface QuicErrorOptions {
  /** MsQuic's status code, when MsQuic reported the failure. */
  status?: number
  /** MsQuic's status by name, e.g. `QUIC_STATUS_CONNECTION_REFUSED`. */
  statusName?: string
  /** The application error code the peer sent, or that we sent (stored as a bigint). */
  errorCode?: number | bigint
  /** For a stream failure: which direction of the stream failed ('read' or 'write'). */
  direction?: 'read' | 'write'
  cause?: unknown
}

/**
 * The one base of this package's errors: a stable string `code` to branch on. Every layer has its
 * subclass and its own table of codes (QuicError here; NegotiationError; LimitsError;
 * Libp2pQuicError; DiscoveryError). Each class is branded (see {@link brand}): `instanceof` holds
 * across two copies of the package in one process, as with undici's errors.
 */
export class CodedError<C extends string = string> extends Error {
  readonly code: C

  constructor (code: C, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }
}

/**
 * Gives `cls` an `instanceof` that checks a brand shared by every copy of this package
 * (`Symbol.for`), not the class object of one copy. Each class gets its own: a subclass would
 * otherwise inherit its parent's check.
 */
export function brand (cls: abstract new (...args: any[]) => Error, name: string): void {
  const mark = Symbol.for(`node-msquic.${name}`)
  Object.defineProperty(cls.prototype, mark, { value: true })
  Object.defineProperty(cls, Symbol.hasInstance, {
    value: (value: unknown): boolean => typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[mark] === true
  })
}
brand(CodedError, 'CodedError')

/** A QUIC failure, with a stable `code` to branch on. */
export class QuicError extends CodedError<QuicErrorCode> {
  override readonly name: string = 'QuicError'
  readonly status?: number
  readonly statusName?: string
  /** The application error code the peer sent, or that we sent (see {@link ErrorCode}). */
  readonly errorCode?: ErrorCode
  readonly direction?: 'read' | 'write'

  constructor (code: QuicErrorCode, message: string, options: QuicErrorOptions = {}) {
    super(code, message, options)
    this.status = options.status
    this.statusName = options.statusName
    this.errorCode = options.errorCode === undefined ? undefined : BigInt(options.errorCode)
    if (options.direction !== undefined) this.direction = options.direction
  }
}

/**
 * Application error codes a stream is reset with (RESET_STREAM and STOP_SENDING) when protocol
 * negotiation fails: libp2p's stream error codes, the values go-libp2p sends.
 */
export const NegotiationResetCode = {
  /** Negotiation failed: no common protocol, a malformed message, a timeout or an abort. */
  PROTOCOL_NEGOTIATION_FAILED: StreamCode.PROTOCOL_NEGOTIATION_FAILED,
  /** Refused for a resource limit (`ERR_NEGOTIATION_BUSY`); the peer may retry with a backoff. */
  RESOURCE_LIMIT_EXCEEDED: StreamCode.RESOURCE_LIMIT_EXCEEDED
} as const

export type NegotiationResetCode = typeof NegotiationResetCode[keyof typeof NegotiationResetCode]

/** Stable codes of protocol negotiation's failures, carried by {@link NegotiationError}. */
export const NegotiationErrorCode = {
  /** No protocol both sides speak, or the stream failed or closed during negotiation. */
  FAILED: 'ERR_NEGOTIATION_FAILED',
  /** Negotiation did not complete in time (its timeout, or an AbortSignal.timeout()). */
  TIMEOUT: 'ERR_NEGOTIATION_TIMEOUT',
  /** Too many negotiations at once: refused rather than queued; `retryable` says whether to retry. */
  BUSY: 'ERR_NEGOTIATION_BUSY',
  /**
   * The peer broke multistream-select: a bad length prefix, a message too long or without its
   * newline, invalid UTF-8, an unexpected message, or data before negotiation completed.
   */
  PROTOCOL: 'ERR_NEGOTIATION_PROTOCOL'
} as const

export type NegotiationErrorCode = typeof NegotiationErrorCode[keyof typeof NegotiationErrorCode]

/** What a {@link NegotiationError} carries besides a {@link QuicError}'s fields. */
export interface NegotiationErrorOptions extends QuicErrorOptions {
  /**
   * Where negotiation stopped: waiting for a negotiation slot (`'slot'`), for the peer's stream
   * credit (`'credit'`), or in the exchange with the peer (`'peer'`).
   */
  phase?: 'slot' | 'credit' | 'peer'
  /** Whether trying again later may succeed (a busy router, say). Default false. */
  retryable?: boolean
}

/** A protocol negotiation failure: one of the {@link NegotiationErrorCode}s, or `ERR_QUIC_ABORTED`. */
export class NegotiationError extends QuicError {
  override readonly name: string = 'NegotiationError'
  declare readonly code: NegotiationErrorCode | typeof QuicErrorCode.ABORTED
  readonly phase?: 'slot' | 'credit' | 'peer'
  readonly retryable: boolean

  constructor (code: NegotiationErrorCode | typeof QuicErrorCode.ABORTED, message: string, options: NegotiationErrorOptions = {}) {
    super(code, message, options)
    this.phase = options.phase
    this.retryable = options.retryable ?? false
  }
}
brand(QuicError, 'QuicError')
brand(NegotiationError, 'NegotiationError')

const byStatus: Record<string, QuicErrorCode> = {
  QUIC_STATUS_CONNECTION_REFUSED: QuicErrorCode.CONNECTION_REFUSED,
  QUIC_STATUS_HANDSHAKE_FAILURE: QuicErrorCode.HANDSHAKE_FAILED,
  QUIC_STATUS_TLS_ERROR: QuicErrorCode.HANDSHAKE_FAILED,
  QUIC_STATUS_VER_NEG_ERROR: QuicErrorCode.HANDSHAKE_FAILED,
  QUIC_STATUS_PROTOCOL_ERROR: QuicErrorCode.HANDSHAKE_FAILED,
  QUIC_STATUS_ALPN_NEG_FAILURE: QuicErrorCode.ALPN,
  QUIC_STATUS_ALPN_IN_USE: QuicErrorCode.ADDRESS_IN_USE,
  QUIC_STATUS_BAD_CERTIFICATE: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_UNSUPPORTED_CERTIFICATE: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_REVOKED_CERTIFICATE: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_EXPIRED_CERTIFICATE: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_UNKNOWN_CERTIFICATE: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_REQUIRED_CERTIFICATE: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_CERT_EXPIRED: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_CERT_UNTRUSTED_ROOT: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_CERT_NO_CERT: QuicErrorCode.CERTIFICATE,
  QUIC_STATUS_CONNECTION_IDLE: QuicErrorCode.IDLE_TIMEOUT,
  QUIC_STATUS_CONNECTION_TIMEOUT: QuicErrorCode.TIMEOUT,
  QUIC_STATUS_ADDRESS_IN_USE: QuicErrorCode.ADDRESS_IN_USE,
  QUIC_STATUS_UNREACHABLE: QuicErrorCode.UNREACHABLE,
  QUIC_STATUS_ABORTED: QuicErrorCode.ABORTED,
  QUIC_STATUS_USER_CANCELED: QuicErrorCode.ABORTED
}

/** The QuicError for an MsQuic status, by the status's name. */
export function errorFromStatus (statusName: string, status: number, message: string, options: QuicErrorOptions = {}): QuicError {
  const code = byStatus[statusName] ?? QuicErrorCode.INTERNAL
  return new QuicError(code, `${message} (${statusName})`, { ...options, status, statusName })
}

/** The error thrown when a closed object is used. */
export function closedError (what: string): QuicError {
  return new QuicError(QuicErrorCode.CLOSED, `${what} is closed`)
}

/** The error an aborted operation rejects with. */
export function abortedError (signal: AbortSignal, what: string): QuicError {
  return new QuicError(QuicErrorCode.ABORTED, `${what} was aborted`, { cause: signal.reason })
}
