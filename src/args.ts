/**
 * Argument checks for every layer, in one place: a bad argument throws synchronously with Node's
 * own codes, `ERR_INVALID_ARG_TYPE` (the wrong kind of value), `ERR_INVALID_ARG_VALUE` (the right
 * kind, an unusable value) or `ERR_OUT_OF_RANGE` (a number outside its range), before anything
 * starts. Lowest layer: imports nothing. JS thread, no state.
 */

/** A TypeError with Node's `ERR_INVALID_ARG_TYPE` code. `what`: an option or a positional argument. */
export function invalidArgType (name: string, expected: string, actual: unknown, what: 'option' | 'argument' = 'option'): TypeError {
  const error = new TypeError(`The "${name}" ${what} must be ${expected}; received ${describe(actual)}`)
  return Object.assign(error, { code: 'ERR_INVALID_ARG_TYPE' })
}

/** A RangeError with `ERR_OUT_OF_RANGE` (`range`), else a TypeError with `ERR_INVALID_ARG_VALUE`. */
export function invalidArgValue (name: string, reason: string, actual: unknown, range = false, what: 'option' | 'argument' = 'option'): Error {
  const message = `The "${name}" ${what} ${reason}; received ${describe(actual)}`
  const error = range ? new RangeError(message) : new TypeError(message)
  return Object.assign(error, { code: range ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_VALUE' })
}

/** An Error with Node's `ERR_INVALID_STATE` code: the call does not fit the object's state now. */
export function invalidState (message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_INVALID_STATE' })
}

/** `value` as an options object (undefined: `{}`). */
export function checkOptions<T extends object> (value: T | undefined, name?: string): T
export function checkOptions (value: unknown, name?: string): Record<string, unknown>
export function checkOptions (value: unknown, name = 'options'): object {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw invalidArgType(name, 'an object', value)
  return value
}

/** An AbortSignal, or undefined. */
export function checkSignal (value: unknown, name = 'signal'): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) throw invalidArgType(name, 'an AbortSignal', value)
  return value
}

/** What {@link integer} accepts: bounds (inclusive), and whether `Infinity` stands for "no limit". */
export interface IntegerRange {
  min?: number
  max?: number
  infinite?: boolean
}

/** A safe integer within `range` (`Infinity` too if it allows). */
export function integer (name: string, value: unknown, range: IntegerRange = {}): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value)
  if (range.infinite === true && value === Infinity) return value
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const bounds = range.max !== undefined ? `from ${min} to ${max}` : `≥ ${min}`
    throw invalidArgValue(name, `must be an integer ${bounds}${range.infinite === true ? ' or Infinity' : ''}`, value, true)
  }
  return value
}

/** {@link integer}, or `fallback` when `value` is undefined. */
export function optionalInteger<F extends number | undefined> (name: string, value: unknown, range: IntegerRange, fallback: F): number | F {
  return value === undefined ? fallback : integer(name, value, range)
}

/** A finite number > 0. */
export function positiveNumber (name: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value)
  if (!Number.isFinite(value) || value <= 0) throw invalidArgValue(name, 'must be a finite number > 0', value, true)
  return value
}

/** A non-empty string. */
export function nonEmptyString (name: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'a string', value)
  if (value.length === 0) throw invalidArgValue(name, 'must not be empty', value)
  return value
}

/** A boolean, or `fallback` when `value` is undefined. */
export function optionalBoolean (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalidArgType(name, 'a boolean', value)
  return value
}

function describe (value: unknown): string {
  // Long enough for a whole multiaddr with its peer id (about 100 characters).
  if (typeof value === 'string') return JSON.stringify(value.length > 120 ? value.slice(0, 120) + '…' : value)
  if (value === null || value === undefined || typeof value !== 'object') return String(value)
  return `an instance of ${value.constructor?.name ?? 'Object'}`
}
