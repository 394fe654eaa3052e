/**
 * One attempt of resolve(): providers are pulled from the search only while fewer than `fanOut` are
 * being asked or waiting (so a provider this node already knows of costs no network query), best
 * reputation first, and asked hedged: one at first and one more each `hedge` period without an
 * answer (all `fanOut` at once with hedge 0), at once when one fails ("The Tail at Scale"). The first
 * valid record wins and everything else is cancelled. Made by the finder (finder.ts) per attempt.
 * JS thread only.
 */
import type { PeerInfo } from '@libp2p/interface'
import { DiscoveryError, DiscoveryErrorCode } from './errors.js'
import { ENDED } from './query-layer.js'
import type { ServiceRecord } from './record.js'
import type { Reputation } from './reputation.js'
import type { ResolveTimes } from './telemetry.js'

/** The source a provider search reads next: the nearest peers' one round, or kad-dht's iterative query. */
export type SearchStage = 'nearby' | 'iterative'

export interface HedgedResolveComponents {
  reputation: Reputation
  /**
   * The name's providers, each once (`seen`), as the finder's search yields them; the search waits
   * on `needed(stage)` before each network source.
   */
  providers: (signal: AbortSignal, seen: Set<string>, needed: (next: SearchStage) => Promise<void>) => AsyncGenerator<PeerInfo>
  /** One provider's live record, or undefined (the finder's fetch; `times` gets its phases). */
  fetch: (provider: PeerInfo, signal: AbortSignal, times: ResolveTimes) => Promise<ServiceRecord | undefined>
}

export interface HedgedResolveInit {
  name: string
  /** Providers asked at once, at most. */
  fanOut: number
  /** Milliseconds without an answer before one more is asked; 0: all of `fanOut` at once. */
  hedge: number
  /** Called as each provider is asked. */
  contacted: () => void
  /** Gets the phases of the fetch that won, with the search's time. */
  times: ResolveTimes
}

export class HedgedResolve {
  readonly #components: HedgedResolveComponents
  readonly #init: HedgedResolveInit
  readonly #started = performance.now()
  /** Aborts whatever this attempt started: at its end, or when the caller's signal fires. */
  readonly #attempt = new AbortController()
  readonly #seen = new Set<string>()
  /** Providers found and not asked yet, best reputation first. */
  readonly #candidates: PeerInfo[] = []
  /** The search, while it runs (returned when enough providers are being asked, then made anew). */
  #providers: AsyncGenerator<PeerInfo> | undefined
  /** When the search found its first provider. */
  #firstProvider: number | undefined
  /** Fetches in flight. */
  #running = 0
  /** Whether the search may still find providers. */
  #searching = true
  /** Whether a read of the search is in flight. */
  #pulling = false
  /** Providers that may be asked at once: all of fanOut, or with a hedge one more per hedge period. */
  #allowed: number
  #hedgeTimer: NodeJS.Timeout | undefined
  /**
   * The search goes to the network (the nearest peers, then kad-dht's query) only for a provider
   * that may be asked now, not for the one kept at hand for the next hedge period: on a name with
   * one provider that one does not exist, and looking for it cost a nearby round per resolve (and an
   * iterative query when the round found no other), 3 to 5 times the work of the resolve itself.
   * Set while the search waits for that: wakes it.
   */
  #wanted: (() => void) | undefined
  /** The source the search reads now: only kad-dht's query goes on by itself while nobody reads it. */
  #stage: SearchStage | undefined
  #settled = false
  #signal!: AbortSignal
  #resolve!: (record: ServiceRecord) => void
  #reject!: (error: unknown) => void
  readonly #onAbort = (): void => { this.#attempt.abort(this.#signal.reason) }

  constructor (components: HedgedResolveComponents, init: HedgedResolveInit) {
    this.#components = components
    this.#init = init
    this.#allowed = init.hedge > 0 ? 1 : init.fanOut
  }

  /** Runs the attempt under `signal` (the query's): the first live record, or the reason there is none. */
  async run (signal: AbortSignal): Promise<ServiceRecord> {
    this.#signal = signal
    signal.addEventListener('abort', this.#onAbort, { once: true })
    return await new Promise<ServiceRecord>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
      this.#pump()
    })
  }

  /** The search's wait before a network source: at once while a provider may be asked now. */
  readonly #needed = async (next: SearchStage): Promise<void> => {
    this.#stage = next
    if (this.#running + this.#candidates.length < this.#allowed) return
    const attempt = this.#attempt.signal
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(attempt.reason)
      attempt.addEventListener('abort', onAbort, { once: true })
      this.#wanted = () => { attempt.removeEventListener('abort', onAbort); resolve() }
    })
  }

  #finish (error: unknown, record?: ServiceRecord): void {
    if (this.#settled) return
    this.#settled = true
    clearTimeout(this.#hedgeTimer)
    this.#signal.removeEventListener('abort', this.#onAbort)
    this.#attempt.abort(ENDED)
    void this.#providers?.return(undefined).catch(() => {})
    if (record !== undefined) this.#resolve(record)
    else this.#reject(error)
  }

  /** Reads the next provider of the search into the candidates. */
  async #pull (): Promise<void> {
    this.#pulling = true
    this.#providers ??= this.#components.providers(this.#attempt.signal, this.#seen, this.#needed)
    try {
      const next = await this.#providers.next()
      if (next.done === true) this.#searching = false
      else {
        this.#firstProvider ??= performance.now()
        this.#candidates.push(next.value)
      }
    } catch (error) {
      this.#searching = false
      if (this.#attempt.signal.aborted) this.#finish(this.#signal.aborted ? this.#signal.reason : error)
      else this.#finish(new DiscoveryError(DiscoveryErrorCode.DIAL_FAILED, `the provider search for "${this.#init.name}" failed: ${(error as Error).message}`, { cause: error }))
    } finally {
      this.#pulling = false
    }
    this.#pump()
  }

  /** Asks candidates while the hedge allows, wakes or stops the search, and ends the attempt when nothing is left. */
  #pump (): void {
    if (this.#settled) return
    const { fanOut, hedge, name } = this.#init
    const candidates = this.#candidates
    if (candidates.length > 1) candidates.splice(0, candidates.length, ...this.#components.reputation.order(candidates, p => p.id.toString()))
    while (this.#running < this.#allowed && candidates.length > 0) {
      const provider = candidates.shift()!
      this.#running++
      this.#init.contacted()
      if (this.#allowed < fanOut) {
        // No answer within the hedge period: one more provider may be asked.
        clearTimeout(this.#hedgeTimer)
        this.#hedgeTimer = setTimeout(() => { this.#allowed++; this.#pump() }, hedge)
      }
      this.#ask(provider)
    }
    // A search waiting for a provider to be needed goes on.
    if (this.#wanted !== undefined && this.#running + candidates.length < this.#allowed) {
      const wake = this.#wanted
      this.#wanted = undefined
      wake()
    }
    // Candidates are gathered for those that may be asked, plus one at hand for the next hedge
    // period (more would keep the DHT query going for providers that may never be asked).
    if (this.#searching && !this.#pulling && this.#running + candidates.length < Math.min(fanOut, this.#allowed + 1)) void this.#pull()
    else if (this.#searching && !this.#pulling && this.#providers !== undefined && this.#stage === 'iterative') {
      // Enough providers are being asked: stop the DHT query until more are needed. (An answer
      // of the nearest peers already in hand is kept: the next provider may be in it.)
      void this.#providers.return(undefined).catch(() => {})
      this.#providers = undefined
      this.#stage = undefined
    } else if (!this.#searching && this.#running === 0 && candidates.length === 0) {
      this.#finish(new DiscoveryError(DiscoveryErrorCode.NOT_FOUND, `no live record of "${name}" was found`))
    }
  }

  /** Fetches `provider`'s record (counted in #running): the first live one ends the attempt; a miss lets the next be asked. */
  #ask (provider: PeerInfo): void {
    const fetchTimes: ResolveTimes = { search: this.#firstProvider! - this.#started, queued: performance.now() - this.#firstProvider! }
    this.#components.fetch(provider, this.#attempt.signal, fetchTimes).then(record => {
      this.#running--
      if (record !== undefined) {
        if (!this.#settled) Object.assign(this.#init.times, fetchTimes)
        this.#finish(undefined, record)
      } else this.#pump()
    }, error => { this.#running--; if (this.#attempt.signal.aborted) this.#finish(error); else this.#pump() })
  }
}
