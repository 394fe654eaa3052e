/**
 * Publisher: the publishing half of the registry. advertise() signs a record, announces it to the
 * nearest peers (announce.ts) and publishes it (the record put on the DHT, the name provided), as
 * one query each through the query layer, within the thread's publications; the Advertisement it
 * returns refreshes and withdraws through the narrow {@link Publishing} it is given. It holds this
 * node's advertisements: what the record protocol answers and what the finder finds locally.
 * Arguments are checked by the registry before they get here. JS thread only.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { OperationLimiter, Permit } from '../limits/operation-limiter.js'
import { publishable } from './addresses.js'
import { Advertisement, type Publishing } from './advertisement.js'
import { announceNearby } from './announce.js'
import type { DiscoveryComponents, OwnRecords } from './components.js'
import { DiscoveryError, DiscoveryErrorCode, stoppedError } from './errors.js'
import { joined } from './kad-internals.js'
import { PUBLISH_CLASS, PUBLISH_TIMEOUT, type AdvertiseOptions, type DhtEvent, type QueryOptions } from './options.js'
import { outcomeOf, retryable } from './query-layer.js'
import { nameToCid, recordKey, signRecord, type ServiceRecord } from './record.js'
import { Telemetry } from './telemetry.js'

export type PublisherComponents = Pick<DiscoveryComponents, 'libp2p' | 'dht' | 'queries' | 'telemetry' | 'now' | 'stopping'> & {
  /** The key records are signed with. */
  privateKey: PrivateKey
}

export interface PublisherInit {
  /** A query's deadline when the caller gives none (ms); a publication's is at least PUBLISH_TIMEOUT. */
  timeout: number
  /** Peers a new advertisement is announced to (0: none, the full publication is awaited). */
  announcePeers: number
  /** A record's TTL when advertise() is given none (ms). */
  defaultTtl: number
  /** The publications of the thread: each takes a PUBLISH_CLASS permit. */
  publications: OperationLimiter
}

export class Publisher implements OwnRecords {
  readonly #components: PublisherComponents
  readonly #init: PublisherInit
  readonly #advertisements = new Map<string, Advertisement>()
  readonly #publishing: Publishing

  constructor (components: PublisherComponents, init: PublisherInit) {
    this.#components = components
    this.#init = init
    const { libp2p, privateKey, now, stopping } = components
    this.#publishing = {
      peerId: libp2p.peerId.toString(),
      stopping,
      now,
      // Loopback addresses left out when the node has another.
      ownAddresses: () => publishable(libp2p.getMultiaddrs()).map(ma => ma.toString()),
      sign: async record => await signRecord(record, privateKey),
      publish: async (name, value, options, withdrawn, provide) => { await this.#publish(name, value, options, withdrawn, provide) }
    }
  }

  /** Advertisements held (withdrawn ones until replaced). */
  get size (): number {
    return this.#advertisements.size
  }

  /** Advertisements not withdrawn. */
  get advertised (): number {
    return [...this.#advertisements.values()].filter(a => !a.withdrawn).length
  }

  /** Whether this node advertises `name` now (not withdrawn). */
  provides (name: string): boolean {
    return this.#advertisements.get(name)?.withdrawn === false
  }

  /** This node's live record of `name`, if any. */
  own (name: string): ServiceRecord | undefined {
    const advertisement = this.#advertisements.get(name)
    const record = advertisement?.withdrawn === false ? advertisement.record : undefined
    return record !== undefined && record.expiresAt > this.#components.now() ? record : undefined
  }

  /** The signed bytes this node publishes for `name` now (its record or its withdrawal), if any. */
  value (name: string): Uint8Array | undefined {
    return this.#advertisements.get(name)?.value
  }

  /** ServiceRegistry.advertise(), its arguments checked. */
  async advertise (name: string, options: AdvertiseOptions): Promise<Advertisement> {
    const ttl = options.ttl ?? this.#init.defaultTtl
    const previous = this.#advertisements.get(name)
    const advertisement = new Advertisement(this.#publishing, name, options.metadata, ttl, options.multiaddrs?.slice(), previous?.record?.sequence ?? 0)
    // Checks the metadata before anything is published.
    await advertisement.sign()
    previous?.cancel()
    this.#advertisements.set(name, advertisement)
    const publishOptions = { timeout: options.timeout, signal: options.signal }
    // Discoverable first (the provider record sent to the nearest known peers), then the full
    // publication in the background; without a routing table to announce to, the full one is awaited.
    const announced = options.wait === 'published' ? undefined : await this.#announce(name, publishOptions)
    const published = advertisement.publish(publishOptions)
    advertisement.published = published
    if (announced === undefined || announced === 0) {
      try {
        await published
      } catch (error) {
        // A rejected advertise() leaves nothing behind: the caller has no advertisement to cancel,
        // so its retries (a publication timer, then a query every second) would run on unseen.
        advertisement.cancel()
        if (this.#advertisements.get(name) === advertisement) this.#advertisements.delete(name)
        throw error
      }
    } else {
      // Failures are retried by the advertisement and kept in lastError; `published` reports them.
      published.catch(() => {})
    }
    return advertisement
  }

  /**
   * Sends the provider record of `name` to the nearest peers of the routing table (announce.ts):
   * resolves with how many took it, or undefined when that is not possible here. Throws only when
   * the registry stopped before it began.
   */
  async #announce (name: string, options: QueryOptions): Promise<number | undefined> {
    const { libp2p, dht, queries, telemetry } = this.#components
    const count = this.#init.announcePeers
    if (count === 0) return undefined
    let sent: number | undefined
    const report = telemetry.traced<number | undefined>(() => telemetry.span('discovery.announce', { 'discovery.name': name }), {
      peers: () => sent ?? 0,
      outcome: sent => sent === undefined || sent === 0 ? 'not-found' : 'success'
    })
    let begun = false
    return await queries.run('announce', { timeout: options.timeout ?? this.#init.timeout, signal: options.signal }, async query => {
      begun = true
      // Not past the last second of the deadline (or its last half, if shorter): a self-query that
      // does not end (its peers do not answer; kad-dht gives it 5 s) must leave the announce its
      // turn (with a 2 s deadline it failed 4 runs of 8, announcing nothing).
      await query.race(Promise.race([joined(dht), query.sleep(query.remaining - Math.min(1_000, query.remaining / 2))]))
      sent = await query.race(announceNearby(dht, nameToCid(name), libp2p.peerId, publishable(libp2p.getMultiaddrs()), count, query.signal))
      return sent
    }, report).catch(error => {
      // A stopped registry refuses it (advertise() then fails); its failures are only not-announced.
      if (!begun) throw error
      return undefined
    })
  }

  /**
   * Puts `value` under its key and provides the name, as one query, once the thread's
   * publications have room for it (ServiceRegistryOptions.publications; the deadline runs from then).
   */
  async #publish (name: string, value: Uint8Array, options: QueryOptions, withdrawn: boolean, provide = true): Promise<void> {
    const { libp2p, dht, queries, telemetry } = this.#components
    const span = telemetry.span('discovery.advertise', { 'discovery.name': name, 'discovery.withdraw': withdrawn })
    const waited = performance.now()
    // (With a permit free, the query begins in this tick: advertise() returns with it pending.)
    const permit = this.#init.publications.tryAcquire(PUBLISH_CLASS) ?? await this.#publishPermit(name, options.signal).catch(error => {
      Telemetry.end(span, outcomeOf(error), error)
      throw error
    })
    span.setAttribute('discovery.queued_ms', Math.round((performance.now() - waited) * 1000) / 1000)
    let peers = 0
    const report = telemetry.traced<void>(span, { peers: () => peers })
    const cid = nameToCid(name)
    const drain = async (events: AsyncIterable<DhtEvent>): Promise<void> => {
      for await (const event of events) {
        telemetry.dhtEvents++
        if (event.name === 'PEER_RESPONSE') peers++
      }
    }
    try {
      await queries.run('advertise', { timeout: options.timeout ?? Math.max(this.#init.timeout, PUBLISH_TIMEOUT), signal: options.signal }, async query => await query.retry(async signal => {
        await Promise.all([
          drain(dht.put(recordKey(name, libp2p.peerId), value, { signal })),
          withdrawn ? dht.cancelReprovide(cid).catch(() => {}) : provide ? drain(dht.provide(cid, { signal })) : undefined
        ])
      }, retryable, () => telemetry.retry()), report)
    } finally {
      permit.release()
    }
  }

  /** A permit of the thread's publications; fails with ERR_DISCOVERY_ABORTED or ERR_DISCOVERY_SHUTDOWN while waiting. */
  async #publishPermit (name: string, signal?: AbortSignal): Promise<Permit> {
    const { stopping } = this.#components
    if (stopping.aborted) throw stoppedError(`the publication of "${name}"`)
    try {
      return await this.#init.publications.acquire(PUBLISH_CLASS, { signal: signal === undefined ? stopping : AbortSignal.any([signal, stopping]) })
    } catch (error) {
      if (stopping.aborted) throw new DiscoveryError(DiscoveryErrorCode.SHUTDOWN, `the registry stopped; the publication of "${name}" cancelled`, { cause: error })
      throw new DiscoveryError(DiscoveryErrorCode.ABORTED, `the publication of "${name}" was aborted`, { cause: signal?.reason ?? error })
    }
  }

  /** Stops every advertisement's refreshes, without publishing (the registry stops). */
  stop (): void {
    for (const advertisement of this.#advertisements.values()) advertisement.cancel()
    this.#advertisements.clear()
  }
}
