/**
 * The limits layer's one error table. Refusals and failures are {@link LimitsError}s with a stable
 * `code`; bad arguments throw Node's `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE` /
 * `ERR_OUT_OF_RANGE` synchronously (the helpers shared with the QUIC layer).
 */
import { CodedError, brand } from '../errors.js'

/** Stable error codes carried by {@link LimitsError}. */
export const LimitsErrorCode = {
  /** An acquire() or run() was aborted through its AbortSignal before it got what it waited for. */
  ABORTED: 'ERR_LIMITS_ABORTED',
  /** The limiter, manager or pool is closed. */
  CLOSED: 'ERR_LIMITS_CLOSED',
  /** A pool has no provider to route to (none added, or all removed). */
  NO_PROVIDER: 'ERR_LIMITS_NO_PROVIDER',
  /** Every provider a run could use failed to connect; `errors` holds each provider's failure. */
  PROVIDERS_FAILED: 'ERR_LIMITS_PROVIDERS_FAILED'
} as const

export type LimitsErrorCode = typeof LimitsErrorCode[keyof typeof LimitsErrorCode]

/** A refusal or failure of the limits layer, with a stable `code` to branch on. */
export class LimitsError extends CodedError<LimitsErrorCode> {
  override readonly name: string = 'LimitsError'
  /** With `ERR_LIMITS_PROVIDERS_FAILED`: each provider's failure, in the order they were tried. */
  readonly errors?: readonly unknown[]

  constructor (code: LimitsErrorCode, message: string, options: { cause?: unknown, errors?: readonly unknown[] } = {}) {
    super(code, message, options)
    if (options.errors !== undefined) this.errors = options.errors
  }
}
brand(LimitsError, 'LimitsError')

/** The error an aborted wait rejects with; the signal's reason is its `cause`. */
export function limitsAbortedError (signal: AbortSignal, what: string): LimitsError {
  return new LimitsError(LimitsErrorCode.ABORTED, `${what} was aborted`, { cause: signal.reason })
}

/** The error a closed object's operations reject with. */
export function limitsClosedError (what: string): LimitsError {
  return new LimitsError(LimitsErrorCode.CLOSED, `${what} is closed`)
}
