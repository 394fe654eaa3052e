/**
 * The discovery layer's one error table. Every failure a caller sees is a {@link DiscoveryError}
 * with a stable `code`; malformed records from the network are never thrown (they are counted).
 */
import { CodedError } from '../errors.js'

/** Stable error codes carried by {@link DiscoveryError}. */
export const DiscoveryErrorCode = {
  /** The registry stopped while the query was pending, or was stopped before the call. */
  SHUTDOWN: 'ERR_DISCOVERY_SHUTDOWN',
  /** The query's deadline (`timeout`) passed first. */
  TIMEOUT: 'ERR_DISCOVERY_TIMEOUT',
  /** The query ran to its end and found no live, valid record. */
  NOT_FOUND: 'ERR_DISCOVERY_NOT_FOUND',
  /** The caller's AbortSignal fired; its reason is the `cause`. */
  ABORTED: 'ERR_DISCOVERY_ABORTED',
  /**
   * signRecord() could not build a record (its name, metadata or size out of bounds), or a withdrawn
   * advertisement was refreshed. (Bad arguments of the registry's methods are Node's ERR_INVALID_ARG_*.)
   */
  INVALID_RECORD: 'ERR_DISCOVERY_INVALID_RECORD',
  /** A dial or request to a provider failed; the transport's error is the `cause`. */
  DIAL_FAILED: 'ERR_DISCOVERY_DIAL_FAILED',
  /** A response was larger than the request helper's `maxResponseBytes`. */
  RESPONSE_TOO_LARGE: 'ERR_DISCOVERY_RESPONSE_TOO_LARGE',
  /**
   * Discovery's packages are not installed (the message names the npm install line), the wrapped
   * libp2p node has no kad-dht service or no private key to sign with, or a registry made without
   * a bootstrap (and not as a `firstNode`) knows no peer to ask.
   */
  NOT_CONFIGURED: 'ERR_DISCOVERY_NOT_CONFIGURED'
} as const

export type DiscoveryErrorCode = typeof DiscoveryErrorCode[keyof typeof DiscoveryErrorCode]

/** A discovery failure with a stable `code` to branch on. */
export class DiscoveryError extends CodedError<DiscoveryErrorCode> {
  override readonly name: string = 'DiscoveryError'
}

/** Whether `error` is a DiscoveryError with `code` (works across copies of the module). */
export function isDiscoveryError (error: unknown, code?: DiscoveryErrorCode): error is DiscoveryError {
  return error instanceof Error && error.name === 'DiscoveryError' && (code === undefined || (error as DiscoveryError).code === code)
}

/** The error of a call on a stopped registry: `what` (a method, a query) is refused. */
export function stoppedError (what: string): DiscoveryError {
  return new DiscoveryError(DiscoveryErrorCode.SHUTDOWN, `the registry is stopped; ${what} refused`)
}
