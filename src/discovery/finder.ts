/**
 * Finder: the finding half of the registry, as kad-dht's ContentRouting is its own: the providers
 * of a name (this node, its provider store, the nearest peers' one round, kad-dht's iterative query),
 * their records (fetcher.ts), and discover(), watch() and resolve() over them (the hedged fan-out in
 * hedged-resolve.ts). Every query goes through the query layer. Arguments are checked by the
 * registry before they get here. JS thread only.
 */
import type { PeerId, PeerInfo } from '@libp2p/interface'
import type { DiscoveryComponents, OwnRecords } from './components.js'
import { DiscoveryErrorCode, isDiscoveryError, stoppedError } from './errors.js'
import { RecordFetcher } from './fetcher.js'
import { HedgedResolve, type SearchStage } from './hedged-resolve.js'
import { localProviders, nearbyProviders, type NearbyContext } from './nearby.js'
import { DEFAULT_FAN_OUT, DEFAULT_WATCH_INTERVAL, type DiscoverOptions, type RegistryStats, type ResolveOptions, type WatchEvent, type WatchOptions } from './options.js'
import { retryable, type Query } from './query-layer.js'
import { nameToCid, newer, type ServiceRecord } from './record.js'
import { autoHedge } from './reputation.js'
import type { ResolveTimes } from './telemetry.js'

/** Where a provider search found its first provider (RegistryStats.lookups). */
type LookupSource = keyof RegistryStats['lookups']

export type FinderComponents = Pick<DiscoveryComponents, 'libp2p' | 'dht' | 'queries' | 'reputation' | 'reachability' | 'telemetry' | 'now' | 'stopping'> & { ownRecords: OwnRecords }

export interface FinderInit {
  /** A query's deadline when the caller gives none (ms). */
  timeout: number
  /** Peers asked in the nearby round (0: none, kad-dht's query alone). */
  nearbyPeers: number
}

export class Finder {
  readonly #components: FinderComponents
  readonly #init: FinderInit
  readonly #fetcher: RecordFetcher
  readonly #nearby: NearbyContext

  constructor (components: FinderComponents, init: FinderInit) {
    this.#components = components
    this.#init = init
    const fetcher = this.#fetcher = new RecordFetcher(components)
    this.#nearby = { libp2p: components.libp2p, dht: components.dht, rejected: (error, from) => fetcher.rejected(error, from), hedge: () => autoHedge(components.reputation) }
  }

  /**
   * Providers of `name`, each once: this node first if it provides it, then those of its own
   * provider store, then those the nearest peers name in one round (nearby.ts), then those kad-dht's
   * iterative query finds; the next source is read only when the caller asks for more, and one
   * that sends requests only once `needed()` resolves. Those of one answer come best reputation first.
   */
  async * providers (name: string, signal: AbortSignal, seen = new Set<string>(), onFound?: (source: LookupSource) => void, needed?: (next: SearchStage) => Promise<void>): AsyncGenerator<PeerInfo> {
    const { libp2p, dht, reputation, reachability, telemetry, ownRecords } = this.#components
    // Counted as the first provider is found (stats().lookups), not when the caller lets go.
    let found = false
    const counted = (source: LookupSource): void => {
      if (found) return
      found = true
      telemetry.lookup(source)
      onFound?.(source)
    }
    const self = libp2p.peerId
    if (ownRecords.provides(name) && !seen.has(self.toString())) {
      seen.add(self.toString())
      counted('local')
      yield { id: self, multiaddrs: [] }
    }
    const cid = nameToCid(name)
    // One answer's providers not yet seen, best reputation first (an answer may name one twice).
    const unseen = function * (providers: PeerInfo[], source: LookupSource): Generator<PeerInfo> {
      for (const provider of reputation.order(providers, p => p.id.toString())) {
        // A provider whose connection failed lately costs nothing until the hold ends.
        if (seen.has(provider.id.toString()) || reachability.isUnreachable(provider.id)) continue
        seen.add(provider.id.toString())
        counted(source)
        yield provider
      }
    }
    try {
      // A provider this node is connected to is dialled by its id, on that connection.
      const local = await localProviders(dht, libp2p.peerStore, cid, signal, (peer: PeerId) => libp2p.getConnections(peer).length > 0 ? [] : undefined)
      yield * unseen(local ?? [], 'local')
      // (Without kad-dht's internals both are undefined: its own query is the only source.)
      await needed?.('nearby')
      const nearby = this.#init.nearbyPeers === 0 ? undefined : nearbyProviders(this.#nearby, name, this.#init.nearbyPeers, signal)
      // (The next nearest peer is asked only once its answer may be needed, like the round itself.)
      for await (const answer of nearby ?? []) {
        yield * unseen(answer, 'nearby')
        await needed?.('nearby')
      }
      await needed?.('iterative')
      for await (const event of dht.findProviders(cid, { signal })) {
        telemetry.dhtEvents++
        if (event.name === 'PROVIDER' && event.providers !== undefined) yield * unseen(event.providers, 'iterative')
      }
    } finally {
      if (!found) telemetry.lookup('none')
    }
  }

  /** ServiceRegistry.discover(), its arguments checked. */
  discover (name: string, options: DiscoverOptions): AsyncGenerator<ServiceRecord, void, undefined> {
    const { queries, telemetry } = this.#components
    const counts = { contacted: 0, found: 0 }
    const report = telemetry.traced<number>(() => telemetry.span('discovery.discover', { 'discovery.name': name }), {
      peers: () => counts.contacted,
      outcome: found => found > 0 ? 'success' : 'not-found',
      last: span => { span.setAttribute('discovery.records', counts.found) }
    })
    return queries.stream('discover', { timeout: options.timeout ?? this.#init.timeout, signal: options.signal }, query => this.#records(name, options.limit ?? Infinity, query, counts), report)
  }

  /** The live records of `name` as their fetches answer, at most `limit`, under `query`; `counts` are the span's. */
  async * #records (name: string, limit: number, query: Query, counts: { contacted: number, found: number }): AsyncGenerator<ServiceRecord> {
    const { libp2p, ownRecords, telemetry } = this.#components
    // Records arrive from concurrent fetches; this queue hands them to the consumer in order.
    const ready: ServiceRecord[] = []
    let wake: (() => void) | undefined
    let producing = true
    const fetches = new Set<Promise<void>>()
    const notify = (): void => { const w = wake; wake = undefined; w?.() }
    const produce = (async () => {
      try {
        await query.retry(async signal => {
          for await (const provider of this.providers(name, signal)) {
            counts.contacted++
            const own = provider.id.equals(libp2p.peerId) ? ownRecords.own(name) : undefined
            const fetch = (own !== undefined ? Promise.resolve(own) : this.#fetcher.fetch(name, provider, signal)).then(record => {
              if (record !== undefined) { ready.push(record); notify() }
            }, () => {}).finally(() => { fetches.delete(fetch) })
            fetches.add(fetch)
          }
        }, error => retryable(error) && counts.contacted === 0, () => telemetry.retry())
        await Promise.all(fetches)
      } finally {
        producing = false
        notify()
      }
    })()
    produce.catch(() => {})
    while (counts.found < limit) {
      if (ready.length > 0) {
        counts.found++
        yield ready.shift()!
        continue
      }
      if (!producing) {
        await produce
        break
      }
      await query.race(new Promise<void>(resolve => { wake = resolve }))
    }
  }

  /** ServiceRegistry.watch(), its arguments checked. */
  async * watch (name: string, options: WatchOptions): AsyncGenerator<WatchEvent, void, undefined> {
    const { stopping, now } = this.#components
    const interval = options.interval ?? DEFAULT_WATCH_INTERVAL
    const stop = options.signal === undefined ? stopping : AbortSignal.any([options.signal, stopping])
    // The caller's abort ends the watch quietly; the registry's stop fails it, as it fails queries.
    const ended = (): boolean => {
      if (stopping.aborted) throw stoppedError('watch()')
      return stop.aborted
    }
    const known = new Map<string, ServiceRecord>()
    while (!ended()) {
      const current = new Map<string, ServiceRecord>()
      try {
        for await (const record of this.discover(name, { timeout: options.timeout ?? this.#init.timeout, signal: stop })) current.set(record.peerId, record)
      } catch (error) {
        if (ended()) return
        // A round that failed says nothing about who is gone; try again next round.
        if (!isDiscoveryError(error, DiscoveryErrorCode.TIMEOUT) && !isDiscoveryError(error, DiscoveryErrorCode.NOT_FOUND)) throw error
        if (isDiscoveryError(error, DiscoveryErrorCode.TIMEOUT)) for (const [peer, record] of known) current.set(peer, record)
      }
      const at = now()
      for (const [peer, record] of current) {
        if (record.expiresAt <= at) continue
        const before = known.get(peer)
        if (before === undefined) yield { type: 'added', record }
        else if (newer(record, before)) yield { type: 'updated', record }
        known.set(peer, record)
      }
      for (const [peer, record] of known) {
        const still = current.get(peer)
        if (still === undefined || still.expiresAt <= at) {
          known.delete(peer)
          yield { type: 'gone', record }
        }
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(done, interval * (0.8 + Math.random() * 0.4))
        function done (): void { clearTimeout(timer); stop.removeEventListener('abort', done); resolve() }
        stop.addEventListener('abort', done, { once: true })
      })
    }
  }

  /** ServiceRegistry.resolve(), its arguments checked. */
  async resolve (name: string, options: ResolveOptions): Promise<ServiceRecord> {
    const { queries, reputation, telemetry, ownRecords } = this.#components
    const fanOut = options.fanOut ?? DEFAULT_FAN_OUT
    const hedgeOption = options.hedge ?? 'auto'
    const hedge = fanOut === 1 ? 0 : hedgeOption === 'auto' ? autoHedge(reputation) : hedgeOption
    const own = ownRecords.own(name)
    let contacted = 0
    // Where the provider search found its first provider ('own': this node's own record answered).
    let lookup: LookupSource | 'own' = own !== undefined ? 'own' : 'none'
    const found = (source: LookupSource): void => { if (lookup === 'none') lookup = source }
    // Where the time went, from the attempt that answered (see ResolveTimes).
    const times: ResolveTimes = {}
    const report = telemetry.traced<ServiceRecord>(() => telemetry.span('discovery.resolve', { 'discovery.name': name, 'discovery.fan_out': fanOut, 'discovery.hedge_ms': hedge }), {
      peers: () => contacted,
      last: (span, outcome) => {
        span.setAttribute('discovery.lookup', lookup)
        if (outcome === 'success') telemetry.phases(span, times)
      }
    })
    return await queries.run('resolve', { timeout: options.timeout ?? this.#init.timeout, signal: options.signal }, async query => own ?? await query.retry(async signal => await new HedgedResolve({
      reputation,
      providers: (signal, seen, needed) => this.providers(name, signal, seen, found, needed),
      fetch: async (provider, signal, times) => await this.#fetcher.fetch(name, provider, signal, times)
    }, { name, fanOut, hedge, contacted: () => contacted++, times }).run(signal), retryable, () => telemetry.retry()), report)
  }
}
