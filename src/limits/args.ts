/** Argument checks shared by the limits layer: one line at the top of each public method. */
import { invalidArgType, invalidArgValue } from './errors.js'

/** An options bag: an object, or undefined for the defaults. */
export function optionsObject (name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw invalidArgType(name, 'an object', value)
  return value as Record<string, unknown>
}

/** An integer ≥ `min`; `Infinity` too when `infinite` allows it. */
export function integer (name: string, value: unknown, min: number, infinite = false): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value)
  if (infinite && value === Infinity) return value
  if (!Number.isSafeInteger(value) || value < min) {
    throw invalidArgValue(name, `must be an integer ≥ ${min}${infinite ? ' or Infinity' : ''}`, value, true)
  }
  return value
}

/** A finite number > 0. */
export function positiveNumber (name: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value)
  if (!Number.isFinite(value) || value <= 0) throw invalidArgValue(name, 'must be a finite number > 0', value, true)
  return value
}

/** An AbortSignal or undefined. */
export function signalOption (value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value
  throw invalidArgType('signal', 'an AbortSignal', value)
}

/** A non-empty string. */
export function nonEmptyString (name: string, value: unknown): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'a string', value)
  if (value.length === 0) throw invalidArgValue(name, 'must not be empty', value)
  return value
}
