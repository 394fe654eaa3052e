/** Validation of QUIC application error codes. */
import { invalidArgValue } from '../args.js'

const MAX_ERROR_CODE = 2n ** 62n - 1n

/** Application error codes are QUIC varints: integers from 0 to 2^62-1. */
export function checkErrorCode (code: unknown): void {
  const valid = (typeof code === 'bigint' && code >= 0n && code <= MAX_ERROR_CODE) ||
    (typeof code === 'number' && Number.isSafeInteger(code) && code >= 0)
  if (!valid) throw invalidArgValue('code', 'must be an integer from 0 to 2^62-1', code, true)
}
