/**
 * RecordFetcher: one provider's record of a name, asked of the provider itself (RECORD_PROTOCOL)
 * and, hedged, read from the DHT; the first valid answer wins. Records are verified; bad ones are
 * counted and mark their source down, never thrown. Used by the finder (finder.ts). JS thread only.
 */
import type { Connection, PeerInfo, Stream } from '@libp2p/interface'
import type { DiscoveryComponents } from './components.js'
import { dialTarget } from './addresses.js'
import { DiscoveryError, DiscoveryErrorCode } from './errors.js'
import { DHT_READ_DELAY_MAX, HEDGE_DELAY, RECORD_PROTOCOL } from './options.js'
import { ENDED } from './query-layer.js'
import { MAX_RECORD_BYTES, RecordRejection, newer, recordKey, verifyRecordForKey, type ServiceRecord } from './record.js'
import { autoHedge } from './reputation.js'
import type { ResolveTimes } from './telemetry.js'
import { exchange } from './wire.js'

const utf8 = new TextEncoder()

export class RecordFetcher {
  readonly #components: Pick<DiscoveryComponents, 'libp2p' | 'dht' | 'reputation' | 'reachability' | 'telemetry' | 'now'>

  constructor (components: Pick<DiscoveryComponents, 'libp2p' | 'dht' | 'reputation' | 'reachability' | 'telemetry' | 'now'>) {
    this.#components = components
  }

  /** Counts a refused record and marks its source down; returns undefined. */
  rejected (error: unknown, from?: string): undefined {
    if (error instanceof RecordRejection) this.#components.telemetry.record(error.reason)
    if (from !== undefined) this.#components.reputation.failed(from)
    return undefined
  }

  /**
   * One provider's live record of `name`: the provider is asked directly and the DHT is read at
   * the same time; the first valid answer wins and the other is cancelled. Records are verified;
   * a withdrawn one means the provider is gone (undefined). Never throws for bad records.
   * `times` gets the phases of the answer that won.
   */
  async fetch (name: string, provider: PeerInfo, signal: AbortSignal, times: ResolveTimes = {}): Promise<ServiceRecord | undefined> {
    const { reputation, reachability, now } = this.#components
    const from = provider.id.toString()
    const started = performance.now()
    const controller = new AbortController()
    const onAbort = (): void => controller.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      // A hedged read: the provider is asked first; the DHT is read too if it has not answered
      // within this node's usual answer time (see DHT_READ_DELAY_MAX) or has failed. The first valid answer wins.
      const directTimes: ResolveTimes = { via: 'direct' }
      const dhtTimes: ResolveTimes = { via: 'dht' }
      const direct = this.#fetchDirect(name, provider, controller.signal, directTimes)
      const fromDht = new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.min(DHT_READ_DELAY_MAX, Math.max(HEDGE_DELAY, autoHedge(reputation))))
        direct.catch(() => {}).finally(() => { clearTimeout(timer); resolve() })
      }).then(async () => {
        if (controller.signal.aborted) throw controller.signal.reason
        // A copy of the record of a provider nobody can connect to is of no use to the caller.
        if (reachability.isUnreachable(provider.id)) throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `${from} is unreachable`)
        return await this.#fetchFromDht(name, provider, controller.signal, dhtTimes)
      })
      const record = await Promise.any([direct.then(r => [r, directTimes] as const), fromDht.then(r => [r, dhtTimes] as const)]).then(([r, won]) => { Object.assign(times, won); return r })
      reputation.answered(from, performance.now() - started)
      return record.withdrawn === true || record.expiresAt <= now() ? undefined : record
    } catch (error) {
      if (signal.aborted) throw signal.reason
      reputation.failed(from)
      return undefined
    } finally {
      signal.removeEventListener('abort', onAbort)
      controller.abort(ENDED)
    }
  }

  /**
   * Asks the provider itself for its record of `name` (one stream); `times` gets its phases. A
   * connection that failed, or that closed under the request (its peer is gone, and its answer, if
   * any, was cut short), marks the provider unreachable.
   */
  async #fetchDirect (name: string, provider: PeerInfo, signal: AbortSignal, times: ResolveTimes): Promise<ServiceRecord> {
    const { libp2p, reachability, now } = this.#components
    const connected = libp2p.getConnections(provider.id).find(c => c.status === 'open')
    const target = connected === undefined ? dialTarget(provider.id, provider.multiaddrs) : provider.id
    let connection: Connection | undefined
    let stream: Stream
    let at = performance.now()
    try {
      // libp2p.dialProtocol() in its two steps, each timed: the connection, then the stream's negotiation.
      connection = connected ?? await libp2p.dial(target, { signal })
      times.connect = performance.now() - at
      at = performance.now()
      stream = await connection.newStream(RECORD_PROTOCOL, { signal })
      times.negotiate = performance.now() - at
    } catch (error) {
      if (signal.aborted) throw signal.reason
      await reachability.failed(provider.id, connection, error)
      throw new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `dialling ${provider.id.toString()} failed: ${(error as Error).message}`, { cause: error })
    }
    const onAbort = (): void => stream.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      at = performance.now()
      const value = await exchange(stream, utf8.encode(name), MAX_RECORD_BYTES)
      times.exchange = performance.now() - at
      if (value.byteLength === 0) throw new DiscoveryError(DiscoveryErrorCode.NOT_FOUND, `${provider.id.toString()} does not provide "${name}"`)
      at = performance.now()
      const record = await verifyRecordForKey(recordKey(name, provider.id), value, now())
      times.verify = performance.now() - at
      return record
    } catch (error) {
      if (!signal.aborted) await reachability.failed(provider.id, connection, error)
      this.rejected(error)
      throw error
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** Reads the provider's record of `name` from the DHT: the first valid copy any peer returns. */
  async #fetchFromDht (name: string, provider: PeerInfo, signal: AbortSignal, times: ResolveTimes): Promise<ServiceRecord> {
    const { dht, telemetry, now } = this.#components
    const key = recordKey(name, provider.id)
    let best: ServiceRecord | undefined
    const at = performance.now()
    for await (const event of dht.get(key, { signal })) {
      telemetry.dhtEvents++
      const value = event.name === 'VALUE' ? event.value : event.name === 'PEER_RESPONSE' ? event.record?.value : undefined
      if (value === undefined) continue
      const record = await verifyRecordForKey(key, value, now()).catch(error => this.rejected(error, event.from?.toString()))
      if (record !== undefined && (best === undefined || newer(record, best))) {
        best = record
        // A copy from another node is as good as the provider's own, unless a newer one follows:
        // the first valid one wins (the losers are cancelled with the query's signal).
        break
      }
    }
    if (best === undefined) throw new DiscoveryError(DiscoveryErrorCode.NOT_FOUND, `no record of "${name}" by ${provider.id.toString()}`)
    // (The read and the verification of its answer together.)
    times.exchange = performance.now() - at
    return best
  }
}
