/**
 * An in-memory datastore that keeps each value in a buffer of its own size. kad-dht stores what it
 * is sent as `record.serialize().subarray()`, a view into a 64 KiB slab that the protobuf encoder
 * shares with whatever else it encoded at the time: in js-libp2p's MemoryDatastore each stored
 * record then holds on to slabs mostly full of garbage (about 2.3 KB per 500-byte record measured
 * by bench/discovery.mjs). Copying a value that is a view into a larger buffer keeps the record and
 * lets the slab go. Runs on the JS thread, like every datastore call.
 */
import type { Datastore } from 'interface-datastore'

/**
 * A MemoryDatastore (datastore-core, which libp2p depends on) that copies each value stored as a
 * view into a larger buffer. Resolves with undefined when datastore-core cannot be loaded; libp2p
 * then uses its own default.
 */
export async function compactMemoryDatastore (): Promise<Datastore | undefined> {
  let MemoryDatastore: typeof import('datastore-core').MemoryDatastore
  try {
    ({ MemoryDatastore } = await import('datastore-core'))
  } catch {
    return undefined
  }
  class CompactMemoryDatastore extends MemoryDatastore {
    override put (...[key, value, options]: Parameters<InstanceType<typeof MemoryDatastore>['put']>): ReturnType<InstanceType<typeof MemoryDatastore>['put']> {
      return super.put(key, compact(value), options)
    }
  }
  return new CompactMemoryDatastore()
}

/** `value` itself when it fills its buffer, else a copy that does. */
export function compact (value: Uint8Array): Uint8Array {
  return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : value.slice()
}
