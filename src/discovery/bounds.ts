/**
 * The size bounds of a service record, which both the record format (record.ts) and the argument
 * checks (options.ts) enforce. Below both: imports only src/args.ts, and none of libp2p's packages.
 */
import { invalidArgType, invalidArgValue } from '../args.js'

/** `metadata` of one record, encoded, at most (bytes). */
export const MAX_METADATA_BYTES = 1024
/** A service name, UTF-8, at most (bytes). */
export const MAX_NAME_BYTES = 255
/** Addresses in one record, at most. */
export const MAX_MULTIADDRS = 16

/** The size of `metadata` encoded in a record (bytes), or ERR_INVALID_ARG_* if it is neither JSON nor bytes. */
export function metadataBytes (metadata: unknown): number {
  if (metadata instanceof Uint8Array) return metadata.byteLength
  let json: string | undefined
  try {
    json = JSON.stringify(metadata)
  } catch (error) {
    throw invalidArgValue('metadata', `must be a JSON value or bytes (${(error as Error).message})`, metadata)
  }
  if (json === undefined) throw invalidArgType('metadata', 'a JSON value or a Uint8Array', metadata)
  return Buffer.byteLength(json)
}
