/**
 * An in-memory datastore that keeps each value in a buffer of its own size, and answers a prefix
 * query from the entries with that prefix only. kad-dht stores what it
 * is sent as `record.serialize().subarray()`, a view into a 64 KiB slab that the protobuf encoder
 * shares with whatever else it encoded at the time: in js-libp2p's MemoryDatastore each stored
 * record then holds on to slabs mostly full of garbage (about 2.3 KB per 500-byte record measured
 * by bench/discovery.mjs). Copying a value that is a view into a larger buffer keeps the record and
 * lets the slab go. Runs on the JS thread, like every datastore call.
 */
import type { Datastore, Pair } from 'interface-datastore'

/**
 * A MemoryDatastore (datastore-core, which libp2p depends on) that copies each value stored as a
 * view into a larger buffer, and whose prefix queries make a Key (and an iteration step) only for the
 * entries that match: MemoryDatastore makes one for every entry it holds and filters afterwards, and
 * kad-dht looks a name's providers up with a prefix query, on every resolve (6 % of a loaded
 * 31-node registry's JavaScript time). Resolves with undefined when datastore-core cannot be loaded;
 * libp2p then uses its own default.
 */
export async function compactMemoryDatastore (): Promise<Datastore | undefined> {
  let MemoryDatastore: typeof import('datastore-core').MemoryDatastore
  try {
    ({ MemoryDatastore } = await import('datastore-core'))
  } catch {
    return undefined
  }
  // (interface-datastore comes with datastore-core; without it prefix queries take the plain way.)
  const Key = await import('interface-datastore').then(m => m.Key, () => undefined)
  type Base = InstanceType<typeof MemoryDatastore>
  /** MemoryDatastore's own map of key strings to values (datastore-core 11 and 12), if it has one. */
  const entries = (store: Base): Map<string, Uint8Array> | undefined => {
    const data = (store as unknown as { data?: unknown }).data
    return data instanceof Map ? data as Map<string, Uint8Array> : undefined
  }
  class CompactMemoryDatastore extends MemoryDatastore {
    override put (...[key, value, options]: Parameters<Base['put']>): ReturnType<Base['put']> {
      return super.put(key, compact(value), options)
    }

    override * _all (...[query, options]: Parameters<Base['_all']>): Generator<Pair> {
      const data = entries(this)
      if (query.prefix === undefined || data === undefined || Key === undefined) return yield * (super._all(query, options) as Generator<Pair>)
      options?.signal?.throwIfAborted()
      for (const [key, value] of data) if (key.startsWith(query.prefix)) yield { key: new Key(key), value }
    }

    override * _allKeys (...[query, options]: Parameters<Base['_allKeys']>): Generator<InstanceType<NonNullable<typeof Key>>> {
      const data = entries(this)
      if (query.prefix === undefined || data === undefined || Key === undefined) return yield * (super._allKeys(query, options) as Generator<InstanceType<NonNullable<typeof Key>>>)
      options?.signal?.throwIfAborted()
      for (const key of data.keys()) if (key.startsWith(query.prefix)) yield new Key(key)
    }
  }
  return new CompactMemoryDatastore()
}

/** `value` itself when it fills its buffer, else a copy that does. */
export function compact (value: Uint8Array): Uint8Array {
  return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : value.slice()
}
